// Deferred JSON inputs through the real executor: silero requests whose frames and state are still JSON text
// (scanInferRequest) merge with each other and with plain-tensor requests, are parsed on the instance thread,
// and each gets its own outputs, equal to an unbatched onnxruntime run. A request whose text does not parse
// fails alone, even inside a merged run; outputs asked for as JSON come back printed with the same numbers.
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDeferred, isHearthError, type InputTensor, type Manifest, type Tensor } from '../../core/index.ts';
import { scanInferRequest } from '../../protocol/index.ts';
import type { InferResult } from '../../executor/index.ts';
import { SILERO_VAD_FILE } from '../fixtures/golden.ts';
import { makeRig, manifestOf, type TestRig } from './helpers.ts';

let rig: TestRig;
let silero: Manifest;
let direct: ort.InferenceSession;
const runs: number[] = [];
const done: { ok: boolean; code?: string; batchSize: number }[] = [];

beforeAll(async () => {
  // One slot and one instance: requests pile up while a run is in flight, so they merge.
  rig = await makeRig({
    env: { EXECUTOR_SLOTS: '1' },
    configs: { silero: { maxInstances: 1, batching: { maxBatchSize: 16 } } },
    observer: {
      onRun: (e) => runs.push(e.batchSize),
      onRequestDone: (e) => done.push({ ok: e.ok, code: e.code, batchSize: e.batchSize }),
    },
  });
  const m = await manifestOf('silero', SILERO_VAD_FILE);
  rig.sources.set('silero@1', m.dir);
  silero = m.manifest;
  // The instance's session options (functions/onnx-runtime.ts), so a batched direct run computes the same float32s.
  direct = await ort.InferenceSession.create(SILERO_VAD_FILE, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
});
afterAll(async () => {
  await direct?.release();
  await rig?.close();
});

function rand(seed: number, n: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed * 9301 + 49297;
  for (let i = 0; i < n; i++) {
    x = (x * 9301 + 49297) % 233280;
    a[i] = (x / 233280 - 0.5) * (i % 5 === 0 ? 0.05 : 0.8);
  }
  return a;
}

/** One silero request's values: a 512-sample frame and a state, all different per seed. */
function sileroTensors(seed: number): Tensor[] {
  return [
    { name: 'input', datatype: 'FP32', shape: [1, 512], data: rand(seed, 512) },
    { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
    { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: rand(seed + 1000, 128) },
    { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: rand(seed + 2000, 128) },
  ];
}

/** Element texts of a float32 array that read back as the same float32. */
const texts = (a: Float32Array): string[] => Array.from(a, String);

/** The V2 JSON body of those tensors, scanned as the HTTP route scans it; `edit` may spoil a data array's texts. */
function scanned(tensors: Tensor[], edit: (name: string, items: string[]) => string[] = (_n, x) => x): InputTensor[] {
  const items = tensors.map((t) => {
    const data = t.name === 'sr' ? '16000' : `[${edit(t.name, texts(t.data as Float32Array)).join(',')}]`;
    return `{"name":"${t.name}","datatype":"${t.datatype}","shape":[${t.shape.join(',')}],"data":${data}}`;
  });
  // deferAbove 64: frame and state (hundreds of bytes) stay text; sr is a scalar and stays decoded, so it keys the merge.
  const inputs = scanInferRequest(Buffer.from(`{"inputs":[${items.join(',')}]}`), { deferAbove: 64 }).inputs;
  expect(inputs.filter(isDeferred).map((t) => t.name)).toEqual(['input', 'h', 'c']);
  return inputs;
}

/** A copy of the tensors (the executor takes ownership of the buffers it is given). */
function copyOf(tensors: Tensor[]): Tensor[] {
  return tensors.map((t) => ({ ...t, data: (t.data as Float32Array).slice() }));
}

async function directRun(tensors: Tensor[]): Promise<Record<string, Float32Array>> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of tensors) feeds[t.name] = new ort.Tensor(t.datatype === 'INT64' ? 'int64' : 'float32', t.data, t.shape);
  const out = await direct.run(feeds);
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

/** One direct run over several requests' rows, merged as the batcher merges silero (frames on axis 0, state on axis 1). */
async function directBatch(requests: Tensor[][]): Promise<Record<string, Float32Array>> {
  const b = requests.length;
  const input = new Float32Array(b * 512);
  const h = new Float32Array(2 * b * 64);
  const c = new Float32Array(2 * b * 64);
  requests.forEach((t, j) => {
    input.set(t[0].data as Float32Array, j * 512);
    for (let l = 0; l < 2; l++) {
      h.set((t[2].data as Float32Array).subarray(l * 64, l * 64 + 64), (l * b + j) * 64);
      c.set((t[3].data as Float32Array).subarray(l * 64, l * 64 + 64), (l * b + j) * 64);
    }
  });
  const out = await direct.run({
    input: new ort.Tensor('float32', input, [b, 512]),
    sr: new ort.Tensor('int64', BigInt64Array.of(16000n), []),
    h: new ort.Tensor('float32', h, [2, b, 64]),
    c: new ort.Tensor('float32', c, [2, b, 64]),
  });
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

/** Row j of a merged output, along `axis` (every run of it when the axis is not the first). */
function rowsOf(data: Float32Array, axis: number, shape: number[], j: number): number[] {
  const total = shape[axis];
  const outer = shape.slice(0, axis).reduce((x, y) => x * y, 1);
  const inner = shape.slice(axis + 1).reduce((x, y) => x * y, 1);
  const out: number[] = [];
  for (let o = 0; o < outer; o++) out.push(...data.subarray((o * total + j) * inner, (o * total + j + 1) * inner));
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('deferred JSON inputs through the executor', () => {
  it('24 deferred and 6 plain requests, with 2 bad ones in the crowd: the good ones equal direct runs, the bad ones fail alone', async () => {
    await rig.executor.load(silero);
    runs.length = 0;
    done.length = 0;
    const N = 32;
    const BAD_SHORT = 6;
    const BAD_LEAF = 19;
    const plain = new Set([3, 9, 14, 22, 27, 30]);
    // Every third good request takes some outputs printed; one of them prints all three.
    const printOf = (i: number): string[] | undefined => (i % 3 === 1 ? (i === 4 ? ['output', 'hn', 'cn'] : ['output', 'hn']) : undefined);
    const values = Array.from({ length: N }, (_, i) => sileroTensors(i + 1));
    const requests = values.map((t, i): InputTensor[] => {
      if (plain.has(i)) return copyOf(t);
      // One number short for shape [1,512]; a `true` leaf in the state.
      if (i === BAD_SHORT) return scanned(t, (name, x) => (name === 'input' ? x.slice(0, 511) : x));
      if (i === BAD_LEAF) return scanned(t, (name, x) => (name === 'h' ? x.map((v, k) => (k === 77 ? 'true' : v)) : x));
      return scanned(t);
    });
    expect(requests.filter((r) => r.some(isDeferred))).toHaveLength(26);

    const settled = await Promise.allSettled(
      requests.map((inputs, i) => {
        const print = printOf(i);
        return rig.executor.infer({ manifest: silero, inputs, ...(print ? { printOutputs: print } : {}) });
      }),
    );

    // The bad ones: INVALID_TENSOR naming the input and what was wrong.
    for (const [i, message] of [
      [BAD_SHORT, 'input "input": shape [1,512] needs 512 elements, got 511'],
      [BAD_LEAF, `input "h": data element 77 is 't', expected a number`],
    ] as const) {
      const s = settled[i];
      expect(s.status, `request ${i}`).toBe('rejected');
      const reason = (s as PromiseRejectedResult).reason;
      expect(isHearthError(reason) && reason.code).toBe('INVALID_TENSOR');
      expect(reason.message).toBe(message);
    }

    // Batching happened, and the bad requests were merged with good ones (their batch mates are checked below).
    expect(runs.reduce((a, b) => a + b, 0)).toBe(N);
    expect(Math.max(...runs)).toBeGreaterThan(1);
    const failedDone = done.filter((d) => !d.ok);
    expect(failedDone.map((d) => d.code)).toEqual(['INVALID_TENSOR', 'INVALID_TENSOR']);
    expect(failedDone.every((d) => d.batchSize > 1)).toBe(true);

    let printedCount = 0;
    let exactPrinted = 0;
    for (let i = 0; i < N; i++) {
      if (i === BAD_SHORT || i === BAD_LEAF) continue;
      const s = settled[i];
      expect(s.status, `request ${i}`).toBe('fulfilled');
      const r = (s as PromiseFulfilledResult<InferResult>).value;
      const want = await directRun(values[i]);
      const print = printOf(i) ?? [];
      // Printed outputs are not also returned as tensors.
      expect(r.outputs.map((t) => t.name).sort()).toEqual(['cn', 'hn', 'output'].filter((n) => !print.includes(n)).sort());
      for (const t of r.outputs) {
        expect(t.shape).toEqual(t.name === 'output' ? [1, 1] : [2, 1, 64]);
        expect(maxDiff(t.data as Float32Array, want[t.name]), `${t.name} of request ${i}`).toBeLessThanOrEqual(1e-5);
      }
      expect((r.printed ?? []).map((p) => p.name)).toEqual(print);
      for (const p of r.printed ?? []) {
        printedCount++;
        expect(p.datatype).toBe('FP32');
        expect(p.shape).toEqual(p.name === 'output' ? [1, 1] : [2, 1, 64]);
        const numbers = JSON.parse(p.json) as number[];
        // Printed as float32 text: at most 9 significant digits (the shortest that reads back as the same
        // float32), and within 1e-5 of the direct run.
        expect(numbers.every((v) => significantDigits(v) <= 9)).toBe(true);
        expect(maxDiff(numbers, want[p.name]), `printed ${p.name} of request ${i}`).toBeLessThanOrEqual(1e-5);
      }
    }
    expect(printedCount).toBeGreaterThanOrEqual(20);

    // Exactness of the printed text: the scheduler takes requests in arrival order (one priority, one batch key),
    // so run k served the next runs[k] requests. The same rows run batched in a direct session give the very
    // float32s the instance computed; every printed number must parse back to exactly those.
    let at = 0;
    for (const size of runs) {
      const group = Array.from({ length: size }, (_, j) => at + j);
      at += size;
      const want = await directBatch(group.map((i) => values[i]));
      group.forEach((i, j) => {
        if (i === BAD_SHORT || i === BAD_LEAF) return;
        const r = (settled[i] as PromiseFulfilledResult<InferResult>).value;
        for (const p of r.printed ?? []) {
          const rows = rowsOf(want[p.name], p.name === 'output' ? 0 : 1, p.name === 'output' ? [size, 1] : [2, size, 64], j);
          expect((JSON.parse(p.json) as number[]).map(Math.fround), `printed ${p.name} of request ${i}`).toEqual(rows);
          exactPrinted++;
        }
      });
    }
    expect(exactPrinted).toBe(printedCount);
  });

  it('a bad deferred request that runs alone fails with its own error, and the instance serves the next one', async () => {
    await rig.executor.load(silero);
    const t = sileroTensors(500);
    await expect(
      rig.executor.infer({ manifest: silero, inputs: scanned(t, (name, x) => (name === 'c' ? [...x, '0.5'] : x)) }),
    ).rejects.toMatchObject({
      code: 'INVALID_TENSOR',
      message: 'input "c": shape [2,1,64] needs 128 elements, got 129',
    });
    await expect(
      rig.executor.infer({
        manifest: silero,
        inputs: scanned(t, (name, x) => (name === 'input' ? x.map((v, k) => (k === 9 ? '1.2.3' : v)) : x)),
      }),
    ).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      message: expect.stringMatching(/^body is not valid JSON: expected ',' or '\]', found '\.' at byte \d+$/),
    });
    const ok = await rig.executor.infer({ manifest: silero, inputs: scanned(t), printOutputs: ['output'] });
    const want = await directRun(t);
    expect(ok.batchSize).toBe(1);
    expect(ok.printed).toHaveLength(1);
    // Alone, the run is the direct run: the printed probability is the same float32.
    expect((JSON.parse(ok.printed![0].json) as number[]).map(Math.fround)).toEqual(Array.from(want.output));
    for (const o of ok.outputs) expect(maxDiff(o.data as Float32Array, want[o.name])).toBeLessThanOrEqual(1e-5);
  });
});

/** Significant digits of a number as JavaScript prints it (the shortest text of the double). */
function significantDigits(v: number): number {
  return String(Math.abs(v)).replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').length;
}
