// The jobs log through the logger they are given: a Redis outage is one warning however many reconnects fail,
// and Redis coming back is one line. Real redis-server, stopped and started on its port; the rest are stubs.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/index.ts';
import { JobsService } from '../../jobs/index.ts';
import { FsObjectStore } from '../../model-store/index.ts';
import { stubManifest } from '../helpers/model-bodies.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from './rig.ts';

let redis: TestRedis;
let dir: string;
let jobs: JobsService;
const logged: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
const at = (level: string) => (obj: object, msg: string) => void logged.push({ level, obj: obj as Record<string, unknown>, msg });
const outages = () => logged.filter((l) => l.level === 'warn' && l.msg.startsWith('Redis does not answer'));
const recoveries = () => logged.filter((l) => l.level === 'info' && l.msg.startsWith('Redis answers again'));

beforeAll(async () => {
  redis = await startTestRedis();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-jobs-logging-'));
  const store = new FsObjectStore({ root: dir });
  await store.init();
  const manifest = stubManifest();
  jobs = new JobsService({
    config: loadConfig({ DATA_DIR: dir, REDIS_URL: redis.url }),
    store,
    registry: { getManifest: async () => manifest },
    executor: { infer: async () => Promise.reject(new Error('not used')) },
    codec: { decode: () => ({ inputs: [] }), encodeOutput: () => '{}' },
    prefix: uniquePrefix('logging'),
    worker: { enabled: false },
    log: { info: at('info'), warn: at('warn'), error: at('error') },
  });
});

afterAll(async () => {
  await jobs?.close();
  await redis?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe('jobs logging', () => {
  it('logs a Redis outage once, with the URL, and its end once', async () => {
    await redis.stop();
    jobs.start();
    // Reconnects back off from 50 ms: a second and a half holds several failed attempts.
    await new Promise((r) => setTimeout(r, 1500));
    expect(jobs.available()).toBe(false);
    expect(outages()).toHaveLength(1);
    expect(outages()[0].obj.redis).toBe(new URL(redis.url).toString());
    expect(outages()[0].obj.err).toBeInstanceOf(Error);
    expect(recoveries()).toHaveLength(0);

    await redis.start();
    await waitFor(async () => jobs.available() || undefined, 'jobs available again', 15_000);
    expect(recoveries()).toHaveLength(1);
    expect(outages()).toHaveLength(1);
    expect(logged.filter((l) => l.level === 'error')).toHaveLength(0);
  });
});
