// Hearth tensors as the runtimes' tensors and back, for every V2 datatype: onnxruntime and TF.js tensors, and the
// same values through the protocol's JSON and binary forms (protocol/ owns those; this checks the runtimes see what
// the wire carried).
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import { DATATYPES, type Datatype, type Tensor } from '../../core/index.ts';
import { transferTensors } from '../../functions/index.ts';
import { fromOrtTensor, fromTfTensor, toOrtTensor, toTfTensor } from '../../functions/runtime-tensors.ts';
import { checkTensorData, decodeInferRequest, encodeInferRequest } from '../../protocol/index.ts';
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
    it(`${dt}: V2 JSON, the binary extension and onnxruntime tensors`, () => {
      const t = edgeTensor(dt);
      checkTensorData(t);
      for (const binaryInputs of [false, true]) {
        const { body, headerLength } = encodeInferRequest({ inputs: [t] }, { binaryInputs });
        const [back] = decodeInferRequest(body, { headerLength }).inputs;
        expect(back.shape).toEqual(t.shape);
        sameData(dt, back.data, t.data);
      }
      const back = fromOrtTensor('x', toOrtTensor(ort, t));
      expect(back.datatype).toBe(dt);
      expect(back.shape).toEqual(t.shape);
      sameData(dt, back.data, t.data);
    });
  }

  it('INT64 and UINT64 keep values beyond 2^53 exactly, through JSON and onnxruntime', () => {
    const text =
      '{"inputs":[{"name":"a","datatype":"INT64","shape":[4],"data":[9223372036854775807,-9223372036854775808,9007199254740991,4611686018427387907]},' +
      '{"name":"b","datatype":"UINT64","shape":[1],"data":[18446744073709551615]}]}';
    const [a, b] = decodeInferRequest(text).inputs;
    expect(Array.from(a.data as BigInt64Array)).toEqual([2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n - 1n, 2n ** 62n + 3n]);
    expect((b.data as BigUint64Array)[0]).toBe(2n ** 64n - 1n);
    expect(Array.from(fromOrtTensor('a', toOrtTensor(ort, a)).data as BigInt64Array)).toEqual(Array.from(a.data as BigInt64Array));
  });

  it('BYTES keeps unicode strings and the empty string, through the binary extension and onnxruntime', () => {
    const strings = ['', 'héllo', '日本語', '🦀', 'a\u0000b'];
    const t: Tensor = { name: 's', datatype: 'BYTES', shape: [5], data: strings };
    const { body, headerLength } = encodeInferRequest({ inputs: [t] }, { binaryInputs: true });
    const tail = body.subarray(headerLength);
    expect(tail.readUInt32LE(0)).toBe(0);
    expect(tail.readUInt32LE(4)).toBe(6); // "héllo" is 6 UTF-8 bytes
    expect(decodeInferRequest(body, { headerLength }).inputs[0].data).toEqual(strings);
    expect(fromOrtTensor('s', toOrtTensor(ort, t)).data).toEqual(strings);
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
    expect(() => toTfTensor(tf, { name: 'x', datatype: 'INT64', shape: [1], data: BigInt64Array.of(2n ** 40n) }, 'int32')).toThrow(
      expect.objectContaining({ code: 'INVALID_TENSOR', message: expect.stringMatching(/does not fit the model's int32 input/) }),
    );
    for (const [dt, data] of [
      ['UINT64', new BigUint64Array(1)],
      ['UINT32', new Uint32Array(1)],
    ] as const) {
      expect(() => toTfTensor(tf, { name: 'x', datatype: dt, shape: [1], data }, 'int32')).toThrow(
        expect.objectContaining({
          code: 'INVALID_TENSOR',
          message: expect.stringMatching(new RegExp(`${dt} cannot feed a TF.js int32 input`)),
        }),
      );
    }
    expect(() => toTfTensor(tf, { name: 'x', datatype: 'INT32', shape: [1], data: new Int32Array(1) }, 'string')).toThrow(
      /cannot feed a TF.js string input/,
    );
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
