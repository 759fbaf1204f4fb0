// A small request that makes onnxruntime allocate a lot: the tile fixture copies a 4 KB input reps[0] times, so
// 4 KB of JSON asks for 512 MB. With onnxruntime's CPU arena that memory stayed with the session after the run (RSS
// up by the allocation for the instance's life); now it must come back. An allocation past onnxruntime's own limit
// must fail that request alone, with the warm instance kept.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTileOnnx } from '../fixtures/make-tile-onnx.ts';
import { baseline, expectError, expectIntact, request, startNode, uploadSilero, type HostileNode } from './rig.ts';

let node: HostileNode;
let tmp: string;

beforeAll(async () => {
  node = await startNode();
  await uploadSilero(node);
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-tile-'));
  await writeTileOnnx(path.join(tmp, 'model.onnx'));
  const up = await request(node, {
    method: 'POST',
    path: '/v1/models/tile',
    headers: { 'content-type': 'application/octet-stream' },
    body: await fs.readFile(path.join(tmp, 'model.onnx')),
  });
  expect(up.status, up.body.toString()).toBe(201);
});

afterAll(async () => {
  await node?.stop();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

/** Runs the tile model: 1024 ones copied `copies` times, summed. */
function tile(copies: number) {
  const body = JSON.stringify({
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [1, 1024], data: new Array(1024).fill(1) },
      { name: 'reps', datatype: 'INT64', shape: [2], data: [copies, 1] },
    ],
  });
  return request(node, {
    method: 'POST',
    path: '/v2/models/tile/infer',
    headers: { 'content-type': 'application/json' },
    body,
    timeoutMs: 60_000,
  });
}

describe("onnxruntime's memory after a large run", () => {
  it('a run that allocates 512 MB gives it back: RSS returns to within 200 MB of before', async () => {
    // Warm the tile instance first, so the baseline holds its session and only the run's memory is in question.
    const warm = await tile(2);
    expect(warm.status, warm.body.toString()).toBe(200);
    const base = await baseline(node);
    const big = await tile(131_072); // 131072 x 4 KB = 512 MB inside onnxruntime
    expect(big.status, big.body.toString()).toBe(200);
    const [sum] = (big.json!.outputs as { data: number[] }[])[0].data; // a float32 sum of 2^27 ones: close, not exact
    expect(Math.abs(sum - 131_072 * 1024) / (131_072 * 1024)).toBeLessThan(1e-3);
    expect(big.headers['hearth-cold-start']).toBe('false');
    await expectIntact(node, base, { rssSlackMb: 200 });
  });

  it("a run past onnxruntime's 4 GB tensor limit: 500 INTERNAL for that request, and the instance stays warm", async () => {
    const base = await baseline(node);
    const res = await tile(2 ** 28);
    expectError(res, 500, 'INTERNAL', node);
    expect(res.json!.error).toMatch(/onnxruntime/);
    const next = await tile(2);
    expect(next.status).toBe(200);
    expect(next.headers['hearth-cold-start']).toBe('false');
    await expectIntact(node, base);
  });
});
