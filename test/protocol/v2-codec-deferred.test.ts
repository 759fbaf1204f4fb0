// scanInferRequest leaves large flat numeric `data` arrays as JSON text (DeferredTensor), and
// decodeDeferredJson reads that text later: it must give bit for bit what decodeInferRequest gives for the same
// body, and fail with the same code and message (byte offsets counted in the whole body) when it cannot.
import { describe, expect, it } from 'vitest';
import { hearthFailure as failureOf } from '../helpers/errors.ts';
import {
  isDeferred,
  isHearthError,
  type Datatype,
  type DeferredTensor,
  type InputTensor,
  type Tensor,
  type TensorData,
} from '../../core/index.ts';
import { decodeDeferredJson, decodeInferRequest, scanInferRequest } from '../../protocol/index.ts';

interface RawInput {
  name: string;
  datatype: string;
  shape: number[];
  /** The `data` value exactly as it appears in the body. */
  data: string;
  /** Write `data` before `datatype` and `shape` (a legal but unusual member order). */
  dataFirst?: boolean;
}

/** A request body written by hand, so number texts (INT64 beyond 2^53, -0, exponents) reach the scanner as given. */
function bodyOf(inputs: RawInput[], prefix = ''): Buffer {
  const items = inputs.map((i) => {
    const head = `"name":${JSON.stringify(i.name)},"datatype":${JSON.stringify(i.datatype)},"shape":[${i.shape.join(',')}]`;
    return i.dataFirst ? `{"data":${i.data},${head}}` : `{${head},"data":${i.data}}`;
  });
  return Buffer.from(`{${prefix}"inputs":[${items.join(',')}]}`);
}

/** The bytes of a typed array, and its kind: equal bytes and kind is bit-exact equality (NaN payloads, -0 included). */
function bits(d: TensorData): { kind: string; hex: string } {
  if (Array.isArray(d)) return { kind: 'strings', hex: JSON.stringify(d) };
  return { kind: d.constructor.name, hex: Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('hex') };
}

function deferredOf(t: InputTensor): DeferredTensor {
  expect(isDeferred(t), `input "${t.name}" should be deferred`).toBe(true);
  return t as DeferredTensor;
}

function decodeDeferred(t: DeferredTensor): TensorData {
  const [part] = t.data.parts;
  return decodeDeferredJson(part.json!, part.jsonAt!, t.datatype, part.shape, t.name);
}

const seq = (n: number, f: (i: number) => string) => `[${Array.from({ length: n }, (_, i) => f(i)).join(',')}]`;

// Value texts chosen for the edges of each datatype's reading: -0, subnormals, 17-19 significant digits (the
// scanner's approximate path for FP32), INT64 beyond 2^53 and at its ends, UINT8 at both ends.
const FP32_TEXTS = [
  '-0',
  '0',
  '0.1',
  '-2.5e-3',
  '1E+2',
  '1e-45',
  '1.4e-45',
  '3.4028234663852886e38',
  '1e-50',
  '0.30000000000000004441',
  '123456789.123456789',
  '-7',
  '16777217',
  '2.7182818284590452354',
];
const FP64_TEXTS = [
  '-0',
  '0.1',
  '5e-324',
  '1.7976931348623157e308',
  '123456789012345678',
  '0.1000000000000000055511151231257827',
  '-1e-310',
  '9007199254740993',
  '2.5E-3',
];
const INT64_TEXTS = [
  '0',
  '-0',
  '9007199254740993',
  '-9007199254740993',
  '9223372036854775807',
  '-9223372036854775808',
  '12345678901234567',
  '-1',
  '4294967296',
];
const INT32_TEXTS = ['0', '-2147483648', '2147483647', '-1', '65536', '1e3'];
const UINT8_TEXTS = ['0', '255', '1', '128', '7'];

const cycle = (texts: string[], n: number) => seq(n, (i) => texts[i % texts.length]);

const LARGE: RawInput[] = [
  { name: 'f32', datatype: 'FP32', shape: [2, 50], data: cycle(FP32_TEXTS, 100) },
  { name: 'f64', datatype: 'FP64', shape: [60], data: cycle(FP64_TEXTS, 60) },
  { name: 'i32', datatype: 'INT32', shape: [4, 10], data: cycle(INT32_TEXTS, 40) },
  { name: 'i64', datatype: 'INT64', shape: [3, 9], data: cycle(INT64_TEXTS, 27) },
  { name: 'u8', datatype: 'UINT8', shape: [80], data: cycle(UINT8_TEXTS, 80) },
];

describe('scanInferRequest: which inputs stay JSON text', () => {
  it('defers exactly the large flat numeric arrays placed after datatype and shape', () => {
    const keep: RawInput[] = [
      { name: 'small', datatype: 'FP32', shape: [3], data: '[1,2,3]' },
      { name: 'nested', datatype: 'FP32', shape: [2, 40], data: `[${cycle(FP32_TEXTS, 40)},${cycle(FP32_TEXTS, 40)}]` },
      { name: 'strings', datatype: 'FP32', shape: [60], data: seq(60, (i) => (i === 30 ? '"NaN"' : `${i}.5`)) },
      { name: 'bytes', datatype: 'BYTES', shape: [30], data: seq(30, (i) => `"word${i}"`) },
      { name: 'early', datatype: 'FP32', shape: [60], data: seq(60, (i) => `${i}.25`), dataFirst: true },
      { name: 'scalar', datatype: 'INT64', shape: [], data: '16000' },
    ];
    const body = bodyOf([keep[0], ...LARGE.slice(0, 2), ...keep.slice(1), ...LARGE.slice(2)], '"id":"mix",');
    const scanned = scanInferRequest(body, { deferAbove: 64 });
    const eager = decodeInferRequest(body);
    expect(scanned.id).toBe('mix');
    expect(scanned.inputs.map((t) => t.name)).toEqual(eager.inputs.map((t) => t.name));
    const deferred = scanned.inputs.filter(isDeferred).map((t) => t.name);
    expect(deferred.sort()).toEqual(LARGE.map((i) => i.name).sort());
    // The others are decoded as the eager decoder decodes them.
    for (const t of scanned.inputs) {
      if (isDeferred(t)) continue;
      const e = eager.inputs.find((x) => x.name === t.name)!;
      expect({ ...t, data: bits(t.data) }).toEqual({ ...e, data: bits(e.data) });
    }
  });

  it('a deferred input carries its own copy of the text, its body offset, and a one-part plan over the whole tensor', () => {
    const body = bodyOf(LARGE, '"id":"offsets",');
    const scanned = scanInferRequest(body, { deferAbove: 32 });
    for (const raw of LARGE) {
      const t = deferredOf(scanned.inputs.find((x) => x.name === raw.name)!);
      expect(t.datatype).toBe(raw.datatype);
      expect(t.shape).toEqual(raw.shape);
      expect(t.data.parts).toHaveLength(1);
      const [p] = t.data.parts;
      const count = raw.shape.reduce((a, b) => a * b, 1);
      expect({ request: p.request, shape: p.shape, count: p.count, dstAt: p.dstAt, rows: p.rows, stride: p.stride }).toEqual({
        request: 0,
        shape: raw.shape,
        count,
        dstAt: 0,
        rows: count,
        stride: count,
      });
      expect(Buffer.from(p.json!).toString()).toBe(raw.data);
      expect(body.subarray(p.jsonAt, p.jsonAt! + p.json!.length).toString()).toBe(raw.data);
      // Its own buffer (it is transferred to the instance thread), not a view into the body or its pool.
      expect(Buffer.isBuffer(p.json)).toBe(false);
      expect(p.json!.byteOffset).toBe(0);
      expect(p.json!.buffer.byteLength).toBe(p.json!.length);
      expect(p.json!.buffer).not.toBe(body.buffer);
    }
  });

  it('the threshold counts the bytes of the array text, brackets included: at deferAbove it defers, one below it does not', () => {
    const raw: RawInput = { name: 'x', datatype: 'FP32', shape: [20], data: seq(20, (i) => `${i}.5`) };
    const len = Buffer.byteLength(raw.data);
    expect(isDeferred(scanInferRequest(bodyOf([raw]), { deferAbove: len }).inputs[0])).toBe(true);
    expect(isDeferred(scanInferRequest(bodyOf([raw]), { deferAbove: len + 1 }).inputs[0])).toBe(false);
  });

  it('a BYTES input whose data is a flat array of numbers is not deferred: it fails at once, as the eager decoder fails', () => {
    const body = bodyOf([{ name: 'b', datatype: 'BYTES', shape: [40], data: seq(40, (i) => String(i)) }]);
    const eager = failureOf(() => decodeInferRequest(body));
    expect(eager.code).toBe('INVALID_TENSOR');
    expect(failureOf(() => scanInferRequest(body, { deferAbove: 8 }))).toEqual(eager);
  });

  it('data placed before shape only (datatype first) is not deferred either', () => {
    const data = seq(40, (i) => `${i}`);
    const body = Buffer.from(`{"inputs":[{"name":"x","datatype":"INT32","data":${data},"shape":[40]}]}`);
    const t = scanInferRequest(body, { deferAbove: 8 }).inputs[0];
    expect(isDeferred(t)).toBe(false);
    expect(Array.from((t as Tensor).data as Int32Array)).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it('a deferred input next to a binary one: offsets still refer to the body, binary tensors still line up', () => {
    const text = seq(32, (i) => `${i}.75`);
    const bin = Buffer.from(new Float32Array([1.5, -2, 3.25, 4]).buffer);
    const head = Buffer.from(
      `{"inputs":[{"name":"a","datatype":"FP32","shape":[32],"data":${text}},{"name":"b","datatype":"FP32","shape":[4],"parameters":{"binary_data_size":16}}]}`,
    );
    const body = Buffer.concat([head, bin]);
    const scanned = scanInferRequest(body, { headerLength: head.length, deferAbove: 16 });
    const a = deferredOf(scanned.inputs[0]);
    expect(body.subarray(a.data.parts[0].jsonAt, a.data.parts[0].jsonAt! + a.data.parts[0].json!.length).toString()).toBe(text);
    expect(Array.from(decodeDeferred(a) as Float32Array)).toEqual(Array.from({ length: 32 }, (_, i) => i + 0.75));
    expect(Array.from((scanned.inputs[1] as Tensor).data as Float32Array)).toEqual([1.5, -2, 3.25, 4]);
  });
});

describe('decodeDeferredJson equals the eager decoder', () => {
  it('bit for bit for FP32, FP64, INT32, INT64 (beyond 2^53, both ends), UINT8, -0 and subnormals included', () => {
    const body = bodyOf(LARGE);
    const eager = decodeInferRequest(body);
    const scanned = scanInferRequest(body, { deferAbove: 16 });
    for (const raw of LARGE) {
      const want = eager.inputs.find((t) => t.name === raw.name)!;
      const got = decodeDeferred(deferredOf(scanned.inputs.find((t) => t.name === raw.name)!));
      expect(bits(got), raw.name).toEqual(bits(want.data));
    }
    // The edges themselves, so equal-but-wrong readings in both decoders would show too.
    const i64 = eager.inputs.find((t) => t.name === 'i64')!.data as BigInt64Array;
    expect(Array.from(i64.subarray(0, INT64_TEXTS.length))).toEqual(INT64_TEXTS.map((s) => BigInt(s)));
    const f32 = decodeDeferred(deferredOf(scanned.inputs.find((t) => t.name === 'f32')!)) as Float32Array;
    expect(Object.is(f32[0], -0)).toBe(true);
    expect(Object.is(f32[1], 0)).toBe(true);
    expect(f32[5]).toBe(Math.fround(1e-45));
    expect(f32[8]).toBe(0);
    expect(f32[12]).toBe(16777216);
    const f64 = decodeDeferred(deferredOf(scanned.inputs.find((t) => t.name === 'f64')!)) as Float64Array;
    expect(Object.is(f64[0], -0)).toBe(true);
    expect(f64[2]).toBe(5e-324);
    expect(f64[7]).toBe(9007199254740992);
  });

  it('FP32 texts of every length and exponent agree with JSON.parse + Math.fround, deferred and eager alike', () => {
    let x = 12345;
    const texts: string[] = [];
    for (let i = 0; i < 2000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const v = (x / 2147483648 - 0.5) * 10 ** ((i % 13) - 6);
      texts.push(i % 3 === 0 ? v.toPrecision(1 + (i % 19)) : i % 3 === 1 ? v.toExponential(i % 17) : String(v));
    }
    const body = bodyOf([{ name: 'x', datatype: 'FP32', shape: [texts.length], data: `[${texts.join(',')}]` }]);
    const got = decodeDeferred(deferredOf(scanInferRequest(body, { deferAbove: 1024 }).inputs[0])) as Float32Array;
    expect(bits(got)).toEqual(bits(decodeInferRequest(body).inputs[0].data));
    texts.forEach((t, i) => expect(got[i], t).toBe(Math.fround(JSON.parse(t) as number)));
  });

  it('whitespace and newlines inside the array (pretty-printed bodies) change nothing', () => {
    const data = `[\n  ${Array.from({ length: 40 }, (_, i) => `${i}.125`).join(' ,\n\t ')}\r\n ]`;
    const body = bodyOf([{ name: 'x', datatype: 'FP64', shape: [40], data }]);
    const t = deferredOf(scanInferRequest(body, { deferAbove: 64 }).inputs[0]);
    expect(bits(decodeDeferred(t))).toEqual(bits(decodeInferRequest(body).inputs[0].data));
  });

  it('a data member given twice is refused by both paths alike (it used to keep the last; duplicates are now refused)', () => {
    const big = seq(40, (i) => `${i}.5`);
    const body = Buffer.from(`{"inputs":[{"name":"x","datatype":"FP32","shape":[3],"data":${big},"data":[7,8,9]}]}`);
    expect(() => decodeInferRequest(body)).toThrow(
      expect.objectContaining({ code: 'INVALID_REQUEST', message: 'inputs[0]: "data" is given more than once' }),
    );
    expect(() => scanInferRequest(body, { deferAbove: 32 })).toThrow(
      expect.objectContaining({ code: 'INVALID_REQUEST', message: 'inputs[0]: "data" is given more than once' }),
    );
  });
});

describe('decodeDeferredJson fails as the eager decoder fails', () => {
  // Each body puts the bad array after a long prefix, so a message that counted offsets in the array alone differs.
  const prefix = `"id":"bad","parameters":{"note":${JSON.stringify('x'.repeat(300))}},`;
  const n = 40;
  const cases: [string, Datatype, number[], string, string, RegExp][] = [
    [
      'one element short',
      'FP32',
      [1, n],
      seq(n - 1, (i) => `${i}.5`),
      'INVALID_TENSOR',
      /^input "x": shape \[1,40\] needs 40 elements, got 39$/,
    ],
    ['one element too many', 'FP32', [1, n], seq(n + 1, (i) => `${i}.5`), 'INVALID_TENSOR', /needs 40 elements, got 41/],
    [
      'a true leaf in FP32',
      'FP32',
      [n],
      seq(n, (i) => (i === 17 ? 'true' : `${i}.5`)),
      'INVALID_TENSOR',
      /^input "x": data element 17 is 't', expected a number$/,
    ],
    [
      'a null leaf in INT64',
      'INT64',
      [n],
      seq(n, (i) => (i === 3 ? 'null' : `${i}`)),
      'INVALID_TENSOR',
      /element 3 is 'n', expected an integer/,
    ],
    ['an object leaf in FP64', 'FP64', [n], seq(n, (i) => (i === 9 ? '{}' : `${i}`)), 'INVALID_TENSOR', /element 9 is '\{'/],
    [
      '300 in UINT8',
      'UINT8',
      [n],
      seq(n, (i) => (i === 5 ? '300' : `${i}`)),
      'INVALID_TENSOR',
      /^input "x": data element 5 is 300, outside the UINT8 range \[0, 255\]$/,
    ],
    ['-1 in UINT8', 'UINT8', [n], seq(n, (i) => (i === 6 ? '-1' : `${i}`)), 'INVALID_TENSOR', /element 6 is -1, outside the UINT8 range/],
    ['1.5 in INT32', 'INT32', [n], seq(n, (i) => (i === 7 ? '1.5' : `${i}`)), 'INVALID_TENSOR', /element 7 is 1.5, expected an integer/],
    [
      '2^63 in INT64',
      'INT64',
      [n],
      seq(n, (i) => (i === 8 ? '9223372036854775808' : `${i}`)),
      'INVALID_TENSOR',
      /element 8 is 9223372036854775808, outside the INT64 range/,
    ],
    [
      '1.2.3',
      'FP32',
      [n],
      seq(n, (i) => (i === 11 ? '1.2.3' : `${i}`)),
      'INVALID_REQUEST',
      /^body is not valid JSON: expected ',' or '\]', found '\.' at byte \d+$/,
    ],
    [
      'a trailing comma',
      'FP32',
      [n],
      `${seq(n, (i) => `${i}`).slice(0, -1)},]`,
      'INVALID_REQUEST',
      /expected a value before '\]' at byte \d+$/,
    ],
    ['two commas', 'INT32', [n], seq(n, (i) => (i === 4 ? ',4' : `${i}`)), 'INVALID_REQUEST', /unexpected ',' at byte \d+$/],
    [
      'an exponent without digits',
      'FP64',
      [n],
      seq(n, (i) => (i === 12 ? '1e' : `${i}`)),
      'INVALID_REQUEST',
      /expected digits in the exponent at byte \d+$/,
    ],
    [
      'a point without digits',
      'FP32',
      [n],
      seq(n, (i) => (i === 13 ? '2.' : `${i}`)),
      'INVALID_REQUEST',
      /expected digits after the decimal point at byte \d+$/,
    ],
    [
      'a lone minus',
      'INT64',
      [n],
      seq(n, (i) => (i === 14 ? '-' : `${i}`)),
      'INVALID_REQUEST',
      /expected a number, found '-' at byte \d+$/,
    ],
  ];
  for (const [label, datatype, shape, data, code, message] of cases) {
    it(`${label}: ${code}`, () => {
      const body = bodyOf([{ name: 'x', datatype, shape, data }], prefix);
      const eager = failureOf(() => decodeInferRequest(body));
      expect(eager.code).toBe(code);
      expect(eager.message).toMatch(message);
      const t = deferredOf(scanInferRequest(body, { deferAbove: 32 }).inputs[0]);
      expect(failureOf(() => decodeDeferred(t))).toEqual(eager);
    });
  }

  it('byte offsets in syntax errors point at the offending byte of the whole body', () => {
    const data = seq(n, (i) => (i === 20 ? '1.2.3' : `${i}`));
    const body = bodyOf([{ name: 'x', datatype: 'FP32', shape: [n], data }], prefix);
    const t = deferredOf(scanInferRequest(body, { deferAbove: 32 }).inputs[0]);
    const { message } = failureOf(() => decodeDeferred(t));
    const at = Number(/at byte (\d+)$/.exec(message)![1]);
    // The second '.' of "1.2.3", counted from the start of the body (well past the array's own length).
    expect(at).toBe(body.indexOf('1.2.3') + 3);
    expect(at).toBeGreaterThan(Buffer.byteLength(data));
    expect(String.fromCharCode(body[at])).toBe('.');

    const comma = bodyOf([{ name: 'x', datatype: 'FP32', shape: [n], data: `${seq(n, (i) => `${i}`).slice(0, -1)},]` }], prefix);
    const tc = deferredOf(scanInferRequest(comma, { deferAbove: 32 }).inputs[0]);
    const atComma = Number(/at byte (\d+)$/.exec(failureOf(() => decodeDeferred(tc)).message)![1]);
    expect(atComma).toBe(comma.indexOf(',]') + 1);
  });

  it('an array closed by the wrong bracket fails with the eager message once its text is read', () => {
    // "[0,...,39}]": the first ']' after the array ends the scan's text; the envelope after it still closes.
    const data = `${seq(n, (i) => `${i}`).slice(0, -1)}}`;
    const body = Buffer.from(`{"inputs":[{"name":"x","datatype":"FP32","shape":[${n}],"data":${data}]}]}`);
    const eager = failureOf(() => decodeInferRequest(body));
    expect(eager.code).toBe('INVALID_REQUEST');
    let scanned: ReturnType<typeof scanInferRequest> | undefined;
    let scanFailure: { code: string; message: string } | undefined;
    try {
      scanned = scanInferRequest(body, { deferAbove: 32 });
    } catch (e) {
      if (!isHearthError(e)) throw e;
      scanFailure = { code: e.code, message: e.message };
    }
    const final = scanFailure ?? failureOf(() => decodeDeferred(deferredOf(scanned!.inputs[0])));
    expect(final).toEqual(eager);
  });
});
