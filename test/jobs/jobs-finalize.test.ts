// A job whose finalize step fails on every attempt (the store refuses to answer) ends in a terminal state with
// the reason, instead of staying "running" for ever, and each failed attempt reaches the logger it was given.
// Real Redis and BullMQ; the executor and codec are stubs.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/index.ts';
import { JobsService, type JobStatus } from '../../jobs/index.ts';
import type { InferResult } from '../../executor/index.ts';
import { FsObjectStore } from '../../model-store/index.ts';
import { faultyStore } from '../helpers/faulty-store.ts';
import { stubManifest } from '../helpers/model-bodies.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';

let redis: TestRedis;
let dir: string;
let jobs: JobsService;
let failedStats = 0;
const logged: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
const at = (level: string) => (obj: object, msg: string) => void logged.push({ level, obj: obj as Record<string, unknown>, msg });

const manifest = stubManifest();

beforeAll(async () => {
  redis = await startTestRedis();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-jobs-finalize-'));
  const fsStore = new FsObjectStore({ root: dir });
  await fsStore.init();
  // Finalize looks at every chunk's results object first; the store fails that look-up.
  const store = faultyStore(fsStore, { stat: (key) => key.includes('/results/') && ++failedStats > 0 });
  jobs = new JobsService({
    config: loadConfig({ DATA_DIR: dir, REDIS_URL: redis.url }),
    store,
    registry: { getManifest: async () => manifest },
    executor: { infer: async () => ({ outputs: [], computeMs: 1, batchSize: 1 }) as unknown as InferResult },
    codec: { decode: () => ({ inputs: [] }), encodeOutput: () => '{}' },
    prefix: uniquePrefix('finalize'),
    worker: { attempts: 2, backoffMs: 10, lockDuration: 2000, stalledInterval: 1000, pollMs: 20 },
    log: { info: at('info'), warn: at('warn'), error: at('error') },
  });
  jobs.start();
  for (let i = 0; i < 200 && !jobs.available(); i++) await new Promise((r) => setTimeout(r, 25));
});

afterAll(async () => {
  await jobs?.close();
  await redis?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('finalizing a job', () => {
  it('a finalize that fails on its last attempt ends the job "failed" with the reason', async () => {
    expect(jobs.available()).toBe(true);
    const { id } = await jobs.create({ model: 'm', rows: [{ inputs: [] }, { inputs: [] }], chunkSize: 1 });
    let status: JobStatus | undefined;
    for (let i = 0; i < 200; i++) {
      status = await jobs.get(id);
      if (['completed', 'failed', 'cancelled'].includes(status.state)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status?.state).toBe('failed');
    expect(status?.error).toContain('injected outage');
    expect(status?.finishedAt).not.toBeNull();
    // Every attempt (2) ran before the job was given up; finalize fails at its first look-up each time.
    expect(failedStats).toBe(2);
    // Each failed finalize attempt is logged with its queue, job and reason (BullMQ alone would only keep it in Redis).
    const attempts = logged.filter((l) => l.msg === 'job attempt failed' && l.obj.queue === 'jobs' && l.obj.job === id);
    expect(attempts).toHaveLength(2);
    expect(attempts.every((l) => l.level === 'warn' && String((l.obj.err as Error)?.message).includes('injected outage'))).toBe(true);
  });
});
