// The hand-encoded ONNX writer used by benchmarks makes a model onnxruntime loads and runs correctly.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { writeLargeOnnx } from '../fixtures/make-large-onnx.ts';

let tmp: string | undefined;
afterAll(async () => {
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

it('writes a ModelProto that onnxruntime loads, with a dynamic batch, and computes x W + b', async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-large-'));
  const made = await writeLargeOnnx(path.join(tmp, 'model.onnx'), 2);
  expect(made.bytes).toBeGreaterThan(2 * 1024 * 1024);
  expect((await fs.stat(made.file)).size).toBe(made.bytes);
  const session = await ort.InferenceSession.create(made.file);
  try {
    expect(session.inputMetadata[0]).toMatchObject({ name: 'x', type: 'float32', shape: ['batch', made.k] });
    expect(session.outputMetadata[0]).toMatchObject({ name: 'y', type: 'float32', shape: ['batch', made.n] });
    // Row 0 picks out W's first row (one-hot), row 1 is all zeros: y = W[0,:] + 0.5 and y = 0.5.
    const x = new Float32Array(2 * made.k);
    x[0] = 1;
    const { y } = await session.run({ x: new ort.Tensor('float32', x, [2, made.k]) });
    expect(y.dims).toEqual([2, made.n]);
    const out = y.data as Float32Array;
    expect(out[made.n]).toBeCloseTo(0.5, 6);
    expect(Math.abs(out[0] - 0.5)).toBeLessThanOrEqual(0.005);
    expect(out[0]).not.toBe(0.5);
  } finally {
    await session.release();
  }
});
