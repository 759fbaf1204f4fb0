// Batch scoring on BullMQ. A job is a flow: one parent ("finalize", queue `jobs`) over one child per chunk
// (queue `chunks`), so the parent runs exactly once, when every chunk has finished, whatever node ran them.
// Each chunk reads its rows from the store, runs them through the executor at batch priority and writes its
// results as one object, overwritten whole on a retry: the results never hold a duplicate or a missing row.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { FlowProducer, Job, Queue, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { hearthError, isHearthError, type Config, type Manifest } from '../core/index.ts';
import type { Executor } from '../executor/types.ts';
import { defaultMemoryMb } from '../executor/index.ts';
import { isNotFound, type ObjectStore } from '../model-store/index.ts';
import { readRows } from './json-lines.ts';
import { resolveDatasetKey } from './datasets.ts';
import { JobRecords, TERMINAL_STATES, type CallbackAttempt, type ChunkProgress, type JobRecord, type JobState } from './job-records.ts';
import { apiConnection, redactUrl, workerConnection } from './redis-link.ts';
import type { RowCodec } from './row-codec.ts';
import { checkCallbackUrl } from './callback-address.ts';
import { MAX_ROW_DEPTH, shown, shownMessage, valueDeeperThan } from './client-json.ts';
import { CallbackSender } from './callback-delivery.ts';
import { ObjectWriter } from './object-writer.ts';

/** What jobs need from the registry. */
export interface ManifestSource {
  getManifest(name: string, version?: number): Promise<Manifest>;
  getServingConfig?(name: string): Promise<{ memoryMb?: number }>;
}

export interface WorkerTuning {
  /** Run chunk, finalize and callback workers on this node. */
  enabled: boolean;
  /** Chunks one node runs at once. */
  chunkConcurrency: number;
  /** Rows of one chunk in flight in the executor at once: enough for dynamic batching, few enough for online traffic. */
  rowConcurrency: number;
  /** Attempts per chunk before its rows are marked failed. */
  attempts: number;
  /** First retry delay; doubles each attempt (BullMQ exponential back-off). */
  backoffMs: number;
  /** BullMQ lock of a running chunk; a node that dies loses its chunks to others after this. */
  lockDuration: number;
  /** How often each worker looks for chunks whose lock expired. */
  stalledInterval: number;
  /** Times a chunk may stall (its node died) before it counts as failed. */
  maxStalledCount: number;
  callbackAttempts: number;
  callbackBackoffMs: number;
  /** Retries of one row the executor refused for load (QUEUE_FULL, OVERLOADED) before the row fails. */
  rowRetries: number;
  /** How often a running chunk publishes its progress and looks for a cancellation. */
  pollMs: number;
}

export const DEFAULT_TUNING: Readonly<WorkerTuning> = Object.freeze({
  enabled: true,
  chunkConcurrency: 1,
  rowConcurrency: 8,
  attempts: 5,
  backoffMs: 1000,
  lockDuration: 30_000,
  stalledInterval: 30_000,
  maxStalledCount: 3,
  callbackAttempts: 6,
  callbackBackoffMs: 1000,
  rowRetries: 20,
  pollMs: 250,
});

export interface JobsOptions {
  config: Readonly<Config>;
  store: ObjectStore;
  registry: ManifestSource;
  executor: Pick<Executor, 'infer'>;
  codec: RowCodec;
  /** Default config.redisUrl. */
  redisUrl?: string;
  /** BullMQ key prefix and the prefix of Hearth's own job keys; default config.jobs.prefix. */
  prefix?: string;
  worker?: Partial<WorkerTuning>;
  log?: { info(msg: string): void; warn(msg: string): void; error(msg: string): void };
}

export interface CreateJobBody {
  model: string;
  version?: number;
  input?: string;
  rows?: unknown[];
  chunkSize?: number;
  priority?: number;
  callbackUrl?: string;
}

export interface JobStatus {
  id: string;
  model: string;
  version: number;
  state: JobState;
  input: string;
  progress: { totalRows: number; doneRows: number; failedRows: number };
  chunks: { total: number; done: number; size: number };
  priority: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Billed compute of the job's rows, priced like the online requests. */
  cost: { billedMs: number; requests: number; memoryMb: number; usd: number };
  error?: string;
  callback?: { url: string; delivered: boolean; attempts: CallbackAttempt[] };
}

interface ChunkData {
  id: string;
  chunk: number;
  start: number;
  end: number;
}

const CHUNKS = 'chunks';
const PARENTS = 'jobs';
const CALLBACKS = 'callbacks';
/** The parents queue's periodic job that deletes jobs older than JOB_RETENTION_MS. */
const SWEEP = 'retention-sweep';
/** Index entries one sweep looks at, at most (jobs still running are stepped over). */
const SWEEP_MAX = 1000;
const DEFAULT_CHUNK = 256;
const MAX_CHUNK = 100_000;
const DEFAULT_MEMORY_MB = 128;

export function resultKey(id: string, chunk: number): string {
  return `jobs/${id}/results/${String(chunk).padStart(6, '0')}.jsonl`;
}
export function inputKey(id: string, chunk: number): string {
  return `jobs/${id}/input/${String(chunk).padStart(6, '0')}.jsonl`;
}

/** Raised when a node shuts down mid-chunk: the chunk goes back to the queue untouched. */
class Interrupted extends Error {}

export class JobsService {
  readonly #o: JobsOptions;
  readonly #t: WorkerTuning;
  readonly #url: string;
  readonly #prefix: string;
  readonly #records: JobRecords;
  readonly #callbackSender: CallbackSender;
  #api?: Redis;
  #wredis?: Redis;
  #flow?: FlowProducer;
  #parents?: Queue;
  #callbacks?: Queue;
  #workers: Worker[] = [];
  #ready = false;
  #closing = false;
  #started = false;
  /** Chunks running on this node, so close() can hand them back. */
  #running = new Set<Promise<unknown>>();

  constructor(o: JobsOptions) {
    this.#o = o;
    this.#t = { ...DEFAULT_TUNING, ...o.worker };
    this.#url = o.redisUrl ?? o.config.redisUrl;
    this.#prefix = o.prefix ?? o.config.jobs.prefix;
    this.#records = new JobRecords(this.#prefix);
    this.#callbackSender = new CallbackSender(o.config.callbacks);
  }

  /** Begins connecting in the background; never waits for Redis. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const api = apiConnection(this.#url);
    this.#api = api;
    api.on('error', () => {}); // reconnects on its own; availability is read from its status
    api.on('ready', () => {
      if (!this.#ready && !this.#closing) this.#init();
    });
    api.connect().catch(() => {});
  }

  /** True when Redis answers and the queues are set up. */
  available(): boolean {
    return this.#ready && this.#api?.status === 'ready';
  }

  #init(): void {
    const api = this.#api!;
    this.#ready = true;
    this.#flow = new FlowProducer({ connection: api, prefix: this.#prefix });
    this.#parents = new Queue(PARENTS, { connection: api, prefix: this.#prefix });
    this.#callbacks = new Queue(CALLBACKS, { connection: api, prefix: this.#prefix });
    this.#flow.on('error', () => {});
    this.#parents.on('error', () => {});
    this.#callbacks.on('error', () => {});
    if (!this.#t.enabled) return;
    const w = workerConnection(this.#url);
    w.on('error', () => {});
    this.#wredis = w;
    const common = { connection: w, prefix: this.#prefix, lockDuration: this.#t.lockDuration, stalledInterval: this.#t.stalledInterval, maxStalledCount: this.#t.maxStalledCount };
    this.#workers = [
      new Worker<ChunkData>(CHUNKS, (job, token, signal) => this.#track(this.#runChunk(job, token, signal)), { ...common, concurrency: this.#t.chunkConcurrency }),
      new Worker<{ id: string }>(PARENTS, (job) => (job.name === SWEEP ? this.#sweep() : this.#finalize(job)), { ...common, concurrency: 4 }),
      new Worker<{ id: string }>(CALLBACKS, (job) => this.#deliver(job), { ...common, concurrency: 4 }),
    ];
    for (const wk of this.#workers) {
      wk.on('error', (e) => this.#o.log?.warn(`jobs worker: ${e.message}`));
    }
    // One sweep per interval for the whole cluster (a BullMQ job scheduler; every node upserts the same one).
    const { retentionMs } = this.#o.config.jobs;
    if (retentionMs > 0) {
      const every = Math.min(Math.max(Math.floor(retentionMs / 10), 1000), 3_600_000);
      this.#parents
        .upsertJobScheduler(SWEEP, { every }, { name: SWEEP, data: { id: '' }, opts: { removeOnComplete: true, removeOnFail: { count: 10 } } })
        .catch((e) => this.#o.log?.warn(`jobs retention sweep not scheduled: ${(e as Error).message}`));
    }
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#running.add(p);
    const done = () => this.#running.delete(p);
    p.then(done, done);
    return p;
  }

  /** The Redis client for API calls, or 503 JOBS_UNAVAILABLE naming REDIS_URL. */
  #need(): Redis {
    if (!this.available()) throw this.#unavailable();
    return this.#api!;
  }
  #unavailable(cause?: unknown): Error {
    return hearthError('JOBS_UNAVAILABLE', `the job queue is unavailable: Redis at REDIS_URL=${redactUrl(this.#url)} does not answer; inference still works`, { cause });
  }
  /** Runs a Redis-backed API call; a connection failure mid-call is a 503 too. */
  async #api_<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
    const r = this.#need();
    try {
      return await fn(r);
    } catch (e) {
      if (isHearthError(e)) throw e;
      if (!this.available() || isConnectionError(e)) throw this.#unavailable(e);
      throw e;
    }
  }

  async create(body: CreateJobBody): Promise<{ id: string; state: 'queued' }> {
    const req = checkCreateBody(body, this.#o.config);
    this.#need();
    const manifest = await this.#o.registry.getManifest(req.model, req.version);
    const id = newJobId();
    const chunkSize = req.chunkSize;
    let input: string;
    let split: { totalRows: number; starts: number[] };
    // The rows are cut into one store object per chunk now, in one streaming pass, so each chunk later reads
    // only its own rows (a range read of one big object would need the store to support ranges).
    if (req.lines) {
      input = 'inline';
      split = await this.#splitInput(id, chunkSize, (async function* () {
        yield* req.lines!;
      })(), '"rows": the rows');
    } else {
      input = resolveDatasetKey(req.input!);
      if (!(await this.#o.store.stat(input))) throw hearthError('DATASET_NOT_FOUND', `"input": no dataset at key ${input}`);
      const rows = readRows(await this.#o.store.get(input), { maxLineBytes: this.#o.config.limits.maxLineBytes });
      split = await this.#splitInput(id, chunkSize, rows, `"input": dataset ${input}`).catch((e) => {
        // A dataset stored under a larger limit than this node's: name it.
        throw isHearthError(e) && e.code === 'PAYLOAD_TOO_LARGE' ? hearthError('PAYLOAD_TOO_LARGE', `"input": dataset ${input}: ${e.message}`) : e;
      });
      if (split.totalRows === 0) throw hearthError('INVALID_REQUEST', `"input": dataset ${input} holds no rows`);
    }
    const { totalRows, starts } = split;
    const chunks = starts.length;
    const rec: JobRecord = {
      id,
      model: manifest.name,
      version: manifest.version,
      sizeBytes: manifest.sizeBytes,
      state: 'queued',
      totalRows,
      chunkSize,
      chunks,
      input,
      priority: req.priority,
      createdAt: Date.now(),
      ...(req.callbackUrl ? { callbackUrl: req.callbackUrl } : {}),
    };
    const cleanupInputs = (e: unknown) => this.#dropInputs(id).catch(() => {}).then(() => Promise.reject(e));
    await this.#api_(async (r) => {
      await this.#records.create(r, rec, starts);
      // BullMQ: lower numbers go first; Hearth: 9 is the most urgent.
      const bullPriority = 10 - req.priority;
      const children = [];
      for (let n = 0; n < chunks; n++) {
        const data: ChunkData = { id, chunk: n, start: starts[n], end: n + 1 < chunks ? starts[n + 1] : totalRows };
        children.push({
          name: 'chunk',
          queueName: CHUNKS,
          data,
          opts: {
            jobId: `${id}.${n}`,
            priority: bullPriority,
            attempts: this.#t.attempts,
            backoff: { type: 'exponential', delay: this.#t.backoffMs },
            // A chunk that fails for good must not block the job: the parent marks its rows failed.
            ignoreDependencyOnFailure: true,
            // The parent keeps each failure's reason (getIgnoredChildrenFailures); the failed set keeps recent ones.
            removeOnComplete: true,
            removeOnFail: { count: 1000 },
          },
        });
      }
      try {
        await this.#flow!.add({
          name: 'finalize',
          queueName: PARENTS,
          data: { id },
          opts: { jobId: id, attempts: this.#t.attempts, backoff: { type: 'exponential', delay: this.#t.backoffMs }, removeOnComplete: true, removeOnFail: { count: 1000 } },
          children,
        });
      } catch (e) {
        await this.#records.finish(r, id, 'failed', Date.now(), `could not enqueue: ${(e as Error).message}`).catch(() => {});
        throw e;
      }
    }).catch(cleanupInputs);
    return { id, state: 'queued' };
  }

  /**
   * Streams rows into `jobs/{id}/input/{chunk}.jsonl` objects, one open at a time: a chunk closes at `chunkSize`
   * rows or before a row that would take it past MAX_CHUNK_BYTES (a longer row makes a chunk of its own). Resolves
   * with the row count and each chunk's first row. More than MAX_JOB_CHUNKS chunks fail (400) at the first row past
   * them.
   */
  async #splitInput(id: string, chunkSize: number, rows: AsyncIterable<string>, what: string): Promise<{ totalRows: number; starts: number[] }> {
    const { maxChunks, maxChunkBytes } = this.#o.config.jobs;
    const starts: number[] = [];
    let writer: ObjectWriter | undefined;
    let chunkRows = 0;
    let total = 0;
    try {
      for await (const row of rows) {
        const line = `${row}\n`;
        const bytes = Buffer.byteLength(line);
        if (writer && (chunkRows === chunkSize || writer.bytes + bytes > maxChunkBytes)) {
          await writer.end();
          writer = undefined;
        }
        if (!writer) {
          if (starts.length === maxChunks) {
            throw hearthError('INVALID_REQUEST', `${what} would make more than ${maxChunks} chunks (each at most ${chunkSize} rows and MAX_CHUNK_BYTES, ${maxChunkBytes} bytes); at most ${maxChunks} (MAX_JOB_CHUNKS): use a larger chunkSize`);
          }
          writer = new ObjectWriter(this.#o.store, inputKey(id, starts.length));
          starts.push(total);
          chunkRows = 0;
        }
        await writer.write(line);
        chunkRows++;
        total++;
      }
      await writer?.end();
    } catch (e) {
      // A store or read failure part-way: the chunks written so far belong to a job that will never exist.
      await writer?.abort();
      await this.#dropInputs(id).catch(() => {});
      throw e;
    }
    return { totalRows: total, starts };
  }

  async get(id: string): Promise<JobStatus> {
    return this.#api_(async (r) => {
      const rec = await this.#records.get(r, checkJobId(id));
      if (!rec) throw hearthError('JOB_NOT_FOUND', `no job "${id}"`);
      return this.#status(r, rec);
    });
  }

  async list(opts: { limit?: number; cursor?: string }): Promise<{ jobs: JobStatus[]; nextCursor: string | null }> {
    const limit = opts.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw hearthError('INVALID_REQUEST', `"limit": expected a whole number in [1, 1000], got ${shown(opts.limit)}`);
    let cursor: { createdAt: number; id: string } | undefined;
    if (opts.cursor !== undefined) {
      // `${createdAt}:${jobId}` as page() makes it; anything else (a repeated parameter arrives as an array) is refused.
      const m = typeof opts.cursor === 'string' ? /^(\d{1,15}):(j[0-9a-z]{6,16}[0-9a-f]{8})$/.exec(opts.cursor) : null;
      if (!m) throw hearthError('INVALID_REQUEST', `"cursor": ${shown(opts.cursor)} is not a cursor this API returned`);
      cursor = { createdAt: Number(m[1]), id: m[2] };
    }
    return this.#api_(async (r) => {
      const page = await this.#records.page(r, limit, cursor);
      const jobs: JobStatus[] = [];
      // A page usually holds many jobs of few models: read each model's serving config once.
      const configs = new Map<string, Promise<{ memoryMb?: number } | undefined>>();
      for (const jid of page.ids) {
        const rec = await this.#records.get(r, jid);
        if (rec) jobs.push(await this.#status(r, rec, configs));
      }
      return { jobs, nextCursor: page.next ?? null };
    });
  }

  /** Cancels: queued chunks are removed, running chunks stop at their next row. */
  async cancel(id: string): Promise<JobStatus> {
    return this.#api_(async (r) => {
      const rec = await this.#records.get(r, checkJobId(id));
      if (!rec) throw hearthError('JOB_NOT_FOUND', `no job "${id}"`);
      if (!TERMINAL_STATES.includes(rec.state)) {
        await this.#records.finish(r, id, 'cancelled', Date.now());
        await this.#dropUnstarted(id);
        await this.#enqueueCallback(rec);
      }
      return this.#status(r, (await this.#records.get(r, id))!);
    });
  }

  /** Removes the chunks no node has started; if none is running either, the parent is removed too. */
  async #dropUnstarted(id: string): Promise<void> {
    const parent = await Job.fromId(this.#parents!, id);
    if (!parent) return;
    await parent.removeUnprocessedChildren();
    const left = await parent.getDependenciesCount({ unprocessed: true });
    if ((left.unprocessed ?? 0) === 0 && (await parent.getState()) === 'waiting-children') {
      const removed = await parent.remove({ removeChildren: false }).then(() => true, () => false);
      if (removed) await this.#dropInputs(id).catch(() => {});
    }
  }

  /** The results so far, as JSON Lines in input order: every finished chunk up to the first unfinished one. */
  async results(id: string): Promise<{ state: JobState; totalRows: number; stream: Readable }> {
    const rec = await this.#api_(async (r) => this.#records.get(r, checkJobId(id)));
    if (!rec) throw hearthError('JOB_NOT_FOUND', `no job "${id}"`);
    const store = this.#o.store;
    async function* lines(): AsyncGenerator<Buffer> {
      for (let n = 0; n < rec!.chunks; n++) {
        let body: Readable;
        try {
          body = await store.get(resultKey(rec!.id, n));
        } catch (e) {
          if (isNotFound(e)) return; // the first chunk not finished yet
          throw e;
        }
        for await (const b of body) yield b as Buffer;
      }
    }
    return { state: rec.state, totalRows: rec.totalRows, stream: Readable.from(lines()) };
  }

  async #status(r: Redis, rec: JobRecord, configs = new Map<string, Promise<{ memoryMb?: number } | undefined>>()): Promise<JobStatus> {
    const chunks = await this.#records.chunks(r, rec.id);
    let doneRows = 0;
    let failedRows = 0;
    let billedMs = 0;
    let requests = 0;
    let doneChunks = 0;
    for (const p of chunks.values()) {
      doneRows += p.done;
      failedRows += p.failed;
      billedMs += p.billedMs;
      requests += p.requests;
      if (p.final) doneChunks++;
    }
    // Priced like the online requests: the model's configured memory, else what the executor reserves for it.
    let config = configs.get(rec.model);
    if (!config) configs.set(rec.model, (config = this.#o.registry.getServingConfig?.(rec.model).catch(() => undefined) ?? Promise.resolve(undefined)));
    const configured = (await config)?.memoryMb;
    const memoryMb = configured ?? (rec.sizeBytes !== undefined ? defaultMemoryMb(rec.sizeBytes) : DEFAULT_MEMORY_MB);
    const prices = this.#o.config.prices;
    const usd = (billedMs / 1000) * (memoryMb / 1024) * prices.computePerGbSecond + requests * prices.perRequest;
    const status: JobStatus = {
      id: rec.id,
      model: rec.model,
      version: rec.version,
      state: rec.state,
      input: rec.input,
      progress: { totalRows: rec.totalRows, doneRows: Math.min(doneRows, rec.totalRows), failedRows },
      chunks: { total: rec.chunks, done: doneChunks, size: rec.chunkSize },
      priority: rec.priority,
      createdAt: new Date(rec.createdAt).toISOString(),
      startedAt: rec.startedAt ? new Date(rec.startedAt).toISOString() : null,
      finishedAt: rec.finishedAt ? new Date(rec.finishedAt).toISOString() : null,
      cost: { billedMs, requests, memoryMb, usd: Number(usd.toFixed(10)) },
    };
    if (rec.error) status.error = rec.error;
    if (rec.callbackUrl) {
      const attempts = await this.#records.callbackAttempts(r, rec.id);
      status.callback = { url: rec.callbackUrl, delivered: attempts.some((a) => a.ok), attempts };
    }
    return status;
  }

  // ---- workers ----

  async #runChunk(job: Job<ChunkData>, token: string | undefined, signal: AbortSignal | undefined): Promise<{ rows: number; failed: number } | { skipped: string }> {
    const r = this.#wredis!;
    const { id, chunk, start, end } = job.data;
    const rec = await this.#records.get(r, id);
    if (!rec) return { skipped: 'job record gone' };
    if (TERMINAL_STATES.includes(rec.state)) return { skipped: rec.state };
    await this.#records.markRunning(r, id, Date.now());

    let manifest: Manifest;
    try {
      manifest = await this.#o.registry.getManifest(rec.model, rec.version);
    } catch (e) {
      if (isHearthError(e) && (e.code === 'MODEL_NOT_FOUND' || e.code === 'VERSION_NOT_FOUND')) {
        // The job cannot run at all: fail it and drop the chunks nobody started.
        await this.#records.finish(r, id, 'failed', Date.now(), `model ${rec.model} version ${rec.version} is gone: ${e.message}`);
        await this.#dropUnstarted(id).catch(() => {});
        await this.#enqueueCallback(rec).catch(() => {});
        throw new UnrecoverableError(e.message);
      }
      throw e;
    }

    // Rows stream in from the chunk's input and results stream out to the store in input order: at most
    // rowConcurrency rows and their result lines are held, whatever the chunk's size.
    const want = end - start;
    const rows = readRows(await this.#o.store.get(inputKey(id, chunk)), { maxLineBytes: this.#o.config.limits.maxLineBytes })[Symbol.asyncIterator]();
    const results = new ObjectWriter(this.#o.store, resultKey(id, chunk));
    const inFlight: Promise<string>[] = [];
    const progress: ChunkProgress = { done: 0, failed: 0, billedMs: 0, requests: 0 };
    let stop: 'cancelled' | 'failed' | 'closing' | undefined;
    let taken = 0;
    // Cancellation and progress are polled, not per row: one Redis round trip per poll, not per row.
    const poll = setInterval(() => {
      this.#records.setChunk(r, id, chunk, progress).catch(() => {});
      this.#records.state(r, id).then((s) => {
        if (s === 'cancelled' || s === 'failed') stop ??= s;
      }, () => {});
    }, this.#t.pollMs);
    try {
      for (;;) {
        if (this.#closing) stop = 'closing';
        else if (signal?.aborted) stop = 'cancelled';
        if (stop) break;
        const step = await rows.next();
        if (step.done) break;
        if (taken === want) throw new Error(`input of chunk ${chunk} holds more than the ${want} rows expected`);
        inFlight.push(
          this.#runRow(manifest, start + taken++, step.value, progress).then((line) => {
            progress.done++;
            return line;
          }),
        );
        // The oldest row's line goes out first, so lines leave in input order while the others run.
        if (inFlight.length >= this.#t.rowConcurrency) await results.write(await inFlight.shift()!);
      }
      if (!stop) {
        while (inFlight.length) await results.write(await inFlight.shift()!);
        if (taken !== want) throw new Error(`input of chunk ${chunk} holds ${taken} rows, expected ${want}`);
        await results.end();
      }
    } catch (e) {
      await this.#abandon(inFlight, rows, results);
      throw e;
    } finally {
      clearInterval(poll);
    }
    if (stop) await this.#abandon(inFlight, rows, results);
    if (stop === 'closing') {
      // Hand the chunk back untouched, without spending an attempt; another node (or this one after a restart) redoes it.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    if (stop) return { skipped: stop };
    await this.#records.setChunk(r, id, chunk, { ...progress, final: true });
    return { rows: taken, failed: progress.failed };
  }

  /** A chunk that stops early: its rows in flight finish (their lines dropped), its input closes, no result is stored. */
  async #abandon(inFlight: Promise<string>[], rows: AsyncIterator<string>, results: ObjectWriter): Promise<void> {
    await Promise.allSettled(inFlight);
    inFlight.length = 0;
    await rows.return?.(undefined).catch(() => {});
    await results.abort();
  }

  /** One row → one result line; a bad row becomes an error line and never fails the chunk. */
  async #runRow(manifest: Manifest, index: number, text: string, progress: ChunkProgress): Promise<string> {
    let rowId: string | undefined;
    const head = () => (rowId === undefined ? `{"index":${index}` : `{"index":${index},"id":${JSON.stringify(rowId)}`);
    try {
      const row = this.#o.codec.decode(text, manifest);
      rowId = row.id;
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await this.#o.executor.infer({
            manifest,
            inputs: row.inputs,
            ...(row.outputs ? { outputs: row.outputs } : {}),
            priority: 0,
            source: 'batch',
          });
          progress.requests++;
          progress.billedMs += Math.max(1, Math.ceil(res.computeMs / Math.max(1, res.batchSize)));
          return `${head()},"outputs":[${res.outputs.map((t) => this.#o.codec.encodeOutput(t)).join(',')}]}\n`;
        } catch (e) {
          // Load shedding is not the row's fault: wait and try again, so batch work yields to online traffic.
          if (isHearthError(e) && (e.code === 'QUEUE_FULL' || e.code === 'OVERLOADED') && attempt < this.#t.rowRetries && !this.#closing) {
            await sleep(Math.min(50 * 2 ** attempt, 2000));
            continue;
          }
          throw e;
        }
      }
    } catch (e) {
      progress.failed++;
      // The decoder may have stopped before the id: read it from the row if the row is JSON at all.
      if (rowId === undefined) rowId = idOf(text);
      // The message may quote the row's values (a name, a number): each is cut, so a row cannot make its line grow.
      const msg = shownMessage(isHearthError(e) ? `${e.code}: ${e.message}` : String((e as Error)?.message));
      return `${head()},"error":${JSON.stringify(msg)}}\n`;
    }
  }

  /**
   * Runs once every chunk has finished. Its last attempt, if it fails too, ends the job `failed` with the reason,
   * so a job never stays `running` after its parent gave up.
   */
  async #finalize(job: Job<{ id: string }>): Promise<void> {
    try {
      await this.#finalizeOnce(job);
    } catch (e) {
      if (job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) {
        const r = this.#wredis!;
        const msg = isHearthError(e) ? `${e.code}: ${e.message}` : (e as Error)?.message;
        const moved = await this.#records.finish(r, job.data.id, 'failed', Date.now(), `could not finish the job after ${job.attemptsMade + 1} attempts: ${msg}`).catch(() => false);
        const rec = moved ? await this.#records.get(r, job.data.id).catch(() => undefined) : undefined;
        if (rec) await this.#enqueueCallback(rec).catch(() => {});
      }
      throw e;
    }
  }

  /** Fills in chunks that failed for good, then ends the job. */
  async #finalizeOnce(job: Job<{ id: string }>): Promise<void> {
    const r = this.#wredis!;
    const id = job.data.id;
    const rec = await this.#records.get(r, id);
    if (!rec) return;
    if (!TERMINAL_STATES.includes(rec.state)) {
      const failures = await job.getIgnoredChildrenFailures();
      const reasons = new Map<number, string>();
      for (const [k, v] of Object.entries(failures)) {
        const m = /\.(\d+)$/.exec(k);
        if (m) reasons.set(Number(m[1]), v);
      }
      const progress = await this.#records.chunks(r, id);
      let ranges: [number, number][] | undefined;
      for (let n = 0; n < rec.chunks; n++) {
        if (await this.#o.store.stat(resultKey(id, n))) {
          // The object is the truth: if the attempt that wrote it could not record its counts, count them here.
          if (!progress.get(n)?.final) {
            let done = 0;
            let failed = 0;
            // Only each line's head is needed (outputs can be large): a line longer than a row is cut.
            const heads = readRows(await this.#o.store.get(resultKey(id, n)), { maxLineBytes: this.#o.config.limits.maxLineBytes + 64, truncate: true });
            for await (const head of heads) {
              done++;
              if (isErrorLine(head)) failed++;
            }
            await this.#records.setChunk(r, id, n, { done, failed, billedMs: progress.get(n)?.billedMs ?? 0, requests: progress.get(n)?.requests ?? 0, final: true });
          }
          continue;
        }
        ranges ??= await this.#records.chunkRanges(r, rec);
        const [start, end] = ranges[n];
        const reason = `chunk ${n} failed after ${this.#t.attempts} attempts: ${shownMessage(reasons.get(n) ?? 'no result was written')}`;
        // One error line per row, streamed: a chunk may hold up to 100000 rows.
        const out = new ObjectWriter(this.#o.store, resultKey(id, n));
        try {
          for (let i = start; i < end; i++) await out.write(`${JSON.stringify({ index: i, error: reason })}\n`);
          await out.end();
        } catch (e) {
          await out.abort();
          throw e;
        }
        await this.#records.setChunk(r, id, n, { done: end - start, failed: end - start, billedMs: 0, requests: 0, final: true });
      }
      await this.#records.finish(r, id, 'completed', Date.now());
    }
    await this.#enqueueCallback(rec);
    // Every chunk has finished, so no one reads the job's copy of its input any more.
    await this.#dropInputs(id);
  }

  /**
   * Deletes the jobs that finished more than JOB_RETENTION_MS ago, oldest first: their store objects (results, any
   * inputs left), then their Redis keys and index entry. Jobs not yet finished are kept whatever their age.
   */
  async #sweep(): Promise<void> {
    const r = this.#wredis!;
    const cutoff = Date.now() - this.#o.config.jobs.retentionMs;
    let kept = 0;
    for (let seen = 0; seen < SWEEP_MAX; ) {
      const ids = await this.#records.createdBefore(r, cutoff, kept, 100);
      if (ids.length === 0) return;
      seen += ids.length;
      for (const id of ids) {
        const rec = await this.#records.get(r, id);
        if (rec && (!TERMINAL_STATES.includes(rec.state) || (rec.finishedAt ?? rec.createdAt) > cutoff)) {
          kept++;
          continue;
        }
        for (const o of await this.#o.store.list(`jobs/${id}/`)) await this.#o.store.delete(o.key);
        await this.#records.remove(r, id);
      }
    }
  }

  async #dropInputs(id: string): Promise<void> {
    for (const o of await this.#o.store.list(`jobs/${id}/input/`)) await this.#o.store.delete(o.key);
  }

  async #enqueueCallback(rec: JobRecord): Promise<void> {
    if (!rec.callbackUrl) return;
    // One delivery per job: the fixed jobId makes a second enqueue (cancel, then finalize) a no-op.
    await this.#callbacks!.add(
      'callback',
      { id: rec.id },
      {
        jobId: `${rec.id}.callback`,
        attempts: this.#t.callbackAttempts,
        backoff: { type: 'exponential', delay: this.#t.callbackBackoffMs },
        removeOnComplete: true,
        // The job's record keeps every attempt; BullMQ keeps only the latest failures.
        removeOnFail: { count: 1000 },
      },
    );
  }

  async #deliver(job: Job<{ id: string }>): Promise<void> {
    const r = this.#wredis!;
    const rec = await this.#records.get(r, job.data.id);
    if (!rec?.callbackUrl) return;
    const status = await this.#status(r, rec);
    delete status.callback;
    const at = new Date().toISOString();
    const out = await this.#callbackSender.send(rec.callbackUrl, JSON.stringify(status), {
      'content-type': 'application/json',
      'x-hearth-job-id': rec.id,
      'x-hearth-delivery-attempt': String(job.attemptsMade + 1),
    });
    await this.#records.addCallbackAttempt(r, rec.id, { at, ok: out.ok, ...(out.status !== undefined ? { status: out.status } : {}), ...(out.error ? { error: out.error } : {}) });
    if (out.ok) return;
    const why = out.error ?? `answered ${out.status}`;
    // A refused address stays refused: no more attempts.
    if (out.final) throw new UnrecoverableError(why);
    throw new Error(`callback failed: ${why}`);
  }

  async close(): Promise<void> {
    this.#closing = true;
    // Running chunks stop at their next row and go back to the queue; wait for that, then close the workers.
    // With Redis away the hand-back cannot happen: give up after a while and leave those chunks to the
    // stalled check of the nodes that remain.
    await settleWithin([...this.#running], 10_000);
    const graceful = await settleWithin(this.#workers.map((w) => w.close()), 5_000);
    if (!graceful) await settleWithin(this.#workers.map((w) => w.close(true)), 2_000);
    await settleWithin([this.#flow?.close(), this.#parents?.close(), this.#callbacks?.close()], 2_000);
    this.#wredis?.disconnect();
    this.#api?.disconnect();
    this.#callbackSender.close();
  }

  /** Test and admin helper: every Redis key and store object of a job. */
  async purge(id: string): Promise<void> {
    await this.#api_((r) => this.#records.remove(r, checkJobId(id)));
    for (const o of await this.#o.store.list(`jobs/${id}/`)) await this.#o.store.delete(o.key);
  }
}

type CheckedBody = Required<Pick<CreateJobBody, 'model' | 'chunkSize' | 'priority'>> & CreateJobBody & { lines?: string[] };

/** Checks a job request before anything is read, written or queued; inline rows come back as JSON Lines. */
function checkCreateBody(body: CreateJobBody, config: Readonly<Config>): CheckedBody {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw hearthError('INVALID_REQUEST', 'body: expected a JSON object { model, input | rows, ... }');
  const known = new Set(['model', 'version', 'input', 'rows', 'chunkSize', 'priority', 'callbackUrl']);
  for (const k of Object.keys(body)) if (!known.has(k)) throw hearthError('INVALID_REQUEST', `body: unknown field ${shown(k)}`);
  if (typeof body.model !== 'string' || body.model === '') throw hearthError('INVALID_REQUEST', '"model": expected a model name');
  let version: number | undefined;
  if (body.version !== undefined && body.version !== null) {
    version = typeof body.version === 'string' && /^\d+$/.test(body.version) ? Number(body.version) : body.version;
    if (!Number.isInteger(version) || version! < 1) throw hearthError('INVALID_REQUEST', `"version": expected a positive whole number, got ${shown(body.version)}`);
  }
  const hasInput = body.input !== undefined;
  const hasRows = body.rows !== undefined;
  if (hasInput === hasRows) throw hearthError('INVALID_REQUEST', 'body: give exactly one of "input" (a dataset key) and "rows" (an array of inference requests)');
  if (hasInput && typeof body.input !== 'string') throw hearthError('INVALID_REQUEST', '"input": expected a dataset key such as "datasets/name.jsonl"');
  if (hasRows && (!Array.isArray(body.rows) || body.rows.length === 0)) throw hearthError('INVALID_REQUEST', '"rows": expected a non-empty array of inference requests');
  const chunkSize = body.chunkSize ?? DEFAULT_CHUNK;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK) throw hearthError('INVALID_REQUEST', `"chunkSize": expected a whole number in [1, ${MAX_CHUNK}], got ${shown(body.chunkSize)}`);
  const priority = body.priority ?? 0;
  if (!Number.isInteger(priority) || priority < 0 || priority > 9) throw hearthError('INVALID_REQUEST', `"priority": expected a whole number in [0, 9], got ${shown(body.priority)}`);
  if (body.callbackUrl !== undefined) checkCallbackUrl(body.callbackUrl, config.callbacks.allowPrivate);
  if (!hasRows) return { ...body, version, chunkSize, priority };
  const chunks = Math.ceil(body.rows!.length / chunkSize);
  if (chunks > config.jobs.maxChunks) {
    throw hearthError('INVALID_REQUEST', `"chunkSize": ${body.rows!.length} rows in chunks of ${chunkSize} make ${chunks} chunks; at most ${config.jobs.maxChunks} (MAX_JOB_CHUNKS): use a larger chunkSize`);
  }
  return { ...body, version, chunkSize, priority, lines: inlineLines(body.rows!, config) };
}

/**
 * Inline rows as the JSON Lines their chunks will hold, bounded like a dataset: at most MAX_INLINE_ROWS rows, each
 * nested at most MAX_ROW_DEPTH deep (checked before JSON.stringify, which would overflow the stack) and at most
 * MAX_LINE_BYTES long, all of them at most MAX_REQUEST_BYTES (numbers can take more room written out than sent).
 */
function inlineLines(rows: unknown[], config: Readonly<Config>): string[] {
  const { maxInlineRows } = config.jobs;
  const { maxLineBytes, maxRequestBytes } = config.limits;
  if (rows.length > maxInlineRows) throw hearthError('INVALID_REQUEST', `"rows": ${rows.length} rows; at most ${maxInlineRows} (MAX_INLINE_ROWS): upload a dataset for more`);
  const lines: string[] = new Array(rows.length);
  let total = 0;
  for (let i = 0; i < rows.length; i++) {
    if (valueDeeperThan(rows[i], MAX_ROW_DEPTH)) throw hearthError('INVALID_REQUEST', `"rows[${i}]": nested deeper than ${MAX_ROW_DEPTH} levels`);
    const line = JSON.stringify(rows[i]) ?? 'null';
    const bytes = Buffer.byteLength(line);
    if (bytes > maxLineBytes) throw hearthError('INVALID_REQUEST', `"rows[${i}]": ${bytes} bytes as JSON, longer than MAX_LINE_BYTES (${maxLineBytes} bytes)`);
    total += bytes + 1;
    if (total > maxRequestBytes) throw hearthError('INVALID_REQUEST', `"rows": the rows take more than MAX_REQUEST_BYTES (${maxRequestBytes} bytes) as JSON Lines; upload a dataset for more`);
    lines[i] = line;
  }
  return lines;
}

const JOB_ID = /^j[0-9a-z]{6,16}[0-9a-f]{8}$/;

function newJobId(): string {
  return `j${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

function checkJobId(id: string): string {
  if (!JOB_ID.test(id)) throw hearthError('JOB_NOT_FOUND', `no job "${id}"`);
  return id;
}

function isConnectionError(e: unknown): boolean {
  const m = (e as Error)?.message ?? '';
  return /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|enableOfflineQueue|MaxRetriesPerRequest|Reached the max retries/i.test(m);
}

/**
 * True for a result line that records a failed row: `{"index":N` and the row's optional `"id"` (a JSON string no
 * longer than its row), then `"error"`. Reads only the head, so a cut line is judged the same as a whole one.
 */
export function isErrorLine(head: string): boolean {
  const m = /^\{"index":\d+/.exec(head);
  if (!m) return false;
  let i = m[0].length;
  if (head.startsWith(',"id":"', i)) {
    for (i += 7; i < head.length && head[i] !== '"'; i++) if (head[i] === '\\') i++;
    i++;
  }
  return head.startsWith(',"error":', i);
}

function idOf(text: string): string | undefined {
  try {
    const v = JSON.parse(text) as { id?: unknown };
    return v && typeof v.id === 'string' ? v.id : undefined;
  } catch {
    return undefined;
  }
}

/** True when every promise settled within `ms`. */
async function settleWithin(ps: (Promise<unknown> | undefined)[], ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  const all = Promise.allSettled(ps).then(() => true as const);
  try {
    return await Promise.race([all, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
