// The V2 codec: JSON (flat and nested, every datatype, exact INT64), the binary tensor extension both ways,
// FP16 half bits, and each malformed body with its code.
import { describe, expect, it } from 'vitest';
import { hearthFailure as codeOf } from '../helpers/errors.ts';
import { DATATYPES, type Datatype, type Tensor } from '../../core/index.ts';
import {
  binaryOutputSelector,
  decodeInferRequest,
  decodeInferResponse,
  encodeInferRequest,
  encodeInferResponse,
  floatToHalfBits,
  halfBitsToFloat,
  tensorFromJson,
} from '../../protocol/index.ts';

function body(o: unknown): Buffer {
  return Buffer.from(JSON.stringify(o));
}

/** Two or three sample elements per datatype, including the edges of each range. */
const SAMPLES: Record<Datatype, Tensor['data']> = {
  BOOL: new Uint8Array([1, 0, 1]),
  UINT8: new Uint8Array([0, 7, 255]),
  UINT16: new Uint16Array([0, 65535, 3]),
  UINT32: new Uint32Array([0, 4294967295, 12]),
  UINT64: new BigUint64Array([0n, 18446744073709551615n, 9007199254740993n]),
  INT8: new Int8Array([-128, 127, 0]),
  INT16: new Int16Array([-32768, 32767, -1]),
  INT32: new Int32Array([-2147483648, 2147483647, 5]),
  INT64: new BigInt64Array([-9223372036854775808n, 9223372036854775807n, -9007199254740993n]),
  FP16: new Uint16Array([floatToHalfBits(1.5), floatToHalfBits(-65504), floatToHalfBits(2 ** -24)]),
  FP32: new Float32Array([0.1, -3.5e38, 1e-45]),
  FP64: new Float64Array([0.1, -1.7976931348623157e308, 5e-324]),
  BYTES: ['héllo', '', 'quote " and \\ backslash\n'],
};

describe('JSON requests', () => {
  it('decodes a flat FP32 input with id, parameters and selected outputs', () => {
    const req = decodeInferRequest(
      body({
        id: 'r1',
        parameters: { priority: 3, binary_data_output: false },
        inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: [1, 2.5, -3e-2, 4, 5, 6] }],
        outputs: [{ name: 'y', parameters: { binary_data: true } }],
      }),
    );
    expect(req.id).toBe('r1');
    expect(req.parameters).toEqual({ priority: 3, binary_data_output: false });
    expect(req.outputs).toEqual([{ name: 'y', parameters: { binary_data: true } }]);
    expect(req.inputs).toHaveLength(1);
    const x = req.inputs[0];
    expect(x.shape).toEqual([2, 3]);
    expect(x.data).toBeInstanceOf(Float32Array);
    expect(Array.from(x.data as Float32Array)).toEqual([1, 2.5, Math.fround(-3e-2), 4, 5, 6]);
  });

  it('reads nested data in row-major order, equal to the flat form', () => {
    const nested = decodeInferRequest(
      body({
        inputs: [
          {
            name: 'x',
            datatype: 'INT32',
            shape: [2, 2, 2],
            data: [
              [
                [1, 2],
                [3, 4],
              ],
              [
                [5, 6],
                [7, 8],
              ],
            ],
          },
        ],
      }),
    );
    const flat = decodeInferRequest(body({ inputs: [{ name: 'x', datatype: 'INT32', shape: [2, 2, 2], data: [1, 2, 3, 4, 5, 6, 7, 8] }] }));
    expect(Array.from(nested.inputs[0].data as Int32Array)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(nested.inputs[0].data).toEqual(flat.inputs[0].data);
  });

  it('reads data that comes before datatype and shape (second pass)', () => {
    const text = '{"inputs":[{"data":[[1,2],[3,4]],"name":"x","shape":[2,2],"datatype":"FP64"}]}';
    const req = decodeInferRequest(text);
    expect(Array.from(req.inputs[0].data as Float64Array)).toEqual([1, 2, 3, 4]);
  });

  it('keeps INT64 and UINT64 beyond 2^53 exact, also as decimal strings', () => {
    const text =
      '{"inputs":[{"name":"a","datatype":"INT64","shape":[4],"data":[9007199254740993,-9223372036854775808,9223372036854775807,"-42"]},' +
      '{"name":"b","datatype":"UINT64","shape":[2],"data":[18446744073709551615,12345678901234567891]}]}';
    const req = decodeInferRequest(text);
    expect(Array.from(req.inputs[0].data as BigInt64Array)).toEqual([9007199254740993n, -9223372036854775808n, 9223372036854775807n, -42n]);
    expect(Array.from(req.inputs[1].data as BigUint64Array)).toEqual([18446744073709551615n, 12345678901234567891n]);
    // JSON.parse would have rounded the first one.
    expect(Number('9007199254740993')).toBe(9007199254740992);
  });

  it('reads FP32 values printed with 17 digits exactly as JSON.parse + Math.fround would', () => {
    const values = [
      0.10000000149011612, -0.30000001192092896, 3.4028234663852886e38, 1.1754943508222875e-38, 0.12345678901234566, 1.0000000596046448,
    ];
    const req = decodeInferRequest(
      `{"inputs":[{"name":"x","datatype":"FP32","shape":[${values.length}],"data":[${values.map(String).join(',')}]}]}`,
    );
    expect(Array.from(req.inputs[0].data as Float32Array)).toEqual(values.map((v) => Math.fround(v)));
  });

  it('agrees with JSON.parse (+ Math.fround for FP32) on many random decimals of every length', () => {
    // A seeded generator: digits 1..22, leading zeros, exponents, signs; the float32 fast path must never differ.
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const texts: string[] = [];
    for (let i = 0; i < 20000; i++) {
      const digits = 1 + Math.floor(rnd() * 22);
      let m = '';
      for (let k = 0; k < digits; k++) m += Math.floor(rnd() * 10);
      const point = Math.floor(rnd() * (digits + 1));
      let t =
        point === 0
          ? `0.${'0'.repeat(Math.floor(rnd() * 5))}${m}`
          : `${m.slice(0, point).replace(/^0+(?=\d)/, '')}${point < digits ? '.' + m.slice(point) : ''}`;
      if (rnd() < 0.2) t += `e${Math.floor(rnd() * 40) - 20}`;
      if (rnd() < 0.5) t = `-${t}`;
      texts.push(t);
    }
    const data = `[${texts.join(',')}]`;
    const expected = JSON.parse(data) as number[];
    const f32 = decodeInferRequest(`{"inputs":[{"name":"x","datatype":"FP32","shape":[${texts.length}],"data":${data}}]}`).inputs[0]
      .data as Float32Array;
    const f64 = decodeInferRequest(`{"inputs":[{"name":"x","datatype":"FP64","shape":[${texts.length}],"data":${data}}]}`).inputs[0]
      .data as Float64Array;
    const wrong32 = texts.filter((_t, i) => !Object.is(f32[i], Math.fround(expected[i])));
    const wrong64 = texts.filter((_t, i) => !Object.is(f64[i], expected[i]));
    expect(wrong32).toEqual([]);
    expect(wrong64).toEqual([]);
  });

  it('reads FP64 with full precision and non-finite values from strings', () => {
    const values = [0.1, 1 / 3, 5e-324, 1.7976931348623157e308, 123456789.12345679];
    const req = decodeInferRequest(
      `{"inputs":[{"name":"x","datatype":"FP64","shape":[8],"data":[${values.join(',')},"NaN","Infinity","-Infinity"]}]}`,
    );
    const got = Array.from(req.inputs[0].data as Float64Array);
    expect(got.slice(0, 5)).toEqual(values);
    expect(got[5]).toBeNaN();
    expect(got.slice(6)).toEqual([Infinity, -Infinity]);
  });

  it('converts FP16 JSON numbers to half bits and back', () => {
    const req = decodeInferRequest(body({ inputs: [{ name: 'h', datatype: 'FP16', shape: [5], data: [1, -2.5, 65504, 0.1, 1e6] }] }));
    const bits = req.inputs[0].data as Uint16Array;
    expect(bits).toBeInstanceOf(Uint16Array);
    expect(Array.from(bits)).toEqual([0x3c00, 0xc100, 0x7bff, 0x2e66, 0x7c00]);
    expect(Array.from(bits, halfBitsToFloat)).toEqual([1, -2.5, 65504, 0.0999755859375, Infinity]);
  });

  it('reads BOOL as true/false or 0/1 and BYTES as strings with escapes', () => {
    const req = decodeInferRequest(
      body({
        inputs: [
          { name: 'b', datatype: 'BOOL', shape: [4], data: [true, false, 1, 0] },
          { name: 's', datatype: 'BYTES', shape: [3], data: ['plain', 'ünï "q"', 'tab\t'] },
        ],
      }),
    );
    expect(Array.from(req.inputs[0].data as Uint8Array)).toEqual([1, 0, 1, 0]);
    expect(req.inputs[1].data).toEqual(['plain', 'ünï "q"', 'tab\t']);
  });

  it('accepts a scalar (shape []) given as a bare value or a one-element array', () => {
    const a = decodeInferRequest(body({ inputs: [{ name: 'sr', datatype: 'INT64', shape: [], data: 16000 }] }));
    const b = decodeInferRequest(body({ inputs: [{ name: 'sr', datatype: 'INT64', shape: [], data: [16000] }] }));
    expect(Array.from(a.inputs[0].data as BigInt64Array)).toEqual([16000n]);
    expect(b.inputs[0].data).toEqual(a.inputs[0].data);
  });

  it('round-trips every datatype through JSON request encoding and decoding', () => {
    for (const dt of DATATYPES) {
      const t: Tensor = { name: `in_${dt}`, datatype: dt, shape: [3], data: SAMPLES[dt] };
      const enc = encodeInferRequest({ inputs: [t] });
      expect(enc.contentType).toBe('application/json');
      const dec = decodeInferRequest(enc.body);
      expect(dec.inputs[0], dt).toEqual(t);
    }
  });

  it('keeps per-input parameters other than binary_data_size', () => {
    const req = decodeInferRequest(
      body({ inputs: [{ name: 'x', datatype: 'INT8', shape: [1], data: [1], parameters: { content_type: 'np' } }] }),
    );
    expect(req.inputParameters).toEqual({ x: { content_type: 'np' } });
  });
});

describe('binary tensor extension', () => {
  it('decodes the Triton example: UINT32 [2,2] and BOOL [3] after the JSON header', () => {
    const head = Buffer.from(
      JSON.stringify({
        model_name: 'mymodel',
        inputs: [
          { name: 'input0', shape: [2, 2], datatype: 'UINT32', parameters: { binary_data_size: 16 } },
          { name: 'input1', shape: [3], datatype: 'BOOL', parameters: { binary_data_size: 3 } },
        ],
        outputs: [{ name: 'output0', parameters: { binary_data: true } }],
      }),
    );
    const u32 = Buffer.alloc(16);
    [1, 2, 3, 0xffffffff].forEach((v, i) => u32.writeUInt32LE(v, i * 4));
    const req = decodeInferRequest(Buffer.concat([head, u32, Buffer.from([1, 0, 1])]), { headerLength: head.length });
    expect(Array.from(req.inputs[0].data as Uint32Array)).toEqual([1, 2, 3, 0xffffffff]);
    expect(Array.from(req.inputs[1].data as Uint8Array)).toEqual([1, 0, 1]);
    // Each tensor owns an aligned buffer of its own, so it can be transferred to a worker thread.
    expect((req.inputs[0].data as Uint32Array).buffer.byteLength).toBe(16);
    expect(req.inputParameters).toBeUndefined();
    expect(binaryOutputSelector(req)('output0')).toBe(true);
    expect(binaryOutputSelector(req)('other')).toBe(false);
  });

  it('round-trips every datatype as binary inputs, mixed with a JSON input', () => {
    for (const dt of DATATYPES) {
      const t: Tensor = { name: `in_${dt}`, datatype: dt, shape: [3], data: SAMPLES[dt] };
      const enc = encodeInferRequest({ inputs: [t, { ...t, name: 'second' }] }, { binaryInputs: true });
      expect(enc.headerLength).toBeGreaterThan(0);
      const dec = decodeInferRequest(enc.body, { headerLength: enc.headerLength });
      expect(dec.inputs, dt).toEqual([t, { ...t, name: 'second' }]);
    }
  });

  it('lays BYTES out as 4-byte little-endian lengths followed by the bytes', () => {
    const enc = encodeInferRequest({ inputs: [{ name: 's', datatype: 'BYTES', shape: [2], data: ['ab', 'é'] }] }, { binaryInputs: true });
    const tail = enc.body.subarray(enc.headerLength);
    expect([...tail]).toEqual([2, 0, 0, 0, 0x61, 0x62, 2, 0, 0, 0, 0xc3, 0xa9]);
  });

  it('encodes binary outputs after the header and JSON outputs inline, as selected', () => {
    const y: Tensor = { name: 'y', datatype: 'FP32', shape: [2], data: new Float32Array([1.5, -2]) };
    const z: Tensor = { name: 'z', datatype: 'INT64', shape: [1], data: new BigInt64Array([9007199254740993n]) };
    const sel = binaryOutputSelector({
      parameters: { binary_data_output: true },
      outputs: [{ name: 'y' }, { name: 'z', parameters: { binary_data: false } }],
    });
    const enc = encodeInferResponse({ modelName: 'm', modelVersion: 2, id: 'abc', outputs: [y, z] }, sel);
    expect(enc.contentType).toBe('application/octet-stream');
    const head = JSON.parse(enc.body.subarray(0, enc.headerLength).toString());
    expect(head).toEqual({
      model_name: 'm',
      model_version: '2',
      id: 'abc',
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
        { name: 'z', datatype: 'INT64', shape: [1], data: [9007199254740992] },
      ],
    });
    // The JSON text itself carries the exact integer; JSON.parse above rounded it.
    expect(enc.body.subarray(0, enc.headerLength).toString()).toContain('[9007199254740993]');
    expect([...enc.body.subarray(enc.headerLength)]).toEqual([...Buffer.from(new Float32Array([1.5, -2]).buffer)]);
    const back = decodeInferResponse(enc.body, enc.headerLength);
    expect(back.id).toBe('abc');
    expect(back.outputs).toEqual([y, z]);
  });

  it('encodes a plain JSON response when nothing asks for binary, and decodes it back for every datatype', () => {
    for (const dt of DATATYPES) {
      const t: Tensor = { name: 'out', datatype: dt, shape: [3, 1], data: SAMPLES[dt] };
      const enc = encodeInferResponse({ modelName: 'm', modelVersion: 1, outputs: [t] });
      expect(enc.contentType).toBe('application/json');
      expect(enc.headerLength).toBeUndefined();
      expect(JSON.parse(enc.body.toString()).outputs[0].name).toBe('out');
      expect(decodeInferResponse(enc.body).outputs[0], dt).toEqual(t);
    }
  });

  it('writes non-finite floats as strings so the JSON stays valid', () => {
    const t: Tensor = { name: 'y', datatype: 'FP32', shape: [3], data: new Float32Array([NaN, Infinity, 1]) };
    const json = JSON.parse(encodeInferResponse({ modelName: 'm', modelVersion: 1, outputs: [t] }).body.toString());
    expect(json.outputs[0].data).toEqual(['NaN', 'Infinity', 1]);
  });

  it('keeps the sign of zero in JSON', () => {
    const t: Tensor = { name: 'y', datatype: 'FP64', shape: [2], data: new Float64Array([-0, 0]) };
    const enc = encodeInferResponse({ modelName: 'm', modelVersion: 1, outputs: [t] });
    expect(enc.body.toString()).toContain('"data":[-0,0]');
    expect(Object.is((decodeInferResponse(enc.body).outputs[0].data as Float64Array)[0], -0)).toBe(true);
  });
});

describe('bad bodies', () => {
  const cases: [string, string | Buffer, number | undefined, string, RegExp][] = [
    ['not JSON', 'hello', undefined, 'INVALID_REQUEST', /not valid JSON/],
    ['empty', '', undefined, 'INVALID_REQUEST', /empty/],
    ['truncated', '{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,', undefined, 'INVALID_REQUEST', /not valid JSON/],
    ['trailing garbage', '{"inputs":[]} x', undefined, 'INVALID_REQUEST', /after the JSON value/],
    ['no inputs', '{"id":"a"}', undefined, 'INVALID_REQUEST', /no "inputs"/],
    ['id not a string', '{"id":5,"inputs":[]}', undefined, 'INVALID_REQUEST', /"id" must be a string/],
    ['missing name', '{"inputs":[{"datatype":"FP32","shape":[1],"data":[1]}]}', undefined, 'INVALID_REQUEST', /inputs\[0\] needs a "name"/],
    ['missing shape', '{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}', undefined, 'INVALID_REQUEST', /input "x": missing "shape"/],
    ['missing data', '{"inputs":[{"name":"x","datatype":"FP32","shape":[1]}]}', undefined, 'INVALID_REQUEST', /input "x": missing "data"/],
    [
      'unknown datatype',
      '{"inputs":[{"name":"x","datatype":"FLOAT","shape":[1],"data":[1]}]}',
      undefined,
      'INVALID_TENSOR',
      /input "x": datatype "FLOAT" is not a V2 datatype/,
    ],
    [
      'negative dim',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[-1],"data":[1]}]}',
      undefined,
      'INVALID_TENSOR',
      /input "x": "shape" must be/,
    ],
    [
      'too few elements',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[1,2,3]}]}',
      undefined,
      'INVALID_TENSOR',
      /input "x": shape \[2,2\] needs 4 elements, got 3/,
    ],
    [
      'too many elements',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[[1,2],[3]]}]}',
      undefined,
      'INVALID_TENSOR',
      /input "x": shape \[2\] needs 2 elements, got 3/,
    ],
    [
      'string in FP32',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,"a"]}]}',
      undefined,
      'INVALID_TENSOR',
      /input "x": data element 1 is the string "a"/,
    ],
    [
      'fraction in INT32',
      '{"inputs":[{"name":"x","datatype":"INT32","shape":[1],"data":[1.5]}]}',
      undefined,
      'INVALID_TENSOR',
      /input "x": data element 0 is 1.5, expected an integer/,
    ],
    [
      'UINT8 out of range',
      '{"inputs":[{"name":"x","datatype":"UINT8","shape":[1],"data":[256]}]}',
      undefined,
      'INVALID_TENSOR',
      /outside the UINT8 range/,
    ],
    [
      'INT64 out of range',
      '{"inputs":[{"name":"x","datatype":"INT64","shape":[1],"data":[9223372036854775808]}]}',
      undefined,
      'INVALID_TENSOR',
      /outside the INT64 range/,
    ],
    [
      'UINT64 negative',
      '{"inputs":[{"name":"x","datatype":"UINT64","shape":[1],"data":[-1]}]}',
      undefined,
      'INVALID_TENSOR',
      /outside the UINT64 range/,
    ],
    [
      'number for BYTES',
      '{"inputs":[{"name":"x","datatype":"BYTES","shape":[1],"data":[1]}]}',
      undefined,
      'INVALID_TENSOR',
      /expected a string/,
    ],
    [
      'duplicate input',
      '{"inputs":[{"name":"x","datatype":"INT8","shape":[1],"data":[1]},{"name":"x","datatype":"INT8","shape":[1],"data":[1]}]}',
      undefined,
      'INVALID_TENSOR',
      /input "x": given more than once/,
    ],
    [
      'double comma',
      '{"inputs":[{"name":"x","datatype":"INT8","shape":[2],"data":[1,,2]}]}',
      undefined,
      'INVALID_REQUEST',
      /unexpected ','/,
    ],
    [
      'binary size without header',
      '{"inputs":[{"name":"x","datatype":"INT8","shape":[1],"parameters":{"binary_data_size":1}}]}',
      undefined,
      'INVALID_REQUEST',
      /no Inference-Header-Content-Length/,
    ],
    ['header length past the body', '{"inputs":[]}', 999, 'INVALID_REQUEST', /does not fit a body/],
  ];
  for (const [label, text, headerLength, code, message] of cases) {
    it(`${label} -> ${code}`, () => {
      const r = codeOf(() => decodeInferRequest(text, headerLength === undefined ? {} : { headerLength }));
      expect(r.code).toBe(code);
      expect(r.message).toMatch(message);
    });
  }

  it('binary_data_size that does not fit the shape -> INVALID_TENSOR naming the input', () => {
    const head = Buffer.from('{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":4}}]}');
    const r = codeOf(() => decodeInferRequest(Buffer.concat([head, Buffer.alloc(4)]), { headerLength: head.length }));
    expect(r).toEqual({ code: 'INVALID_TENSOR', message: 'input "x": binary_data_size 4 does not fit shape [2] of FP32 (8 bytes)' });
  });

  it('binary part longer or shorter than the sizes -> INVALID_REQUEST', () => {
    const head = Buffer.from('{"inputs":[{"name":"x","datatype":"INT8","shape":[2],"parameters":{"binary_data_size":2}}]}');
    expect(codeOf(() => decodeInferRequest(Buffer.concat([head, Buffer.alloc(3)]), { headerLength: head.length })).message).toMatch(
      /1 bytes after the last binary input/,
    );
    expect(codeOf(() => decodeInferRequest(Buffer.concat([head, Buffer.alloc(1)]), { headerLength: head.length })).message).toMatch(
      /runs past the end/,
    );
  });

  it('a BYTES element whose length runs past its tensor -> INVALID_TENSOR', () => {
    const head = Buffer.from('{"inputs":[{"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":6}}]}');
    const tail = Buffer.from([9, 0, 0, 0, 0x61, 0x62]);
    const r = codeOf(() => decodeInferRequest(Buffer.concat([head, tail]), { headerLength: head.length }));
    expect(r.code).toBe('INVALID_TENSOR');
    expect(r.message).toMatch(/input "s": binary BYTES element 0 claims 9 bytes/);
  });

  it('a huge declared shape with little data allocates nothing big and reports the real count', () => {
    const r = codeOf(() => decodeInferRequest('{"inputs":[{"name":"x","datatype":"FP64","shape":[1000000000],"data":[1,2]}]}'));
    expect(r).toEqual({ code: 'INVALID_TENSOR', message: 'input "x": shape [1000000000] needs 1000000000 elements, got 2' });
  });
});

describe('FP16 conversion', () => {
  it('rounds to nearest even and handles subnormals, overflow, signed zero and NaN', () => {
    expect(floatToHalfBits(0)).toBe(0);
    expect(floatToHalfBits(-0)).toBe(0x8000);
    expect(floatToHalfBits(1)).toBe(0x3c00);
    expect(floatToHalfBits(65504)).toBe(0x7bff);
    expect(floatToHalfBits(65519)).toBe(0x7bff);
    expect(floatToHalfBits(65520)).toBe(0x7c00);
    expect(floatToHalfBits(-Infinity)).toBe(0xfc00);
    expect(floatToHalfBits(NaN)).toBe(0x7e00);
    expect(floatToHalfBits(2 ** -24)).toBe(1);
    expect(floatToHalfBits(2 ** -25)).toBe(0); // tie, to even
    expect(floatToHalfBits(3 * 2 ** -25)).toBe(2); // tie, to even
    expect(floatToHalfBits(2 ** -14)).toBe(0x0400);
    expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and 1+2^-10: even is 1
    expect(floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
  });

  it('every half value survives half -> number -> half', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const f = halfBitsToFloat(h);
      if (!Number.isNaN(f) && floatToHalfBits(f) !== h) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });
});

describe('tensorFromJson (already parsed rows)', () => {
  it('builds a typed tensor, taking INT64 strings and BigInts exactly', () => {
    const t = tensorFromJson({ name: 'a', datatype: 'INT64', shape: [2], data: ['9007199254740993', 5n] });
    expect(Array.from(t.data as BigInt64Array)).toEqual([9007199254740993n, 5n]);
    expect(tensorFromJson({ name: 'f', datatype: 'FP32', shape: [1, 2], data: [[1, 2]] }).data).toEqual(new Float32Array([1, 2]));
  });

  it('names the input on a bad length', () => {
    const r = codeOf(() => tensorFromJson({ name: 'f', datatype: 'FP32', shape: [3], data: [1] }));
    expect(r).toEqual({ code: 'INVALID_TENSOR', message: 'input "f": shape [3] needs 3 elements, got 1' });
  });
});

describe('flat float arrays (the tight-loop path) match JSON.parse + the typed array', () => {
  it('FP32 and FP64: random doubles, float32 values, exponents, signs, zeros and whitespace', () => {
    let x = 12345;
    const rnd = () => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x / 2147483648;
    };
    const values: number[] = [0, 1, -1, 0.5, 1e-7, 3.4e38, -2.5e-30, 123456789012345, 0.000123, 1e22, 1e-22];
    for (let i = 0; i < 2000; i++) {
      const v = (rnd() - 0.5) * 10 ** Math.floor(rnd() * 12 - 6);
      values.push(v, Math.fround(v));
    }
    const texts = values.map((v) => JSON.stringify(v));
    // Exponent forms, a plus sign in the exponent and whitespace around elements.
    texts.push('1E3', '2.5e+2', '-7e-3', '0.1E0', '-0');
    const dataText = `[ ${texts.join(' ,\n')} ]`;
    const want = texts.map((t) => Number(t));
    for (const dt of ['FP32', 'FP64'] as const) {
      const raw = `{"inputs":[{"name":"x","datatype":"${dt}","shape":[${want.length}],"data":${dataText}}]}`;
      const got = decodeInferRequest(Buffer.from(raw)).inputs[0].data as Float32Array | Float64Array;
      const ref = dt === 'FP32' ? Float32Array.from(want) : Float64Array.from(want);
      expect(got.length).toBe(ref.length);
      for (let i = 0; i < ref.length; i++) expect(Object.is(got[i], ref[i]) || got[i] === ref[i]).toBe(true);
      expect(Object.is(got[got.length - 1], -0)).toBe(true);
    }
  });

  it('falls back to the general reader for what the loop does not take, with the same answers and errors', () => {
    const one = (data: string, dt = 'FP32') =>
      decodeInferRequest(Buffer.from(`{"inputs":[{"name":"x","datatype":"${dt}","shape":[2],"data":${data}}]}`)).inputs[0]
        .data as Float32Array;
    expect(Array.from(one('["NaN", -1.5]'))).toEqual([NaN, -1.5]);
    expect(Array.from(one('[[1], [2]]'))).toEqual([1, 2]);
    expect(Array.from(one('[1.00000000000000000000001, 2]', 'FP64'))).toEqual([1, 2]);
    expect(codeOf(() => one('[1, 2, 3]')).code).toBe('INVALID_TENSOR');
    expect(codeOf(() => one('[1, ]')).code).toBe('INVALID_REQUEST');
    expect(codeOf(() => one('[1, 2')).code).toBe('INVALID_REQUEST');
    expect(codeOf(() => one('[1., 2]')).code).toBe('INVALID_REQUEST');
  });
});
