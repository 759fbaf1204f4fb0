// What a job holds in memory (outside probe of issue 13): a 176 MB dataset run with chunkSize 100000 raised a
// node's RSS by 630 MB and kept it there, because job creation and the chunk worker held a whole chunk of rows and
// results. A chunk now closes at chunkSize rows or MAX_CHUNK_BYTES, whichever comes first, and both sides stream.
// The rows here are few but fat (a long "id", echoed in every result line), so the case costs little compute.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseline, expectIntact, request, uploadSilero, type HostileNode } from './rig.ts';
import { finished, postJob, sileroRow, startJobsNode, startTestRedis, type TestRedis } from './jobs-node.ts';

const CHUNK_BYTES = 1024 * 1024;
const ROWS = 600;
const ID_BYTES = 200 * 1024;

let redis: TestRedis;
let node: HostileNode;

beforeAll(async () => {
  redis = await startTestRedis();
  node = await startJobsNode(redis, { MAX_CHUNK_BYTES: String(CHUNK_BYTES) });
  await uploadSilero(node);
});

afterAll(async () => {
  await node?.stop();
  await redis?.close();
});

/** Row i: a wave of its own (so answers differ) and an id of about ID_BYTES. */
function fatRow(i: number): string {
  const row = sileroRow() as { id?: string; inputs: { name: string; data: number[] }[] };
  const wave = row.inputs.find((t) => t.name === 'input')!;
  wave.data = wave.data.map((v, k) => Math.round(v * ((i % 11) + 1) * 1e5 + k) / 1e5);
  row.id = `row-${i}-${'x'.repeat(ID_BYTES)}`;
  return JSON.stringify(row);
}

/** Chunks the rule makes of these lines: one closes at `chunkSize` rows, or before a row that would pass `maxBytes`. */
function expectedChunks(lines: string[], chunkSize: number, maxBytes: number): number {
  let chunks = 0;
  let rows = 0;
  let bytes = 0;
  for (const line of lines) {
    const n = Buffer.byteLength(line) + 1;
    if (rows > 0 && (rows === chunkSize || bytes + n > maxBytes)) {
      chunks++;
      rows = 0;
      bytes = 0;
    }
    rows++;
    bytes += n;
  }
  return chunks + (rows > 0 ? 1 : 0);
}

describe('job memory', () => {
  it('a dataset run with a huge chunkSize is cut by MAX_CHUNK_BYTES, streams through, and RSS stays bounded', async () => {
    const lines = Array.from({ length: ROWS }, (_, i) => fatRow(i));
    const body = Buffer.from(`${lines.join('\n')}\n`);
    const put = await request(node, {
      method: 'PUT',
      path: '/v1/datasets/fat',
      headers: { 'content-type': 'application/x-ndjson' },
      body,
      timeoutMs: 120_000,
    });
    expect(put.status, put.body.toString().slice(0, 300)).toBe(201);
    expect(put.json).toMatchObject({ rows: ROWS, invalidLines: 0 });
    const base = await baseline(node);

    // RSS sampled through job creation, the run and the end; the bound is generous, it only has to catch a node
    // that holds a chunk (here all 120 MB of rows, and as much again of results) whole.
    let peak = node.rssMb();
    const sampler = setInterval(() => (peak = Math.max(peak, node.rssMb())), 20);
    let status: any;
    try {
      const res = await postJob(node, { model: 'vad', input: 'fat', chunkSize: 100_000 });
      expect(res.status, res.body.toString().slice(0, 300)).toBe(202);
      status = await finished(node, res.json!.id as string);
    } finally {
      clearInterval(sampler);
    }
    expect(status).toMatchObject({ state: 'completed', progress: { totalRows: ROWS, doneRows: ROWS, failedRows: 0 } });
    expect(status.chunks.total).toBe(expectedChunks(lines, 100_000, CHUNK_BYTES));
    expect(status.chunks.total).toBeGreaterThan(50);
    expect(peak - base.rssMb, `peak RSS ${peak.toFixed(0)} MB against ${base.rssMb.toFixed(0)} MB before the job`).toBeLessThan(150);

    // Every row, in order, with the answer the same request gets online.
    const results = await request(node, { path: `/v1/jobs/${status.id}/results`, timeoutMs: 60_000 });
    expect(results.status).toBe(200);
    const out = results.body.toString().split('\n').filter(Boolean);
    expect(out).toHaveLength(ROWS);
    for (let i = 0; i < ROWS; i++) expect(out[i].startsWith(`{"index":${i},"id":"row-${i}-`), `line ${i}`).toBe(true);
    for (const i of [0, 1, 299, ROWS - 1]) {
      const online = await request(node, {
        method: 'POST',
        path: '/v2/models/vad/infer',
        headers: { 'content-type': 'application/json' },
        body: lines[i],
      });
      expect(online.status).toBe(200);
      const line = JSON.parse(out[i]);
      expect(line.id).toBe(online.json!.id);
      expect(line.outputs).toEqual(online.json!.outputs);
    }
    await expectIntact(node, base, { rssSlackMb: 150 });
  }, 180_000); // 120 MB of rows in and out: on a loaded 2-core machine this took more than the default 60 s
});
