// Fuzzing the Open Inference Protocol decoder (seeded, bounded): random and mutated bodies, JSON and the binary
// extension, must either decode into tensors whose data fills their shapes or fail with a 4xx HearthError, never
// anything else (a RangeError, a stack overflow, a TypeError); and any request the encoder writes decodes back to
// the same tensors.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DATATYPES, elementCount, isDeferred, isHearthError, type Datatype, type Tensor } from '../../core/index.ts';
import { decodeDeferredJson, decodeInferRequest, encodeInferRequest, scanInferRequest } from '../../protocol/index.ts';

const SEED = 0x4ea27;
/** Each property stops after this long even when its runs are not done (fast-check's interruptAfterTimeLimit). */
const TIME_LIMIT_MS = 8_000;

/** A decode either succeeds consistently or throws a 4xx HearthError; anything else is a defect. */
function decodeOrRefuse(body: Uint8Array, headerLength?: number, deferAbove?: number): void {
  try {
    const opts = headerLength === undefined ? {} : { headerLength };
    const req = deferAbove === undefined ? decodeInferRequest(body, opts) : scanInferRequest(body, { ...opts, deferAbove });
    for (const t of req.inputs) {
      const count = elementCount(t.shape);
      expect(Number.isSafeInteger(count)).toBe(true);
      if (isDeferred(t)) {
        // The instance thread parses deferred text: the same rule holds there.
        for (const p of t.data.parts) if (p.json) decodeOrRefuseDeferred(p.json, t.datatype, t.shape);
        continue;
      }
      expect(t.data.length).toBe(count);
    }
  } catch (e) {
    if (!isHearthError(e) || e.statusCode < 400 || e.statusCode >= 500) {
      throw new Error(`not a 4xx HearthError for body ${JSON.stringify(Buffer.from(body).toString('latin1').slice(0, 300))}`, { cause: e });
    }
  }
}

function decodeOrRefuseDeferred(json: Uint8Array, datatype: Datatype, shape: number[]): void {
  try {
    const data = decodeDeferredJson(json, 0, datatype, shape, 'x');
    expect(data.length).toBe(elementCount(shape));
  } catch (e) {
    if (!isHearthError(e) || e.statusCode >= 500) throw e;
  }
}

/** Values that fit each datatype, as the encoder takes them. */
function dataArb(dt: Datatype, n: number): fc.Arbitrary<Tensor['data']> {
  const ints = (min: number, max: number) => fc.array(fc.integer({ min, max }), { minLength: n, maxLength: n });
  switch (dt) {
    case 'BOOL':
      return ints(0, 1).map((a) => Uint8Array.from(a));
    case 'UINT8':
      return ints(0, 255).map((a) => Uint8Array.from(a));
    case 'UINT16':
      return ints(0, 65535).map((a) => Uint16Array.from(a));
    case 'UINT32':
      return ints(0, 2 ** 32 - 1).map((a) => Uint32Array.from(a));
    case 'INT8':
      return ints(-128, 127).map((a) => Int8Array.from(a));
    case 'INT16':
      return ints(-32768, 32767).map((a) => Int16Array.from(a));
    case 'INT32':
      return ints(-(2 ** 31), 2 ** 31 - 1).map((a) => Int32Array.from(a));
    case 'INT64':
      return fc
        .array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { minLength: n, maxLength: n })
        .map((a) => BigInt64Array.from(a));
    case 'UINT64':
      return fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { minLength: n, maxLength: n }).map((a) => BigUint64Array.from(a));
    case 'FP16':
      // Half bits of finite values (exponent not all ones).
      return ints(0, 0xffff)
        .map((a) => a.map((h) => ((h & 0x7c00) === 0x7c00 ? h & 0x83ff : h)))
        .map((a) => Uint16Array.from(a));
    case 'FP32':
      return fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: n, maxLength: n }).map((a) => Float32Array.from(a));
    case 'FP64':
      return fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: n, maxLength: n }).map((a) => Float64Array.from(a));
    case 'BYTES':
      return fc.array(fc.string({ maxLength: 12 }), { minLength: n, maxLength: n });
  }
}

const tensorArb: fc.Arbitrary<Tensor> = fc
  .record({
    name: fc.string({ minLength: 1, maxLength: 8 }),
    datatype: fc.constantFrom(...DATATYPES),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
  })
  .chain(({ name, datatype, shape }) => dataArb(datatype, elementCount(shape)).map((data) => ({ name, datatype, shape, data })));

const requestArb = fc.uniqueArray(tensorArb, { minLength: 1, maxLength: 3, selector: (t) => t.name });

/** A valid request body, then a few byte-level mutations of it. */
const mutatedArb = fc
  .tuple(requestArb, fc.boolean())
  .map(([inputs, binary]) => ({ enc: encodeInferRequest({ id: 'r', inputs }, { binaryInputs: binary }) }))
  .chain(({ enc }) =>
    fc
      .array(
        fc.oneof(
          fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
          fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
          fc.record({
            kind: fc.constant('insert' as const),
            at: fc.nat(),
            text: fc.constantFrom('[', ']', '{', '}', ',', '"', '-', '1e999', '[[[[[[', 'null', '9007199254740993', '1e12', ':'),
          }),
          fc.record({ kind: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }),
        ),
        { minLength: 1, maxLength: 4 },
      )
      .map((ops) => {
        let b = Buffer.from(enc.body);
        for (const op of ops) {
          const at = b.length ? op.at % b.length : 0;
          if (op.kind === 'flip') b[at] = op.byte;
          else if (op.kind === 'cut') b = b.subarray(0, at);
          else if (op.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from(op.text), b.subarray(at)]);
          else b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + op.len), b.subarray(at)]);
        }
        const headerLength = enc.headerLength === undefined ? undefined : Math.min(enc.headerLength, b.length);
        return { body: b, headerLength };
      }),
  );

describe('V2 decoder fuzz', () => {
  it('decodes whatever the encoder writes back to the same tensors', () => {
    fc.assert(
      fc.property(requestArb, fc.boolean(), (inputs, binary) => {
        const enc = encodeInferRequest({ inputs }, { binaryInputs: binary });
        const got = decodeInferRequest(enc.body, enc.headerLength === undefined ? {} : { headerLength: enc.headerLength });
        expect(got.inputs.map((t) => ({ ...t, data: Array.from(t.data as ArrayLike<unknown>) }))).toEqual(
          inputs.map((t) => ({ ...t, data: Array.from(t.data as ArrayLike<unknown>) })),
        );
      }),
      { seed: SEED, numRuns: 2_000, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it('mutated bodies decode consistently or get a 4xx, on both the decoder and the deferring scanner', () => {
    fc.assert(
      fc.property(mutatedArb, ({ body, headerLength }) => {
        decodeOrRefuse(body, headerLength);
        decodeOrRefuse(body, headerLength, 8);
      }),
      { seed: SEED, numRuns: 5_000, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it('random bytes and random JSON get a 4xx or decode consistently', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.json({ depthSize: 'medium' }).map((s) => new TextEncoder().encode(s)),
        ),
        (body) => {
          decodeOrRefuse(body);
          decodeOrRefuse(body, undefined, 4);
        },
      ),
      { seed: SEED, numRuns: 5_000, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  });

  it('envelopes with hostile shapes, depths and counts get a 4xx', () => {
    const deep = (n: number, leaf: string) => '['.repeat(n) + leaf + ']'.repeat(n);
    const hostile = [
      `{"inputs":[{"name":"x","datatype":"FP32","shape":${deep(100_000, '1')},"data":[1]}]}`,
      `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":${deep(100_000, '1')}}]}`,
      `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"a":${deep(100_000, '1')}},"data":[1]}]}`,
      `{"id":${deep(100_000, '1')},"inputs":[]}`,
      `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,1000000000000],"data":[1]}]}`,
      `{"inputs":[{"name":"x","datatype":"FP32","shape":[10000000000,10000000000],"data":[1]}]}`,
      `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,1000000000000],"data":[${new Array(5000).fill('0.5').join(',')}]}]}`,
      `{"outputs":${deep(100_000, '{}')},"inputs":[]}`,
    ];
    for (const text of hostile) {
      const body = new TextEncoder().encode(text);
      decodeOrRefuse(body);
      decodeOrRefuse(body, undefined, 64);
    }
  });
});
