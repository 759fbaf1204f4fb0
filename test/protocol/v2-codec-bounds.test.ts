// The V2 codec's bounds on what a client can make it do: nesting depth (envelope values and data arrays), the
// rank of a shape, element counts that must be safe integers, and a deferred array's declared count against what
// its text can hold. Each hostile body is a 4xx HearthError, never a RangeError.
import { describe, expect, it } from 'vitest';
import { hearthFailure as codeOf } from '../helpers/errors.ts';
import { isDeferred } from '../../core/index.ts';
import { decodeInferRequest, MAX_JSON_DEPTH, MAX_TENSOR_RANK, scanInferRequest, tensorFromJson } from '../../protocol/index.ts';

const deep = (n: number, leaf = '1') => '['.repeat(n) + leaf + ']'.repeat(n);
const input = (fields: string) => Buffer.from(`{"inputs":[{"name":"x",${fields}}]}`);

describe('nesting depth', () => {
  it('a shape nested 100k deep: 400 INVALID_REQUEST naming the limit', () => {
    const f = codeOf(() => decodeInferRequest(input(`"datatype":"FP32","shape":${deep(100_000)},"data":[1]`)));
    expect(f.code).toBe('INVALID_REQUEST');
    expect(f.message).toContain(`${MAX_JSON_DEPTH} levels`);
  });

  it('a shape nested 100k deep after the data (the two-pass order)', () => {
    const f = codeOf(() => decodeInferRequest(input(`"data":[1],"datatype":"FP32","shape":${deep(100_000)}`)));
    expect(f.code).toBe('INVALID_REQUEST');
  });

  it('deep datatype, id, parameters, outputs and unknown members: 400, not a stack overflow', () => {
    const ok = `"datatype":"FP32","shape":[1],"data":[1]`;
    for (const b of [
      input(`"datatype":${deep(100_000, '"FP32"')},"shape":[1],"data":[1]`),
      input(`${ok},"parameters":{"p":${deep(100_000)}}`),
      Buffer.from(`{"id":${deep(100_000, '"a"')},"inputs":[{"name":"x",${ok}}]}`),
      Buffer.from(`{"parameters":{"a":${deep(100_000)}},"inputs":[{"name":"x",${ok}}]}`),
      Buffer.from(`{"outputs":${deep(100_000)},"inputs":[{"name":"x",${ok}}]}`),
      Buffer.from(`{"extra":${deep(100_000)},"inputs":[{"name":"x",${ok}}]}`),
      Buffer.from(`{"extra":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)},"inputs":[{"name":"x",${ok}}]}`),
    ]) {
      expect(codeOf(() => decodeInferRequest(b)).code).toBe('INVALID_REQUEST');
    }
  });

  it('data nested deeper than the limit: 400 INVALID_TENSOR naming the input; at the limit it reads', () => {
    const f = codeOf(() => decodeInferRequest(input(`"datatype":"FP32","shape":[1],"data":${deep(100_000)}`)));
    expect(f).toMatchObject({ code: 'INVALID_TENSOR', message: expect.stringContaining('input "x"') });
    expect(f.message).toContain(`${MAX_JSON_DEPTH} levels`);
    expect(codeOf(() => decodeInferRequest(input(`"datatype":"FP32","shape":[1],"data":${deep(MAX_JSON_DEPTH + 1)}`))).code).toBe(
      'INVALID_TENSOR',
    );
    const t = decodeInferRequest(input(`"datatype":"FP32","shape":[1],"data":${deep(MAX_JSON_DEPTH)}`)).inputs[0];
    expect(Array.from(t.data as Float32Array)).toEqual([1]);
  });

  it('tensorFromJson (job rows): data nested 100k deep is INVALID_TENSOR', () => {
    let data: unknown = 1;
    for (let i = 0; i < 100_000; i++) data = [data];
    expect(codeOf(() => tensorFromJson({ name: 'x', datatype: 'FP32', shape: [1], data })).code).toBe('INVALID_TENSOR');
  });
});

describe('shapes and element counts', () => {
  it('a rank above the limit is INVALID_TENSOR and the message stays short', () => {
    const shape = `[${new Array(100_000).fill(1).join(',')}]`;
    const f = codeOf(() => decodeInferRequest(input(`"datatype":"FP32","shape":${shape},"data":[1]`)));
    expect(f.code).toBe('INVALID_TENSOR');
    expect(f.message).toContain(`at most ${MAX_TENSOR_RANK}`);
    expect(f.message.length).toBeLessThan(400);
  });

  it('a product of dimensions past 2^53 is INVALID_TENSOR, on every path', () => {
    const bin = (shape: string) => {
      const json = Buffer.from(`{"inputs":[{"name":"x","datatype":"FP32","shape":${shape},"parameters":{"binary_data_size":16}}]}`);
      return () => decodeInferRequest(Buffer.concat([json, Buffer.alloc(16)]), { headerLength: json.length });
    };
    const big = `[${new Array(3000).fill('0.5').join(',')}]`;
    for (const shape of ['[10000000000,10000000000]', '[9007199254740991,3]']) {
      for (const fn of [
        () => decodeInferRequest(input(`"datatype":"FP32","shape":${shape},"data":[1,2]`)),
        () => decodeInferRequest(input(`"data":[1,2],"datatype":"FP32","shape":${shape}`)),
        () => scanInferRequest(input(`"datatype":"FP32","shape":${shape},"data":${big}`), { deferAbove: 1024 }),
        bin(shape),
      ]) {
        const f = codeOf(fn);
        expect(f.code, f.message).toBe('INVALID_TENSOR');
        expect(f.message).toContain('input "x"');
      }
    }
  });

  it('a deferred array declared larger than its text can hold is refused before it is deferred', () => {
    const text = `[${new Array(3000).fill('0.5').join(',')}]`; // 3000 numbers in 12001 bytes: at most 6000 fit
    const f = codeOf(() => scanInferRequest(input(`"datatype":"FP32","shape":[1,1000000000000],"data":${text}`), { deferAbove: 1024 }));
    expect(f.code).toBe('INVALID_TENSOR');
    expect(f.message).toMatch(/needs 1000000000000 elements, but its data array of 12001 bytes holds at most 6000/);
    // Up to that bound it is deferred: the instance thread counts exactly.
    for (const n of [3000, 6000]) {
      const t = scanInferRequest(input(`"datatype":"FP32","shape":[1,${n}],"data":${text}`), { deferAbove: 1024 }).inputs[0];
      expect(isDeferred(t)).toBe(true);
    }
    expect(codeOf(() => scanInferRequest(input(`"datatype":"FP32","shape":[1,6001],"data":${text}`), { deferAbove: 1024 })).code).toBe(
      'INVALID_TENSOR',
    );
  });

  it('a shape with a dimension of more than 15 digits reads (it used to be misparsed as bad JSON)', () => {
    const t = decodeInferRequest(input(`"datatype":"FP32","shape":[1000000000000000,0],"data":[]`)).inputs[0];
    expect(t.shape).toEqual([1e15, 0]);
    expect(t.data.length).toBe(0);
  });
});
