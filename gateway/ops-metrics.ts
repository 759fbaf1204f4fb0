// Prometheus metrics for one Hearth app, on its own prom-client Registry (never the global one: tests build
// many apps in one process). Request counters come from the executor's observer hooks; instance counts and
// costs are read at scrape time from the pools and the cost ledger, so they agree with /v1/status and /v1/costs.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ColdStartCounter, type ExecutorObserver, type InstanceState } from '../core/index.ts';
import type { CostLedger } from '../ledger/index.ts';
import type { PoolControl } from '../scaling/index.ts';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const COLD_START_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120];
const STATES: InstanceState[] = ['starting', 'idle', 'busy', 'retiring'];

export interface HearthMetricsOptions {
  /** Read at scrape time for hearth_instances (and hearth_stuck_runs, from node()). */
  control?: Pick<PoolControl, 'pools'> & Partial<Pick<PoolControl, 'node'>>;
  /** Read at scrape time for hearth_cost_usd_total. */
  ledger?: CostLedger;
}

export class HearthMetrics {
  readonly registry = new Registry();
  readonly observer: ExecutorObserver;
  #pending = new Map<string, { labels: { model: string; version: string }; n: number }>();

  constructor(opts: HearthMetricsOptions = {}) {
    const registers = [this.registry];
    const success = new Counter({
      name: 'hearth_inference_request_success_total',
      help: 'Requests that completed successfully.',
      labelNames: ['model', 'version'],
      registers,
    });
    const failure = new Counter({
      name: 'hearth_inference_request_failure_total',
      help: 'Requests that failed, by reason (REJECTED, CANCELED, BACKEND, OTHER).',
      labelNames: ['model', 'version', 'reason'],
      registers,
    });
    const count = new Counter({
      name: 'hearth_inference_count_total',
      help: 'Inferences performed (successful requests); divided by exec_count it is the mean batch size.',
      labelNames: ['model', 'version'],
      registers,
    });
    const exec = new Counter({
      name: 'hearth_inference_exec_count_total',
      help: 'Model runs (batches) executed.',
      labelNames: ['model', 'version'],
      registers,
    });
    const queue = new Histogram({
      name: 'hearth_inference_queue_duration_seconds',
      help: 'Time from arrival to the start of the run, successful requests.',
      labelNames: ['model', 'version'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const compute = new Histogram({
      name: 'hearth_inference_compute_duration_seconds',
      help: 'Duration of the run that served each successful request.',
      labelNames: ['model', 'version'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const pendingMap = this.#pending;
    new Gauge({
      name: 'hearth_inference_pending_requests',
      help: 'Requests queued or running.',
      labelNames: ['model', 'version'],
      registers,
      collect() {
        this.reset();
        for (const p of pendingMap.values()) this.set(p.labels, p.n);
      },
    });
    const coldStarts = new Counter({
      name: 'hearth_cold_starts_total',
      help: 'Cold starts (instance starts) that requests waited for; a batch counts once.',
      labelNames: ['model', 'version'],
      registers,
    });
    const coldStartDuration = new Histogram({
      name: 'hearth_cold_start_duration_seconds',
      help: 'From instance start to the end of its first run.',
      labelNames: ['model', 'version'],
      buckets: COLD_START_BUCKETS,
      registers,
    });
    const control = opts.control;
    new Gauge({
      name: 'hearth_instances',
      help: 'Instances by state.',
      labelNames: ['model', 'version', 'state'],
      registers,
      collect() {
        this.reset();
        for (const p of control?.pools() ?? []) {
          for (const state of STATES) {
            this.set({ model: p.name, version: String(p.version), state }, p.instances.filter((i) => i.state === state).length);
          }
        }
      },
    });
    new Gauge({
      name: 'hearth_stuck_runs',
      help: 'Instance threads stuck in native code past their timeout (each holds a CPU slot and its memory; its model version is refused meanwhile).',
      labelNames: ['model', 'version'],
      registers,
      collect() {
        this.reset();
        const counts = new Map<string, { model: string; version: string; n: number }>();
        for (const r of control?.node?.().stuckRuns ?? []) {
          const k = `${r.model}@${r.version}`;
          const c = counts.get(k) ?? { model: r.model, version: String(r.version), n: 0 };
          c.n++;
          counts.set(k, c);
        }
        for (const c of counts.values()) this.set({ model: c.model, version: c.version }, c.n);
      },
    });
    const ledger = opts.ledger;
    new Counter({
      name: 'hearth_cost_usd_total',
      help: 'Cost so far in USD by kind (compute, request, idle, storage), from the cost ledger.',
      labelNames: ['model', 'version', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const m of ledger?.totals() ?? []) {
          const l = { model: m.name, version: String(m.version) };
          this.inc({ ...l, kind: 'compute' }, m.computeCost);
          this.inc({ ...l, kind: 'request' }, m.requestCost);
          this.inc({ ...l, kind: 'idle' }, m.idleCost);
          this.inc({ ...l, kind: 'storage' }, m.storageCost);
        }
      },
    });

    const labels = (name: string, version: number) => ({ model: name, version: String(version) });
    const coldStartCounter = new ColdStartCounter();
    this.observer = {
      onRequestQueued: (e) => {
        const k = `${e.name}@${e.version}`;
        const p = this.#pending.get(k) ?? { labels: labels(e.name, e.version), n: 0 };
        p.n++;
        this.#pending.set(k, p);
      },
      onRequestDone: (e) => {
        const l = labels(e.name, e.version);
        const p = this.#pending.get(`${e.name}@${e.version}`);
        if (p) p.n = Math.max(0, p.n - 1);
        if (e.ok) {
          success.inc(l);
          count.inc(l);
          queue.observe(l, e.queueMs / 1000);
          compute.observe(l, e.computeMs / 1000);
        } else {
          failure.inc({ ...l, reason: e.reason ?? 'OTHER' });
        }
        const coldMs = coldStartCounter.newColdStart(e);
        if (coldMs !== undefined) {
          coldStarts.inc(l);
          coldStartDuration.observe(l, coldMs / 1000);
        }
      },
      onRun: (e) => exec.inc(labels(e.name, e.version)),
    };
    this.#authFailures = new Counter({
      name: 'hearth_auth_failures_total',
      help: 'Requests refused 401, by key id ("none": no key sent; "unknown": no such key).',
      labelNames: ['key_id'],
      registers,
    });
    this.#rateLimited = new Counter({
      name: 'hearth_rate_limited_total',
      help: 'Requests refused 429 for a key past its rate limit or its requests in flight, by key id.',
      labelNames: ['key_id'],
      registers,
    });
  }

  readonly #authFailures: Counter<'key_id'>;
  readonly #rateLimited: Counter<'key_id'>;

  /** A 401; key ids are those of stored keys only, so the label set stays bounded. */
  authFailure(keyId: string): void {
    this.#authFailures.inc({ key_id: keyId });
  }

  rateLimited(keyId: string): void {
    this.#rateLimited.inc({ key_id: keyId });
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
