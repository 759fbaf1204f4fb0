// A small request whose output is huge. Seen live with y = Tile(x, reps): a 6 KB request with x [1,1000] and
// reps [1,30000] answered 200 with a 270 MB JSON body (RSS 654 -> 2064 MB, staying); reps [1,70000] answered 500
// "Cannot create a string longer than 0x1fffffe8 characters". Now the output of one response is bounded
// (MAX_RESPONSE_BYTES, set small here): checked on the instance thread by its bytes before anything is printed or
// sent, and the JSON text as it is printed; past it, 422 RESPONSE_TOO_LARGE, the instance stays warm.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTileOnnx } from '../fixtures/make-tile-onnx.ts';
import { baseline, expectError, expectIntact, request, startNode, uploadSilero, type Baseline, type HostileNode } from './rig.ts';

const LIMIT = 1024 * 1024;

let node: HostileNode;
let base: Baseline;

beforeAll(async () => {
  node = await startNode({ env: { MAX_RESPONSE_BYTES: String(LIMIT) } });
  await uploadSilero(node);
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-tile-'));
  await writeTileOnnx(path.join(tmp, 'model.onnx'), { sum: false });
  const up = await request(node, {
    method: 'POST',
    path: '/v1/models/tile',
    headers: { 'content-type': 'application/octet-stream' },
    body: await fs.readFile(path.join(tmp, 'model.onnx')),
  });
  await fs.rm(tmp, { recursive: true, force: true });
  expect(up.status, up.body.toString()).toBe(201);
  // The tile instance is warm before the baseline, so the baseline holds its session.
  expect((await tile(1, 'json')).status).toBe(200);
  base = await baseline(node);
});

afterAll(async () => {
  await node?.stop();
});

/** x [1, 1000] of floats that print long (about 10 characters each) tiled `copies` times along its columns. */
function tile(copies: number, output: 'json' | 'binary') {
  const x = Array.from({ length: 1000 }, (_, i) => 0.123456789 + i * 1e-7);
  const body = JSON.stringify({
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [1, 1000], data: x },
      { name: 'reps', datatype: 'INT64', shape: [2], data: [1, copies] },
    ],
    ...(output === 'binary' ? { outputs: [{ name: 'y', parameters: { binary_data: true } }] } : {}),
  });
  return request(node, {
    method: 'POST',
    path: '/v2/models/tile/infer',
    headers: { 'content-type': 'application/json' },
    body,
    timeoutMs: 60_000,
  });
}

describe('an output larger than MAX_RESPONSE_BYTES', () => {
  it('the case from the probe (120 MB of floats): 422 RESPONSE_TOO_LARGE, memory given back, the instance still warm', async () => {
    const res = await tile(30_000, 'json');
    expectError(res, 422, 'RESPONSE_TOO_LARGE', node);
    expect(res.json!.error).toMatch(/MAX_RESPONSE_BYTES/);
    expect(res.body.length).toBeLessThan(1000);
    const next = await tile(1, 'json');
    expect(next.status, next.body.toString()).toBe(200);
    expect(next.headers['hearth-cold-start']).toBe('false');
    await expectIntact(node, base, { rssSlackMb: 150 });
  });

  it('bytes under the bound but JSON text over it (about 10 characters a float): 422, as a binary output it is served', async () => {
    // 200 copies: 200,000 floats, 800 KB as bytes, about 2 MB as JSON text.
    const res = await tile(200, 'json');
    expectError(res, 422, 'RESPONSE_TOO_LARGE', node);
    const bin = await tile(200, 'binary');
    expect(bin.status, bin.body.toString().slice(0, 300)).toBe(200);
    expect(Number(bin.headers['inference-header-content-length'])).toBeGreaterThan(0);
    expect(bin.body.length).toBeGreaterThan(800_000);
    expect(bin.body.length).toBeLessThan(LIMIT + 4096);
    // The same output as binary, four times too large: refused by its bytes.
    expectError(await tile(1000, 'binary'), 422, 'RESPONSE_TOO_LARGE', node);
    const next = await tile(1, 'json');
    expect(next.status).toBe(200);
    expect(next.headers['hearth-cold-start']).toBe('false');
    await expectIntact(node, base, { rssSlackMb: 150 });
  });

  it('the size that made a string too long for V8: the same clear 422', async () => {
    const res = await tile(70_000, 'json');
    expectError(res, 422, 'RESPONSE_TOO_LARGE', node);
    await expectIntact(node, base, { rssSlackMb: 150 });
  });
});
