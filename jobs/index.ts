// jobs: batch scoring on BullMQ (a flow per job, a chunk per child) and the datasets it reads. Others import only this file.
import type { Config } from '../core/index.ts';
import type { Executor } from '../executor/index.ts';
import type { ObjectStore } from '../model-store/index.ts';
import { Datasets } from './datasets.ts';
import type { JobsLog, ManifestSource, WorkerTuning } from './job-context.ts';
import { JobsService } from './jobs-service.ts';
import { v2RowCodec, type InputValidator, type RowCodec } from './row-codec.ts';

export {
  Datasets,
  ANYONE,
  type Caller,
  DATASET_NAME_PATTERN,
  datasetKey,
  resolveDatasetKey,
  type DatasetInfo,
  type DatasetPutOptions,
  type DatasetUpload,
} from './datasets.ts';
export { JobsService, type JobsOptions } from './jobs-service.ts';
export { DEFAULT_TUNING, resultKey, inputKey, type JobsLog, type ManifestSource, type WorkerTuning } from './job-context.ts';
export type { CreateJobBody } from './job-api.ts';
export type { JobStatus } from './job-status.ts';
export { JOB_STATES, type JobState, type CallbackAttempt } from './job-records.ts';
export { v2RowCodec, encodeOutputText, type RowCodec, type DecodedRow, type InputValidator } from './row-codec.ts';
export { readRows, RowCounter } from './json-lines.ts';
export { redactUrl } from './redis-link.ts';

export interface CreateJobsOptions {
  config: Readonly<Config>;
  store: ObjectStore;
  registry: ManifestSource;
  executor: Pick<Executor, 'infer'>;
  /** Checks a row's decoded inputs against the model (protocol's validateInputs). */
  validate?: InputValidator;
  /** Replaces the whole row codec (tests). */
  codec?: RowCodec;
  /** Default config.redisUrl. */
  redisUrl?: string;
  /** Default config.jobs.prefix. */
  prefix?: string;
  workerOptions?: Partial<WorkerTuning>;
  /** A pino-style logger (e.g. the app's, or a child of it); default: nothing is logged. */
  log?: JobsLog;
}

export interface Jobs {
  readonly service: JobsService;
  readonly datasets: Datasets;
  /** Starts connecting to Redis in the background; returns at once. Workers start when Redis first answers. */
  start(): void;
  /** True while Redis answers. */
  available(): boolean;
  /** Hands running chunks back to the queue and closes every connection. */
  close(): Promise<void>;
}

export function createJobs(o: CreateJobsOptions): Jobs {
  const service = new JobsService({
    config: o.config,
    store: o.store,
    registry: o.registry,
    executor: o.executor,
    codec: o.codec ?? v2RowCodec(o.validate),
    ...(o.redisUrl ? { redisUrl: o.redisUrl } : {}),
    ...(o.prefix ? { prefix: o.prefix } : {}),
    ...(o.workerOptions ? { worker: o.workerOptions } : {}),
    ...(o.log ? { log: o.log } : {}),
  });
  const datasets = new Datasets(o.store, o.config.limits);
  return {
    service,
    datasets,
    start: () => service.start(),
    available: () => service.available(),
    close: () => service.close(),
  };
}
