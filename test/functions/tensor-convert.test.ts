// Tensor conversion for every V2 datatype: JSON values, binary extension bytes, onnxruntime and TF.js tensors.
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import { DATATYPES, type Datatype, type Tensor } from '../../core/index.ts';
import {
  checkTensorData, floatToHalfBits, halfBitsToFloat, tensorDataFromBytes, tensorDataFromJson, tensorDataToBytes, tensorDataToJson,
  transferTensors,
} from '../../functions/index.ts';
import { fromOrtTensor, fromTfTensor, toOrtTensor, toTfTensor } from '../../functions/tensor-convert.ts';
import { identityFixtureName, loadGolden } from '../fixtures/golden.ts';

/** The edge values of each datatype, from the Identity fixtures' goldens. */
function edgeTensor(dt: Datatype): Tensor {
  return loadGolden(identityFixtureName(dt)).cases[0].inputs[0];
}

function sameData(dt: Datatype, a: Tensor['data'], b: Tensor['data']): void {
  expect(a.constructor).toBe(b.constructor);
  expect(Array.from(a as ArrayLike<unknown>)).toEqual(Array.from(b as ArrayLike<unknown>));
  if (dt === 'FP32' || dt === 'FP64') {
    // toEqual treats -0 and 0 alike; bits must survive too.
    const bytesA = new Uint8Array((a as Float32Array).buffer, (a as Float32Array).byteOffset, (a as Float32Array).byteLength);
    const bytesB = new Uint8Array((b as Float32Array).buffer, (b as Float32Array).byteOffset, (b as Float32Array).byteLength);
    expect(Array.from(bytesA)).toEqual(Array.from(bytesB));
  }
}

describe('every datatype round-trips', () => {
  for (const dt of DATATYPES) {
    it(`${dt}: JSON, binary bytes and onnxruntime tensors`, () => {
      const t = edgeTensor(dt);
      checkTensorData(t);
      // JSON values back to typed data (INT64 values past 2^53 come back as bigints, not rounded numbers).
      const json = tensorDataToJson(dt, t.data);
      sameData(dt, tensorDataFromJson(dt, json), t.data);
      // Binary tensor extension.
      const bytes = tensorDataToBytes(dt, t.data);
      sameData(dt, tensorDataFromBytes(dt, bytes, t.data.length), t.data);
      // onnxruntime.
      const back = fromOrtTensor('x', toOrtTensor(ort, t));
      expect(back.datatype).toBe(dt);
      expect(back.shape).toEqual(t.shape);
      sameData(dt, back.data, t.data);
    });
  }

  it('INT64 and UINT64 keep values beyond 2^53 exactly', () => {
    const big = 2n ** 62n + 3n;
    const i64 = tensorDataFromJson('INT64', ['9223372036854775807', -(2n ** 63n), 2 ** 53 - 1, big]) as BigInt64Array;
    expect(Array.from(i64)).toEqual([2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n - 1n, big]);
    const json = tensorDataToJson('INT64', i64);
    expect(json[0]).toBe(2n ** 63n - 1n);
    expect(json[2]).toBe(2 ** 53 - 1); // still a safe integer, so a plain number
    expect(json[3]).toBe(big);
    const u64 = tensorDataFromJson('UINT64', ['18446744073709551615']) as BigUint64Array;
    expect(u64[0]).toBe(2n ** 64n - 1n);
    const bytes = tensorDataToBytes('UINT64', u64);
    expect(Array.from(bytes)).toEqual(new Array(8).fill(255));
  });

  it('FP16 moves as raw bits; every non-NaN half survives bits -> float -> bits', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const f = halfBitsToFloat(bits);
      if (Number.isNaN(f)) continue;
      if (floatToHalfBits(f) !== bits) throw new Error(`half 0x${bits.toString(16)} -> ${f} -> 0x${floatToHalfBits(f).toString(16)}`);
    }
    expect(floatToHalfBits(1)).toBe(0x3c00);
    expect(floatToHalfBits(65520)).toBe(0x7c00); // rounds up past the largest half: Inf
    expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // a tie rounds to even
    expect(floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(floatToHalfBits(NaN) & 0x7c00).toBe(0x7c00);
    expect(Number.isNaN(halfBitsToFloat(floatToHalfBits(NaN)))).toBe(true);
    const fp16 = tensorDataFromJson('FP16', [0.1, -2]) as Uint16Array;
    expect(fp16).toBeInstanceOf(Uint16Array);
    expect(Array.from(fp16)).toEqual([0x2e66, 0xc000]);
  });

  it('BYTES keeps unicode strings and the empty string, with 4-byte length prefixes', () => {
    const strings = ['', 'héllo', '日本語', '🦀', 'a\u0000b'];
    const bytes = tensorDataToBytes('BYTES', strings);
    expect(new DataView(bytes.buffer).getUint32(0, true)).toBe(0);
    expect(new DataView(bytes.buffer).getUint32(4, true)).toBe(6); // "héllo" is 6 UTF-8 bytes
    expect(tensorDataFromBytes('BYTES', bytes, strings.length)).toEqual(strings);
    expect(fromOrtTensor('s', toOrtTensor(ort, { name: 's', datatype: 'BYTES', shape: [5], data: strings })).data).toEqual(strings);
  });

  it('nested JSON data is flattened row-major; BOOL accepts 0/1', () => {
    expect(Array.from(tensorDataFromJson('INT32', [[1, 2], [3, 4]]) as Int32Array)).toEqual([1, 2, 3, 4]);
    expect(Array.from(tensorDataFromJson('BOOL', [true, 0, 1, false]) as Uint8Array)).toEqual([1, 0, 1, 0]);
    expect(tensorDataToJson('BOOL', Uint8Array.of(1, 0))).toEqual([true, false]);
  });
});

describe('bad values are INVALID_TENSOR naming the tensor', () => {
  const cases: [Datatype, unknown[], RegExp][] = [
    ['UINT8', [256], /element 0 \(256\) is out of range for UINT8/],
    ['INT8', [-129], /out of range for INT8/],
    ['INT32', [1.5], /must be an integer for INT32/],
    ['INT64', ['12x'], /must be an integer for INT64/],
    ['INT64', [2n ** 63n], /out of range for INT64/],
    ['UINT64', [-1], /out of range for UINT64/],
    ['BOOL', ['yes'], /must be true or false/],
    ['FP32', ['abc'], /must be a number for FP32/],
    ['BYTES', [3], /must be a string for BYTES/],
  ];
  for (const [dt, data, re] of cases) {
    it(`${dt} ${JSON.stringify(data, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`, () => {
      expect(() => tensorDataFromJson(dt, data, 'input "x"')).toThrow(expect.objectContaining({ code: 'INVALID_TENSOR', message: expect.stringMatching(/^input "x": /) }));
      expect(() => tensorDataFromJson(dt, data, 'input "x"')).toThrow(re);
    });
  }

  it('binary data of the wrong length', () => {
    expect(() => tensorDataFromBytes('FP32', new Uint8Array(7), 2, 'input "x"')).toThrow(/7 bytes, FP32 with 2 elements needs 8/);
    expect(() => tensorDataFromBytes('BYTES', Uint8Array.of(5, 0, 0, 0, 65), 1)).toThrow(/declares 5 bytes but only 1 remain/);
    expect(() => tensorDataFromBytes('BYTES', Uint8Array.of(1, 0), 1)).toThrow(/truncated 4-byte length prefix/);
    expect(() => tensorDataFromBytes('BYTES', Uint8Array.of(0, 0, 0, 0), 2)).toThrow(/holds 1 BYTES elements, the shape needs 2/);
  });

  it('data of the wrong array type or length for its shape', () => {
    expect(() => checkTensorData({ name: 'x', datatype: 'INT64', shape: [2], data: new Int32Array(2) })).toThrow(/INT64 data must be a BigInt64Array/);
    expect(() => checkTensorData({ name: 'x', datatype: 'FP32', shape: [2, 2], data: new Float32Array(3) })).toThrow(/needs 4 elements, data has 3/);
    expect(() => checkTensorData({ name: 'x', datatype: 'FP32', shape: [-1], data: new Float32Array(1) })).toThrow(/non-negative integers/);
  });
});

describe('TF.js tensors', () => {
  it('holds float32, int32, bool and string both ways', async () => {
    const cases: [Tensor, 'float32' | 'int32' | 'bool' | 'string'][] = [
      [{ name: 'a', datatype: 'FP32', shape: [2], data: Float32Array.of(1.5, -2) }, 'float32'],
      [{ name: 'b', datatype: 'INT32', shape: [2], data: Int32Array.of(-7, 2 ** 31 - 1) }, 'int32'],
      [{ name: 'c', datatype: 'BOOL', shape: [3], data: Uint8Array.of(1, 0, 1) }, 'bool'],
      [{ name: 'd', datatype: 'BYTES', shape: [2], data: ['日本', ''] }, 'string'],
    ];
    for (const [t, dtype] of cases) {
      const tt = toTfTensor(tf, t, dtype);
      expect(tt.dtype).toBe(dtype);
      const back = await fromTfTensor(t.name, tt);
      tt.dispose();
      expect(back.datatype).toBe(t.datatype);
      expect(Array.from(back.data as ArrayLike<unknown>)).toEqual(Array.from(t.data as ArrayLike<unknown>));
    }
  });

  it('widens small integers and INT64 that fits; refuses what TF.js cannot hold', () => {
    const u8 = toTfTensor(tf, { name: 'x', datatype: 'UINT8', shape: [2], data: Uint8Array.of(0, 255) }, 'int32');
    expect(Array.from(u8.dataSync())).toEqual([0, 255]);
    u8.dispose();
    const i64 = toTfTensor(tf, { name: 'x', datatype: 'INT64', shape: [1], data: BigInt64Array.of(-5n) }, 'int32');
    expect(Array.from(i64.dataSync())).toEqual([-5]);
    i64.dispose();
    expect(() => toTfTensor(tf, { name: 'x', datatype: 'INT64', shape: [1], data: BigInt64Array.of(2n ** 40n) }, 'int32'))
      .toThrow(expect.objectContaining({ code: 'INVALID_TENSOR', message: expect.stringMatching(/does not fit the model's int32 input/) }));
    for (const [dt, data] of [['UINT64', new BigUint64Array(1)], ['UINT32', new Uint32Array(1)]] as const) {
      expect(() => toTfTensor(tf, { name: 'x', datatype: dt, shape: [1], data }, 'int32'))
        .toThrow(expect.objectContaining({ code: 'INVALID_TENSOR', message: expect.stringMatching(new RegExp(`${dt} cannot feed a TF.js int32 input`)) }));
    }
    expect(() => toTfTensor(tf, { name: 'x', datatype: 'INT32', shape: [1], data: new Int32Array(1) }, 'string')).toThrow(/cannot feed a TF.js string input/);
  });
});

describe('transferTensors', () => {
  it('transfers buffers a tensor owns and copies views into shared ones', () => {
    const own = new Float32Array(4);
    const slab = new ArrayBuffer(64);
    const view = new Int32Array(slab, 16, 2);
    const { tensors, transfer } = transferTensors([
      { name: 'a', datatype: 'FP32', shape: [4], data: own },
      { name: 'b', datatype: 'INT32', shape: [2], data: view },
      { name: 'c', datatype: 'BYTES', shape: [1], data: ['s'] },
      { name: 'd', datatype: 'FP32', shape: [4], data: own }, // the same array twice: the second gets a copy
    ]);
    expect(tensors[0].data).toBe(own);
    expect(tensors[1].data).not.toBe(view);
    expect((tensors[1].data as Int32Array).buffer.byteLength).toBe(8);
    expect(tensors[3].data).not.toBe(own);
    expect(transfer).toHaveLength(3);
    expect(new Set(transfer).size).toBe(3);
  });
});
