// Batch scoring on BullMQ. A job is a flow: one parent ("finalize", queue `jobs`) over one child per chunk
// (queue `chunks`), so the parent runs exactly once, when every chunk has finished, whatever node ran them.
// JobsService wires the parts, one concern per file: the Redis link and queues (redis-link.ts), the job API
// (job-api.ts), the chunk worker (chunk-worker.ts), finalisation and retention (finaliser.ts) and callbacks
// (callback-queue.ts over callback-delivery.ts).
import type { Readable } from 'node:stream';
import { Worker } from 'bullmq';
import { settleWithin, type Config } from '../core/index.ts';
import type { Executor } from '../executor/index.ts';
import type { ObjectStore } from '../model-store/index.ts';
import { CallbackQueue } from './callback-queue.ts';
import { ChunkWorker } from './chunk-worker.ts';
import { Finaliser } from './finaliser.ts';
import { JobApi, type CreateJobBody } from './job-api.ts';
import {
  DEFAULT_TUNING,
  SILENT_LOG,
  type ChunkData,
  type JobContext,
  type JobsLog,
  type ManifestSource,
  type WorkerTuning,
} from './job-context.ts';
import { JobRecords, type JobState } from './job-records.ts';
import type { Caller } from './datasets.ts';
import type { JobStatus } from './job-status.ts';
import type { RowCodec } from './row-codec.ts';
import { CALLBACKS, CHUNKS, PARENTS, RedisLink } from './redis-link.ts';

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
  /** Default: nothing is logged. */
  log?: JobsLog;
}

export class JobsService {
  readonly #ctx: JobContext;
  readonly #link: RedisLink;
  readonly #api: JobApi;
  readonly #chunks: ChunkWorker;
  readonly #finaliser: Finaliser;
  readonly #callbacks: CallbackQueue;
  #workers: Worker[] = [];

  constructor(o: JobsOptions) {
    const prefix = o.prefix ?? o.config.jobs.prefix;
    this.#ctx = {
      config: o.config,
      store: o.store,
      registry: o.registry,
      executor: o.executor,
      codec: o.codec,
      tuning: { ...DEFAULT_TUNING, ...o.worker },
      records: new JobRecords(prefix),
      log: o.log ?? SILENT_LOG,
    };
    this.#link = new RedisLink(o.redisUrl ?? o.config.redisUrl, prefix, this.#ctx.log, () => this.#startWorkers());
    this.#callbacks = new CallbackQueue(this.#ctx, this.#link);
    this.#api = new JobApi(this.#ctx, this.#link, this.#callbacks);
    this.#chunks = new ChunkWorker(this.#ctx, this.#link, this.#callbacks);
    this.#finaliser = new Finaliser(this.#ctx, this.#link, this.#callbacks);
  }

  /** Begins connecting in the background; never waits for Redis. */
  start(): void {
    this.#link.start();
  }

  /** True when Redis answers and the queues are set up. */
  available(): boolean {
    return this.#link.available();
  }

  /** Runs once Redis first answers: the chunk, finalize and callback workers, and the retention sweep. */
  #startWorkers(): void {
    const t = this.#ctx.tuning;
    if (!t.enabled) return;
    const w = this.#link.openWorkerConnection();
    const common = {
      connection: w,
      prefix: this.#link.prefix,
      lockDuration: t.lockDuration,
      stalledInterval: t.stalledInterval,
      maxStalledCount: t.maxStalledCount,
    };
    this.#workers = [
      new Worker<ChunkData>(CHUNKS, (job, token, signal) => this.#chunks.run(job, token, signal), {
        ...common,
        concurrency: t.chunkConcurrency,
      }),
      new Worker<{ id: string }>(PARENTS, (job) => this.#finaliser.run(job), { ...common, concurrency: 4 }),
      new Worker<{ id: string }>(CALLBACKS, (job) => this.#callbacks.deliver(job), { ...common, concurrency: 4 }),
    ];
    const log = this.#ctx.log;
    for (const wk of this.#workers) {
      wk.on('error', (err) => log.warn({ err, queue: wk.name }, 'jobs worker error'));
      // A failed attempt is kept in Redis (and a chunk's last one becomes its rows' error lines); say so here too.
      wk.on('failed', (job, err) => log.warn({ err, queue: wk.name, job: job?.id, attempt: job?.attemptsMade }, 'job attempt failed'));
    }
    this.#finaliser.scheduleSweep();
  }

  create(body: CreateJobBody, caller?: Caller): Promise<{ id: string; state: 'queued' }> {
    return this.#api.create(body, caller);
  }

  get(id: string, caller?: Caller): Promise<JobStatus> {
    return this.#api.get(id, caller);
  }

  list(opts: { limit?: number; cursor?: string }, caller?: Caller): Promise<{ jobs: JobStatus[]; nextCursor: string | null }> {
    return this.#api.list(opts, caller);
  }

  /** Cancels: queued chunks are removed, running chunks stop at their next row. */
  cancel(id: string, caller?: Caller): Promise<JobStatus> {
    return this.#api.cancel(id, caller);
  }

  /** The results so far, as JSON Lines in input order: every finished chunk up to the first unfinished one. */
  results(id: string, caller?: Caller): Promise<{ state: JobState; totalRows: number; stream: Readable }> {
    return this.#api.results(id, caller);
  }

  /** Test and admin helper: every Redis key and store object of a job. */
  purge(id: string): Promise<void> {
    return this.#api.purge(id);
  }

  async close(): Promise<void> {
    this.#link.markClosing();
    // Running chunks stop at their next row and go back to the queue; wait for that, then close the workers.
    // With Redis away the hand-back cannot happen: give up after a while and leave those chunks to the
    // stalled check of the nodes that remain.
    await this.#chunks.stop(10_000);
    const graceful = await settleWithin(
      this.#workers.map((w) => w.close()),
      5_000,
    );
    if (!graceful)
      await settleWithin(
        this.#workers.map((w) => w.close(true)),
        2_000,
      );
    await this.#link.close();
    this.#callbacks.close();
  }
}
