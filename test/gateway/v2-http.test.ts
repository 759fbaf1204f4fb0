// The Open Inference Protocol over HTTP with real models: silero VAD (ONNX) against a direct onnxruntime
// session.run, the upscaler (TF.js layers) against a direct runtime run, cold then warm in the headers,
// the binary extension both ways, metadata, readiness, the repository extension, statistics, and every bad call.
import { deflateSync, gzipSync } from 'node:zlib';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../core/index.ts';
import { decodeInferResponse, encodeInferRequest } from '../../protocol/index.ts';
import { TfjsRuntime } from '../../functions/tfjs-runtime.ts';
import { SILERO_VAD_FILE, UPSCALER_DIR } from '../fixtures/golden.ts';
import { multipartBody, sileroBytes, upscalerFiles } from '../helpers/model-bodies.ts';
import { startV2Rig, type V2Rig } from './v2-rig.ts';

let rig: V2Rig;

function sileroInputs(seed: number): Tensor[] {
  const n = 512;
  const audio = new Float32Array(n);
  for (let i = 0; i < n; i++) audio[i] = Math.sin((i + seed) / 7) * 0.5 + Math.cos(i * seed) * 0.1;
  const h = new Float32Array(128).map((_, i) => Math.sin(i + seed) * 0.2);
  return [
    { name: 'input', datatype: 'FP32', shape: [1, n], data: audio },
    { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
    { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: h },
    { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: new Float32Array(128) },
  ];
}

/** The V2 JSON body of some tensors, with data as plain arrays (as a Python or curl client sends it). */
function jsonBody(inputs: Tensor[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    ...extra,
    inputs: inputs.map((t) => ({
      name: t.name,
      shape: t.shape,
      datatype: t.datatype,
      data: Array.from(t.data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? Number(v) : v)),
    })),
  });
}

function post(url: string, payload: string | Buffer, headers: Record<string, string> = {}) {
  return rig.app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json', ...headers } });
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function directSilero(inputs: Tensor[]): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(SILERO_VAD_FILE, { intraOpNumThreads: 1 });
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of inputs) feeds[t.name] = new ort.Tensor(t.datatype === 'INT64' ? 'int64' : 'float32', t.data, t.shape);
  const out = await session.run(feeds);
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

beforeAll(async () => {
  rig = await startV2Rig();
  const vad = await rig.app.inject({
    method: 'POST',
    url: '/v1/models/vad',
    headers: { 'content-type': 'application/octet-stream' },
    payload: sileroBytes(),
  });
  expect(vad.statusCode).toBe(201);
  const tf = multipartBody(upscalerFiles().map((f) => ({ filename: f.path, data: f.data })));
  const up = await rig.app.inject({
    method: 'POST',
    url: '/v1/models/upscaler',
    headers: { 'content-type': tf.contentType },
    payload: tf.body,
  });
  expect(up.statusCode).toBe(201);
});

afterAll(async () => {
  await rig?.close();
});

describe('server and model metadata', () => {
  it('GET /v2 names the server and its extensions', async () => {
    const res = await rig.app.inject({ url: '/v2' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      name: 'hearth',
      version: expect.any(String),
      extensions: expect.arrayContaining(['binary_tensor_data', 'model_repository', 'statistics']),
    });
  });

  it('GET /v2/models/{m} and /versions/{v} describe inputs and outputs with -1 for dynamic dims', async () => {
    const res = await rig.app.inject({ url: '/v2/models/vad' });
    expect(res.statusCode).toBe(200);
    const m = res.json();
    expect(m).toMatchObject({ name: 'vad', versions: ['1'], platform: 'onnxruntime_onnx' });
    expect(m.inputs.map((i: { name: string }) => i.name)).toEqual(['input', 'sr', 'h', 'c']);
    expect(m.inputs[0]).toEqual({ name: 'input', datatype: 'FP32', shape: [-1, -1] });
    expect(m.inputs[1]).toEqual({ name: 'sr', datatype: 'INT64', shape: [] });
    expect(m.outputs.map((o: { name: string }) => o.name)).toEqual(['output', 'hn', 'cn']);
    expect((await rig.app.inject({ url: '/v2/models/vad/versions/1' })).json()).toEqual(m);
    const up = (await rig.app.inject({ url: '/v2/models/upscaler' })).json();
    expect(up).toMatchObject({ name: 'upscaler', platform: 'tensorflow_js' });
    expect(up.inputs[0]).toMatchObject({ datatype: 'FP32', shape: [-1, -1, -1, 3] });
  });

  it('unknown model or version answers 404 with its code', async () => {
    const cases: [string, string, string, number][] = [
      ['GET', '/v2/models/nope', 'MODEL_NOT_FOUND', 404],
      ['GET', '/v2/models/vad/versions/9', 'VERSION_NOT_FOUND', 404],
      ['GET', '/v2/models/nope/ready', 'MODEL_NOT_FOUND', 404],
      ['GET', '/v2/models/vad/versions/9/ready', 'VERSION_NOT_FOUND', 404],
      ['POST', '/v2/models/nope/infer', 'MODEL_NOT_FOUND', 404],
      ['POST', '/v2/models/vad/versions/9/infer', 'VERSION_NOT_FOUND', 404],
      ['GET', '/v2/models/nope/stats', 'MODEL_NOT_FOUND', 404],
      ['POST', '/v2/repository/models/nope/load', 'MODEL_NOT_FOUND', 404],
      ['POST', '/v2/repository/models/nope/unload', 'MODEL_NOT_FOUND', 404],
      ['GET', '/v2/models/vad/versions/x1', 'INVALID_NAME', 400],
    ];
    const junk = await post('/v2/models/nope/infer', 'not json');
    expect(junk.statusCode).toBe(404);
    expect(junk.json().code).toBe('MODEL_NOT_FOUND');
    for (const [method, url, code, status] of cases) {
      const res = await rig.app.inject({
        method: method as 'GET' | 'POST',
        url,
        payload: method === 'POST' ? jsonBody(sileroInputs(1)) : undefined,
        headers: method === 'POST' ? { 'content-type': 'application/json' } : {},
      });
      expect(res.statusCode, url).toBe(status);
      expect(res.json(), url).toEqual({ error: expect.any(String), code });
      // Triton's wording, which Triton and KServe client code matches on.
      if (code === 'MODEL_NOT_FOUND' && !url.endsWith('/load'))
        expect(res.json().error, url).toBe("Request for unknown model: 'nope' is not found");
      if (code === 'VERSION_NOT_FOUND') expect(res.json().error, url).toBe("Request for unknown model: 'vad' version 9 is not found");
    }
  });
});

describe('silero VAD over HTTP', () => {
  it('a cold first call, then a warm one; outputs equal a direct session.run within 1e-4', async () => {
    const ready = await rig.app.inject({ url: '/v2/models/vad/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.body).toBe('');
    expect(ready.headers['hearth-warm']).toBe('false');

    const inputs = sileroInputs(1);
    const first = await post('/v2/models/vad/infer', jsonBody(inputs, { id: 'first-call' }));
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toMatch(/application\/json/);
    expect(first.headers['hearth-cold-start']).toBe('true');
    expect(Number(first.headers['hearth-cold-start-ms'])).toBeGreaterThan(0);
    expect(first.headers['hearth-cold-start-breakdown']).toMatch(
      /^acquire=[\d.]+;fetch=[\d.]+;source=(store|cache);load=[\d.]+;first-run=[\d.]+$/,
    );
    expect(Number(first.headers['hearth-queue-ms'])).toBeGreaterThanOrEqual(0);
    expect(Number(first.headers['hearth-compute-ms'])).toBeGreaterThan(0);
    const body = first.json();
    expect(body).toMatchObject({ model_name: 'vad', model_version: '1', id: 'first-call' });
    expect(body.outputs.map((o: { name: string }) => o.name)).toEqual(['output', 'hn', 'cn']);

    const direct = await directSilero(inputs);
    for (const o of body.outputs as { name: string; datatype: string; shape: number[]; data: number[] }[]) {
      expect(o.datatype).toBe('FP32');
      expect(maxDiff(o.data, direct[o.name])).toBeLessThanOrEqual(1e-4);
    }

    const second = await post('/v2/models/vad/infer', jsonBody(sileroInputs(2)));
    expect(second.statusCode).toBe(200);
    expect(second.headers['hearth-cold-start']).toBe('false');
    expect(second.headers['hearth-cold-start-breakdown']).toBeUndefined();
    expect(second.json().id).toBeUndefined();
    expect((await rig.app.inject({ url: '/v2/models/vad/ready' })).headers['hearth-warm']).toBe('true');
  });

  it('binary inputs and binary outputs (binary_data_output), equal to the direct run', async () => {
    const inputs = sileroInputs(3);
    const enc = encodeInferRequest({ id: 'bin', parameters: { binary_data_output: true }, inputs }, { binaryInputs: true });
    const res = await post('/v2/models/vad/infer', enc.body, {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(enc.headerLength),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    const hl = Number(res.headers['inference-header-content-length']);
    expect(hl).toBeGreaterThan(0);
    const head = JSON.parse(res.rawPayload.subarray(0, hl).toString());
    expect(head.outputs[0]).toEqual({ name: 'output', datatype: 'FP32', shape: [1, 1], parameters: { binary_data_size: 4 } });
    const out = decodeInferResponse(res.rawPayload, hl);
    expect(out.id).toBe('bin');
    const direct = await directSilero(inputs);
    for (const t of out.outputs) expect(maxDiff(t.data as Float32Array, direct[t.name])).toBeLessThanOrEqual(1e-4);
  });

  it('selected outputs only, one binary and one JSON, in the order asked', async () => {
    const inputs = sileroInputs(4);
    const res = await post(
      '/v2/models/vad/infer',
      jsonBody(inputs, { outputs: [{ name: 'hn', parameters: { binary_data: true } }, { name: 'output' }] }),
    );
    expect(res.statusCode).toBe(200);
    const hl = Number(res.headers['inference-header-content-length']);
    const head = JSON.parse(res.rawPayload.subarray(0, hl).toString());
    expect(head.outputs.map((o: { name: string }) => o.name)).toEqual(['hn', 'output']);
    expect(head.outputs[0].parameters).toEqual({ binary_data_size: 2 * 64 * 4 });
    expect(head.outputs[1].data).toHaveLength(1);
    expect(res.rawPayload.length).toBe(hl + 512);
  });

  it('takes a priority from the request parameters or the hearth-priority header; anything outside 0-9 is a 400', async () => {
    expect((await post('/v2/models/vad/infer', jsonBody(sileroInputs(5), { parameters: { priority: 9 } }))).statusCode).toBe(200);
    expect((await post('/v2/models/vad/infer', jsonBody(sileroInputs(5)), { 'hearth-priority': '0' })).statusCode).toBe(200);
    for (const [payload, headers] of [
      [jsonBody(sileroInputs(5), { parameters: { priority: 10 } }), {}],
      [jsonBody(sileroInputs(5), { parameters: { priority: 'high' } }), {}],
      [jsonBody(sileroInputs(5)), { 'hearth-priority': '-1' }],
      [jsonBody(sileroInputs(5)), { 'hearth-priority': 'urgent' }],
    ] as [string, Record<string, string>][]) {
      const res = await post('/v2/models/vad/infer', payload, headers);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ error: expect.stringMatching(/priority"?: expected an integer from 0 to 9/), code: 'INVALID_REQUEST' });
    }
  });
});

describe('bad calls', () => {
  const good = () =>
    JSON.parse(jsonBody(sileroInputs(6))) as { inputs: { name: string; shape: number[]; datatype: string; data: unknown }[] };
  const cases: [string, () => string, string, RegExp][] = [
    [
      'missing input',
      () => {
        const b = good();
        b.inputs.splice(1, 1);
        return JSON.stringify(b);
      },
      'INVALID_TENSOR',
      /input "sr": missing/,
    ],
    [
      'unknown input',
      () => {
        const b = good();
        b.inputs.push({ name: 'extra', shape: [1], datatype: 'FP32', data: [1] });
        return JSON.stringify(b);
      },
      'INVALID_TENSOR',
      /input "extra": not an input of model "vad"/,
    ],
    [
      'wrong datatype',
      () => {
        const b = good();
        b.inputs[1].datatype = 'INT32';
        return JSON.stringify(b);
      },
      'INVALID_TENSOR',
      /input "sr": expected datatype INT64, got INT32/,
    ],
    [
      'wrong shape',
      () => {
        const b = good();
        b.inputs[2].shape = [2, 64];
        return JSON.stringify(b);
      },
      'INVALID_TENSOR',
      /input "h": expected shape \[2,-1,64\], got \[2,64\]/,
    ],
    [
      'wrong data length',
      () => {
        const b = good();
        b.inputs[0].shape = [1, 500];
        return JSON.stringify(b);
      },
      'INVALID_TENSOR',
      /input "input": shape \[1,500\] needs 500 elements, got 512/,
    ],
    ['non-JSON body', () => 'this is not json', 'INVALID_REQUEST', /not valid JSON/],
    ['empty body', () => '', 'INVALID_REQUEST', /empty/],
    ['unknown output', () => JSON.stringify({ ...good(), outputs: [{ name: 'prob' }] }), 'INVALID_REQUEST', /output "prob": not an output/],
  ];
  for (const [label, payload, code, message] of cases) {
    it(`${label} -> 400 ${code}`, async () => {
      const res = await post('/v2/models/vad/infer', payload());
      expect(res.statusCode).toBe(400);
      const body = res.json();
      expect(body.code).toBe(code);
      expect(body.error).toMatch(message);
    });
  }

  it('a text/plain body is read as JSON too, and still refused when it is not', async () => {
    const ok = await post('/v2/models/vad/infer', jsonBody(sileroInputs(7)), { 'content-type': 'text/plain' });
    expect(ok.statusCode).toBe(200);
    const bad = await post('/v2/models/vad/infer', 'a,b,c', { 'content-type': 'text/csv' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('INVALID_REQUEST');
  });

  it('reads gzip and deflate request bodies (binary too); refuses other encodings and corrupt ones', async () => {
    const inputs = sileroInputs(11);
    const plain = (await post('/v2/models/vad/infer', jsonBody(inputs))).json();
    const gz = await post('/v2/models/vad/infer', gzipSync(jsonBody(inputs)), { 'content-encoding': 'gzip' });
    expect(gz.statusCode).toBe(200);
    expect(gz.json().outputs).toEqual(plain.outputs);
    const enc = encodeInferRequest({ inputs }, { binaryInputs: true });
    const df = await post('/v2/models/vad/infer', deflateSync(enc.body), {
      'content-type': 'application/octet-stream',
      'content-encoding': 'deflate',
      'inference-header-content-length': String(enc.headerLength),
    });
    expect(df.statusCode).toBe(200);
    expect(df.json().outputs).toEqual(plain.outputs);
    const br = await post('/v2/models/vad/infer', jsonBody(inputs), { 'content-encoding': 'br' });
    expect(br.statusCode).toBe(415);
    expect(br.json().code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const bad = await post('/v2/models/vad/infer', 'not gzip at all', { 'content-encoding': 'gzip' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('INVALID_REQUEST');
  });

  it('a bad Inference-Header-Content-Length -> 400 INVALID_REQUEST', async () => {
    for (const hl of ['abc', '999999']) {
      const res = await post('/v2/models/vad/infer', jsonBody(sileroInputs(8)), { 'inference-header-content-length': hl });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('INVALID_REQUEST');
    }
  });
});

describe('upscaler (TF.js layers) over HTTP', () => {
  it('equals a direct TF.js runtime run within 1e-3', async () => {
    const meta = (await rig.app.inject({ url: '/v2/models/upscaler' })).json();
    const inputName = meta.inputs[0].name as string;
    const [h, w] = [6, 5];
    const pixels = new Float32Array(h * w * 3).map((_, i) => ((i * 37) % 255) / 255);
    const input: Tensor = { name: inputName, datatype: 'FP32', shape: [1, h, w, 3], data: pixels };
    const enc = encodeInferRequest({ inputs: [input], parameters: { binary_data_output: true } }, { binaryInputs: true });
    const res = await post('/v2/models/upscaler/infer', enc.body, {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(enc.headerLength),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['hearth-cold-start']).toBe('true');
    const [out] = decodeInferResponse(res.rawPayload, Number(res.headers['inference-header-content-length'])).outputs;
    expect(out.shape).toEqual([1, h * 2, w * 2, 3]);

    const runtime = new TfjsRuntime();
    const session = await runtime.load({ dir: UPSCALER_DIR, format: 'tfjs-layers' });
    const [direct] = await session.run([input]);
    await session.dispose();
    expect(direct.shape).toEqual(out.shape);
    expect(maxDiff(out.data as Float32Array, direct.data as Float32Array)).toBeLessThanOrEqual(1e-3);
  });

  it('takes flat JSON data of over 16 KiB (parsed on the instance thread) and prints the output there, equal to a direct run', async () => {
    const meta = (await rig.app.inject({ url: '/v2/models/upscaler' })).json();
    const [h, w] = [32, 24];
    const pixels = new Float32Array(h * w * 3).map((_, i) => ((i * 53) % 255) / 255);
    const input: Tensor = { name: meta.inputs[0].name as string, datatype: 'FP32', shape: [1, h, w, 3], data: pixels };
    const json = encodeInferRequest({ inputs: [input] });
    // Long enough for the route to leave the array as text (Config.deferJsonBytes, 16 KiB unless DEFER_JSON_BYTES says otherwise).
    expect(json.body.length - 200).toBeGreaterThan(16 * 1024);
    const res = await post('/v2/models/upscaler/infer', json.body, { 'content-type': 'application/json' });
    expect(res.statusCode).toBe(200);
    const [out] = decodeInferResponse(res.rawPayload).outputs;
    expect(out.shape).toEqual([1, h * 2, w * 2, 3]);

    const runtime = new TfjsRuntime();
    const session = await runtime.load({ dir: UPSCALER_DIR, format: 'tfjs-layers' });
    const [direct] = await session.run([input]);
    await session.dispose();
    expect(maxDiff(out.data as Float32Array, direct.data as Float32Array)).toBeLessThanOrEqual(1e-3);
  });
});

describe('model repository and statistics', () => {
  it('index lists every version as READY; load warms an instance and unload retires it', async () => {
    const index = await post('/v2/repository/index', '');
    expect(index.statusCode).toBe(200);
    const rows = index.json<{ name: string; version: string; state: string; reason: string }[]>();
    expect(rows.map((r) => [r.name, r.version, r.state])).toEqual([
      ['upscaler', '1', 'READY'],
      ['vad', '1', 'READY'],
    ]);
    expect((await post('/v2/repository/index', '{"ready":true}')).json()).toHaveLength(2);
    expect((await post('/v2/repository/index', '{"ready":"yes"}')).statusCode).toBe(400);

    const unload = await post('/v2/repository/models/vad/unload', '');
    expect(unload.statusCode).toBe(200);
    expect(rig.executor.isLoaded('vad', 1)).toBe(false);
    expect((await rig.app.inject({ url: '/v2/models/vad/ready' })).headers['hearth-warm']).toBe('false');

    const load = await post('/v2/repository/models/vad/load', '{}');
    expect(load.statusCode).toBe(200);
    expect(rig.executor.isLoaded('vad', 1)).toBe(true);
    const after = (await post('/v2/repository/index', '{}')).json<{ name: string; reason: string }[]>();
    expect(after.find((r) => r.name === 'vad')!.reason).toMatch(/^warm/);
    // After an explicit load the next call is warm.
    const res = await post('/v2/models/vad/infer', jsonBody(sileroInputs(9)));
    expect(res.headers['hearth-cold-start']).toBe('false');

    // Triton's config parameter: what Hearth cannot map answers 400 naming the field (more in triton-compat.test.ts).
    const cfg = await post('/v2/repository/models/vad/load', JSON.stringify({ parameters: { config: '{"optimization":{}}' } }));
    expect(cfg.statusCode).toBe(400);
    expect(cfg.json()).toMatchObject({ code: 'INVALID_CONFIG', error: expect.stringContaining('config.optimization') });
  });

  it('stats follow Triton model_stats, for all models, one model and one version', async () => {
    const all = await rig.app.inject({ url: '/v2/models/stats' });
    expect(all.statusCode).toBe(200);
    const names = (all.json().model_stats as { name: string }[]).map((s) => s.name);
    expect(names).toEqual(['upscaler', 'vad']);

    const one = (await rig.app.inject({ url: '/v2/models/vad/stats' })).json().model_stats;
    expect(one).toHaveLength(1);
    const s = one[0];
    expect(s).toMatchObject({ name: 'vad', version: '1' });
    expect(s.inference_count).toBeGreaterThanOrEqual(5);
    expect(s.execution_count).toBeGreaterThanOrEqual(1);
    expect(s.last_inference).toBeGreaterThan(0);
    expect(s.inference_stats.success.count).toBe(s.inference_count);
    expect(s.inference_stats.success.ns).toBeGreaterThan(0);
    expect(s.inference_stats.compute_infer.count).toBeGreaterThan(0);
    expect(Object.keys(s.inference_stats).sort()).toEqual([
      'cache_hit',
      'compute_infer',
      'compute_input',
      'compute_output',
      'fail',
      'queue',
      'success',
    ]);
    expect(s.batch_stats).toEqual([]);

    const v = (await rig.app.inject({ url: '/v2/models/vad/versions/1/stats' })).json().model_stats;
    expect(v).toHaveLength(1);
    expect(v[0].inference_count).toBe(s.inference_count);
    const missing = await rig.app.inject({ url: '/v2/models/vad/versions/3/stats' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('VERSION_NOT_FOUND');
  });
});

describe('versions on the infer path', () => {
  it('a new upload or a delete through /v1/models shows at once on the latest path', async () => {
    expect((await post('/v2/models/vad/infer', jsonBody(sileroInputs(10)))).json().model_version).toBe('1');
    const up = await rig.app.inject({
      method: 'POST',
      url: '/v1/models/vad',
      headers: { 'content-type': 'application/octet-stream' },
      payload: sileroBytes(),
    });
    expect(up.statusCode).toBe(201);
    const v2 = await post('/v2/models/vad/infer', jsonBody(sileroInputs(10)));
    expect(v2.json().model_version).toBe('2');
    expect((await post('/v2/models/vad/versions/1/infer', jsonBody(sileroInputs(10)))).json().model_version).toBe('1');
    expect((await rig.app.inject({ method: 'DELETE', url: '/v1/models/vad/versions/2' })).statusCode).toBeLessThan(300);
    expect((await post('/v2/models/vad/infer', jsonBody(sileroInputs(10)))).json().model_version).toBe('1');
    const gone = await post('/v2/models/vad/versions/2/infer', jsonBody(sileroInputs(10)));
    expect(gone.statusCode).toBe(404);
    expect(gone.json().code).toBe('VERSION_NOT_FOUND');
  });
});

// Silero's frame (about 10 KB of JSON) and states (about 2.6 KB) are parsed on the HTTP thread by default; with
// DEFER_JSON_BYTES=1024 they reach the instance as JSON text and are parsed there, inside the merged run.
describe.each([
  { where: 'on the HTTP thread (default DEFER_JSON_BYTES)', env: undefined },
  { where: 'on the instance thread (DEFER_JSON_BYTES=1024)', env: { DEFER_JSON_BYTES: '1024' } },
])('a burst of JSON calls over a real socket, one of them bad, parsed $where', ({ env }) => {
  let base: string;
  let own: V2Rig | undefined;
  beforeAll(async () => {
    let app = rig.app;
    if (env) {
      own = await startV2Rig(env);
      const vad = await own.app.inject({
        method: 'POST',
        url: '/v1/models/vad',
        headers: { 'content-type': 'application/octet-stream' },
        payload: sileroBytes(),
      });
      expect(vad.statusCode).toBe(201);
      app = own.app;
    }
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address() as { port: number };
    base = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(async () => {
    await own?.close();
  });

  it("16 good calls answer 200 with the direct run's outputs; the frame one number short answers 400 INVALID_TENSOR alone", async () => {
    const inputs = Array.from({ length: 16 }, (_, i) => {
      const t = sileroInputs(200 + i);
      t[3] = { ...t[3], data: new Float32Array(128).map((_, k) => Math.cos(k * (i + 1)) * 0.1) };
      return t;
    });
    const bodies = inputs.map((t, i) => jsonBody(t, { id: `burst-${i}` }));
    const bad = JSON.parse(jsonBody(sileroInputs(299), { id: 'burst-bad' })) as { inputs: { name: string; data: number[] }[] };
    bad.inputs[0].data = bad.inputs[0].data.slice(0, 511);
    const all = [...bodies.slice(0, 8), JSON.stringify(bad), ...bodies.slice(8)];
    const responses = await Promise.all(
      all.map(async (body) => {
        const res = await fetch(`${base}/v2/models/vad/versions/1/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        return { status: res.status, json: (await res.json()) as Record<string, unknown> };
      }),
    );

    const badRes = responses[8];
    expect(badRes.status).toBe(400);
    expect(badRes.json).toEqual({ code: 'INVALID_TENSOR', error: 'input "input": shape [1,512] needs 512 elements, got 511' });

    const good = responses.filter((_, k) => k !== 8);
    for (let i = 0; i < 16; i++) {
      const { status, json } = good[i];
      expect(status, `call ${i}`).toBe(200);
      expect(json).toMatchObject({ model_name: 'vad', model_version: '1', id: `burst-${i}` });
      const outputs = json.outputs as { name: string; datatype: string; shape: number[]; data: number[] }[];
      expect(outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([
        ['output', 'FP32', [1, 1]],
        ['hn', 'FP32', [2, 1, 64]],
        ['cn', 'FP32', [2, 1, 64]],
      ]);
      const want = await directSilero(inputs[i]);
      for (const o of outputs) {
        // Printed as float32 text: at most 9 significant digits, the shortest that reads back as the float32.
        expect(
          Array.from(o.data as ArrayLike<number>).every(
            (v) => String(Math.abs(v)).replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').length <= 9,
          ),
        ).toBe(true);
        expect(maxDiff(o.data, want[o.name]), `${o.name} of call ${i}`).toBeLessThanOrEqual(1e-5);
      }
    }
  });
});
