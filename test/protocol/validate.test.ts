// validateInputs: each way an input can fail its manifest answers 400 with a code and a message naming the input.
import { describe, expect, it } from 'vitest';
import { isHearthError, type Manifest, type Tensor } from '../../core/index.ts';
import { checkTensorData, manifestSignature, validateInputs } from '../../protocol/index.ts';

const manifest: Manifest = {
  name: 'ocr',
  version: 3,
  format: 'onnx',
  files: [{ path: 'model.onnx', sizeBytes: 1, sha256: 'x' }],
  sha256: 'x',
  sizeBytes: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
  inputs: [
    { name: 'x', datatype: 'FP32', shape: [-1, 3, 48, 192] },
    { name: 'sr', datatype: 'INT64', shape: [] },
  ],
  outputs: [
    { name: 'logits', datatype: 'FP32', shape: [-1, 40, 97] },
    { name: 'state', datatype: 'FP32', shape: [2, -1, 128] },
  ],
};

const x = (shape: number[], n = shape.reduce((a, b) => a * b, 1)): Tensor => ({
  name: 'x',
  datatype: 'FP32',
  shape,
  data: new Float32Array(n),
});
const sr: Tensor = { name: 'sr', datatype: 'INT64', shape: [], data: new BigInt64Array([16000n]) };

function failure(tensors: Tensor[], outputs?: string[]): { status: number; code: string; message: string } {
  try {
    validateInputs(manifestSignature(manifest), tensors, outputs);
  } catch (e) {
    if (isHearthError(e)) return { status: e.statusCode, code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected validation to fail');
}

describe('validateInputs', () => {
  it('accepts inputs that fit, with -1 matching any size, in any order', () => {
    expect(() => validateInputs(manifestSignature(manifest), [sr, x([2, 3, 48, 192])])).not.toThrow();
    expect(() => validateInputs(manifestSignature(manifest), [x([1, 3, 48, 192]), sr], ['state'])).not.toThrow();
  });

  it('missing input', () => {
    expect(failure([x([1, 3, 48, 192])])).toEqual({
      status: 400,
      code: 'INVALID_TENSOR',
      message: 'input "sr": missing; model "ocr" version 3 expects INT64 []',
    });
  });

  it('unknown input', () => {
    const f = failure([x([1, 3, 48, 192]), sr, { name: 'extra', datatype: 'FP32', shape: [1], data: new Float32Array(1) }]);
    expect(f.status).toBe(400);
    expect(f.code).toBe('INVALID_TENSOR');
    expect(f.message).toBe('input "extra": not an input of model "ocr" version 3; expected "x", "sr"');
  });

  it('wrong datatype', () => {
    const f = failure([{ name: 'x', datatype: 'FP64', shape: [1, 3, 48, 192], data: new Float64Array(3 * 48 * 192) }, sr]);
    expect(f).toEqual({ status: 400, code: 'INVALID_TENSOR', message: 'input "x": expected datatype FP32, got FP64' });
  });

  it('wrong rank', () => {
    expect(failure([x([1, 3, 48]), sr])).toEqual({
      status: 400,
      code: 'INVALID_TENSOR',
      message: 'input "x": expected shape [-1,3,48,192], got [1,3,48]',
    });
  });

  it('wrong fixed dimension', () => {
    expect(failure([x([1, 3, 48, 191]), sr]).message).toBe('input "x": expected shape [-1,3,48,192], got [1,3,48,191]');
  });

  it('scalar given a shape', () => {
    expect(failure([x([1, 3, 48, 192]), { ...sr, shape: [1] }]).message).toBe('input "sr": expected shape [], got [1]');
  });

  it('data length that does not match the shape', () => {
    expect(failure([x([2, 3, 48, 192], 100), sr])).toEqual({
      status: 400,
      code: 'INVALID_TENSOR',
      message: 'input "x": shape [2,3,48,192] needs 55296 elements, got 100',
    });
  });

  it('input given twice', () => {
    expect(failure([x([1, 3, 48, 192]), sr, sr]).message).toBe('input "sr": given more than once');
  });

  it('unknown requested output', () => {
    expect(failure([x([1, 3, 48, 192]), sr], ['logits', 'probs'])).toEqual({
      status: 400,
      code: 'INVALID_REQUEST',
      message: 'output "probs": not an output of model "ocr" version 3; expected "logits", "state"',
    });
  });
});

describe('checkTensorData', () => {
  it('refuses data of the wrong array type or length for its shape, and a shape that is not counts', () => {
    expect(() => checkTensorData({ name: 'x', datatype: 'INT64', shape: [2], data: new Int32Array(2) })).toThrow(
      /input "x": INT64 data must be a BigInt64Array/,
    );
    expect(() => checkTensorData({ name: 'x', datatype: 'FP32', shape: [2, 2], data: new Float32Array(3) })).toThrow(
      /needs 4 elements, got 3/,
    );
    expect(() => checkTensorData({ name: 'x', datatype: 'FP32', shape: [-1], data: new Float32Array(1) })).toThrow(/non-negative integers/);
    expect(() => checkTensorData({ name: 'x', datatype: 'FP32', shape: [2], data: new Float32Array(2) })).not.toThrow();
  });

  it('names a detached buffer (one already handed to an earlier infer) as such', () => {
    const data = new Float32Array(4);
    structuredClone(data.buffer, { transfer: [data.buffer] });
    expect(() => checkTensorData({ name: 'x', datatype: 'FP32', shape: [4], data })).toThrow(
      expect.objectContaining({ code: 'INVALID_TENSOR', message: expect.stringMatching(/detached/) }),
    );
  });
});
