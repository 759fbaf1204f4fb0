// GET /v2/health/live and /v2/health/ready: 200 with an empty body; ready turns false when the store is unreachable,
// and both when every CPU slot is held by a run stuck in native code.
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, systemClock } from '../../core/index.ts';
import type { StuckRun } from '../../executor/index.ts';
import { buildApp } from '../../gateway/app.ts';
import { healthRoutes } from '../../gateway/health-routes.ts';
import Fastify from 'fastify';
import { S3ObjectStore } from '../../model-store/index.ts';
import { startTestHearth, type TestHearth } from '../helpers/app.ts';
import { startS3rver } from '../helpers/s3rver.ts';

describe('health routes', () => {
  const opened: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const o of opened.reverse()) await o.close();
  });

  it('live and ready answer 200 with an empty body on the fs store', async () => {
    const h: TestHearth = await startTestHearth();
    opened.push(h);
    for (const url of ['/v2/health/live', '/v2/health/ready']) {
      const res = await h.app.inject({ url });
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe('');
    }
  });

  it('ready follows the s3 endpoint: 200 while it answers, 4xx with a reason header once it is gone; live stays 200', async () => {
    const s3 = await startS3rver();
    const store = new S3ObjectStore({ ...s3, bucket: 'health' });
    await store.init();
    const app = await buildApp({ config: loadConfig({ DATA_DIR: s3.directory }), clock: systemClock, store });
    opened.push(store, app);
    expect((await app.inject({ url: '/v2/health/ready' })).statusCode).toBe(200);
    await s3.close();
    const res = await app.inject({ url: '/v2/health/ready' });
    expect(res.statusCode).toBe(400);
    expect(res.body).toBe('');
    expect(String(res.headers['hearth-not-ready'])).toMatch(/unreachable/);
    expect((await app.inject({ url: '/v2/health/live' })).statusCode).toBe(200);
  });

  it('live and ready turn false (4xx, the reason in a header) only when stuck runs hold every slot', async () => {
    const stuckRuns: StuckRun[] = [];
    const app = Fastify();
    opened.push(app);
    await app.register(healthRoutes, { node: () => ({ slots: 2, memoryMb: 1024, memoryUsedMb: 0, stuckRuns }) });
    const run = (model: string): StuckRun => ({
      model,
      version: 1,
      instanceId: `${model}@1#1`,
      kind: 'run',
      since: new Date(0).toISOString(),
    });
    stuckRuns.push(run('loop'));
    for (const url of ['/v2/health/live', '/v2/health/ready']) expect((await app.inject({ url })).statusCode, url).toBe(200);
    stuckRuns.push(run('loop2'));
    const live = await app.inject({ url: '/v2/health/live' });
    expect(live.statusCode).toBe(400);
    expect(live.body).toBe('');
    expect(String(live.headers['hearth-not-live'])).toMatch(/all 2 CPU slots are held by runs stuck in native code \(loop@1, loop2@1\)/);
    const ready = await app.inject({ url: '/v2/health/ready' });
    expect(ready.statusCode).toBe(400);
    expect(String(ready.headers['hearth-not-ready'])).toMatch(/stuck/);
  });
});
