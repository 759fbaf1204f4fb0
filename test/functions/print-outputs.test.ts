// printOutputs prints each request's own rows of a (possibly merged) run's outputs as V2 JSON `data` text on
// the instance thread. Each request must get exactly the text the host would print for its split outputs.
import { describe, expect, it } from 'vitest';
import { isHearthError, type Manifest, type Tensor } from '../../core/index.ts';
import { jsonDataText } from '../../protocol/index.ts';
import { batchLayoutOf, splitOutputs } from '../../executor/batcher.ts';
import { jsonWithin, printedByAll, printOutputs, printOutputsWithin } from '../../functions/print-outputs.ts';
import { sileroManifest } from '../helpers/model-bodies.ts';

const SILERO: Manifest = sileroManifest({ name: 'silero' });
const layout = batchLayoutOf(SILERO)!;
const axes = Object.fromEntries(layout.outputs);

/** Values with every printing edge: -0, NaN, ±Infinity (the slow path), and plain floats (the fast one). */
function values(seed: number, n: number, edges = true): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(seed * 31 + i * 0.37) * 10 ** ((i % 7) - 3);
  if (edges && n > 40) {
    a[3] = -0;
    a[17] = NaN;
    a[29] = Infinity;
    a[40] = -Infinity;
  }
  return a;
}

function sileroOutputs(total: number, seed: number, edges = true): Tensor[] {
  return [
    { name: 'output', datatype: 'FP32', shape: [total, 1], data: values(seed, total) },
    { name: 'hn', datatype: 'FP32', shape: [2, total, 64], data: values(seed + 1, 2 * total * 64, edges) },
    { name: 'cn', datatype: 'FP32', shape: [2, total, 64], data: values(seed + 2, 2 * total * 64, false) },
  ];
}

describe('printOutputs', () => {
  it('batch-first and batch-second outputs: each request gets the text of its split outputs', () => {
    const offsets = [0, 1, 3, 6, 7];
    const outputs = sileroOutputs(7, 1);
    const names = [['output', 'hn', 'cn'], ['hn'], ['cn', 'output'], ['output', 'hn', 'cn']];
    const printed = printOutputs(outputs, { offsets, axes, names });
    const split = splitOutputs(outputs, offsets, layout);
    expect(printed).toHaveLength(4);
    printed.forEach((list, i) => {
      expect(list.map((p) => p.name)).toEqual(names[i]);
      for (const p of list) {
        const own = split[i].find((t) => t.name === p.name)!;
        expect(p, `${p.name} of request ${i}`).toEqual({ name: p.name, datatype: 'FP32', shape: own.shape, json: jsonDataText(own) });
      }
    });
    // The texts are not all alike: rows really are cut per request.
    expect(
      new Set(
        printed
          .flat()
          .filter((p) => p.name === 'hn')
          .map((p) => p.json),
      ).size,
    ).toBe(3);
    // hn of request 0 holds -0, NaN and ±Infinity in its rows: printed as JSON, not as JS.
    const hn0 = JSON.parse(printed[0][1].json) as (number | string)[];
    expect(hn0).toHaveLength(128);
    expect(printed[0][1].json).toContain('"NaN"');
    expect(Object.is(hn0[3], -0)).toBe(true);
  });

  it('a request that asks for nothing gets an empty list; names the run did not produce are left out', () => {
    const offsets = [0, 2, 3];
    const outputs = sileroOutputs(3, 5).filter((t) => t.name !== 'cn');
    const printed = printOutputs(outputs, { offsets, axes, names: [[], ['cn', 'output']] });
    expect(printed[0]).toEqual([]);
    expect(printed[1].map((p) => p.name)).toEqual(['output']);
    expect(printed[1][0].json).toBe(jsonDataText(splitOutputs(outputs, offsets, layout)[1][0]));
  });

  it('an unbatched run (no offsets) prints whole tensors', () => {
    const outputs = sileroOutputs(1, 9);
    const [list] = printOutputs(outputs, { names: [['hn', 'output']] });
    expect(list).toEqual([
      { name: 'hn', datatype: 'FP32', shape: [2, 1, 64], json: jsonDataText(outputs[1]) },
      { name: 'output', datatype: 'FP32', shape: [1, 1], json: jsonDataText(outputs[0]) },
    ]);
  });

  it('exact INT64 beyond 2^53, FP64 and BOOL rows print as the host prints them', () => {
    const offsets = [0, 2, 3, 5];
    const outputs: Tensor[] = [
      {
        name: 'ids',
        datatype: 'INT64',
        shape: [5, 2],
        data: BigInt64Array.from([9007199254740993n, -9223372036854775808n, 1n, 2n, 9223372036854775807n, -3n, 4n, 5n, 6n, 7n]),
      },
      { name: 'score', datatype: 'FP64', shape: [5], data: Float64Array.from([0.1, -0, 5e-324, 1.7976931348623157e308, NaN]) },
      { name: 'flag', datatype: 'BOOL', shape: [5], data: Uint8Array.from([1, 0, 0, 1, 1]) },
    ];
    const names = [
      ['ids', 'score', 'flag'],
      ['ids', 'score', 'flag'],
      ['ids', 'score', 'flag'],
    ];
    const printed = printOutputs(outputs, { offsets, names });
    const split = splitOutputs(outputs, offsets);
    printed.forEach((list, i) => list.forEach((p, k) => expect(p.json).toBe(jsonDataText(split[i][k]))));
    expect(printed[0][0].json).toBe('[9007199254740993,-9223372036854775808,1,2]');
    expect(printed[1][0].json).toBe('[9223372036854775807,-3]');
    expect(printed[0][1].json).toBe('[0.1,-0]');
    expect(printed[2][1].json).toBe('[1.7976931348623157e+308,"NaN"]');
    expect(printed[2][2].json).toBe('[true,true]');
  });

  it('an output whose batch axis does not hold the merged batch is an INTERNAL error, not a mix of rows', () => {
    const outputs = sileroOutputs(4, 2);
    try {
      printOutputs(outputs, { offsets: [0, 2, 5], axes, names: [['hn'], ['hn']] });
      expect.unreachable();
    } catch (e) {
      expect(isHearthError(e) && e.code).toBe('INTERNAL');
      expect((e as Error).message).toMatch(/output "hn" has shape \[2,4,64\], expected 5 rows on axis 1/);
    }
  });
});

describe('printedByAll', () => {
  it('keeps the names every request of the run prints', () => {
    expect([...printedByAll([['output', 'hn'], ['hn', 'output', 'cn'], ['hn']])]).toEqual(['hn']);
    expect([...printedByAll([['output', 'hn']])].sort()).toEqual(['hn', 'output']);
    expect([...printedByAll([['output'], []])]).toEqual([]);
    expect([...printedByAll([[], ['output']])]).toEqual([]);
    expect([...printedByAll([])]).toEqual([]);
    expect(
      [
        ...printedByAll([
          ['cn', 'hn'],
          ['hn', 'cn'],
        ]),
      ].sort(),
    ).toEqual(['cn', 'hn']);
  });
});

describe('printing within MAX_RESPONSE_BYTES', () => {
  const fp32 = (n: number, v = 0.123456789): Tensor => ({ name: 'y', datatype: 'FP32', shape: [1, n], data: new Float32Array(n).fill(v) });

  it('jsonWithin: the same text as jsonDataText when it fits, undefined past the budget, decided in O(1) when the count settles it', () => {
    const t = fp32(1000);
    const text = jsonDataText(t);
    // Under the upper bound (16 characters an element): printed at once.
    expect(jsonWithin(t, 25 * 1000 + 2)).toBe(text);
    // Between the bounds: printed a piece at a time; exactly its length fits, one less does not.
    expect(jsonWithin(t, text.length)).toBe(text);
    expect(jsonWithin(t, text.length - 1)).toBeUndefined();
    // Past the lower bound (2 characters an element, "0,"): refused without printing.
    const huge: Tensor = { name: 'y', datatype: 'FP32', shape: [1, 1e8], data: { length: 1e8 } as unknown as Float32Array };
    expect(jsonWithin(huge, 1e8)).toBeUndefined();
  });

  it('jsonWithin prints pieces the same way for every datatype near its bound', () => {
    const many = 200_000; // more than one piece
    const cases: Tensor[] = [
      { name: 'b', datatype: 'BOOL', shape: [many], data: Uint8Array.from({ length: many }, (_, i) => i % 3) },
      { name: 'i', datatype: 'INT64', shape: [many], data: BigInt64Array.from({ length: many }, (_, i) => BigInt(i) * -7919n) },
      { name: 'f', datatype: 'FP32', shape: [many], data: values(5, many, false) },
      { name: 's', datatype: 'BYTES', shape: [3], data: ['a"b', 'ü', ''] },
    ];
    for (const t of cases) {
      const text = jsonDataText(t);
      expect(jsonWithin(t, text.length), t.datatype).toBe(text);
      expect(jsonWithin(t, text.length - 1), t.datatype).toBeUndefined();
    }
    // With a NaN in one piece only, the other pieces may print shorter float32 text: the same values either way.
    const edged: Tensor = { name: 'f', datatype: 'FP32', shape: [many], data: values(5, many) };
    const printed = jsonWithin(edged, jsonDataText(edged).length)!;
    const back = Float32Array.from(JSON.parse(printed) as (number | string)[], (v) => Number(v));
    expect(Array.from(back).map(String)).toEqual(Array.from(edged.data as Float32Array).map(String));
  });

  it('printOutputsWithin fails only the request whose text is past the bound, with RESPONSE_TOO_LARGE', () => {
    // Two requests merged: 1 row and 40 rows of silero's outputs; the bound admits the first one's text only.
    const outputs = sileroOutputs(41, 3, false);
    const plan = {
      offsets: [0, 1, 41],
      axes,
      names: [
        ['output', 'hn'],
        ['output', 'hn'],
      ],
    };
    const all = printOutputs(outputs, plan);
    const first = all[0].reduce((n, p) => n + p.json.length, 0);
    const { printed, failed } = printOutputsWithin(outputs, plan, first + 10);
    expect(printed[0]).toEqual(all[0]);
    expect(printed[1]).toEqual([]);
    expect(failed).toEqual([{ request: 1, code: 'RESPONSE_TOO_LARGE', message: expect.stringMatching(/MAX_RESPONSE_BYTES/) }]);
  });
});
