// GET /v2/health/live and /v2/health/ready: 200 with an empty body; ready turns false when the store is unreachable.
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, systemClock } from '../../core/index.ts';
import { buildApp } from '../../gateway/app.ts';
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
});
