// Batcher merge/split: pure logic, checked for every V2 datatype, mixed batch sizes and batch-second state.
import { describe, expect, it } from 'vitest';
import { DATATYPES, datatypeInfo, type Datatype, type Manifest, type Tensor, type TensorData, type TensorSpec } from '../../core/index.ts';
import { batchKeyOf, batchLayoutOf, batchSignature, isBatchable, mergeRequests, splitOutputs } from '../../executor/batcher.ts';

function manifest(inputs: TensorSpec[], outputs: TensorSpec[]): Manifest {
  return { name: 'm', version: 1, format: 'onnx', files: [], sha256: 'x', sizeBytes: 0, createdAt: '', inputs, outputs };
}

/** Deterministic data whose every element encodes (seed, index), so misplaced rows are caught. */
function fill(dt: Datatype, n: number, seed: number): TensorData {
  if (dt === 'BYTES') return Array.from({ length: n }, (_, i) => `s${seed}-${i}`);
  const info = datatypeInfo(dt);
  const arr = new info.array!(n);
  for (let i = 0; i < n; i++) {
    const v = dt === 'BOOL' ? (seed + i) % 2 : (seed * 31 + i) % 100;
    (arr as unknown as (number | bigint)[])[i] = info.bigint ? BigInt(v) : v;
  }
  return arr;
}

function tensor(name: string, dt: Datatype, shape: number[], seed: number): Tensor {
  return {
    name,
    datatype: dt,
    shape,
    data: fill(
      dt,
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
  };
}

describe('isBatchable / batchLayoutOf', () => {
  it('accepts models whose every input and output is batch-first', () => {
    const m = manifest([{ name: 'x', datatype: 'FP32', shape: [-1, 3] }], [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }]);
    expect(isBatchable(m)).toBe(true);
    expect(batchLayoutOf(m)!.batchFirst).toBe(true);
  });
  it('rejects a fixed first dimension on an input or an output', () => {
    expect(isBatchable(manifest([{ name: 'x', datatype: 'FP32', shape: [1, -1] }], [{ name: 'y', datatype: 'FP32', shape: [-1] }]))).toBe(
      false,
    );
    expect(isBatchable(manifest([{ name: 'x', datatype: 'FP32', shape: [-1, 3] }], [{ name: 'y', datatype: 'FP32', shape: [1] }]))).toBe(
      false,
    );
    expect(isBatchable(manifest([{ name: 'x', datatype: 'FP32', shape: [-1, 3] }], [{ name: 'y', datatype: 'FP32', shape: [] }]))).toBe(
      false,
    );
  });
  it('rejects a model with no batch-first input', () => {
    expect(
      isBatchable(manifest([{ name: 'h', datatype: 'FP32', shape: [2, -1, 4] }], [{ name: 'y', datatype: 'FP32', shape: [-1] }])),
    ).toBe(false);
  });
  it('gives silero-like models batch-second state and a shared scalar', () => {
    const m = manifest(
      [
        { name: 'input', datatype: 'FP32', shape: [-1, -1] },
        { name: 'sr', datatype: 'INT64', shape: [] },
        { name: 'h', datatype: 'FP32', shape: [2, -1, 64] },
      ],
      [
        { name: 'output', datatype: 'FP32', shape: [-1, 1] },
        { name: 'hn', datatype: 'FP32', shape: [2, -1, 64] },
      ],
    );
    const layout = batchLayoutOf(m)!;
    expect(layout.batchFirst).toBe(false);
    expect([...layout.inputs]).toEqual([
      ['input', 0],
      ['sr', null],
      ['h', 1],
    ]);
    expect([...layout.outputs]).toEqual([
      ['output', 0],
      ['hn', 1],
    ]);
  });
});

describe('batchKeyOf', () => {
  const m = manifest(
    [
      { name: 'a', datatype: 'FP32', shape: [-1, -1] },
      { name: 'b', datatype: 'INT64', shape: [-1] },
    ],
    [{ name: 'y', datatype: 'FP32', shape: [-1] }],
  );
  it('ignores the batch size and the order of inputs', () => {
    const k1 = batchKeyOf(m, [tensor('a', 'FP32', [1, 4], 1), tensor('b', 'INT64', [1], 1)]);
    const k2 = batchKeyOf(m, [tensor('b', 'INT64', [3], 2), tensor('a', 'FP32', [3, 4], 2)]);
    expect(k1).not.toBe('');
    expect(k2).toBe(k1);
    expect(batchSignature(m, [tensor('b', 'INT64', [3], 2), tensor('a', 'FP32', [3, 4], 2)]).items).toBe(3);
  });
  it('differs when a non-batch dimension differs', () => {
    expect(batchKeyOf(m, [tensor('a', 'FP32', [1, 4], 1), tensor('b', 'INT64', [1], 1)])).not.toBe(
      batchKeyOf(m, [tensor('a', 'FP32', [1, 5], 1), tensor('b', 'INT64', [1], 1)]),
    );
  });
  it('is empty when the batched inputs disagree on the batch size', () => {
    expect(batchSignature(m, [tensor('a', 'FP32', [2, 4], 1), tensor('b', 'INT64', [3], 1)])).toEqual({ key: '', items: 1 });
  });
  it('is empty for a model that cannot batch, or an unknown input', () => {
    const fixed = manifest([{ name: 'x', datatype: 'FP32', shape: [1, 3] }], [{ name: 'y', datatype: 'FP32', shape: [1] }]);
    expect(batchKeyOf(fixed, [tensor('x', 'FP32', [1, 3], 1)])).toBe('');
    expect(batchKeyOf(m, [tensor('a', 'FP32', [1, 4], 1), tensor('zz', 'INT64', [1], 1)])).toBe('');
  });
  it('puts shared input values in the key', () => {
    const s = manifest(
      [
        { name: 'x', datatype: 'FP32', shape: [-1, 2] },
        { name: 'sr', datatype: 'INT64', shape: [] },
      ],
      [{ name: 'y', datatype: 'FP32', shape: [-1] }],
    );
    const k16 = batchKeyOf(s, [
      tensor('x', 'FP32', [1, 2], 1),
      { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
    ]);
    const k8 = batchKeyOf(s, [tensor('x', 'FP32', [1, 2], 1), { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(8000n) }]);
    const k16b = batchKeyOf(s, [
      tensor('x', 'FP32', [4, 2], 9),
      { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
    ]);
    expect(k16).not.toBe(k8);
    expect(k16b).toBe(k16);
  });
});

describe('mergeRequests / splitOutputs', () => {
  it.each(DATATYPES)('round-trips %s with mixed batch sizes', (dt) => {
    const sizes = [1, 3, 2, 5];
    const lists = sizes.map((b, i) => [tensor('x', dt, [b, 2, 3], i + 1)]);
    const { inputs, offsets } = mergeRequests(lists);
    expect(offsets).toEqual([0, 1, 4, 6, 11]);
    expect(inputs[0].shape).toEqual([11, 2, 3]);
    expect(inputs[0].datatype).toBe(dt);
    expect(inputs[0].data.constructor).toBe(lists[0][0].data.constructor);
    // The merged rows are the requests' rows in order.
    const expected = lists.flatMap((l) => Array.from(l[0].data as ArrayLike<unknown>));
    expect(Array.from(inputs[0].data as ArrayLike<unknown>)).toEqual(expected);
    // The identity "model": outputs are the inputs; each request gets exactly its tensor back.
    const split = splitOutputs(inputs, offsets);
    expect(split).toHaveLength(4);
    for (let i = 0; i < sizes.length; i++) {
      expect(split[i][0].shape).toEqual([sizes[i], 2, 3]);
      expect(split[i][0].data.constructor).toBe(lists[i][0].data.constructor);
      expect(Array.from(split[i][0].data as ArrayLike<unknown>)).toEqual(Array.from(lists[i][0].data as ArrayLike<unknown>));
    }
  });

  it('keeps BigInt precision beyond 2^53', () => {
    const big = 2n ** 60n + 7n;
    const lists = [
      [{ name: 'x', datatype: 'INT64' as const, shape: [1], data: BigInt64Array.of(big) }],
      [{ name: 'x', datatype: 'INT64' as const, shape: [1], data: BigInt64Array.of(-big) }],
    ];
    const { inputs, offsets } = mergeRequests(lists);
    expect(Array.from(inputs[0].data as BigInt64Array)).toEqual([big, -big]);
    expect((splitOutputs(inputs, offsets)[1][0].data as BigInt64Array)[0]).toBe(-big);
  });

  it('merges several inputs listed in different orders', () => {
    const lists = [
      [tensor('a', 'FP32', [2, 2], 1), tensor('b', 'UINT8', [2], 1)],
      [tensor('b', 'UINT8', [1], 2), tensor('a', 'FP32', [1, 2], 2)],
    ];
    const { inputs, offsets } = mergeRequests(lists);
    expect(inputs.map((t) => [t.name, t.shape])).toEqual([
      ['a', [3, 2]],
      ['b', [3]],
    ]);
    expect(Array.from(inputs[1].data as Uint8Array)).toEqual([...(lists[0][1].data as Uint8Array), ...(lists[1][0].data as Uint8Array)]);
    expect(offsets).toEqual([0, 2, 3]);
  });

  it('split copies rows, so one request mutating its output leaves the others alone', () => {
    const lists = [[tensor('x', 'FP32', [2], 1)], [tensor('x', 'FP32', [2], 2)]];
    const { inputs, offsets } = mergeRequests(lists);
    const [a, b] = splitOutputs(inputs, offsets);
    (a[0].data as Float32Array)[0] = -1;
    expect(Array.from(b[0].data as Float32Array)).toEqual(Array.from(lists[1][0].data as Float32Array));
    expect((inputs[0].data as Float32Array)[0]).not.toBe(-1);
  });

  it('handles batch-second state and a shared scalar (silero layout) for FP32 and BYTES', () => {
    const m = manifest(
      [
        { name: 'input', datatype: 'FP32', shape: [-1, -1] },
        { name: 'sr', datatype: 'INT64', shape: [] },
        { name: 'h', datatype: 'FP32', shape: [2, -1, 3] },
        { name: 'tag', datatype: 'BYTES', shape: [2, -1] },
      ],
      [
        { name: 'output', datatype: 'FP32', shape: [-1, 1] },
        { name: 'hn', datatype: 'FP32', shape: [2, -1, 3] },
        { name: 'tag', datatype: 'BYTES', shape: [2, -1] },
      ],
    );
    const layout = batchLayoutOf(m)!;
    const sizes = [2, 1, 3];
    const lists = sizes.map((b, i) => [
      tensor('input', 'FP32', [b, 4], i),
      { name: 'sr', datatype: 'INT64' as const, shape: [], data: BigInt64Array.of(16000n) },
      tensor('h', 'FP32', [2, b, 3], 10 + i),
      tensor('tag', 'BYTES', [2, b], 20 + i),
    ]);
    expect(new Set(lists.map((l) => batchKeyOf(layout, l))).size).toBe(1);
    const { inputs, offsets } = mergeRequests(lists, layout);
    expect(inputs.map((t) => t.shape)).toEqual([[6, 4], [], [2, 6, 3], [2, 6]]);
    expect(inputs[1]).toBe(lists[0][1]);
    // Layer 0 of every request comes first, then layer 1.
    const h = Array.from(inputs[2].data as Float32Array);
    const layer = (l: (typeof lists)[number], o: number) =>
      Array.from(l[2].data as Float32Array).slice(o * l[2].shape[1] * 3, (o + 1) * l[2].shape[1] * 3);
    expect(h).toEqual([
      ...layer(lists[0], 0),
      ...layer(lists[1], 0),
      ...layer(lists[2], 0),
      ...layer(lists[0], 1),
      ...layer(lists[1], 1),
      ...layer(lists[2], 1),
    ]);
    // A model that returns output = first column of input, hn = h, tag = tag.
    const inp = inputs[0].data as Float32Array;
    const out = { name: 'output', datatype: 'FP32' as const, shape: [6, 1], data: Float32Array.from({ length: 6 }, (_, r) => inp[r * 4]) };
    const split = splitOutputs([out, { ...inputs[2], name: 'hn' }, inputs[3]], offsets, layout);
    for (let i = 0; i < sizes.length; i++) {
      const src = lists[i];
      expect(split[i][0].shape).toEqual([sizes[i], 1]);
      expect(Array.from(split[i][0].data as Float32Array)).toEqual(
        Array.from({ length: sizes[i] }, (_, r) => (src[0].data as Float32Array)[r * 4]),
      );
      expect(split[i][1].shape).toEqual([2, sizes[i], 3]);
      expect(Array.from(split[i][1].data as Float32Array)).toEqual(Array.from(src[2].data as Float32Array));
      expect(split[i][2].data).toEqual(src[3].data);
    }
  });

  it('a single request passes through unchanged', () => {
    const list = [tensor('x', 'FP32', [3, 2], 1)];
    const { inputs, offsets } = mergeRequests([list]);
    expect(inputs[0]).toBe(list[0]);
    expect(offsets).toEqual([0, 3]);
    expect(splitOutputs(inputs, offsets)[0][0]).toBe(list[0]);
  });

  it('fails loudly when an output does not have the merged batch size', () => {
    const { offsets } = mergeRequests([[tensor('x', 'FP32', [2], 1)], [tensor('x', 'FP32', [1], 2)]]);
    expect(() => splitOutputs([tensor('y', 'FP32', [1], 1)], offsets)).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });

  it('rejects mixed datatypes and empty input', () => {
    expect(() => mergeRequests([])).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    expect(() => mergeRequests([[tensor('x', 'FP32', [1], 1)], [tensor('x', 'FP64', [1], 1)]])).toThrow(/mixes FP32 and FP64/);
  });
});
