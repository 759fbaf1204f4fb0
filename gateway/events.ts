// The dashboard's live feed: GET /v1/events streams Server-Sent Events filled from the executor's observer (pool
// changes, cold starts, requests) and from job progress, coalesced so that each client gets at most one status
// snapshot per interval however busy the node is. The hub also keeps what the dashboard draws over time: a
// 15-minute history of rate and latency per pool (sparklines), and each pool's recent requests (cold against warm).
import type { ServerResponse } from 'node:http';
import type { Clock, ExecutorObserver, RequestDoneEvent } from '../core/index.ts';
import type { JobStatus } from '../jobs/index.ts';

/** What a status event carries: GET /v1/status's body. */
export type StatusBody = { models: unknown[]; node: unknown };

/** One history point of one pool: the requests that ended in the step. */
export interface PoolSample {
  name: string;
  version: number;
  /** Requests ended per second over the step. */
  ratePerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  coldStarts: number;
}

export interface HistoryPoint {
  /** Clock ms at the end of the step. */
  at: number;
  pools: PoolSample[];
}

/** One request as the cold-versus-warm chart draws it. */
export interface RecentRequest {
  version: number;
  at: number;
  /** Arrival to answer. */
  totalMs: number;
  queueMs: number;
  computeMs: number;
  coldStart: boolean;
  coldStartMs?: number;
  ok: boolean;
}

export interface EventsHubOptions {
  clock: Clock;
  /** Most status snapshots per client: one per this many ms (500). */
  intervalMs?: number;
  /** A snapshot goes out at least this often even when nothing happened, so rates decay on screen (5000). */
  refreshMs?: number;
  /** A comment line at least this often, so proxies and the node's own connection timeout keep the stream (15000). */
  heartbeatMs?: number;
  /** Job progress is read this often per client that may see jobs (1000). */
  jobsPollMs?: number;
  /** History step and length: 10 s points over 15 minutes. */
  historyStepMs?: number;
  historyMs?: number;
  /** Recent requests kept per pool (200). */
  recentPerPool?: number;
  /** Bytes a client may leave unread before it is dropped (1 MiB). */
  maxBufferedBytes?: number;
}

/** What a client may see of the jobs: its own (or every job, for admin and AUTH off); none without the scope. */
export type JobsAccess = { owner?: string; admin: boolean } | undefined;

export interface HubSources {
  status: () => StatusBody;
  /** The jobs a caller may see, newest first; undefined while jobs are unavailable. */
  jobs?: (caller: { owner?: string; admin: boolean }) => Promise<JobStatus[] | undefined>;
}

interface Client {
  res: ServerResponse;
  jobs: JobsAccess;
  lastJobs: string;
  jobsAt: number;
  /** When this client last got a status, and whether a newer one waits for its interval to pass. */
  statusAt: number;
  stale: boolean;
  polling: boolean;
}

/** Latencies kept per pool per history step (a sample of them past this). */
const STEP_LATENCIES = 2000;

export class EventsHub {
  readonly observer: ExecutorObserver;
  readonly #clock: Clock;
  readonly #o: Required<Omit<EventsHubOptions, 'clock'>>;
  #sources: HubSources | undefined;
  readonly #clients = new Set<Client>();
  #dirty = false;
  #lastSnapshotAt = 0;
  #lastHeartbeatAt = 0;
  #lastSampleAt: number;
  readonly #history: HistoryPoint[] = [];
  readonly #step = new Map<string, { name: string; version: number; n: number; errors: number; cold: number; lat: number[] }>();
  readonly #recent = new Map<string, RecentRequest[]>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(o: EventsHubOptions) {
    this.#clock = o.clock;
    this.#o = {
      intervalMs: o.intervalMs ?? 500,
      refreshMs: o.refreshMs ?? 5000,
      heartbeatMs: o.heartbeatMs ?? 15_000,
      jobsPollMs: o.jobsPollMs ?? 1000,
      historyStepMs: o.historyStepMs ?? 10_000,
      historyMs: o.historyMs ?? 15 * 60_000,
      recentPerPool: o.recentPerPool ?? 200,
      maxBufferedBytes: o.maxBufferedBytes ?? 1024 * 1024,
    };
    this.#lastSampleAt = this.#clock.now();
    const touch = () => {
      this.#dirty = true;
    };
    this.observer = {
      onRequestQueued: touch,
      onInstanceState: touch,
      onRequestDone: (e) => {
        this.#dirty = true;
        this.#recordDone(e);
      },
    };
  }

  get options(): Readonly<Required<Omit<EventsHubOptions, 'clock'>>> {
    return this.#o;
  }

  /** Starts the hub's timer once its sources exist (createHearth builds the hub before the autoscaler). */
  start(sources: HubSources): void {
    this.#sources = sources;
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => this.#tick(), Math.min(this.#o.intervalMs, 250));
    this.#timer.unref();
  }

  /** Open streams. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Adds a stream whose headers are sent; it gets the history and a snapshot at once. */
  add(res: ServerResponse, jobs: JobsAccess): void {
    if (this.#closed) {
      res.end();
      return;
    }
    const c: Client = { res, jobs, lastJobs: '', jobsAt: 0, polling: false, statusAt: this.#clock.now(), stale: false };
    this.#clients.add(c);
    res.once('close', () => this.#clients.delete(c));
    this.#send(c, 'history', { stepMs: this.#o.historyStepMs, points: this.#history });
    if (this.#sources) this.#send(c, 'status', { at: this.#clock.now(), ...this.#sources.status() });
    this.#pollJobs(c, this.#clock.now());
  }

  /** The recent requests of one model's pools, oldest first. */
  recent(name: string): RecentRequest[] {
    const out: RecentRequest[] = [];
    for (const [k, list] of this.#recent) if (k.slice(0, k.lastIndexOf('@')) === name) out.push(...list);
    return out.sort((a, b) => a.at - b.at);
  }

  /** Ends every stream (node shutdown) and stops the timer. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const c of this.#clients) c.res.end();
    this.#clients.clear();
  }

  #recordDone(e: RequestDoneEvent): void {
    const k = `${e.name}@${e.version}`;
    const total = e.queueMs + e.computeMs;
    let s = this.#step.get(k);
    if (!s) this.#step.set(k, (s = { name: e.name, version: e.version, n: 0, errors: 0, cold: 0, lat: [] }));
    s.n++;
    if (!e.ok) s.errors++;
    if (e.coldStart) s.cold++;
    if (s.lat.length < STEP_LATENCIES) s.lat.push(total);
    else s.lat[Math.floor(Math.random() * STEP_LATENCIES)] = total;
    let list = this.#recent.get(k);
    if (!list) this.#recent.set(k, (list = []));
    list.push({
      version: e.version,
      at: e.at,
      totalMs: round3(total),
      queueMs: round3(e.queueMs),
      computeMs: round3(e.computeMs),
      coldStart: e.coldStart,
      ...(e.coldStartMs !== undefined ? { coldStartMs: round3(e.coldStartMs) } : {}),
      ok: e.ok,
    });
    if (list.length > this.#o.recentPerPool) list.splice(0, list.length - this.#o.recentPerPool);
  }

  #tick(): void {
    const now = this.#clock.now();
    if (now - this.#lastSampleAt >= this.#o.historyStepMs) this.#sample(now);
    if (this.#clients.size === 0 || !this.#sources) {
      this.#lastHeartbeatAt = now;
      return;
    }
    // A change (or the refresh) makes every client's status stale; each gets the newest once its interval has passed.
    if (this.#dirty || now - this.#lastSnapshotAt >= this.#o.refreshMs) {
      this.#dirty = false;
      this.#lastSnapshotAt = now;
      for (const c of this.#clients) c.stale = true;
    }
    let body: object | undefined;
    for (const c of this.#clients) {
      if (!c.stale || now - c.statusAt < this.#o.intervalMs) continue;
      body ??= { at: now, ...this.#sources.status() };
      c.stale = false;
      c.statusAt = now;
      this.#send(c, 'status', body);
    }
    if (now - this.#lastHeartbeatAt >= this.#o.heartbeatMs) {
      this.#lastHeartbeatAt = now;
      for (const c of this.#clients) this.#write(c, `: heartbeat ${now}\n\n`);
    }
    for (const c of this.#clients) this.#pollJobs(c, now);
  }

  #sample(now: number): void {
    const stepSec = (now - this.#lastSampleAt) / 1000;
    this.#lastSampleAt = now;
    const pools: PoolSample[] = [];
    for (const s of this.#step.values()) {
      const lat = s.lat.sort((a, b) => a - b);
      const q = (f: number) => (lat.length ? round3(lat[Math.min(lat.length - 1, Math.ceil(f * lat.length) - 1)]) : 0);
      pools.push({
        name: s.name,
        version: s.version,
        ratePerSec: round3(s.n / stepSec),
        p50Ms: q(0.5),
        p99Ms: q(0.99),
        errors: s.errors,
        coldStarts: s.cold,
      });
    }
    this.#step.clear();
    const point = { at: now, pools };
    this.#history.push(point);
    while (this.#history.length && this.#history[0].at <= now - this.#o.historyMs) this.#history.shift();
    for (const c of this.#clients) this.#send(c, 'sample', point);
  }

  #pollJobs(c: Client, now: number): void {
    const read = this.#sources?.jobs;
    if (!c.jobs || !read || c.polling || now - c.jobsAt < this.#o.jobsPollMs) return;
    c.polling = true;
    c.jobsAt = now;
    read(c.jobs).then(
      (jobs) => {
        c.polling = false;
        if (!jobs || !this.#clients.has(c)) return;
        const text = JSON.stringify({ jobs });
        if (text === c.lastJobs) return;
        c.lastJobs = text;
        this.#write(c, `event: jobs\ndata: ${text}\n\n`);
      },
      () => {
        c.polling = false;
      },
    );
  }

  #send(c: Client, event: string, data: unknown): void {
    this.#write(c, `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** A client that leaves more than maxBufferedBytes unread is dropped: a stalled reader never holds memory. */
  #write(c: Client, text: string): void {
    if (c.res.writableEnded || c.res.destroyed) return;
    if (c.res.writableLength > this.#o.maxBufferedBytes) {
      this.#clients.delete(c);
      c.res.destroy();
      return;
    }
    c.res.write(text);
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
