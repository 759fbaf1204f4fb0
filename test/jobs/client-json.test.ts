// Client JSON in jobs: depth measured without recursion (a value or its text), values shown back in messages without
// walking them, the row codec refusing a deep row as a bad row, and the head of a result line read as failed or not.
import { describe, expect, it } from 'vitest';
import { MAX_ROW_DEPTH, MAX_ROW_ERROR_CHARS, shown, shownMessage, valueDeeperThan } from '../../jobs/client-json.ts';
import { isErrorLine } from '../../jobs/finaliser.ts';
import { v2RowCodec } from '../../jobs/index.ts';
import { stubManifest } from '../helpers/model-bodies.ts';

const nest = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

describe('depth', () => {
  it('valueDeeperThan counts arrays and objects, not scalars, and handles 100k levels without recursion', () => {
    expect(valueDeeperThan(1, 0)).toBe(false);
    expect(valueDeeperThan('[[[', 0)).toBe(false);
    expect(valueDeeperThan([], 0)).toBe(true);
    expect(valueDeeperThan([], 1)).toBe(false);
    expect(valueDeeperThan({ a: [{ b: [1] }] }, 4)).toBe(false);
    expect(valueDeeperThan({ a: [{ b: [1] }] }, 3)).toBe(true);
    // The deep branch is the last of many shallow ones.
    expect(valueDeeperThan([1, [2], { x: [[]] }], 4)).toBe(false);
    expect(valueDeeperThan([1, [2], { x: [[[]]] }], 4)).toBe(true);
    expect(valueDeeperThan(JSON.parse(nest(100_000)), MAX_ROW_DEPTH)).toBe(true);
    expect(valueDeeperThan(JSON.parse(nest(MAX_ROW_DEPTH)), MAX_ROW_DEPTH)).toBe(false);
  });

  it('shown never walks a structure and cuts long strings', () => {
    expect(shown(JSON.parse(nest(100_000)))).toBe('an array');
    expect(shown({ a: 1 })).toBe('an object');
    expect(shown(null)).toBe('null');
    expect(shown(12.5)).toBe('12.5');
    expect(shown('x'.repeat(1000))).toBe(`"${'x'.repeat(100)}..."`);
  });
});

describe('row error messages', () => {
  it('shownMessage cuts each long quoted value or unbroken run to 100 characters and the whole message', () => {
    const digits = '9'.repeat(400);
    expect(shownMessage(`input "sr": data element 0 is ${digits}, expected an integer`)).toBe(
      `input "sr": data element 0 is ${'9'.repeat(100)}..., expected an integer`,
    );
    expect(shownMessage(`input "${'n a '.repeat(100)}": missing`)).toBe(`input "${'n a '.repeat(25)}...": missing`);
    // An escaped quote inside a value does not end it.
    expect(shownMessage(`name "${'\\"'.repeat(80)}" is long`)).toBe(`name "${'\\"'.repeat(50)}..." is long`);
    // Short values and ordinary messages pass as they are.
    const plain = 'INVALID_TENSOR: input "input": shape [1,512] needs 512 elements, got 3';
    expect(shownMessage(plain)).toBe(plain);
    // Many values, each under the cut, still make at most MAX_ROW_ERROR_CHARS (plus the marker).
    const many = shownMessage(`values ${Array.from({ length: 200 }, () => '"abcdefgh"').join(' ')}`);
    expect(many).toHaveLength(MAX_ROW_ERROR_CHARS + 3);
    // A message of megabytes is never scanned whole.
    expect(shownMessage(`x ${'y '.repeat(4_000_000)}`).length).toBe(MAX_ROW_ERROR_CHARS + 3);
  });
});

describe('the row codec', () => {
  it('fails a row nested deeper than MAX_ROW_DEPTH with a 400 naming the bound, wherever the nesting is', () => {
    const codec = v2RowCodec(() => {});
    const manifest = stubManifest();
    for (const row of [
      `{"id":${nest(100_000)},"inputs":[]}`,
      `{"inputs":[{"name":"x","datatype":"FP32","shape":${nest(100_000)},"data":[1]}]}`,
      `{"parameters":{"p":${nest(65)}},"inputs":[]}`,
    ]) {
      expect(() => codec.decode(row, manifest)).toThrow(
        expect.objectContaining({ statusCode: 400, message: expect.stringMatching(/nested deeper than 64 levels/) }),
      );
    }
  });
});

describe('result line heads', () => {
  it('tells a failed row from a row with outputs by the head alone', () => {
    expect(isErrorLine('{"index":3,"error":"INVALID_REQUEST: x"}')).toBe(true);
    expect(isErrorLine('{"index":3,"id":"r-3","error":"x"}')).toBe(true);
    expect(isErrorLine('{"index":3,"id":"a\\",\\"error\\":\\"b","outputs":[]}')).toBe(false);
    expect(isErrorLine('{"index":3,"id":"a\\\\","error":"x"}')).toBe(true);
    expect(isErrorLine('{"index":3,"id":"r","outputs":[{"name":"error","data":["\\"error\\":"]}]}')).toBe(false);
    expect(isErrorLine('{"index":12,"outputs":[')).toBe(false);
    expect(isErrorLine('not a result line')).toBe(false);
  });
});
