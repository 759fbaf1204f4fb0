// Job retention: a job that finished more than JOB_RETENTION_MS ago loses its results, its Redis keys and its index
// entry (a BullMQ job scheduler sweeps); a job still running is kept whatever its age. Real Redis and BullMQ; the
// executor and codec are stubs, one of which holds the rows of the job that must stay running.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Tensor } from '../../core/index.ts';
import { JobsService } from '../../jobs/index.ts';
import type { InferResult } from '../../executor/index.ts';
import { FsObjectStore } from '../../model-store/index.ts';
import { stubManifest } from '../helpers/model-bodies.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from './rig.ts';

const RETENTION_MS = 1500;
const HOLD: Tensor = { name: 'hold', datatype: 'FP32', shape: [1], data: new Float32Array(1) };

let redis: TestRedis;
let client: Redis;
let dir: string;
let store: FsObjectStore;
let jobs: JobsService;
const prefix = uniquePrefix('retention');
let release: () => void = () => {};
const held = new Promise<void>((r) => (release = r));

beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis(redis.url);
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-jobs-retention-'));
  store = new FsObjectStore({ root: dir });
  await store.init();
  jobs = new JobsService({
    config: loadConfig({ DATA_DIR: dir, REDIS_URL: redis.url, JOB_RETENTION_MS: String(RETENTION_MS) }),
    store,
    registry: { getManifest: async () => stubManifest() },
    // Rows that decode to the HOLD tensor wait until the test releases them.
    executor: {
      infer: async (req) => {
        if (req.inputs[0] === HOLD) await held;
        return { outputs: [], computeMs: 1, batchSize: 1 } as unknown as InferResult;
      },
    },
    codec: { decode: (text) => ({ inputs: text.includes('hold') ? [HOLD] : [] }), encodeOutput: () => '{}' },
    prefix,
    worker: { chunkConcurrency: 2, backoffMs: 10, lockDuration: 2000, stalledInterval: 1000, pollMs: 20 },
  });
  jobs.start();
  for (let i = 0; i < 200 && !jobs.available(); i++) await new Promise((r) => setTimeout(r, 25));
});

afterAll(async () => {
  release();
  await jobs?.close();
  client?.disconnect();
  await redis?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const state = (id: string) =>
  jobs.get(id).then(
    (s) => s.state,
    (e) => (e as { code?: string }).code,
  );
const storeKeys = async (id: string) => (await store.list(`jobs/${id}/`)).map((o) => o.key);
const redisKeys = async (id: string) => (await client.keys(`${prefix}:hearth:job:${id}*`)).sort();

describe('job retention', () => {
  it('deletes finished jobs after JOB_RETENTION_MS, results and records alike, and keeps a running job whatever its age', async () => {
    expect(jobs.available()).toBe(true);
    const done = (await jobs.create({ model: 'm', rows: [{ inputs: [] }, { inputs: [] }], chunkSize: 1 })).id;
    await waitFor(async () => ((await state(done)) === 'completed' ? true : undefined), 'the first job to complete');
    // The finaliser marks the job completed, then drops its input objects: only the two results stay.
    await waitFor(async () => ((await storeKeys(done)).length === 2 ? true : undefined), 'the input objects to go');
    expect(await storeKeys(done)).toHaveLength(2);
    expect(await redisKeys(done)).not.toEqual([]);

    const running = (await jobs.create({ model: 'm', rows: [{ inputs: [], id: 'hold' }], chunkSize: 1 })).id;
    await waitFor(async () => ((await state(running)) === 'running' ? true : undefined), 'the held job to run');
    const later = (await jobs.create({ model: 'm', rows: [{ inputs: [] }], chunkSize: 1 })).id;
    await waitFor(async () => ((await state(later)) === 'completed' ? true : undefined), 'the later job to complete');

    // The later job finished after the held one was created: once a sweep took it, that sweep saw the held job too.
    await waitFor(async () => ((await state(later)) === 'JOB_NOT_FOUND' ? true : undefined), 'the later job to be swept');
    expect(await state(done)).toBe('JOB_NOT_FOUND');
    for (const id of [done, later]) {
      expect(await storeKeys(id)).toEqual([]);
      expect(await redisKeys(id)).toEqual([]);
    }
    const listed = (await jobs.list({ limit: 100 })).jobs.map((j) => j.id);
    expect(listed).toEqual([running]);
    expect(await state(running)).toBe('running');
    expect(Date.now() - Date.parse((await jobs.get(running)).createdAt)).toBeGreaterThan(RETENTION_MS);

    // Once it finishes, its time starts.
    release();
    await waitFor(async () => ((await state(running)) === 'completed' ? true : undefined), 'the held job to complete');
    await waitFor(async () => ((await state(running)) === 'JOB_NOT_FOUND' ? true : undefined), 'the held job to be swept');
    expect(await storeKeys(running)).toEqual([]);
  });
});
