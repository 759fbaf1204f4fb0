// Golden tests per runtime: each runtime's outputs against numpy goldens (generated fixtures) or
// against the same model run directly on its library (silero on onnxruntime, the upscaler on TF.js).
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import { OnnxRuntime } from '../../functions/onnx-runtime.ts';
import { TfjsRuntime } from '../../functions/tfjs-runtime.ts';
import type { Session } from '../../functions/index.ts';
import type { Tensor } from '../../core/index.ts';
import { SILERO_VAD_FILE, TFJS_GRAPH_DIR, UPSCALER_DIR, loadGolden } from '../fixtures/golden.ts';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function expectClose(actual: Tensor[], expected: Tensor[], tolerance: number): void {
  expect(actual.map((t) => t.name)).toEqual(expected.map((t) => t.name));
  actual.forEach((a, i) => {
    const e = expected[i];
    expect(a.datatype).toBe(e.datatype);
    expect(a.shape).toEqual(e.shape);
    expect(maxAbsDiff(a.data as Float32Array, e.data as Float32Array)).toBeLessThanOrEqual(tolerance);
  });
}

const sessions: Session[] = [];
afterAll(async () => {
  for (const s of sessions) await s.dispose();
});

function seeded(n: number, seed: number, scale = 1): Float32Array {
  let x = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = ((x / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

describe('onnx runtime', () => {
  const runtime = new OnnxRuntime();

  for (const name of ['mlp-fixed', 'mlp-dynamic', 'cnn-dynamic']) {
    it(`${name} matches the numpy golden within 1e-4`, async () => {
      const g = loadGolden(name);
      const s = await runtime.load({ dir: g.dir, format: 'onnx' });
      sessions.push(s);
      expect(s.inputs).toEqual(g.inputs);
      expect(s.outputs).toEqual(g.outputs);
      for (const c of g.cases) expectClose(await s.run(c.inputs), c.outputs, g.tolerance);
    });
  }

  it('silero VAD matches a direct onnxruntime session within 1e-4 (int64 scalar sr, three outputs)', async () => {
    const dir = path.dirname(SILERO_VAD_FILE);
    const s = await runtime.load({ dir, format: 'onnx' });
    sessions.push(s);
    const direct = await ort.InferenceSession.create(SILERO_VAD_FILE);
    try {
      let h: Float32Array = new Float32Array(2 * 64);
      let c: Float32Array = new Float32Array(2 * 64);
      // Three chunks in a row, feeding the state back, so the recurrent outputs are exercised too.
      for (let chunk = 0; chunk < 3; chunk++) {
        const audio = seeded(512, 7 + chunk, 0.5);
        const ours = await s.run([
          { name: 'input', datatype: 'FP32', shape: [1, 512], data: audio.slice() },
          { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
          { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: h.slice() },
          { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: c.slice() },
        ]);
        const ref = await direct.run({
          input: new ort.Tensor('float32', audio.slice(), [1, 512]),
          sr: new ort.Tensor('int64', BigInt64Array.of(16000n), []),
          h: new ort.Tensor('float32', h.slice(), [2, 1, 64]),
          c: new ort.Tensor('float32', c.slice(), [2, 1, 64]),
        });
        expect(ours.map((t) => t.name)).toEqual(['output', 'hn', 'cn']);
        expect(ours[0].shape).toEqual([1, 1]);
        for (const t of ours) {
          expect(t.datatype).toBe('FP32');
          expect(t.shape).toEqual([...ref[t.name].dims]);
          expect(maxAbsDiff(t.data as Float32Array, ref[t.name].data as Float32Array)).toBeLessThanOrEqual(1e-4);
        }
        h = ours[1].data as Float32Array;
        c = ours[2].data as Float32Array;
      }
      // Selecting outputs returns only those, in the requested order.
      const picked = await s.run(
        [
          { name: 'input', datatype: 'FP32', shape: [1, 512], data: seeded(512, 99) },
          { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
          { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: new Float32Array(128) },
          { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: new Float32Array(128) },
        ],
        ['cn', 'output'],
      );
      expect(picked.map((t) => t.name)).toEqual(['cn', 'output']);
    } finally {
      await direct.release();
    }
  });

  it("bad calls answer the protocol validator's codes, naming the input or output", async () => {
    const g = loadGolden('mlp-dynamic');
    const s = await runtime.load({ dir: g.dir, format: 'onnx' });
    sessions.push(s);
    const x = (shape: number[], data: Float32Array = new Float32Array(shape.reduce((a, b) => a * b, 1))): Tensor => ({
      name: 'x',
      datatype: 'FP32',
      shape,
      data,
    });
    await expect(s.run([x([2, 5])])).rejects.toMatchObject({
      code: 'INVALID_TENSOR',
      message: expect.stringMatching(/input "x": expected shape \[-1,4\], got \[2,5\]/),
    });
    await expect(s.run([x([2, 4], new Float32Array(7))])).rejects.toMatchObject({
      code: 'INVALID_TENSOR',
      message: expect.stringMatching(/needs 8 elements, got 7/),
    });
    await expect(s.run([{ name: 'x', datatype: 'FP64', shape: [1, 4], data: new Float64Array(4) }])).rejects.toMatchObject({
      code: 'INVALID_TENSOR',
      message: expect.stringMatching(/expected datatype FP32, got FP64/),
    });
    await expect(s.run([])).rejects.toMatchObject({ code: 'INVALID_TENSOR', message: expect.stringMatching(/input "x": missing/) });
    await expect(s.run([x([1, 4]), { ...x([1, 4]), name: 'z' }])).rejects.toMatchObject({
      code: 'INVALID_TENSOR',
      message: expect.stringMatching(/input "z": not an input of the model/),
    });
    await expect(s.run([x([1, 4])], ['nope'])).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      message: expect.stringMatching(/output "nope": not an output/),
    });
  });

  it('runtime options are honoured and checked', async () => {
    const g = loadGolden('mlp-fixed');
    const s = await runtime.load({ dir: g.dir, format: 'onnx', intraOpNumThreads: 2, graphOptimizationLevel: 'disabled' });
    sessions.push(s);
    expectClose(await s.run(g.cases[0].inputs), g.cases[0].outputs, g.tolerance);
    await expect(runtime.load({ dir: g.dir, format: 'onnx', intraOpNumThreads: 0 })).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });
});

describe('tfjs runtime', () => {
  const runtime = new TfjsRuntime();

  it('the hand-written graph model matches the numpy golden within 1e-3', async () => {
    const g = loadGolden('tfjs-graph');
    expect(g.dir).toBe(TFJS_GRAPH_DIR);
    const s = await runtime.load({ dir: g.dir, format: 'tfjs-graph' });
    sessions.push(s);
    expect(['tfjs-wasm', 'tfjs-node']).toContain(runtime.name);
    expect(s.inputs).toEqual(g.inputs);
    expect(s.outputs).toEqual(g.outputs);
    for (const c of g.cases) expectClose(await s.run(c.inputs), c.outputs, g.tolerance);
  });

  it('the upscaler layers model matches direct TF.js within 1e-3', async () => {
    const s = await runtime.load({ dir: UPSCALER_DIR, format: 'tfjs-layers' });
    sessions.push(s);
    const image = seeded(1 * 12 * 10 * 3, 3).map((v) => (v + 1) / 2);
    const [ours] = await s.run([{ name: 'LR', datatype: 'FP32', shape: [1, 12, 10, 3], data: image.slice() }]);

    // Direct: the same files through tf.loadLayersModel on the same backend, no Hearth code involved.
    const json = JSON.parse(await fs.readFile(path.join(UPSCALER_DIR, 'model.json'), 'utf8'));
    const bin = await fs.readFile(path.join(UPSCALER_DIR, 'group1-shard1of1.bin'));
    const model = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights),
        weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
      }),
    );
    const x = tf.tensor(image, [1, 12, 10, 3]);
    const y = model.predict(x) as tf.Tensor;
    const ref = await y.data();
    expect(ours.name).toBe('SR');
    expect(ours.shape).toEqual(y.shape);
    expect(ours.shape).toEqual([1, 24, 20, 3]);
    expect(maxAbsDiff(ours.data as Float32Array, ref as Float32Array)).toBeLessThanOrEqual(1e-3);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('refuses inputs TF.js cannot hold with INVALID_TENSOR', async () => {
    const g = loadGolden('tfjs-graph');
    const s = await runtime.load({ dir: g.dir, format: 'tfjs-graph' });
    sessions.push(s);
    await expect(s.run([{ name: 'x', datatype: 'UINT64', shape: [1, 4], data: new BigUint64Array(4) }])).rejects.toMatchObject({
      code: 'INVALID_TENSOR',
      message: expect.stringMatching(/input "x": expected datatype FP32, got UINT64/),
    });
    await expect(s.run([{ name: 'x', datatype: 'FP32', shape: [1, 3], data: new Float32Array(3) }])).rejects.toMatchObject({
      code: 'INVALID_TENSOR',
    });
  });
});
