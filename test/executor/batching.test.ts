// Dynamic batching through the real executor: concurrent requests are merged into runs and each gets exactly
// its own outputs, identical to an unbatched run; shapes that differ never merge; a bad request is turned away
// by validation before it is queued and never fails its batch mates.
import * as ort from 'onnxruntime-node';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHearthError, type Manifest, type Tensor } from '../../core/index.ts';
import { manifestSignature, validateInputs } from '../../protocol/index.ts';
import { onnxFixtureDir, SILERO_VAD_FILE } from '../fixtures/golden.ts';
import { makeRig, manifestOf, type TestRig } from './helpers.ts';

let rig: TestRig;
let mlp: Manifest;
let ident: Manifest;
let silero: Manifest;
const runs: number[] = [];

beforeAll(async () => {
  // One slot and one instance per model: requests pile up while a run is in flight, so they merge.
  rig = await makeRig({
    env: { EXECUTOR_SLOTS: '1' },
    configs: {
      mlp: { maxInstances: 1, batching: { maxBatchSize: 32 } },
      ident: { maxInstances: 1, batching: { maxBatchSize: 32 } },
      silero: { maxInstances: 1, batching: { maxBatchSize: 16 } },
    },
    observer: { onRun: (e) => runs.push(e.batchSize) },
  });
  for (const [name, src] of [
    ['mlp', onnxFixtureDir('mlp-dynamic')],
    ['ident', onnxFixtureDir('identity-fp32')],
    ['silero', SILERO_VAD_FILE],
  ] as const) {
    const m = await manifestOf(name, src);
    rig.sources.set(`${name}@1`, m.dir);
    if (name === 'mlp') mlp = m.manifest;
    else if (name === 'ident') ident = m.manifest;
    else silero = m.manifest;
  }
});
afterAll(() => rig.close());

function rand(seed: number, n: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed * 9301 + 49297;
  for (let i = 0; i < n; i++) {
    x = (x * 9301 + 49297) % 233280;
    a[i] = x / 233280 - 0.5;
  }
  return a;
}

async function direct(file: string, tensors: Tensor[]): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of tensors) feeds[t.name] = new ort.Tensor(t.datatype === 'INT64' ? 'int64' : 'float32', t.data, t.shape);
  const out = await s.run(feeds);
  await s.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

describe('dynamic batching', () => {
  it('64 concurrent requests with different inputs and row counts each get exactly their own outputs', async () => {
    await rig.executor.load(mlp);
    runs.length = 0;
    const reqs = Array.from({ length: 64 }, (_, i) => {
      const rows = 1 + (i % 3);
      return { rows, data: rand(i + 1, rows * 4) };
    });
    const results = await Promise.all(
      reqs.map((r) =>
        rig.executor.infer({ manifest: mlp, inputs: [{ name: 'x', datatype: 'FP32', shape: [r.rows, 4], data: r.data.slice() }] }),
      ),
    );
    expect(Math.max(...runs)).toBeGreaterThan(1);
    expect(runs.reduce((a, b) => a + b, 0)).toBe(64);
    expect(results.some((r) => r.batchSize > 1)).toBe(true);
    // Unbatched reference: the same model, one request per run, in this process.
    const file = path.join(onnxFixtureDir('mlp-dynamic'), 'model.onnx');
    const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
    for (let i = 0; i < reqs.length; i++) {
      const want = (await s.run({ x: new ort.Tensor('float32', reqs[i].data, [reqs[i].rows, 4]) })).y.data as Float32Array;
      expect(results[i].outputs[0].shape).toEqual([reqs[i].rows, 3]);
      const got = results[i].outputs[0].data as Float32Array;
      expect(got.length).toBe(want.length);
      for (let k = 0; k < got.length; k++) expect(Math.abs(got[k] - want[k])).toBeLessThanOrEqual(1e-6);
    }
    await s.release();
  });

  it('requests whose non-batch dimensions differ never share a run; each output is its own input', async () => {
    await rig.executor.load(ident);
    const widths = [3, 5, 3, 7, 5, 3, 3, 7, 5, 3, 2, 2];
    const results = await Promise.all(
      widths.map((w, i) =>
        rig.executor.infer({
          manifest: ident,
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, w], data: Float32Array.from({ length: w }, (_, k) => i * 100 + k) }],
        }),
      ),
    );
    results.forEach((r, i) => {
      expect(r.outputs[0].shape).toEqual([1, widths[i]]);
      expect(Array.from(r.outputs[0].data as Float32Array)).toEqual(Array.from({ length: widths[i] }, (_, k) => i * 100 + k));
    });
  });

  it('silero (batch-second state, shared sr) batched equals alone, with per-request output selection', async () => {
    await rig.executor.load(silero);
    const inputs = (seed: number): Tensor[] => [
      { name: 'input', datatype: 'FP32', shape: [1, 512], data: rand(seed, 512) },
      { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
      { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: rand(seed + 1000, 128) },
      { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: rand(seed + 2000, 128) },
    ];
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        rig.executor.infer({ manifest: silero, inputs: inputs(i), ...(i % 2 ? { outputs: ['hn'] } : {}) }),
      ),
    );
    expect(results.some((r) => r.batchSize > 1)).toBe(true);
    for (let i = 0; i < 16; i++) {
      const want = await direct(SILERO_VAD_FILE, inputs(i));
      const names = results[i].outputs.map((t) => t.name);
      expect(names.sort()).toEqual(i % 2 ? ['hn'] : ['cn', 'hn', 'output']);
      for (const t of results[i].outputs) {
        const got = t.data as Float32Array;
        expect(got.length).toBe(want[t.name].length);
        for (let k = 0; k < got.length; k++) expect(Math.abs(got[k] - want[t.name][k])).toBeLessThan(1e-4);
      }
    }
  });

  it('a bad request is rejected by validation before it is queued and never fails its batch mates', async () => {
    const good = Array.from({ length: 15 }, (_, i): Tensor[] => [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: rand(500 + i, 4) }]);
    const bad: Tensor[] = [{ name: 'x', datatype: 'FP32', shape: [1, 5], data: rand(9, 5) }];
    const crowd = [...good.slice(0, 7), bad, ...good.slice(7)];
    const settled = await Promise.allSettled(
      crowd.map(async (inputs) => {
        validateInputs(manifestSignature(mlp), inputs);
        return rig.executor.infer({ manifest: mlp, inputs });
      }),
    );
    const rejected = settled.filter((s) => s.status === 'rejected');
    expect(rejected).toHaveLength(1);
    const reason = rejected[0].reason;
    expect(isHearthError(reason) && reason.code).toBe('INVALID_TENSOR');
    expect(settled[7].status).toBe('rejected');
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(15);
  });
  it('sending the same tensors twice answers INVALID_TENSOR for the second call (its buffers were transferred), batched or alone', async () => {
    await rig.executor.load(mlp);
    // Batched: eight requests in flight together, then the same tensor objects again.
    const inputs = Array.from({ length: 8 }, (_, i): Tensor[] => [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: rand(700 + i, 4) }]);
    const first = await Promise.all(inputs.map((t) => rig.executor.infer({ manifest: mlp, inputs: t })));
    expect(first).toHaveLength(8);
    // A request that ran alone had its buffer transferred (now detached): INVALID_TENSOR. One merged into a
    // batch was copied, so it still holds its data and must give the same answer as the first time.
    const again = await Promise.allSettled(inputs.map((t) => rig.executor.infer({ manifest: mlp, inputs: t })));
    let detached = 0;
    again.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        expect(Array.from(r.value.outputs[0].data as Float32Array)).toEqual(Array.from(first[i].outputs[0].data as Float32Array));
        return;
      }
      detached++;
      expect(isHearthError(r.reason) && r.reason.code).toBe('INVALID_TENSOR');
      expect(String(r.reason.message)).toMatch(/detached/);
    });
    expect(detached).toBe(first.filter((r) => r.batchSize === 1).length);
    // Alone: one request (a run of its own), then the same tensors again.
    const one: Tensor[] = [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: rand(800, 4) }];
    await rig.executor.infer({ manifest: mlp, inputs: one });
    await expect(rig.executor.infer({ manifest: mlp, inputs: one })).rejects.toMatchObject({ code: 'INVALID_TENSOR' });
    // The executor still serves fresh requests afterwards.
    const fresh = await rig.executor.infer({ manifest: mlp, inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: rand(900, 8) }] });
    expect(fresh.outputs[0].shape).toEqual([2, 3]);
  });

  it('a tensor whose data does not fit its shape is refused before it is queued', async () => {
    await expect(
      rig.executor.infer({ manifest: mlp, inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: rand(1, 5) }] }),
    ).rejects.toMatchObject({ code: 'INVALID_TENSOR' });
  });
});
