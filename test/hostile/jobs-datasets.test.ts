// Hostile dataset uploads (issue 13, item 6): a body with no newline, or one larger than allowed, must be refused
// with 413 PAYLOAD_TOO_LARGE naming the limit, at the first byte past it, storing nothing and leaving an earlier
// dataset of the same name as it was; a compressed body is counted decompressed; a line that is not a request body
// (a JSON object) is reported at upload. The node runs with small limits so the cases stay quick.
import fs from 'node:fs';
import zlib from 'node:zlib';
import type http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseline, expectError, expectIntact, request, storeKeys, uploadSilero, type HostileNode, type RawResponse } from './rig.ts';
import { finished, postJob, sileroRow, startJobsNode, startTestRedis, type TestRedis } from './jobs-node.ts';

const LINE_LIMIT = 256 * 1024;
const DATASET_LIMIT = 8 * 1024 * 1024;

let redis: TestRedis;
let node: HostileNode;

beforeAll(async () => {
  redis = await startTestRedis();
  node = await startJobsNode(redis, { MAX_LINE_BYTES: String(LINE_LIMIT), MAX_DATASET_BYTES: String(DATASET_LIMIT) });
  await uploadSilero(node);
});

afterAll(async () => {
  await node?.stop();
  await redis?.close();
});

const GOOD = `${JSON.stringify(sileroRow())}\n${JSON.stringify({ ...sileroRow(), id: 'second' })}\n`;

function putDataset(
  name: string,
  body: Buffer | string | ((req: http.ClientRequest) => void),
  headers: Record<string, string | number> = {},
  timeoutMs = 45_000,
): Promise<RawResponse> {
  return request(node, {
    method: 'PUT',
    path: `/v1/datasets/${name}`,
    headers: { 'content-type': 'application/x-ndjson', ...headers },
    body,
    timeoutMs,
  });
}

/**
 * Streams `total` bytes made by `block` (64 KiB at a time, respecting back-pressure) and stops writing as soon as
 * an answer arrives. Answers how many bytes it wrote.
 */
function stream(total: number, block: Buffer, sent: { bytes: number }): (req: http.ClientRequest) => void {
  return (req) => {
    let answered = false;
    req.once('response', () => (answered = true));
    req.on('error', () => {});
    const pump = () => {
      while (!answered && sent.bytes < total) {
        const piece = block.subarray(0, Math.min(block.length, total - sent.bytes));
        sent.bytes += piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      if (!answered) req.end();
    };
    pump();
  };
}

/** Files left in the store's in-flight folder; a refused upload's temp file goes soon after its answer. */
async function tempFilesLeft(): Promise<string[]> {
  const dir = path.join(node.dataDir, 'store', '.hearth-tmp');
  const list = () => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);
  for (let i = 0; i < 50 && list().length; i++) await new Promise((r) => setTimeout(r, 100));
  return list();
}

/** The stored bytes of a dataset (answers undefined when there is none). */
async function datasetInfo(name: string): Promise<Record<string, unknown> | undefined> {
  const res = await request(node, { path: `/v1/datasets/${name}` });
  return res.status === 200 ? res.json : undefined;
}

describe('dataset limits', () => {
  it('a line past MAX_LINE_BYTES (a body with no newline) is refused with 413 at the limit; the earlier dataset stays', async () => {
    expect((await putDataset('frames', GOOD)).status).toBe(201);
    const before = await datasetInfo('frames');
    const base = await baseline(node);
    const keys = storeKeys(node);
    const sent = { bytes: 0 };
    // 6 MB of one line: under the dataset limit, far past the line limit.
    const res = await putDataset('frames', stream(6 * 1024 * 1024, Buffer.alloc(64 * 1024, 0x61), sent));
    expectError(res, 413, 'PAYLOAD_TOO_LARGE', node);
    expect(res.json!.error).toMatch(new RegExp(`line 1 .*MAX_LINE_BYTES \\(${LINE_LIMIT} bytes\\)`));
    expect(await datasetInfo('frames')).toEqual(before);
    expect(storeKeys(node)).toEqual(keys);
    await expectIntact(node, base, { rssSlackMb: 100 });
  });

  it('a long line after good ones is refused too, naming its line number', async () => {
    const base = await baseline(node);
    const keys = storeKeys(node);
    const body = Buffer.concat([Buffer.from(GOOD), Buffer.alloc(LINE_LIMIT + 1, 0x62), Buffer.from('\n')]);
    const res = await putDataset('late-long', body);
    expectError(res, 413, 'PAYLOAD_TOO_LARGE', node);
    expect(res.json!.error).toMatch(/line 3 .*MAX_LINE_BYTES/);
    expect(await datasetInfo('late-long')).toBeUndefined();
    expect(storeKeys(node)).toEqual(keys);
    await expectIntact(node, base);
  });

  it('a line of exactly MAX_LINE_BYTES is accepted', async () => {
    const row = JSON.stringify({ ...sileroRow(), id: '' });
    const line = row.replace('"id":""', `"id":"${'x'.repeat(LINE_LIMIT - row.length)}"`);
    expect(Buffer.byteLength(line)).toBe(LINE_LIMIT);
    const res = await putDataset('exact', `${line}\n`);
    expect(res.status, res.body.toString()).toBe(201);
    expect(res.json).toMatchObject({ rows: 1, invalidLines: 0 });
  });

  it('a body past MAX_DATASET_BYTES is refused with 413 at the limit; nothing is stored, the earlier dataset stays', async () => {
    const before = await datasetInfo('frames');
    const base = await baseline(node);
    const keys = storeKeys(node);
    const line = Buffer.from(`${JSON.stringify(sileroRow())}\n`);
    const block = Buffer.concat(Array.from({ length: Math.ceil((64 * 1024) / line.length) }, () => line));
    const sent = { bytes: 0 };
    // Chunked (no Content-Length): the limit is found while the body streams.
    const res = await putDataset('frames', stream(64 * 1024 * 1024, block, sent));
    expectError(res, 413, 'PAYLOAD_TOO_LARGE', node);
    expect(res.json!.error).toMatch(new RegExp(`MAX_DATASET_BYTES \\(${DATASET_LIMIT} bytes\\)`));
    // The client stopped when the answer came; the node answered long before the whole body.
    expect(sent.bytes).toBeLessThan(64 * 1024 * 1024);
    expect(await datasetInfo('frames')).toEqual(before);
    expect(storeKeys(node)).toEqual(keys);
    await expectIntact(node, base, { rssSlackMb: 100 });
  });

  it('a declared Content-Length past MAX_DATASET_BYTES is refused before the body is read', async () => {
    const base = await baseline(node);
    const keys = storeKeys(node);
    // Sends the headers only and waits: an answer can come only from the declared length.
    const res = await putDataset(
      'declared',
      (req) => {
        req.on('error', () => {});
        req.flushHeaders();
      },
      { 'content-length': DATASET_LIMIT + 1 },
      20_000,
    );
    expectError(res, 413, 'PAYLOAD_TOO_LARGE', node);
    expect(res.json!.error).toMatch(/MAX_DATASET_BYTES/);
    expect(await datasetInfo('declared')).toBeUndefined();
    expect(storeKeys(node)).toEqual(keys);
    await expectIntact(node, base);
  });

  it('a body cut off mid-line stores nothing and leaves the earlier dataset as it was', async () => {
    const before = await datasetInfo('frames');
    const base = await baseline(node);
    const keys = storeKeys(node);
    const cut = putDataset('frames', (req) => {
      req.on('error', () => {});
      req.write(`${JSON.stringify(sileroRow())}\n`.repeat(100));
      req.write('{"inputs":[{"name":"inp');
      setTimeout(() => req.destroy(), 200);
    });
    await expect(cut).rejects.toThrow();
    expect(await datasetInfo('frames')).toEqual(before);
    expect(storeKeys(node)).toEqual(keys);
    // Neither this upload nor any refused one above left a temp file behind.
    expect(await tempFilesLeft()).toEqual([]);
    await expectIntact(node, base);
  });

  it('a gzip or deflate body is decompressed as it streams: stored and counted as its JSON Lines', async () => {
    const base = await baseline(node);
    for (const [encoding, pack] of [
      ['gzip', zlib.gzipSync],
      ['deflate', zlib.deflateSync],
    ] as const) {
      const res = await putDataset(`packed-${encoding}`, pack(Buffer.from(GOOD)), { 'content-encoding': encoding });
      expect(res.status, res.body.toString()).toBe(201);
      expect(res.json).toMatchObject({ rows: 2, bytes: Buffer.byteLength(GOOD), invalidLines: 0, invalidLineNumbers: [] });
      expect(fs.readFileSync(path.join(node.dataDir, 'store', 'datasets', `packed-${encoding}.jsonl`), 'utf8')).toBe(GOOD);
    }
    const job = await postJob(node, { model: 'vad', input: 'packed-gzip' });
    expect(job.status, job.body.toString()).toBe(202);
    expect(await finished(node, job.json!.id as string)).toMatchObject({
      state: 'completed',
      progress: { totalRows: 2, doneRows: 2, failedRows: 0 },
    });
    await expectIntact(node, base);
  });

  it('a gzip body past MAX_DATASET_BYTES or MAX_LINE_BYTES once decompressed is refused with 413 at the limit', async () => {
    const before = await datasetInfo('frames');
    const base = await baseline(node);
    const keys = storeKeys(node);
    // 64 MiB of rows in about 100 KB: the decompressed bytes are what count.
    const line = Buffer.from(`${JSON.stringify(sileroRow())}\n`);
    const rows = zlib.gzipSync(Buffer.concat(Array.from({ length: Math.ceil((64 * 1024 * 1024) / line.length) }, () => line)));
    expect(rows.length).toBeLessThan(DATASET_LIMIT);
    const big = await putDataset('frames', rows, { 'content-encoding': 'gzip' });
    expectError(big, 413, 'PAYLOAD_TOO_LARGE', node);
    expect(big.json!.error).toMatch(new RegExp(`MAX_DATASET_BYTES \\(${DATASET_LIMIT} bytes\\)`));
    // 6 MB of one line in a few KB.
    const long = await putDataset('frames', zlib.gzipSync(Buffer.alloc(6 * 1024 * 1024, 0x61)), { 'content-encoding': 'gzip' });
    expectError(long, 413, 'PAYLOAD_TOO_LARGE', node);
    expect(long.json!.error).toMatch(new RegExp(`line 1 .*MAX_LINE_BYTES \\(${LINE_LIMIT} bytes\\)`));
    expect(await datasetInfo('frames')).toEqual(before);
    expect(storeKeys(node)).toEqual(keys);
    expect(await tempFilesLeft()).toEqual([]);
    await expectIntact(node, base, { rssSlackMb: 100 });
  });

  it('a corrupt or cut-off gzip body gets 400 and an unknown encoding 415 naming the accepted ones; nothing is stored', async () => {
    const before = await datasetInfo('frames');
    const base = await baseline(node);
    const keys = storeKeys(node);
    const packed = zlib.gzipSync(Buffer.from(GOOD.repeat(50)));
    const cut = await putDataset('frames', packed.subarray(0, packed.length - 20), { 'content-encoding': 'gzip' });
    expectError(cut, 400, 'INVALID_REQUEST', node);
    expect(cut.json!.error).toMatch(/gzip body could not be decompressed/);
    const garbage = await putDataset('frames', Buffer.from(GOOD), { 'content-encoding': 'gzip' });
    expectError(garbage, 400, 'INVALID_REQUEST', node);
    const br = await putDataset('frames', Buffer.from(GOOD), { 'content-encoding': 'br' });
    expectError(br, 415, 'UNSUPPORTED_MEDIA_TYPE', node);
    expect(br.json!.error).toMatch(/"br" is not supported; use gzip, deflate or none/);
    expect(await datasetInfo('frames')).toEqual(before);
    expect(storeKeys(node)).toEqual(keys);
    expect(await tempFilesLeft()).toEqual([]);
    await expectIntact(node, base);
  });

  it('lines that are JSON but not an object (a number, a string, null, an array) are counted as invalid at upload', async () => {
    const base = await baseline(node);
    const body = `1\n"x"\nnull\n[${JSON.stringify(sileroRow())}]\ntrue\n${JSON.stringify(sileroRow())}\n`;
    const res = await putDataset('scalars', body);
    expect(res.status, res.body.toString()).toBe(201);
    expect(res.json).toMatchObject({ rows: 6, invalidLines: 5, invalidLineNumbers: [1, 2, 3, 4, 5] });
    // They stay in the dataset and fail as rows, as the upload said they would.
    const job = await postJob(node, { model: 'vad', input: 'scalars' });
    expect(job.status, job.body.toString()).toBe(202);
    expect(await finished(node, job.json!.id as string)).toMatchObject({
      state: 'completed',
      progress: { totalRows: 6, doneRows: 6, failedRows: 5 },
    });
    await expectIntact(node, base);
  });

  it('jobs still run on the dataset the refused uploads left untouched', async () => {
    const res = await postJob(node, { model: 'vad', input: 'datasets/frames.jsonl' });
    expect(res.status, res.body.toString()).toBe(202);
    const s = await finished(node, res.json!.id as string);
    expect(s).toMatchObject({ state: 'completed', progress: { totalRows: 2, doneRows: 2, failedRows: 0 } });
  });
});
