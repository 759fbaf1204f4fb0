// Batch jobs end to end against real Redis, the fs store and real silero VAD: results are complete, ordered and
// equal to online inference; bad rows, cancellation, callbacks, a deleted model and a missing Redis behave.
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import type { InjectOptions } from 'fastify';
import type { Manifest } from '../../core/index.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { makeJobsRig, sileroRow, sileroTensors, waitFor, type JobsRig } from './rig.ts';

let redis: TestRedis;
let rig: JobsRig;
let vad: Manifest;
let prefix: string;

beforeAll(async () => {
  redis = await startTestRedis();
  prefix = uniquePrefix('jobs');
  rig = await makeJobsRig({ redisUrl: redis.url, prefix });
  vad = await rig.uploadSilero('vad');
  await waitFor(async () => ((await rig.hearth.app.inject({ url: '/v1/jobs' })).statusCode === 200 ? true : undefined), 'Redis');
});

afterAll(async () => {
  await rig?.close();
  await redis?.close();
});

const inject = (o: InjectOptions) => rig.hearth.app.inject(o);

async function finished(id: string): Promise<any> {
  return waitFor(async () => {
    const s = (await inject({ url: `/v1/jobs/${id}` })).json();
    return ['completed', 'failed', 'cancelled'].includes(s.state) ? s : undefined;
  }, `job ${id} to finish`);
}

async function resultLines(id: string): Promise<any[]> {
  const res = await inject({ url: `/v1/jobs/${id}/results` });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toContain('application/x-ndjson');
  return res.body
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

describe('batch jobs', () => {
  it('1,000 inline rows complete with one line each, in order, equal to online inference', async () => {
    const rows = Array.from({ length: 1000 }, (_, i) => sileroRow(i));
    const post = await inject({ method: 'POST', url: '/v1/jobs', payload: { model: 'vad', rows, chunkSize: 128 } });
    expect(post.statusCode).toBe(202);
    expect(post.json()).toEqual({ id: expect.any(String), state: 'queued' });
    const id = post.json().id;
    const s = await finished(id);
    expect(s).toMatchObject({
      id,
      model: 'vad',
      version: vad.version,
      state: 'completed',
      progress: { totalRows: 1000, doneRows: 1000, failedRows: 0 },
    });
    expect(s.chunks).toEqual({ total: 8, done: 8, size: 128 });
    expect(Date.parse(s.finishedAt)).toBeGreaterThanOrEqual(Date.parse(s.startedAt));
    expect(Date.parse(s.startedAt)).toBeGreaterThanOrEqual(Date.parse(s.createdAt));
    expect(s.cost.requests).toBe(1000);
    expect(s.cost.usd).toBeGreaterThan(0);

    const lines = await resultLines(id);
    expect(lines.map((l) => l.index)).toEqual(rows.map((_, i) => i));
    expect(lines.map((l) => l.id)).toEqual(rows.map((_, i) => `row-${i}`));
    // Online inference of a sample of the same rows gives the same outputs.
    for (const i of [0, 1, 127, 128, 500, 999]) {
      const online = await rig.executor.infer({ manifest: vad, inputs: sileroTensors(i) });
      const batch = lines[i].outputs as { name: string; shape: number[]; data: number[] }[];
      expect(batch.map((o) => o.name)).toEqual(online.outputs.map((o) => o.name));
      for (const [k, o] of online.outputs.entries()) {
        expect(batch[k].shape).toEqual(o.shape);
        const want = Array.from(o.data as Float32Array);
        batch[k].data.forEach((v, j) => expect(Math.abs(v - want[j])).toBeLessThan(1e-4));
      }
    }
    // Different rows really differ (the comparison above is not vacuous).
    expect(lines[0].outputs[0].data[0]).not.toBe(lines[3].outputs[0].data[0]);
  });

  it('streams a dataset in, and a bad row fails only that row', async () => {
    const good = (i: number) => JSON.stringify(sileroRow(i));
    const wrongShape = JSON.stringify({ id: 'bad-shape', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2] }] });
    const unknownInput = JSON.stringify({
      ...sileroRow(5),
      id: 'bad-name',
      inputs: [...(sileroRow(5).inputs as object[]), { name: 'nope', datatype: 'FP32', shape: [1], data: [1] }],
    });
    const text = [good(0), 'this is not json', good(1), '', wrongShape, good(2), unknownInput, good(3)].join('\n') + '\n';
    const put = await inject({
      method: 'PUT',
      url: '/v1/datasets/mixed',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: text,
    });
    expect(put.statusCode).toBe(201);
    expect(put.json()).toEqual({
      key: 'datasets/mixed.jsonl',
      rows: 7,
      bytes: Buffer.byteLength(text),
      invalidLines: 1,
      invalidLineNumbers: [2],
    });
    const stat = await inject({ url: '/v1/datasets/mixed' });
    expect(stat.json()).toMatchObject({ key: 'datasets/mixed.jsonl', bytes: Buffer.byteLength(text) });

    const post = await inject({ method: 'POST', url: '/v1/jobs', payload: { model: 'vad', input: 'datasets/mixed.jsonl', chunkSize: 3 } });
    expect(post.statusCode).toBe(202);
    const s = await finished(post.json().id);
    expect(s.state).toBe('completed');
    expect(s.progress).toEqual({ totalRows: 7, doneRows: 7, failedRows: 3 });
    const lines = await resultLines(s.id);
    expect(lines.map((l) => l.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(lines.map((l) => ('error' in l ? 'error' : 'ok'))).toEqual(['ok', 'error', 'ok', 'error', 'ok', 'error', 'ok']);
    expect(lines[1].error).toMatch(/INVALID_REQUEST/);
    expect(lines[3]).toMatchObject({ id: 'bad-shape', error: expect.stringMatching(/INVALID_TENSOR/) });
    expect(lines[5]).toMatchObject({ id: 'bad-name', error: expect.stringContaining('"nope"') });
    expect(lines[6]).toMatchObject({ id: 'row-3', outputs: expect.any(Array) });
  });

  it('a row with a bad number or a short data array fails alone, with the error the online route gives for the same body', async () => {
    // One chunk, so the good rows around the bad ones run in merged batches.
    const bad = (i: number, edit: (data: unknown[]) => void) => {
      const row = sileroRow(i) as { id: string; inputs: { data: unknown[] }[] };
      edit(row.inputs[0].data);
      return { ...row, id: `bad-${i}` };
    };
    const rows = [sileroRow(0), bad(1, (d) => (d[300] = 'x')), sileroRow(2), bad(3, (d) => d.pop()), sileroRow(4), sileroRow(5)];
    const post = await inject({ method: 'POST', url: '/v1/jobs', payload: { model: 'vad', rows, chunkSize: 6 } });
    expect(post.statusCode).toBe(202);
    const s = await finished(post.json().id);
    expect(s.progress).toEqual({ totalRows: 6, doneRows: 6, failedRows: 2 });
    const lines = await resultLines(s.id);
    expect(lines.map((l) => ('error' in l ? 'error' : 'ok'))).toEqual(['ok', 'error', 'ok', 'error', 'ok', 'ok']);
    for (const i of [1, 3]) {
      const online = await inject({ method: 'POST', url: '/v2/models/vad/infer', payload: rows[i] });
      expect(online.statusCode).toBe(400);
      expect(lines[i]).toEqual({ index: i, id: `bad-${i}`, error: `${online.json().code}: ${online.json().error}` });
    }
    for (const i of [0, 2, 4, 5]) {
      const online = await rig.executor.infer({ manifest: vad, inputs: sileroTensors(i) });
      const got = lines[i].outputs as { name: string; data: number[] }[];
      expect(got.map((o) => o.name)).toEqual(online.outputs.map((o) => o.name));
      // A batched run may differ from a single one in the last bits (onnxruntime's kernels), hence the tolerance.
      for (const [k, o] of online.outputs.entries()) {
        const want = Array.from(o.data as Float32Array);
        expect(got[k].data).toHaveLength(want.length);
        got[k].data.forEach((v, j) => expect(Math.abs(v - want[j])).toBeLessThan(1e-4));
      }
    }
  });

  it('cancels: queued chunks are removed, running ones stop, the state is cancelled', async () => {
    const rows = Array.from({ length: 400 }, (_, i) => sileroRow(i));
    const post = await inject({ method: 'POST', url: '/v1/jobs', payload: { model: 'vad', rows, chunkSize: 10 } });
    const id = post.json().id;
    await waitFor(
      async () => ((await inject({ url: `/v1/jobs/${id}` })).json().progress.doneRows > 0 ? true : undefined),
      'some progress',
      45_000,
      10,
    );
    const del = await inject({ method: 'DELETE', url: `/v1/jobs/${id}` });
    expect(del.statusCode).toBe(200);
    expect(del.json().state).toBe('cancelled');
    const chunks = new Queue('chunks', { connection: { host: redis.host, port: redis.port }, prefix });
    try {
      // Nothing of this job is left waiting, and what was running winds down.
      await waitFor(
        async () => ((await chunks.getJobCounts('active', 'wait', 'prioritized')).active === 0 ? true : undefined),
        'running chunks to stop',
      );
      const counts = await chunks.getJobCounts('wait', 'prioritized', 'delayed');
      expect(counts.wait + counts.prioritized + counts.delayed).toBe(0);
    } finally {
      await chunks.close();
    }
    const s = (await inject({ url: `/v1/jobs/${id}` })).json();
    expect(s.state).toBe('cancelled');
    expect(s.finishedAt).not.toBeNull();
    expect(s.progress.doneRows).toBeLessThan(400);
    const lines = await resultLines(id);
    expect(lines.length).toBeLessThan(400);
    lines.forEach((l, i) => expect(l.index).toBe(i));
    // A cancelled job stays cancelled.
    expect((await inject({ method: 'DELETE', url: `/v1/jobs/${id}` })).json().state).toBe('cancelled');
  });

  it('delivers the callback, retrying after a failed attempt, and records each delivery', async () => {
    const bodies: any[] = [];
    let calls = 0;
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        calls++;
        bodies.push({ attempt: req.headers['x-hearth-delivery-attempt'], body: JSON.parse(body) });
        res.statusCode = calls === 1 ? 503 : 200;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/done`;
    try {
      const post = await inject({
        method: 'POST',
        url: '/v1/jobs',
        payload: { model: 'vad', rows: [sileroRow(1), sileroRow(2)], callbackUrl: url },
      });
      const id = post.json().id;
      const s = await waitFor(async () => {
        const j = (await inject({ url: `/v1/jobs/${id}` })).json();
        return j.callback?.delivered ? j : undefined;
      }, 'callback delivery');
      expect(s.callback.url).toBe(url);
      expect(s.callback.attempts.map((a: any) => [a.ok, a.status])).toEqual([
        [false, 503],
        [true, 200],
      ]);
      expect(bodies.map((b) => b.attempt)).toEqual(['1', '2']);
      expect(bodies[1].body).toMatchObject({ id, state: 'completed', progress: { totalRows: 2, doneRows: 2, failedRows: 0 } });
    } finally {
      server.close();
    }
  });

  it('lists jobs newest first, a page at a time', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await inject({ method: 'POST', url: '/v1/jobs', payload: { model: 'vad', rows: [sileroRow(i)] } })).json().id);
    const p1 = (await inject({ url: '/v1/jobs?limit=2' })).json();
    expect(p1.jobs.map((j: any) => j.id)).toEqual([ids[2], ids[1]]);
    expect(p1.nextCursor).toEqual(expect.any(String));
    const p2 = (await inject({ url: `/v1/jobs?limit=2&cursor=${encodeURIComponent(p1.nextCursor)}` })).json();
    expect(p2.jobs[0].id).toBe(ids[0]);
    const all = (await inject({ url: '/v1/jobs?limit=1000' })).json().jobs.map((j: any) => j.createdAt);
    expect([...all].sort().reverse()).toEqual(all);
    for (const id of ids) await finished(id);
  });

  it('answers bad calls with their codes', async () => {
    const post = (payload: unknown) => inject({ method: 'POST', url: '/v1/jobs', payload: payload as object });
    expect((await post({ model: 'vad' })).json().code).toBe('INVALID_REQUEST');
    expect((await post({ model: 'vad', rows: [] })).json().code).toBe('INVALID_REQUEST');
    expect((await post({ model: 'vad', rows: [sileroRow(0)], input: 'datasets/x.jsonl' })).json().code).toBe('INVALID_REQUEST');
    expect((await post({ model: 'vad', rows: [sileroRow(0)], chunkSize: 0 })).json().code).toBe('INVALID_REQUEST');
    expect((await post({ model: 'vad', rows: [sileroRow(0)], priority: 12 })).json().code).toBe('INVALID_REQUEST');
    expect((await post({ model: 'vad', rows: [sileroRow(0)], callbackUrl: 'ftp://x' })).json().code).toBe('INVALID_REQUEST');
    expect((await post({ model: 'vad', rows: [sileroRow(0)], colour: 'red' })).json().code).toBe('INVALID_REQUEST');
    const noModel = await post({ model: 'nope', rows: [sileroRow(0)] });
    expect([noModel.statusCode, noModel.json().code]).toEqual([404, 'MODEL_NOT_FOUND']);
    const noData = await post({ model: 'vad', input: 'datasets/missing.jsonl' });
    expect([noData.statusCode, noData.json().code]).toEqual([404, 'DATASET_NOT_FOUND']);
    expect((await post({ model: 'vad', input: 'models/vad/1/model.onnx' })).json().code).toBe('INVALID_NAME');
    const noJob = await inject({ url: '/v1/jobs/jzzzzzzzz00000000' });
    expect([noJob.statusCode, noJob.json().code]).toEqual([404, 'JOB_NOT_FOUND']);
    expect((await inject({ url: '/v1/jobs/../etc' })).statusCode).toBe(404);
    expect((await inject({ method: 'DELETE', url: '/v1/jobs/jzzzzzzzz00000000' })).json().code).toBe('JOB_NOT_FOUND');
    expect((await inject({ url: '/v1/jobs?limit=abc' })).json().code).toBe('INVALID_REQUEST');
    expect((await inject({ url: '/v1/jobs?cursor=zz' })).json().code).toBe('INVALID_REQUEST');
    const badName = await inject({ method: 'PUT', url: '/v1/datasets/..evil', payload: '{}\n' });
    expect([badName.statusCode, badName.json().code]).toEqual([400, 'INVALID_NAME']);
    const empty = await inject({ method: 'PUT', url: '/v1/datasets/empty', payload: '\n\n' });
    expect([empty.statusCode, empty.json().code]).toEqual([400, 'EMPTY_BODY']);
    expect((await inject({ url: '/v1/datasets/empty' })).json().code).toBe('DATASET_NOT_FOUND');
  });
});

describe('a job that cannot run', () => {
  it('fails when its model is deleted before it runs; a node that starts later still picks the job up', async () => {
    const dprefix = uniquePrefix('gone');
    // This node only accepts jobs; the second node (same store and Redis) runs them.
    const front = await makeJobsRig({ redisUrl: redis.url, prefix: dprefix, workerOptions: { enabled: false } });
    try {
      await front.uploadSilero('doomed');
      await front.uploadSilero('kept');
      await waitFor(async () => ((await front.hearth.app.inject({ url: '/v1/jobs' })).statusCode === 200 ? true : undefined), 'Redis');
      const doomed = (
        await front.hearth.app.inject({
          method: 'POST',
          url: '/v1/jobs',
          payload: { model: 'doomed', rows: [sileroRow(0), sileroRow(1)], chunkSize: 1 },
        })
      ).json().id;
      const kept = (
        await front.hearth.app.inject({ method: 'POST', url: '/v1/jobs', payload: { model: 'kept', rows: [sileroRow(0)] } })
      ).json().id;
      expect((await front.hearth.app.inject({ method: 'DELETE', url: '/v1/models/doomed' })).statusCode).toBeLessThan(300);
      const back = await makeJobsRig({ redisUrl: redis.url, prefix: dprefix, dataDir: front.dir });
      try {
        const get = async (id: string) => (await back.hearth.app.inject({ url: `/v1/jobs/${id}` })).json();
        const d = await waitFor(async () => ((await get(doomed)).state === 'failed' ? get(doomed) : undefined), 'doomed job to fail');
        expect(d.error).toMatch(/doomed/);
        const k = await waitFor(async () => ((await get(kept)).state === 'completed' ? get(kept) : undefined), 'kept job to complete');
        expect(k.progress).toEqual({ totalRows: 1, doneRows: 1, failedRows: 0 });
      } finally {
        await back.close();
      }
    } finally {
      await front.close();
    }
  });
});

describe('restarts and chunks that fail for good', () => {
  it('a Hearth that shuts down mid-job hands its chunk back; the node started after it completes the job', async () => {
    const rprefix = uniquePrefix('restart-node');
    // The store outlives both nodes.
    const shared = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-restart-'));
    const first = await makeJobsRig({ redisUrl: redis.url, prefix: rprefix, dataDir: shared, workerOptions: { rowConcurrency: 2 } });
    let second: JobsRig | undefined;
    try {
      await first.uploadSilero('vad');
      await waitFor(async () => ((await first.hearth.app.inject({ url: '/v1/jobs' })).statusCode === 200 ? true : undefined), 'Redis');
      const rows = Array.from({ length: 600 }, (_, i) => sileroRow(i));
      const id = (
        await first.hearth.app.inject({ method: 'POST', url: '/v1/jobs', payload: { model: 'vad', rows, chunkSize: 100 } })
      ).json().id;
      await waitFor(
        async () => ((await first.hearth.app.inject({ url: `/v1/jobs/${id}` })).json().progress.doneRows >= 50 ? true : undefined),
        'progress',
        45_000,
        10,
      );
      await first.close();
      // Handed back at once, not left for the stalled check: nothing is active, the rest waits.
      const chunks = new Queue('chunks', { connection: { host: redis.host, port: redis.port }, prefix: rprefix });
      const counts = await chunks.getJobCounts('active', 'prioritized', 'wait');
      await chunks.close();
      expect(counts.active).toBe(0);
      expect(counts.prioritized + counts.wait).toBeGreaterThan(0);
      second = await makeJobsRig({ redisUrl: redis.url, prefix: rprefix, dataDir: shared });
      const app = second.hearth.app;
      const s = await waitFor(async () => {
        const j = (await app.inject({ url: `/v1/jobs/${id}` })).json();
        return j.state === 'completed' ? j : undefined;
      }, 'the job to complete on the new node');
      expect(s.progress).toEqual({ totalRows: 600, doneRows: 600, failedRows: 0 });
      const lines = (await app.inject({ url: `/v1/jobs/${id}/results` })).body
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => l.index)).toEqual(rows.map((_, i) => i));
      expect(lines.every((l) => Array.isArray(l.outputs))).toBe(true);
    } finally {
      await second?.close();
      await first.close().catch(() => {});
      await fs.rm(shared, { recursive: true, force: true });
    }
  });

  it('a chunk that fails every attempt marks its rows failed with the reason; the job still completes', async () => {
    const fprefix = uniquePrefix('chunk-fail');
    const front = await makeJobsRig({ redisUrl: redis.url, prefix: fprefix, workerOptions: { enabled: false } });
    let back: JobsRig | undefined;
    try {
      await front.uploadSilero('vad');
      await waitFor(async () => ((await front.hearth.app.inject({ url: '/v1/jobs' })).statusCode === 200 ? true : undefined), 'Redis');
      const rows = Array.from({ length: 9 }, (_, i) => sileroRow(i));
      const id = (await front.hearth.app.inject({ method: 'POST', url: '/v1/jobs', payload: { model: 'vad', rows, chunkSize: 3 } })).json()
        .id;
      // Chunk 1's rows vanish from the store: every attempt at it fails.
      const store = front.hearth.deps.store as import('../../model-store/index.ts').ObjectStore;
      await store.delete(`jobs/${id}/input/000001.jsonl`);
      back = await makeJobsRig({ redisUrl: redis.url, prefix: fprefix, dataDir: front.dir, workerOptions: { attempts: 2 } });
      const app = back.hearth.app;
      const s = await waitFor(async () => {
        const j = (await app.inject({ url: `/v1/jobs/${id}` })).json();
        return j.state === 'completed' ? j : undefined;
      }, 'the job to complete');
      expect(s.progress).toEqual({ totalRows: 9, doneRows: 9, failedRows: 3 });
      const lines = (await app.inject({ url: `/v1/jobs/${id}/results` })).body
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => l.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
      expect(lines.map((l) => ('error' in l ? 'error' : 'ok'))).toEqual(['ok', 'ok', 'ok', 'error', 'error', 'error', 'ok', 'ok', 'ok']);
      expect(lines[3].error).toMatch(/chunk 1 failed after 2 attempts: .*000001\.jsonl/);
    } finally {
      await back?.close();
      await front.close();
    }
  });
});

describe('without Redis', () => {
  it('answers 503 JOBS_UNAVAILABLE naming REDIS_URL on /v1/jobs*, while datasets and the rest keep serving', async () => {
    const gone = await startTestRedis({ useEnv: false });
    const url = gone.url;
    await gone.close(); // nothing listens on this port any more
    const offline = await makeJobsRig({ redisUrl: url, prefix: uniquePrefix('offline') });
    try {
      const app = offline.hearth.app;
      for (const req of [
        { url: '/v1/jobs' },
        { url: '/v1/jobs/jzzzzzzzz00000000' },
        { url: '/v1/jobs/jzzzzzzzz00000000/results' },
        { method: 'DELETE' as const, url: '/v1/jobs/jzzzzzzzz00000000' },
        { method: 'POST' as const, url: '/v1/jobs', payload: { model: 'vad', rows: [{}] } },
      ]) {
        const res = await app.inject(req);
        expect(res.statusCode).toBe(503);
        expect(res.json().code).toBe('JOBS_UNAVAILABLE');
        expect(res.json().error).toContain('REDIS_URL');
        expect(res.json().error).toContain(url.replace('redis://', ''));
      }
      expect((await app.inject({ method: 'PUT', url: '/v1/datasets/still-works', payload: '{"inputs":[]}\n' })).statusCode).toBe(201);
      expect((await app.inject({ url: '/v2/health/live' })).statusCode).toBe(200);
      // Online inference does not need Redis.
      const m = await offline.uploadSilero('vad');
      const res = await offline.executor.infer({ manifest: m, inputs: sileroTensors(0) });
      expect(res.outputs.length).toBe(3);

      // Redis arrives later: the job API and the workers come up on their own.
      const late = await startTestRedis({ useEnv: false, port: Number(new URL(url).port) });
      try {
        await waitFor(
          async () => ((await app.inject({ url: '/v1/jobs' })).statusCode === 200 ? true : undefined),
          'the job API to come back',
        );
        const id = (
          await app.inject({ method: 'POST', url: '/v1/jobs', payload: { model: 'vad', rows: [sileroRow(0), sileroRow(1)] } })
        ).json().id;
        const s = await waitFor(async () => {
          const j = (await app.inject({ url: `/v1/jobs/${id}` })).json();
          return j.state === 'completed' ? j : undefined;
        }, 'a job after Redis came');
        expect(s.progress).toEqual({ totalRows: 2, doneRows: 2, failedRows: 0 });
      } finally {
        await offline.close();
        await late.close();
      }
    } finally {
      await offline.close().catch(() => {});
    }
  });
});
