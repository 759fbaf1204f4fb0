// Redis stopped and started again mid-job: the job API answers 503 while it is down, and the job completes after,
// with exactly one line per row, in order. Redis keeps an append-only file so the restart keeps the queue.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { makeJobsRig, sileroRow, waitFor, type JobsRig } from './rig.ts';

const N = 800;
let redis: TestRedis;
let rig: JobsRig;

beforeAll(async () => {
  redis = await startTestRedis({ persistent: true });
  rig = await makeJobsRig({ redisUrl: redis.url, prefix: uniquePrefix('restart'), workerOptions: { rowConcurrency: 2 } });
  await rig.uploadSilero('vad');
  await waitFor(async () => ((await rig.hearth.app.inject({ url: '/v1/jobs' })).statusCode === 200 ? true : undefined), 'Redis');
});

afterAll(async () => {
  await rig?.close();
  await redis?.close();
});

it('a Redis restart mid-job: 503 JOBS_UNAVAILABLE while down, then the job completes with every row once', async () => {
  const app = rig.hearth.app;
  const rows = Array.from({ length: N }, (_, i) => sileroRow(i));
  const post = await app.inject({ method: 'POST', url: '/v1/jobs', payload: { model: 'vad', rows, chunkSize: 20 } });
  expect(post.statusCode).toBe(202);
  const id = post.json().id as string;
  await waitFor(
    async () => {
      const s = (await app.inject({ url: `/v1/jobs/${id}` })).json();
      return s.progress?.doneRows >= 0.2 * N ? s : undefined;
    },
    '20% progress',
    45_000,
    20,
  );

  await redis.stop();
  const down = await waitFor(
    async () => {
      const res = await app.inject({ url: `/v1/jobs/${id}` });
      return res.statusCode === 503 ? res : undefined;
    },
    'the job API to notice Redis is gone',
    10_000,
    20,
  );
  expect(down.json()).toMatchObject({ code: 'JOBS_UNAVAILABLE', error: expect.stringContaining('REDIS_URL') });
  expect((await app.inject({ method: 'POST', url: '/v1/jobs', payload: { model: 'vad', rows: [rows[0]] } })).statusCode).toBe(503);
  // Everything else keeps serving.
  expect((await app.inject({ url: '/v2/health/live' })).statusCode).toBe(200);
  expect((await app.inject({ url: '/v1/models/vad' })).statusCode).toBe(200);
  await new Promise((r) => setTimeout(r, 1500));

  await redis.start();
  const done = await waitFor<{ progress: unknown }>(
    async () => {
      const res = await app.inject({ url: `/v1/jobs/${id}` });
      if (res.statusCode !== 200) return undefined;
      return res.json().state === 'completed' ? res.json() : undefined;
    },
    'the job to complete after the restart',
    50_000,
  );
  expect(done.progress).toEqual({ totalRows: N, doneRows: N, failedRows: 0 });
  const body = (await app.inject({ url: `/v1/jobs/${id}/results` })).body;
  const lines = body
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
  expect(lines.length).toBe(N);
  expect(lines.map((l) => l.index)).toEqual(rows.map((_, i) => i));
  expect(lines.every((l, i) => l.id === `row-${i}` && Array.isArray(l.outputs))).toBe(true);
}, 90_000);
