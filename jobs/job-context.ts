// What every part of a job's life shares: the worker settings, the logger, where manifests come from and where a
// job's objects live in the store. The API, the chunk worker, the finaliser and the callbacks each take a JobContext.
import type { Config, Manifest } from '../core/index.ts';
import type { Executor } from '../executor/index.ts';
import type { ObjectStore } from '../model-store/index.ts';
import type { JobRecords } from './job-records.ts';
import type { RowCodec } from './row-codec.ts';

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

/** A pino-style logger (pino and fastify's app.log fit): a context object, then the message. */
export interface JobsLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Used when no logger is given. */
export const SILENT_LOG: JobsLog = Object.freeze({ info() {}, warn() {}, error() {} });

export interface JobContext {
  readonly config: Readonly<Config>;
  readonly store: ObjectStore;
  readonly registry: ManifestSource;
  readonly executor: Pick<Executor, 'infer'>;
  readonly codec: RowCodec;
  readonly tuning: Readonly<WorkerTuning>;
  readonly records: JobRecords;
  readonly log: JobsLog;
}

/** One chunk's queue entry: rows [start, end) of job `id`. */
export interface ChunkData {
  id: string;
  chunk: number;
  start: number;
  end: number;
}

export function resultKey(id: string, chunk: number): string {
  return `jobs/${id}/results/${String(chunk).padStart(6, '0')}.jsonl`;
}
export function inputKey(id: string, chunk: number): string {
  return `jobs/${id}/input/${String(chunk).padStart(6, '0')}.jsonl`;
}
