// Uploads whose inspection (one load of the model) would take the node down: a 250-byte ONNX file whose load folds
// a constant of 1 GiB (ConstantOfShape; onnxruntime's constant folding makes it at session creation, about twice
// over), and one whose folded MatMul takes minutes. Inspection used to run in a worker thread of the node: the bomb
// grew the node itself (a fold of 512 MiB raised its RSS by 1.07 GB; one of tens of GB is an OOM kill of the node),
// and a load cannot be stopped in a thread. Now the inspecting child process is killed at the bound: 422
// MODEL_INVALID naming it, the node's RSS never moves, nothing is stored, and no child is left.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBombOnnx, writeSlowFoldOnnx } from '../fixtures/make-bomb-onnx.ts';
import { sileroBytes } from '../helpers/model-bodies.ts';
import { expectError, expectIntact, expectNoUploadLeftovers, request, startNodeWithVad, type Baseline, type HostileNode } from './rig.ts';

let tmp: string;
let bomb: Buffer;
let slow: Buffer;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-inspect-bounds-'));
  // 1 GiB of ones folded at load: far past the 384 MB bound below, and small enough (about 2.1 GB at its peak
  // unbounded) not to endanger a shared test machine if the bound ever fails.
  await writeBombOnnx(path.join(tmp, 'bomb.onnx'), 256 * 1024 ** 2);
  // 8192 x 8192 MatMul folded at load: 1.1 TFLOP on one core (a minute here), 768 MB.
  await writeSlowFoldOnnx(path.join(tmp, 'slow.onnx'), 8192);
  bomb = await fsp.readFile(path.join(tmp, 'bomb.onnx'));
  slow = await fsp.readFile(path.join(tmp, 'slow.onnx'));
});
afterAll(() => fsp.rm(tmp, { recursive: true, force: true }));

const postOnnx = (node: HostileNode, name: string, body: Buffer, timeoutMs = 60_000) =>
  request(node, { method: 'POST', path: `/v1/models/${name}`, headers: { 'content-type': 'application/octet-stream' }, body, timeoutMs });

/** Inspection children of the node: its child processes running the instance worker's entry. */
function inspectionChildren(node: HostileNode): number[] {
  let pids: number[];
  try {
    pids = fs.readFileSync(`/proc/${node.pid}/task/${node.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return pids.filter((pid) => {
    try {
      return /functions\/worker\.js/.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
    } catch {
      return false; // already gone
    }
  });
}

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a model whose load folds a constant of 1 GiB (INSPECT_MAX_RSS_MB 384)', () => {
  let node: HostileNode;
  let base: Baseline;
  beforeAll(async () => {
    ({ node, base } = await startNodeWithVad({ env: { INSPECT_MAX_RSS_MB: '384' } }));
  });
  afterAll(async () => {
    await node?.stop();
  });

  it('422 MODEL_INVALID naming the bound; the node never grows, keeps serving, stores nothing, keeps no child', async () => {
    expect(bomb.length).toBeLessThan(1024);
    let peakMb = 0;
    const sampler = setInterval(() => (peakMb = Math.max(peakMb, node.rssMb())), 20);
    const res = await postOnnx(node, 'bomb', bomb).finally(() => clearInterval(sampler));
    expectError(res, 422, 'MODEL_INVALID', node);
    expect(res.json!.error).toMatch(/more than 384 MB of memory \(INSPECT_MAX_RSS_MB\)/);
    // The fold happened in the child: the node itself stayed far below the 1 GiB it would have grown by.
    expect(peakMb - base.rssMb, `node RSS peaked at ${peakMb.toFixed(0)} MB against ${base.rssMb.toFixed(0)} MB`).toBeLessThan(300);
    await until('the inspection child ends', () => inspectionChildren(node).length === 0, 5_000);
    await expectIntact(node, base);
    await expectNoUploadLeftovers(node);
    expect((await request(node, { path: '/v1/models/bomb' })).status).toBe(404);
  });

  it('the same bomb again, then a good upload: each answered as before', async () => {
    expectError(await postOnnx(node, 'bomb', bomb), 422, 'MODEL_INVALID', node);
    const ok = await postOnnx(node, 'vad2', sileroBytes());
    expect(ok.status, ok.body.toString()).toBe(201);
    await expectIntact(node, base, { expectKeys: ['models/vad2/1/files/model.onnx', 'models/vad2/1/manifest.json'] });
  });
});

describe('a model whose load takes minutes (INSPECT_TIMEOUT_MS 4000, INSPECT_QUEUE_SIZE 0)', () => {
  let node: HostileNode;
  let base: Baseline;
  beforeAll(async () => {
    ({ node, base } = await startNodeWithVad({ env: { INSPECT_TIMEOUT_MS: '4000', INSPECT_CONCURRENCY: '1', INSPECT_QUEUE_SIZE: '0' } }));
  });
  afterAll(async () => {
    await node?.stop();
  });

  it('422 MODEL_INVALID naming the bound; meanwhile a second upload is refused 503 OVERLOADED with Retry-After', async () => {
    const slowUpload = postOnnx(node, 'slow', slow);
    await until('the slow inspection starts', () => inspectionChildren(node).length === 1);
    const refused = await postOnnx(node, 'other', sileroBytes());
    expectError(refused, 503, 'OVERLOADED', node);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.json!.error).toMatch(/INSPECT_QUEUE_SIZE/);
    const res = await slowUpload;
    expectError(res, 422, 'MODEL_INVALID', node);
    expect(res.json!.error).toMatch(/did not finish within 4000 ms \(INSPECT_TIMEOUT_MS\)/);
    await until('the inspection child ends', () => inspectionChildren(node).length === 0, 5_000);
    await expectIntact(node, base);
    await expectNoUploadLeftovers(node);
    // The slot is free again: the upload refused above now goes through.
    const ok = await postOnnx(node, 'other', sileroBytes());
    expect(ok.status, ok.body.toString()).toBe(201);
  });
});
