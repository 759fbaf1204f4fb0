// A job's status as GET /v1/jobs/{id} answers it and its callback carries it: the record, the chunks' progress
// summed, and the billed compute priced like the online requests.
import type { Redis } from 'ioredis';
import { defaultMemoryMb } from '../executor/index.ts';
import type { JobContext } from './job-context.ts';
import type { CallbackAttempt, JobRecord, JobState } from './job-records.ts';

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

/** Each model's serving config, read once per page of statuses. */
export type ServingConfigs = Map<string, Promise<{ memoryMb?: number } | undefined>>;

const DEFAULT_MEMORY_MB = 128;

export async function jobStatus(ctx: JobContext, r: Redis, rec: JobRecord, configs: ServingConfigs = new Map()): Promise<JobStatus> {
  const chunks = await ctx.records.chunks(r, rec.id);
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
  if (!config)
    configs.set(rec.model, (config = ctx.registry.getServingConfig?.(rec.model).catch(() => undefined) ?? Promise.resolve(undefined)));
  const configured = (await config)?.memoryMb;
  const memoryMb = configured ?? (rec.sizeBytes !== undefined ? defaultMemoryMb(rec.sizeBytes) : DEFAULT_MEMORY_MB);
  const prices = ctx.config.prices;
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
    const attempts = await ctx.records.callbackAttempts(r, rec.id);
    status.callback = { url: rec.callbackUrl, delivered: attempts.some((a) => a.ok), attempts };
  }
  return status;
}
