// Every V2 datatype round-trips through HTTP, in JSON and in the binary extension, through one Identity
// ONNX fixture per datatype (x[-1,-1] -> y[-1,-1]): what goes in comes back bit for bit.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATATYPES, type Datatype, type Tensor } from '../../core/index.ts';
import { decodeInferResponse, encodeInferRequest, floatToHalfBits } from '../../protocol/index.ts';
import { IDENTITY_FIXTURES, onnxFixtureDir } from '../fixtures/golden.ts';
import { startV2Rig, type V2Rig } from './v2-rig.ts';

let rig: V2Rig;

/** Six elements per datatype, including each range's edges; INT64/UINT64 beyond 2^53. */
const DATA: Record<Datatype, Tensor['data']> = {
  BOOL: Uint8Array.of(1, 0, 0, 1, 1, 0),
  UINT8: Uint8Array.of(0, 1, 127, 128, 254, 255),
  UINT16: Uint16Array.of(0, 1, 300, 32768, 65534, 65535),
  UINT32: Uint32Array.of(0, 1, 70000, 2147483648, 4294967294, 4294967295),
  UINT64: BigUint64Array.of(0n, 1n, 9007199254740993n, 2n ** 63n, 18446744073709551614n, 18446744073709551615n),
  INT8: Int8Array.of(-128, -1, 0, 1, 100, 127),
  INT16: Int16Array.of(-32768, -1, 0, 1, 1000, 32767),
  INT32: Int32Array.of(-2147483648, -1, 0, 1, 123456789, 2147483647),
  INT64: BigInt64Array.of(-(2n ** 63n), -9007199254740993n, -1n, 0n, 9007199254740993n, 2n ** 63n - 1n),
  FP16: Uint16Array.from([0, -0, 1, -2.5, 65504, 2 ** -24], floatToHalfBits),
  FP32: Float32Array.of(0, -1.5, 0.1, 3.4028234663852886e38, 1.401298464324817e-45, -123.456),
  FP64: Float64Array.of(0, -1.5, 0.1, 1.7976931348623157e308, 5e-324, Math.PI),
  BYTES: ['', 'a', 'héllo wörld', 'quote " backslash \\', 'line\nbreak', '日本語'],
};

const modelName = (dt: Datatype) => `id-${dt.toLowerCase()}`;

beforeAll(async () => {
  rig = await startV2Rig();
  // Uploads and warm-ups in parallel: thirteen inspections and cold starts one after another take long.
  await Promise.all(
    IDENTITY_FIXTURES.map(async ({ datatype, name }) => {
      const payload = fs.readFileSync(path.join(onnxFixtureDir(name), 'model.onnx'));
      const res = await rig.app.inject({
        method: 'POST',
        url: `/v1/models/${modelName(datatype)}`,
        headers: { 'content-type': 'application/octet-stream' },
        payload,
      });
      expect(res.statusCode, datatype).toBe(201);
      const load = await rig.app.inject({ method: 'POST', url: `/v2/repository/models/${modelName(datatype)}/load` });
      expect(load.statusCode, datatype).toBe(200);
    }),
  );
});

afterAll(async () => {
  await rig?.close();
});

describe('every datatype through an Identity model over HTTP', () => {
  it('covers all thirteen datatypes', () => {
    expect(IDENTITY_FIXTURES.map((f) => f.datatype)).toEqual([...DATATYPES]);
  });

  for (const dt of DATATYPES) {
    it(`${dt}: JSON in, JSON out; binary in, binary out; equal to the input`, async () => {
      const meta = (await rig.app.inject({ url: `/v2/models/${modelName(dt)}` })).json();
      expect(meta.inputs).toEqual([{ name: 'x', datatype: dt, shape: [-1, -1] }]);
      const x: Tensor = { name: 'x', datatype: dt, shape: [2, 3], data: DATA[dt] };

      const json = encodeInferRequest({ id: `json-${dt}`, inputs: [x] });
      const r1 = await rig.app.inject({
        method: 'POST',
        url: `/v2/models/${modelName(dt)}/infer`,
        headers: { 'content-type': json.contentType },
        payload: json.body,
      });
      expect(r1.statusCode, r1.body).toBe(200);
      expect(r1.headers['content-type']).toMatch(/application\/json/);
      const o1 = decodeInferResponse(r1.rawPayload);
      expect(o1.id).toBe(`json-${dt}`);
      expect(o1.outputs).toEqual([{ ...x, name: 'y' }]);

      const bin = encodeInferRequest({ inputs: [x], outputs: [{ name: 'y', parameters: { binary_data: true } }] }, { binaryInputs: true });
      const r2 = await rig.app.inject({
        method: 'POST',
        url: `/v2/models/${modelName(dt)}/versions/1/infer`,
        headers: { 'content-type': bin.contentType, 'inference-header-content-length': String(bin.headerLength) },
        payload: bin.body,
      });
      expect(r2.statusCode, r2.body).toBe(200);
      expect(r2.headers['content-type']).toBe('application/octet-stream');
      const hl = Number(r2.headers['inference-header-content-length']);
      const o2 = decodeInferResponse(r2.rawPayload, hl);
      expect(o2.outputs).toEqual([{ ...x, name: 'y' }]);
      expect(r1.headers['hearth-cold-start']).toBe('false'); // warmed by the repository load above
      expect(r2.headers['hearth-cold-start']).toBe('false');
    });
  }

  it('a JSON INT64 beyond 2^53 written by hand comes back with the same digits', async () => {
    const text = '{"inputs":[{"name":"x","datatype":"INT64","shape":[1,2],"data":[[9223372036854775807,-9007199254740993]]}]}';
    const res = await rig.app.inject({
      method: 'POST',
      url: '/v2/models/id-int64/infer',
      headers: { 'content-type': 'application/json' },
      payload: text,
    });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('"data":[9223372036854775807,-9007199254740993]');
  });
});
