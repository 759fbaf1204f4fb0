// materializeInputs carries out mergeRequests' plans on the instance thread: parsing each request's deferred
// JSON text into its rows of the run's arrays. The result must equal, bit for bit, the merge of the same requests
// decoded eagerly; a part that fails fails only its own request, whose rows stay zero.
import { describe, expect, it } from 'vitest';
import {
  isDeferred,
  type Datatype,
  type InputTensor,
  type Manifest,
  type Tensor,
  type TensorData,
  type TensorSpec,
} from '../../core/index.ts';
import { decodeInferRequest, scanInferRequest } from '../../protocol/index.ts';
import { batchLayoutOf, mergeRequests } from '../../executor/batcher.ts';
import { materializeInputs } from '../../functions/materialize.ts';

function manifest(inputs: TensorSpec[], outputs: TensorSpec[]): Manifest {
  return {
    name: 'm',
    version: 1,
    format: 'onnx',
    files: [],
    sha256: '0',
    sizeBytes: 0,
    createdAt: new Date(0).toISOString(),
    inputs,
    outputs,
  };
}

// Silero VAD's signature: frames batch-first, a shared scalar sample rate, state batch-second.
const SILERO = manifest(
  [
    { name: 'input', datatype: 'FP32', shape: [-1, -1] },
    { name: 'sr', datatype: 'INT64', shape: [] },
    { name: 'h', datatype: 'FP32', shape: [2, -1, 64] },
    { name: 'c', datatype: 'FP32', shape: [2, -1, 64] },
  ],
  [
    { name: 'output', datatype: 'FP32', shape: [-1, 1] },
    { name: 'hn', datatype: 'FP32', shape: [2, -1, 64] },
    { name: 'cn', datatype: 'FP32', shape: [2, -1, 64] },
  ],
);
const FRAME = 48;

function rand(seed: number, n: number): number[] {
  let x = seed * 7919 + 17;
  return Array.from({ length: n }, () => {
    x = (x * 16807) % 2147483647;
    return Math.fround(x / 2147483647 - 0.5);
  });
}

interface Raw {
  name: string;
  datatype: Datatype;
  shape: number[];
  /** Element texts, or the whole data text when a string. */
  data: string[] | string;
}

function bodyOf(inputs: Raw[]): Buffer {
  const items = inputs.map(
    (i) =>
      `{"name":"${i.name}","datatype":"${i.datatype}","shape":[${i.shape.join(',')}],"data":${typeof i.data === 'string' ? i.data : `[${i.data.join(',')}]`}}`,
  );
  return Buffer.from(`{"inputs":[${items.join(',')}]}`);
}

/** One silero request of `rows` frames; `-0` and a few exact edges are mixed in to catch sign and rounding slips. */
function sileroRaw(seed: number, rows: number, patch: Partial<Record<string, string[] | string>> = {}): Raw[] {
  const text = (vals: number[]) => vals.map((v, i) => (i % 29 === 3 ? '-0' : String(v)));
  return [
    { name: 'input', datatype: 'FP32', shape: [rows, FRAME], data: patch.input ?? text(rand(seed, rows * FRAME)) },
    { name: 'sr', datatype: 'INT64', shape: [], data: '16000' },
    { name: 'h', datatype: 'FP32', shape: [2, rows, 64], data: patch.h ?? text(rand(seed + 100, 2 * rows * 64)) },
    { name: 'c', datatype: 'FP32', shape: [2, rows, 64], data: patch.c ?? text(rand(seed + 200, 2 * rows * 64)) },
  ];
}

function bits(d: TensorData): { kind: string; hex: string } {
  if (Array.isArray(d)) return { kind: 'strings', hex: JSON.stringify(d) };
  return { kind: d.constructor.name, hex: Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('hex') };
}

function scanned(raw: Raw[]): InputTensor[] {
  return scanInferRequest(bodyOf(raw), { deferAbove: 64 }).inputs;
}

function eager(raw: Raw[]): Tensor[] {
  return decodeInferRequest(bodyOf(raw)).inputs;
}

/** Elements of request `rows` [from, to) on `axis` of a merged tensor (all runs when the axis is not the first). */
function rowsOf(t: Tensor, axis: number, from: number, to: number): number[] {
  const total = t.shape[axis];
  const outer = t.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const d = t.data as Float32Array;
  const out: number[] = [];
  for (let o = 0; o < outer; o++) out.push(...d.subarray((o * total + from) * inner, (o * total + to) * inner));
  return out;
}

describe('materializeInputs over silero plans (batch-first frames, batch-second state, shared sr)', () => {
  const layout = batchLayoutOf(SILERO)!;

  it("the layout is silero's: frames on axis 0, state on axis 1, sr shared", () => {
    expect(Object.fromEntries(layout.inputs)).toEqual({ input: 0, sr: null, h: 1, c: 1 });
    expect(Object.fromEntries(layout.outputs)).toEqual({ output: 0, hn: 1, cn: 1 });
  });

  it('a mix of deferred and plain requests of 1, 2 and 3 rows materializes to exactly the eager merge', () => {
    const rows = [1, 2, 3, 1, 3, 2, 1];
    const deferred = [true, false, true, true, false, true, false];
    const raws = rows.map((r, i) => sileroRaw(i + 1, r));
    const lists = raws.map((raw, i) => (deferred[i] ? scanned(raw) : eager(raw)));
    // The scan deferred exactly the big arrays; sr (a scalar) stays decoded so the requests still share a key.
    lists.forEach((l, i) => expect(l.filter(isDeferred).map((t) => t.name)).toEqual(deferred[i] ? ['input', 'h', 'c'] : []));

    const plan = mergeRequests(lists, layout);
    const want = mergeRequests(raws.map(eager), layout);
    expect(plan.offsets).toEqual(want.offsets);
    expect(plan.offsets).toEqual([0, 1, 3, 6, 7, 10, 12, 13]);
    // Only the batched inputs become plans; plain requests' parts carry their decoded data.
    expect(plan.inputs.map((t) => isDeferred(t))).toEqual([true, false, true, true]);
    const hPlan = plan.inputs[2];
    if (!isDeferred(hPlan)) throw new Error('h should be a plan');
    expect(hPlan.shape).toEqual([2, 13, 64]);
    expect(hPlan.data.parts.map((p) => [p.request, p.dstAt, p.rows, p.stride, p.json ? 'json' : 'data'])).toEqual(
      rows.map((r, i) => [i, plan.offsets[i] * 64, r * 64, 13 * 64, deferred[i] ? 'json' : 'data']),
    );

    const { tensors, failed } = materializeInputs(plan.inputs);
    expect(failed).toEqual([]);
    expect(tensors.map((t) => [t.name, t.datatype, t.shape])).toEqual(want.inputs.map((t) => [t.name, t.datatype, t.shape]));
    tensors.forEach((t, k) => expect(bits(t.data), t.name).toEqual(bits(want.inputs[k].data)));
    // sr passes through as the same tensor.
    expect(tensors[1]).toBe(plan.inputs[1]);
  });

  it('every request deferred, and a lone deferred request, materialize to the eager tensors too', () => {
    const raws = [3, 1, 2].map((r, i) => sileroRaw(50 + i, r));
    const { tensors, failed } = materializeInputs(mergeRequests(raws.map(scanned), layout).inputs);
    expect(failed).toEqual([]);
    const want = mergeRequests(raws.map(eager), layout).inputs;
    tensors.forEach((t, k) => expect(bits(t.data), t.name).toEqual(bits(want[k].data)));

    const alone = materializeInputs(scanned(raws[0]));
    expect(alone.failed).toEqual([]);
    alone.tensors.forEach((t, k) => expect(bits(t.data), t.name).toEqual(bits(eager(raws[0])[k].data)));
  });

  it('a frame one number short fails only its request: its rows are zero, every other row is intact', () => {
    const rows = [2, 1, 3, 1];
    const raws = rows.map((r, i) => sileroRaw(200 + i, r));
    const bad = 2;
    raws[bad] = sileroRaw(200 + bad, 3, { input: rand(9, 3 * FRAME - 1).map(String) });
    const lists = raws.map((raw, i) => (i === 1 ? eager(raw) : scanned(raw)));
    const plan = mergeRequests(lists, layout);
    const { tensors, failed } = materializeInputs(plan.inputs);
    expect(failed).toEqual([
      {
        request: bad,
        code: 'INVALID_TENSOR',
        message: `input "input": shape [3,${FRAME}] needs ${3 * FRAME} elements, got ${3 * FRAME - 1}`,
      },
    ]);

    const good = (i: number) => sileroRaw(200 + i, rows[i]);
    const want = mergeRequests(
      raws.map((_, i) => eager(good(i))),
      layout,
    ).inputs;
    const o = plan.offsets;
    expect(rowsOf(tensors[0], 0, o[bad], o[bad + 1]).every((v) => Object.is(v, 0))).toBe(true);
    for (const [k, axis] of [
      [0, 0],
      [2, 1],
      [3, 1],
    ] as const) {
      for (let i = 0; i < rows.length; i++) {
        if (i === bad) continue;
        expect(rowsOf(tensors[k], axis, o[i], o[i + 1]), `${tensors[k].name} of request ${i}`).toEqual(
          rowsOf(want[k], axis, o[i], o[i + 1]),
        );
      }
    }
  });

  it('a true leaf in batch-second state fails only its request: both of its row runs stay zero', () => {
    const rows = [1, 2, 1, 3];
    const bad = 1;
    const raws = rows.map((r, i) => sileroRaw(300 + i, r));
    const h = rand(7, 2 * 2 * 64).map(String);
    h[200] = 'true';
    raws[bad] = sileroRaw(300 + bad, 2, { h });
    const plan = mergeRequests(raws.map(scanned), layout);
    const { tensors, failed } = materializeInputs(plan.inputs);
    expect(failed).toEqual([{ request: bad, code: 'INVALID_TENSOR', message: `input "h": data element 200 is 't', expected a number` }]);
    const o = plan.offsets;
    const zeros = rowsOf(tensors[2], 1, o[bad], o[bad + 1]);
    expect(zeros).toHaveLength(2 * 2 * 64);
    expect(zeros.every((v) => Object.is(v, 0))).toBe(true);
    const want = mergeRequests(
      rows.map((r, i) => eager(sileroRaw(300 + i, r))),
      layout,
    ).inputs;
    for (const k of [0, 2, 3]) {
      const axis = k === 0 ? 0 : 1;
      for (let i = 0; i < rows.length; i++) {
        if (i === bad && k !== 0) continue;
        expect(rowsOf(tensors[k], axis, o[i], o[i + 1]), `${tensors[k].name} of request ${i}`).toEqual(
          rowsOf(want[k], axis, o[i], o[i + 1]),
        );
      }
    }
  });

  it('several bad requests each fail once, with their own error; a request bad in two inputs is reported once', () => {
    const raws = [1, 1, 2, 1, 1].map((r, i) => sileroRaw(400 + i, r));
    const c = rand(1, 128).map(String);
    c[0] = '1.2.3';
    raws[0] = sileroRaw(400, 1, { c });
    raws[3] = sileroRaw(403, 1, { input: rand(2, FRAME + 1).map(String), h: rand(3, 127).map(String) });
    const plan = mergeRequests(raws.map(scanned), layout);
    const { failed } = materializeInputs(plan.inputs);
    expect(failed.map((f) => f.request).sort()).toEqual([0, 3]);
    const f0 = failed.find((f) => f.request === 0)!;
    expect(f0.code).toBe('INVALID_REQUEST');
    expect(f0.message).toMatch(/^body is not valid JSON: expected ',' or '\]', found '\.' at byte \d+$/);
    // The offset is the body's: the '.' after "1.2" in request 0's body.
    const body0 = bodyOf(raws[0]);
    expect(Number(/at byte (\d+)/.exec(f0.message)![1])).toBe(body0.indexOf('1.2.3') + 3);
    expect(failed.find((f) => f.request === 3)).toEqual({
      request: 3,
      code: 'INVALID_TENSOR',
      message: `input "input": shape [1,${FRAME}] needs ${FRAME} elements, got ${FRAME + 1}`,
    });
  });
});

describe('materializeInputs with INT64 and FP64 parts', () => {
  const model = manifest(
    [
      { name: 'ids', datatype: 'INT64', shape: [-1, 6] },
      { name: 'w', datatype: 'FP64', shape: [-1, 6] },
    ],
    [{ name: 'y', datatype: 'FP64', shape: [-1] }],
  );
  const layout = batchLayoutOf(model)!;
  const INT64 = ['9007199254740993', '-9223372036854775808', '9223372036854775807', '-0', '12345678901234567', '-9007199254740995'];
  const FP64 = ['-0', '5e-324', '0.1', '1.7976931348623157e308', '123456789012345678', '-2.5e-300'];

  function raw(seed: number, rows: number, ids?: string[]): Raw[] {
    return [
      {
        name: 'ids',
        datatype: 'INT64',
        shape: [rows, 6],
        data: ids ?? Array.from({ length: rows * 6 }, (_, i) => ((i + seed) % 4 === 0 ? String(seed * 1000 + i) : INT64[(i + seed) % 6])),
      },
      {
        name: 'w',
        datatype: 'FP64',
        shape: [rows, 6],
        data: Array.from({ length: rows * 6 }, (_, i) => (i % 2 ? FP64[(i + seed) % 6] : String(seed + i / 7))),
      },
    ];
  }

  it('exact 64-bit integers and doubles, deferred and plain parts mixed, equal the eager merge', () => {
    const rows = [2, 1, 3, 1];
    const raws = rows.map((r, i) => raw(i + 1, r));
    const lists = raws.map((r, i) => (i === 1 ? eager(r) : scanInferRequest(bodyOf(r), { deferAbove: 16 }).inputs));
    expect(lists[0].every(isDeferred)).toBe(true);
    const plan = mergeRequests(lists, layout);
    const want = mergeRequests(raws.map(eager), layout).inputs;
    const { tensors, failed } = materializeInputs(plan.inputs);
    expect(failed).toEqual([]);
    expect(tensors.map((t) => bits(t.data))).toEqual(want.map((t) => bits(t.data)));
    // The edges themselves, in request 0's first row.
    const ids = tensors[0].data as BigInt64Array;
    expect(ids.constructor).toBe(BigInt64Array);
    expect(Array.from(ids.subarray(0, 6))).toEqual((raws[0][0].data as string[]).slice(0, 6).map((s) => BigInt(s)));
  });

  it('a fraction in INT64 fails only that request; the others keep every bit', () => {
    const rows = [1, 2, 1];
    const raws = rows.map((r, i) => raw(10 + i, r));
    raws[1] = raw(11, 2, ['1', '2', '3', '4.5', '5', '6', '7', '8', '9', '10', '11', '12']);
    const plan = mergeRequests(
      raws.map((r) => scanInferRequest(bodyOf(r), { deferAbove: 16 }).inputs),
      layout,
    );
    const { tensors, failed } = materializeInputs(plan.inputs);
    expect(failed).toEqual([{ request: 1, code: 'INVALID_TENSOR', message: 'input "ids": data element 3 is 4.5, expected an integer' }]);
    const ids = tensors[0].data as BigInt64Array;
    expect(Array.from(ids.subarray(6, 18))).toEqual(new Array(12).fill(0n));
    const want = mergeRequests(
      rows.map((r, i) => eager(raw(10 + i, r))),
      layout,
    ).inputs;
    const wantIds = want[0].data as BigInt64Array;
    expect(Array.from(ids.subarray(0, 6))).toEqual(Array.from(wantIds.subarray(0, 6)));
    expect(Array.from(ids.subarray(18))).toEqual(Array.from(wantIds.subarray(18)));
    expect(bits((tensors[1].data as Float64Array).subarray(0, 6))).toEqual(bits((want[1].data as Float64Array).subarray(0, 6)));
    expect(bits((tensors[1].data as Float64Array).subarray(18))).toEqual(bits((want[1].data as Float64Array).subarray(18)));
  });
});
