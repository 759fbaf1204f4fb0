// JobsService.create on a store that fails part-way: a refused job leaves none of its input chunks behind.
// Real Redis; the executor and registry are stubs because no chunk ever runs (workers are off).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/index.ts';
import { JobsService, v2RowCodec } from '../../jobs/index.ts';
import { FsObjectStore } from '../../model-store/index.ts';
import { faultyStore } from '../helpers/faulty-store.ts';
import { stubManifest } from '../helpers/model-bodies.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';

let redis: TestRedis;
let dir: string;
let fsStore: FsObjectStore;
let failInputPut = false;
let jobs: JobsService;
let configReads = 0;

const manifest = stubManifest();

beforeAll(async () => {
  redis = await startTestRedis();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-jobs-create-'));
  fsStore = new FsObjectStore({ root: dir });
  await fsStore.init();
  // The second input chunk of a job fails to store, as a store outage part-way through would.
  const store = faultyStore(fsStore, { put: (key) => failInputPut && /\/input\/000001\.jsonl$/.test(key) });
  jobs = new JobsService({
    config: loadConfig({ DATA_DIR: dir, REDIS_URL: redis.url }),
    store,
    registry: {
      getManifest: async () => manifest,
      getServingConfig: async () => {
        configReads++;
        return { memoryMb: 256 };
      },
    },
    executor: { infer: async () => Promise.reject(new Error('not used')) },
    codec: v2RowCodec(),
    prefix: uniquePrefix('create'),
    worker: { enabled: false },
  });
  jobs.start();
  for (let i = 0; i < 200 && !jobs.available(); i++) await new Promise((r) => setTimeout(r, 25));
});

afterAll(async () => {
  await jobs?.close();
  await redis?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('creating a job', () => {
  it('a store failure while the rows are cut into chunks leaves no input objects', async () => {
    expect(jobs.available()).toBe(true);
    failInputPut = true;
    const rows = Array.from({ length: 5 }, () => ({ inputs: [] }));
    await expect(jobs.create({ model: 'm', rows, chunkSize: 2 })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect((await fsStore.list('jobs/')).map((o) => o.key)).toEqual([]);
  });

  it('without the failure the same job is queued with its inputs stored', async () => {
    failInputPut = false;
    const rows = Array.from({ length: 5 }, () => ({ inputs: [] }));
    const { id } = await jobs.create({ model: 'm', rows, chunkSize: 2 });
    expect((await fsStore.list(`jobs/${id}/input/`)).length).toBe(3);
    await jobs.purge(id);
  });

  it('a page of jobs of one model reads its serving config once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await jobs.create({ model: 'm', rows: [{ inputs: [] }] })).id);
    configReads = 0;
    const page = await jobs.list({ limit: 3 });
    expect(page.jobs.map((j) => j.id).sort()).toEqual([...ids].sort());
    expect(page.jobs.every((j) => j.cost.memoryMb === 256)).toBe(true);
    expect(configReads).toBe(1);
    for (const id of ids) await jobs.purge(id);
  });
});
