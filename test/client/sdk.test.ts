// The SDK (hearth/client) against a real Hearth listening on loopback, AUTH on, jobs on a private Redis: every area
// through HTTP, with a key made through the SDK itself. No part of Hearth is stubbed.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HearthClient, HearthError, floatToHalfBits, type JobEvent, type UploadEvent } from '../../client/index.ts';
import { datasetFile, localArtifactId, modelSource } from '../../client/node.ts';
import { onnxFixtureDir, TFJS_GRAPH_DIR } from '../fixtures/golden.ts';
import { startTestHearth, TEST_ADMIN_KEY, type TestHearth } from '../helpers/app.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { FAST_TUNING } from '../jobs/rig.ts';

let redis: TestRedis;
let hearth: TestHearth;
let url: string;
/** Admin: keys, status, costs, metrics. */
let admin: HearthClient;
/** A key with the scopes a model owner has: models:read, models:write, infer, jobs. */
let client: HearthClient;
let keyId: string;

const identity = (dt: string) => fs.readFileSync(path.join(onnxFixtureDir(`identity-${dt}`), 'model.onnx'));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  redis = await startTestRedis();
  const prefix = uniquePrefix('sdk');
  hearth = await startTestHearth({
    env: { AUTH: 'on', HEARTH_ADMIN_KEY: TEST_ADMIN_KEY, REDIS_URL: redis.url, JOBS_PREFIX: prefix, EXECUTOR_PREWARM_WORKERS: '1' },
    overrides: { jobs: { redisUrl: redis.url, prefix, workerOptions: FAST_TUNING } },
  });
  await hearth.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = hearth.app.server.address() as { port: number };
  url = `http://127.0.0.1:${port}`;
  admin = new HearthClient({ url, key: TEST_ADMIN_KEY });
  const made = await admin.keys.create({ name: 'sdk test', scopes: ['models:read', 'models:write', 'infer', 'jobs'] });
  keyId = made.id;
  client = new HearthClient({ url, key: made.key });
  // The models the inference and job tests use, in parallel (each upload is inspected in a child process).
  await Promise.all([
    client.models.upload('id-fp16', identity('fp16')),
    client.models.upload('id-bytes', identity('bytes')),
    client.models.upload('id-fp32', identity('fp32')),
  ]);
});

afterAll(async () => {
  await hearth?.close();
  await redis?.close();
});

describe('models', () => {
  it('uploads bytes with a progress event sequence: start, progress up to the total, sent, done', async () => {
    const bytes = identity('int8');
    const events: UploadEvent[] = [];
    const manifest = await client.models.upload('up-bytes', bytes, { onProgress: (e) => events.push(e) });
    expect(manifest.sha256).toBe(sha256(bytes));
    expect(manifest.version).toBe(1);
    expect(events[0]).toEqual({ type: 'start', totalBytes: bytes.length });
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.length).toBeGreaterThanOrEqual(1);
    const sent = progress.map((e) => e.sentBytes);
    expect([...sent].sort((a, b) => a - b)).toEqual(sent);
    expect(sent.at(-1)).toBe(bytes.length);
    expect(progress.every((e) => e.totalBytes === bytes.length)).toBe(true);
    expect(events.map((e) => e.type).slice(-2)).toEqual(['sent', 'done']);
    expect(events.at(-1)).toEqual({ type: 'done', sentBytes: bytes.length, manifest });
    expect(events.slice(1, -2).every((e) => e.type === 'progress')).toBe(true);
  });

  it('uploads a stream of unknown length (chunked) as the next version; list, get, manifest, delete a version and the model', async () => {
    const bytes = identity('int8');
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes.subarray(0, 100));
        c.enqueue(bytes.subarray(100));
        c.close();
      },
    });
    const events: UploadEvent[] = [];
    const v2 = await client.models.upload('up-stream', bytes, {});
    expect(v2.version).toBe(1);
    const m = await client.models.upload('up-stream', stream, { onProgress: (e) => events.push(e) });
    expect(m.version).toBe(2);
    expect(events[0]).toEqual({ type: 'start' });
    expect(events.filter((e) => e.type === 'progress').map((e) => e.sentBytes)).toEqual([100, bytes.length]);

    expect((await client.models.list()).find((s) => s.name === 'up-stream')).toEqual({ name: 'up-stream', versions: [1, 2], latest: 2 });
    expect(await client.models.get('up-stream')).toEqual({ name: 'up-stream', versions: [1, 2], latest: 2 });
    expect((await client.models.manifest('up-stream')).version).toBe(2);
    expect((await client.models.manifest('up-stream', 1)).sha256).toBe(sha256(bytes));
    expect(await client.models.delete('up-stream', 1)).toEqual({ name: 'up-stream', deleted: [1] });
    expect(await client.models.delete('up-stream')).toEqual({ name: 'up-stream', deleted: [2] });
    expect(await client.models.find('up-stream')).toBeUndefined();
    const err = await client.models.get('up-stream').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HearthError);
    expect(err).toMatchObject({ status: 404, code: 'MODEL_NOT_FOUND' });
    expect((err as Error).message).toContain('up-stream');
  });

  it('uploads a TF.js folder from disk (multipart, exact length) whose id is the local artifact id', async () => {
    const events: UploadEvent[] = [];
    const source = await modelSource(TFJS_GRAPH_DIR);
    expect(source.kind).toBe('files');
    const m = await client.models.upload('tfjs', source, { onProgress: (e) => events.push(e) });
    expect(m.format).toBe('tfjs-graph');
    expect(m.files.map((f) => f.path).sort()).toEqual(['group1-shard1of1.bin', 'model.json']);
    expect(m.sha256).toBe(await localArtifactId(TFJS_GRAPH_DIR));
    const start = events[0] as { totalBytes: number };
    expect(events.at(-1)).toMatchObject({ type: 'done', sentBytes: start.totalBytes });
    const out = await client.infer('tfjs', { x: { data: new Float32Array([1, 2, 3, 4]), shape: [1, 4] } });
    expect(out.outputs.y.shape).toEqual([1, 3]);
    expect(out.outputs.y.data).toBeInstanceOf(Float32Array);
  });

  it('config get and put (partial, merged), refused values as INVALID_CONFIG', async () => {
    const before = await client.models.getConfig('id-fp32');
    expect(before.config.timeoutMs).toBe(30_000);
    const put = await client.models.putConfig('id-fp32', { timeoutMs: 12_000, batching: { maxBatchSize: 4 } });
    expect(put.config).toMatchObject({ timeoutMs: 12_000, batching: { maxBatchSize: 4 } });
    expect((await client.models.getConfig('id-fp32')).config).toMatchObject({ timeoutMs: 12_000, batching: { maxBatchSize: 4 } });
    const bad = await client.models.putConfig('id-fp32', { timeoutMs: -1 }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ status: 400, code: 'INVALID_CONFIG' });
  });
});

describe('inference', () => {
  it('FP16 in the binary extension and as JSON: half bits out equal half bits in', async () => {
    const data = Uint16Array.from([0, -0, 1, -2.5, 65504, 2 ** -24], floatToHalfBits);
    for (const binary of [true, false]) {
      const r = await client.infer('id-fp16', { x: { datatype: 'FP16', data, shape: [2, 3] } }, { binary, id: `fp16-${binary}` });
      expect(r.binary).toBe(binary);
      expect(r.id).toBe(`fp16-${binary}`);
      expect(r.modelName).toBe('id-fp16');
      expect(r.outputs.y).toEqual({ name: 'y', datatype: 'FP16', shape: [2, 3], data });
    }
  });

  it('INT64 beyond 2^53 round-trips exactly, binary and JSON, with version and output selection', async () => {
    await client.models.upload('id-int64', identity('int64'));
    const data = BigInt64Array.of(-(2n ** 63n), -9007199254740993n, -1n, 0n, 9007199254740993n, 2n ** 63n - 1n);
    for (const binary of [true, false]) {
      const r = await client.infer('id-int64', { x: { data, shape: [3, 2] } }, { binary, version: 1, outputs: ['y'] });
      expect(r.binary).toBe(binary);
      expect(r.outputs.y.datatype).toBe('INT64');
      expect(r.outputs.y.shape).toEqual([3, 2]);
      expect(r.outputs.y.data).toEqual(data);
    }
  });

  it('BYTES (UTF-8, empty, quotes, newlines) in binary and JSON', async () => {
    const data = ['', 'a', 'héllo wörld', 'quote " backslash \\', 'line\nbreak', '日本語'];
    for (const binary of [true, false]) {
      const r = await client.infer('id-bytes', [{ name: 'x', data, shape: [6, 1] }], { binary });
      expect(r.binary).toBe(binary);
      expect(r.outputList).toEqual([{ name: 'y', datatype: 'BYTES', shape: [6, 1], data }]);
    }
  });

  it('large inputs go binary by default, small ones as JSON; timing comes from the response headers', async () => {
    const small = await client.infer('id-fp32', { x: { data: [1, 2, 3], shape: [1, 3] } });
    expect(small.binary).toBe(false);
    expect(small.outputs.y.data).toEqual(Float32Array.of(1, 2, 3));
    expect(typeof small.timing.coldStart).toBe('boolean');
    expect(small.timing.computeMs).toBeGreaterThanOrEqual(0);
    const big = new Float32Array(8192).map((_, i) => i / 7);
    const r = await client.infer('id-fp32', { x: { data: big, shape: [1, 8192] } });
    expect(r.binary).toBe(true);
    expect(r.outputs.y.data).toEqual(big);
  });

  it('errors carry the server code: unknown model, a wrong input name, a shape that does not fit', async () => {
    await expect(client.infer('nope', { x: { data: [1], shape: [1, 1] } })).rejects.toMatchObject({ status: 404, code: 'MODEL_NOT_FOUND' });
    await expect(client.infer('id-fp32', { z: { data: [1], shape: [1, 1] } })).rejects.toMatchObject({
      status: 400,
      code: 'INVALID_TENSOR',
    });
    await expect(client.infer('id-fp32', { x: { data: [1, 2], shape: [1, 3] } })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('cold start after unload: timing says cold with a breakdown', async () => {
    await client.models.unload('id-fp32');
    const r = await client.infer('id-fp32', { x: { data: [1], shape: [1, 1] } });
    expect(r.timing.coldStart).toBe(true);
    expect(r.timing.coldStartMs).toBeGreaterThan(0);
    expect(Object.keys(r.timing.breakdown ?? {})).toEqual(expect.arrayContaining(['acquire', 'fetch', 'load', 'first-run', 'source']));
  });
});

describe('datasets and jobs', () => {
  const row = (i: number) => ({ id: `r${i}`, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [i, -i] }] });

  it('streams a dataset from an async generator, then a job over it with a progress event sequence and its results', async () => {
    async function* rows() {
      for (let i = 0; i < 60; i++) yield row(i);
    }
    const sent: number[] = [];
    const up = await client.datasets.upload('sixty', rows(), { onProgress: (e) => sent.push(e.sentBytes) });
    expect(up).toMatchObject({ rows: 60, invalidLines: 0 });
    expect(sent.at(-1)).toBe(up.bytes);
    expect((await client.datasets.list()).map((d) => d.name)).toContain('sixty');
    expect((await client.datasets.get('sixty')).bytes).toBe(up.bytes);

    const { id, state } = await client.jobs.submit({ model: 'id-fp32', dataset: 'sixty', chunkSize: 10 });
    expect(state).toBe('queued');
    const events: JobEvent[] = [];
    const final = await client.jobs.watch(id, { onProgress: (e) => events.push(e), minIntervalMs: 20, maxIntervalMs: 200 });
    expect(final.state).toBe('completed');
    expect(final.progress).toEqual({ totalRows: 60, doneRows: 60, failedRows: 0 });
    expect(events.at(-1)).toEqual({ type: 'done', status: final });
    const progress = events.slice(0, -1);
    expect(progress.every((e) => e.type === 'progress')).toBe(true);
    const done = progress.map((e) => e.status.progress.doneRows);
    expect([...done].sort((a, b) => a - b)).toEqual(done);
    expect(progress.at(-1)!.status.state).toBe('completed');
    // Each event is a change: no two in a row are the same.
    for (let i = 1; i < progress.length; i++) expect(progress[i].status).not.toEqual(progress[i - 1].status);

    const lines = [];
    for await (const line of client.jobs.results(id)) lines.push(line);
    expect(lines).toHaveLength(60);
    expect(lines[7]).toMatchObject({ id: 'r7', outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 2], data: [7, -7] }] });
    expect((await client.jobs.list()).jobs.map((j) => j.id)).toContain(id);
    expect((await client.jobs.get(id)).state).toBe('completed');
  });

  it('a dataset from a file on disk; a job cancelled before it ends; unknown job and dataset codes', async () => {
    const dir = fs.mkdtempSync(path.join(hearth.dataDir, 'ds-'));
    const file = path.join(dir, 'rows.jsonl');
    fs.writeFileSync(file, Array.from({ length: 1000 }, (_, i) => JSON.stringify(row(i))).join('\n') + '\n');
    const up = await client.datasets.upload('big', (await datasetFile(file)).data, { size: fs.statSync(file).size });
    expect(up.rows).toBe(1000);
    const { id } = await client.jobs.submit({ model: 'id-fp32', dataset: 'big', chunkSize: 10 });
    const cancelled = await client.jobs.cancel(id);
    expect(cancelled.state).toBe('cancelled');
    expect((await client.jobs.watch(id)).state).toBe('cancelled');
    await expect(client.jobs.get('j_nothere')).rejects.toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
    await expect(client.jobs.submit({ model: 'id-fp32', dataset: 'absent' })).rejects.toMatchObject({
      status: 404,
      code: 'DATASET_NOT_FOUND',
    });
    await client.datasets.delete('big');
    await expect(client.datasets.get('big')).rejects.toMatchObject({ code: 'DATASET_NOT_FOUND' });
  });
});

describe('operations and keys', () => {
  it('status, costs and metrics text', async () => {
    const status = await admin.status();
    expect(status.node).toHaveProperty('slots');
    expect(status.models.map((m) => m.model ?? m.name)).toContain('id-fp32');
    const costs = await admin.costs({ from: '2020-01-01', to: Date.now() + 60_000 });
    expect(costs).toBeTypeOf('object');
    expect(JSON.stringify(costs)).toContain('id-fp32');
    await expect(admin.costs({ from: 'yesterday' })).rejects.toMatchObject({ status: 400, code: 'INVALID_REQUEST' });
    const text = await admin.metrics();
    expect(text).toMatch(/^# (HELP|TYPE) /m);
    expect(text).toContain('hearth_');
  });

  it('keys: create, list, get, revoke; a revoked key, no key and a missing scope are refused with their codes', async () => {
    const made = await admin.keys.create({ name: 'reader', scopes: ['models:read'] });
    expect(made.key).toMatch(/^hk_[a-z0-9]+_/);
    expect((await admin.keys.list()).map((k) => k.id)).toEqual(expect.arrayContaining([made.id, keyId]));
    expect((await admin.keys.get(made.id)).name).toBe('reader');
    const reader = new HearthClient({ url, key: made.key });
    expect((await reader.models.list()).length).toBeGreaterThan(0);
    await expect(reader.jobs.list()).rejects.toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect(await admin.keys.revoke(made.id)).toEqual({ id: made.id, revoked: true });
    await expect(reader.models.list()).rejects.toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    await expect(new HearthClient({ url }).models.list()).rejects.toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    await expect(admin.keys.get(made.id)).rejects.toMatchObject({ status: 404, code: 'KEY_NOT_FOUND' });
    await expect(client.keys.list()).rejects.toMatchObject({ status: 403, code: 'FORBIDDEN' });
  });

  it('no server: UNREACHABLE with status 0', async () => {
    const err = await new HearthClient({ url: 'http://127.0.0.1:1' }).models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HearthError);
    expect(err).toMatchObject({ status: 0, code: 'UNREACHABLE' });
  });
});
