// What Triton's client code expects beyond the data path, over real HTTP on 127.0.0.1 with the real silero VAD:
// Triton's wording for unknown models and versions, the model configuration extension, the load `config`
// parameter, not-ready after an unload, and compressed responses. Requests are shaped as tritonclient.http builds
// them (no Content-Type, Inference-Header-Content-Length, binary_data_size / binary_data parameters, gzip request
// bodies with Content-Encoding, Accept-Encoding for the answer), and answers are read as it reads them.
import http from 'node:http';
import { gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModelConfig } from '../../core/index.ts';
import { pickEncoding } from '../../gateway/response-compression.ts';
import { patchFromTritonConfig, toTritonConfig } from '../../gateway/triton-config.ts';
import { sileroBytes, sileroManifest, stubManifest } from '../helpers/model-bodies.ts';
import { startV2Rig, type V2Rig } from './v2-rig.ts';

let rig: V2Rig;
let port: number;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body as it came over the wire (compressed when content-encoding says so). */
  raw: Buffer;
  /** The body inflated as tritonclient does when Content-Encoding is gzip or deflate. */
  body: Buffer;
  json<T = Record<string, unknown>>(): T;
}

/** One HTTP exchange with exactly these headers (node's http adds Host, Content-Length and Connection only). */
function call(method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const enc = res.headers['content-encoding'];
        const inflated = enc === 'gzip' ? gunzipSync(raw) : enc === 'deflate' ? inflateSync(raw) : raw;
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          raw,
          body: inflated,
          json: <T>() => JSON.parse(inflated.toString('utf8')) as T,
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** tritonclient.http's InferInput.set_data_from_numpy(binary_data=True) for every input, and binary outputs. */
function tritonBinaryRequest(seed: number, opts: { binaryOutputs?: boolean } = {}): { body: Buffer; headerLength: number } {
  const audio = new Float32Array(512).map((_, i) => Math.sin((i + seed) / 7) * 0.5);
  const h = new Float32Array(128).map((_, i) => Math.sin(i + seed) * 0.2);
  const c = new Float32Array(128);
  const sr = BigInt64Array.of(16000n);
  const tensors = [
    { name: 'input', datatype: 'FP32', shape: [1, 512], bytes: Buffer.from(audio.buffer) },
    { name: 'sr', datatype: 'INT64', shape: [], bytes: Buffer.from(sr.buffer) },
    { name: 'h', datatype: 'FP32', shape: [2, 1, 64], bytes: Buffer.from(h.buffer) },
    { name: 'c', datatype: 'FP32', shape: [2, 1, 64], bytes: Buffer.from(c.buffer) },
  ];
  const header = {
    inputs: tensors.map((t) => ({ name: t.name, shape: t.shape, datatype: t.datatype, parameters: { binary_data_size: t.bytes.length } })),
    outputs: ['output', 'hn', 'cn'].map((name) => ({ name, parameters: { binary_data: opts.binaryOutputs ?? true } })),
  };
  // Python's json.dumps separators, as tritonclient sends them.
  const json = Buffer.from(JSON.stringify(header).replace(/([,:])(?=["{[\d-])/g, '$1 '));
  return { body: Buffer.concat([json, ...tensors.map((t) => t.bytes)]), headerLength: json.length };
}

/** tritonclient.http's InferResult: the JSON header, then each binary output's bytes in order. */
function readTritonResult(a: Answer): {
  json: { outputs: { name: string; shape: number[]; datatype: string; data?: number[]; parameters?: { binary_data_size?: number } }[] };
  values: Map<string, number[]>;
} {
  const headerLength = a.headers['inference-header-content-length'];
  const jsonLength = headerLength === undefined ? a.body.length : Number(headerLength);
  const json = JSON.parse(a.body.subarray(0, jsonLength).toString('utf8'));
  const values = new Map<string, number[]>();
  let at = jsonLength;
  for (const o of json.outputs) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) {
      values.set(o.name, o.data);
      continue;
    }
    const bytes = a.body.subarray(at, at + size);
    at += size;
    expect(o.datatype).toBe('FP32');
    values.set(o.name, Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))));
  }
  expect(at).toBe(a.body.length);
  return { json, values };
}

const json = (v: unknown) => JSON.stringify(v);
const loadBody = (config: unknown) => json({ parameters: { config: typeof config === 'string' ? config : json(config) } });

beforeAll(async () => {
  rig = await startV2Rig();
  await rig.app.listen({ port: 0, host: '127.0.0.1' });
  port = (rig.app.server.address() as { port: number }).port;
  const up = await call('POST', '/v1/models/vad', sileroBytes(), { 'content-type': 'application/octet-stream' });
  expect(up.status, up.body.toString()).toBe(201);
});

afterAll(async () => {
  await rig?.close();
});

describe('unknown model and version, in Triton wording', () => {
  it("every V2 route answers 404 with Triton's message and Hearth's code", async () => {
    const model = "Request for unknown model: 'nope' is not found";
    const version = "Request for unknown model: 'vad' version 9 is not found";
    const { body, headerLength } = tritonBinaryRequest(1);
    const infer = { 'inference-header-content-length': String(headerLength) };
    const cases: [string, string, string, string][] = [
      ['GET', '/v2/models/nope', model, 'MODEL_NOT_FOUND'],
      ['GET', '/v2/models/nope/ready', model, 'MODEL_NOT_FOUND'],
      ['GET', '/v2/models/nope/config', model, 'MODEL_NOT_FOUND'],
      ['GET', '/v2/models/nope/stats', model, 'MODEL_NOT_FOUND'],
      ['POST', '/v2/models/nope/infer', model, 'MODEL_NOT_FOUND'],
      ['POST', '/v2/repository/models/nope/unload', model, 'MODEL_NOT_FOUND'],
      ['GET', '/v2/models/vad/versions/9', version, 'VERSION_NOT_FOUND'],
      ['GET', '/v2/models/vad/versions/9/ready', version, 'VERSION_NOT_FOUND'],
      ['GET', '/v2/models/vad/versions/9/config', version, 'VERSION_NOT_FOUND'],
      ['GET', '/v2/models/vad/versions/9/stats', version, 'VERSION_NOT_FOUND'],
      ['POST', '/v2/models/vad/versions/9/infer', version, 'VERSION_NOT_FOUND'],
    ];
    for (const [method, path, error, code] of cases) {
      const unload = path.endsWith('/unload');
      const res = await call(
        method,
        path,
        unload ? json({ parameters: { unload_dependents: false } }) : method === 'POST' ? body : undefined,
        method === 'POST' && !unload ? infer : {},
      );
      expect([res.status, res.json()], path).toEqual([404, { error, code }]);
    }
    // Hearth's own routes say it the same way.
    expect((await call('GET', '/v1/models/nope')).json()).toEqual({ error: model, code: 'MODEL_NOT_FOUND' });
  });

  it("a load of a model the repository does not hold answers Triton's \"failed to load '{m}'\"", async () => {
    const res = await call('POST', '/v2/repository/models/nope/load', '{}');
    expect(res.status).toBe(404);
    expect(res.json()).toEqual({ error: expect.stringMatching(/^failed to load 'nope'/), code: 'MODEL_NOT_FOUND' });
  });
});

describe('model configuration extension', () => {
  it('GET /v2/models/{m}[/versions/{v}]/config answers the config in Triton shape, from the manifest and the serving config', async () => {
    // Advertised as Triton advertises it, so clients that check extensions find it.
    expect((await call('GET', '/v2')).json<{ extensions: string[] }>().extensions).toContain('model_configuration');
    const res = await call('GET', '/v2/models/vad/config');
    expect(res.status).toBe(200);
    const serving = (await call('GET', '/v1/models/vad/config')).json<{
      maxInstances: number;
      batching: { maxBatchSize: number; maxQueueDelayMs: number };
    }>();
    expect(res.json()).toEqual({
      name: 'vad',
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      max_batch_size: serving.batching.maxBatchSize,
      // Silero batches along axis 1 of h and c and shares sr: not batch-first, so dims are the whole shapes.
      input: [
        { name: 'input', data_type: 'TYPE_FP32', dims: [-1, -1] },
        { name: 'sr', data_type: 'TYPE_INT64', dims: [] },
        { name: 'h', data_type: 'TYPE_FP32', dims: [2, -1, 64] },
        { name: 'c', data_type: 'TYPE_FP32', dims: [2, -1, 64] },
      ],
      output: [
        { name: 'output', data_type: 'TYPE_FP32', dims: [-1, 1] },
        { name: 'hn', data_type: 'TYPE_FP32', dims: [2, -1, 64] },
        { name: 'cn', data_type: 'TYPE_FP32', dims: [2, -1, 64] },
      ],
      dynamic_batching: { preferred_batch_size: [], max_queue_delay_microseconds: serving.batching.maxQueueDelayMs * 1000 },
      instance_group: [{ kind: 'KIND_CPU', count: serving.maxInstances }],
    });
    expect((await call('GET', '/v2/models/vad/versions/1/config')).json()).toEqual(res.json());
    // Hearth's own config route is untouched by the V2 one.
    expect((await call('GET', '/v1/models/vad/config')).json()).toHaveProperty('timeoutMs');
  });

  it('batch-first models leave the batch dimension out of dims; TF.js and unbatchable models are named as documented', () => {
    const config = defaultModelConfig();
    const batchFirst = stubManifest({
      name: 'bf',
      format: 'tfjs-graph',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
      outputs: [{ name: 'y', datatype: 'BYTES', shape: [-1] }],
    });
    expect(toTritonConfig(batchFirst, config)).toMatchObject({
      platform: 'tensorflow_js',
      backend: 'tensorflowjs',
      max_batch_size: 16,
      input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [3] }],
      output: [{ name: 'y', data_type: 'TYPE_STRING', dims: [] }],
    });
    const fixed = stubManifest({
      inputs: [{ name: 'x', datatype: 'INT8', shape: [1, 3] }],
      outputs: [{ name: 'y', datatype: 'BOOL', shape: [1] }],
    });
    const f = toTritonConfig(fixed, config);
    expect(f).toMatchObject({
      max_batch_size: 0,
      input: [{ data_type: 'TYPE_INT8', dims: [1, 3] }],
      output: [{ data_type: 'TYPE_BOOL', dims: [1] }],
    });
    expect(f).not.toHaveProperty('dynamic_batching');
    // maxBatchSize 1 means no merging: Triton's 0.
    expect(toTritonConfig(batchFirst, { ...config, batching: { maxBatchSize: 1, maxQueueDelayMs: 0 } }).max_batch_size).toBe(0);
    expect(() => patchFromTritonConfig(json({ max_batch_size: 4 }), fixed, config)).toThrow(
      /config\.max_batch_size: this model cannot be batched/,
    );
    expect(patchFromTritonConfig(json({ max_batch_size: 0 }), sileroManifest({ name: 'vad' }), config)).toEqual({
      batching: { maxBatchSize: 1 },
    });
  });
});

describe('load with a Triton config', () => {
  it('maps max_batch_size, dynamic_batching and instance_group count onto the serving config; the config round-trips', async () => {
    const initial = (await call('GET', '/v1/models/vad/config')).json();
    const config = {
      max_batch_size: 8,
      dynamic_batching: { preferred_batch_size: [8], max_queue_delay_microseconds: 2500 },
      instance_group: [{ count: 2, kind: 'KIND_CPU' }],
    };
    // tritonclient.http's load_model(name, config=json.dumps(...)): {"parameters": {"config": "<json>"}}, no Content-Type.
    const load = await call('POST', '/v2/repository/models/vad/load', loadBody(config));
    expect(load.status, load.body.toString()).toBe(200);
    const serving = (await call('GET', '/v1/models/vad/config')).json<{ maxInstances: number; batching: unknown }>();
    expect(serving.batching).toEqual({ maxBatchSize: 8, maxQueueDelayMs: 2.5 });
    expect(serving.maxInstances).toBe(2);
    expect(rig.executor.isLoaded('vad', 1)).toBe(true);

    const triton = (await call('GET', '/v2/models/vad/config')).json();
    expect(triton).toMatchObject({
      max_batch_size: 8,
      dynamic_batching: { max_queue_delay_microseconds: 2500 },
      instance_group: [{ kind: 'KIND_CPU', count: 2 }],
    });
    // What the config route answers loads back unchanged (a Triton user's get-edit-load loop).
    expect((await call('POST', '/v2/repository/models/vad/load', loadBody(triton))).status).toBe(200);
    expect((await call('GET', '/v2/models/vad/config')).json()).toEqual(triton);

    // Back to the defaults for the other tests (Triton's max_batch_size 0 would be Hearth's 1).
    const reset = await call(
      'POST',
      '/v2/repository/models/vad/load',
      loadBody({ max_batch_size: 16, dynamic_batching: { max_queue_delay_microseconds: 0 }, instance_group: [{ count: 4 }] }),
    );
    expect(reset.status, reset.body.toString()).toBe(200);
    expect((await call('GET', '/v1/models/vad/config')).json()).toEqual(initial);
  });

  it('answers 400 naming each field it cannot map, and stores nothing', async () => {
    const before = (await call('GET', '/v1/models/vad/config')).body.toString();
    const cases: [string, string][] = [
      [json({ optimization: { execution_accelerators: {} } }), 'config.optimization'],
      [json({ version_policy: { latest: { num_versions: 1 } } }), 'config.version_policy'],
      [json({ max_batch_size: 8, dynamic_batching: { priority_levels: 2 } }), 'config.dynamic_batching.priority_levels'],
      [json({ max_batch_size: 8, dynamic_batching: { preferred_batch_size: [4, 8] } }), 'config.dynamic_batching.preferred_batch_size[0]'],
      [json({ max_batch_size: 0, dynamic_batching: {} }), 'config.dynamic_batching'],
      [json({ max_batch_size: -1 }), 'config.max_batch_size'],
      [json({ instance_group: [{ count: 1, kind: 'KIND_GPU', gpus: [0] }] }), 'config.instance_group[0].gpus'],
      [json({ instance_group: [{ count: 1, kind: 'KIND_GPU' }] }), 'config.instance_group[0].kind'],
      [json({ instance_group: [{ count: 0 }] }), 'config.instance_group[0].count'],
      [json({ name: 'other' }), 'config.name'],
      [json({ platform: 'tensorrt_plan' }), 'config.platform'],
      [json({ input: [{ name: 'input', data_type: 'TYPE_FP16', dims: [-1, -1] }] }), 'config.input[0].data_type'],
      [json({ input: [{ name: 'input', data_type: 'TYPE_FP32', dims: [512] }] }), 'config.input[0].dims'],
      [json({ output: [{ name: 'nope' }] }), 'config.output[0].name'],
      [json({ input: [{ name: 'input', reshape: { shape: [512] } }] }), 'config.input[0].reshape'],
    ];
    for (const [config, field] of cases) {
      const res = await call('POST', '/v2/repository/models/vad/load', loadBody(config));
      expect(res.status, config).toBe(400);
      expect(res.json(), config).toMatchObject({ code: 'INVALID_CONFIG', error: expect.stringContaining(`${field}:`) });
    }
    const notJson = await call('POST', '/v2/repository/models/vad/load', loadBody('{"max_batch_size": '));
    expect([notJson.status, notJson.json().code]).toEqual([400, 'INVALID_REQUEST']);
    const file = await call('POST', '/v2/repository/models/vad/load', json({ parameters: { 'file:1/model.onnx': 'AAAA' } }));
    expect(file.status).toBe(400);
    expect(file.json().error).toContain('file:1/model.onnx');
    expect((await call('GET', '/v1/models/vad/config')).body.toString()).toBe(before);
  });
});

describe('unload, readiness and the repository index', () => {
  const index = async (body = '') =>
    (await call('POST', '/v2/repository/index', body)).json<{ name: string; version: string; state: string; reason: string }[]>();

  it('after unload the model is not ready (400) and UNAVAILABLE until a request cold-starts it', async () => {
    expect((await call('GET', '/v2/models/vad/ready')).status).toBe(200);
    // tritonclient.http's unload_model: {"parameters": {"unload_dependents": false}}.
    const unload = await call('POST', '/v2/repository/models/vad/unload', json({ parameters: { unload_dependents: false } }));
    expect(unload.status).toBe(200);
    for (const path of ['/v2/models/vad/ready', '/v2/models/vad/versions/1/ready']) {
      const ready = await call('GET', path);
      expect(ready.status, path).toBe(400);
      expect(ready.body.length).toBe(0);
      expect(ready.headers['hearth-not-ready']).toMatch(/^unloaded/);
    }
    expect(await index()).toEqual([{ name: 'vad', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' }]);
    expect(await index('{"ready": true}')).toEqual([]);
    // Server readiness is not the model's.
    expect((await call('GET', '/v2/health/ready')).status).toBe(200);

    // On demand: an inference still cold-starts it, and from then on it is ready again.
    const { body, headerLength } = tritonBinaryRequest(2);
    const res = await call('POST', '/v2/models/vad/infer', body, { 'inference-header-content-length': String(headerLength) });
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.headers['hearth-cold-start']).toBe('true');
    expect((await call('GET', '/v2/models/vad/ready')).status).toBe(200);
    expect((await index()).map((r) => r.state)).toEqual(['READY']);
  });

  it('after unload, a load makes it ready again', async () => {
    expect((await call('POST', '/v2/repository/models/vad/unload', '')).status).toBe(200);
    expect((await call('GET', '/v2/models/vad/ready')).status).toBe(400);
    expect((await call('POST', '/v2/repository/models/vad/load', '')).status).toBe(200);
    const ready = await call('GET', '/v2/models/vad/ready');
    expect([ready.status, ready.headers['hearth-warm']]).toEqual([200, 'true']);
    expect(await index()).toEqual([{ name: 'vad', version: '1', state: 'READY', reason: expect.stringMatching(/^warm/) }]);
  });

  it('a model deleted and uploaded again after an unload is another upload: ready', async () => {
    expect((await call('POST', '/v2/repository/models/vad/unload', '')).status).toBe(200);
    expect((await call('GET', '/v2/models/vad/ready')).status).toBe(400);
    expect((await call('DELETE', '/v1/models/vad')).status).toBeLessThan(300);
    const up = await call('POST', '/v1/models/vad', sileroBytes(), { 'content-type': 'application/octet-stream' });
    expect(up.status, up.body.toString()).toBe(201);
    expect(up.json()).toMatchObject({ version: 1 });
    expect((await call('GET', '/v2/models/vad/ready')).status).toBe(200);
    expect((await index()).map((r) => [r.version, r.state])).toEqual([['1', 'READY']]);
  });
});

describe('compressed responses', () => {
  it('a binary request as tritonclient sends it (gzip body, Accept-Encoding gzip) gets a gzip binary answer it can read', async () => {
    const { body, headerLength } = tritonBinaryRequest(3);
    const plain = await call('POST', '/v2/models/vad/infer', body, { 'inference-header-content-length': String(headerLength) });
    expect(plain.status).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    const expected = readTritonResult(plain).values;

    const zipped = await call('POST', '/v2/models/vad/infer', gzipSync(body), {
      'inference-header-content-length': String(headerLength),
      'content-encoding': 'gzip',
      'accept-encoding': 'gzip',
    });
    expect(zipped.status, zipped.body.toString()).toBe(200);
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers['content-type']).toBe('application/octet-stream');
    expect(zipped.headers.vary).toMatch(/accept-encoding/i);
    expect(Number(zipped.headers['content-length'])).toBe(zipped.raw.length);
    expect(zipped.raw.length).toBeLessThan(zipped.body.length);
    // Inference-Header-Content-Length counts the JSON header of the inflated body.
    expect(zipped.headers['inference-header-content-length']).toBe(plain.headers['inference-header-content-length']);
    expect(readTritonResult(zipped).values).toEqual(expected);
  });

  it('JSON answers honour deflate (zlib), gzip by q-value, and stay plain without Accept-Encoding or when small', async () => {
    const { body, headerLength } = tritonBinaryRequest(4, { binaryOutputs: false });
    const headers = { 'inference-header-content-length': String(headerLength) };
    const plain = await call('POST', '/v2/models/vad/infer', body, headers);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers['content-type']).toMatch(/^application\/json/);
    expect(plain.raw.length).toBeGreaterThan(1024);

    const deflated = await call('POST', '/v2/models/vad/infer', body, { ...headers, 'accept-encoding': 'deflate' });
    expect(deflated.headers['content-encoding']).toBe('deflate');
    expect(inflateSync(deflated.raw).equals(plain.body)).toBe(true);

    const preferDeflate = await call('POST', '/v2/models/vad/infer', body, { ...headers, 'accept-encoding': 'gzip;q=0.5, deflate' });
    expect(preferDeflate.headers['content-encoding']).toBe('deflate');
    const noGzip = await call('POST', '/v2/models/vad/infer', body, { ...headers, 'accept-encoding': 'gzip;q=0, identity' });
    expect(noGzip.headers['content-encoding']).toBeUndefined();
    expect(noGzip.raw.equals(plain.body)).toBe(true);

    const gz = await call('POST', '/v2/models/vad/infer', body, { ...headers, 'accept-encoding': 'gzip, deflate' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.json()).toEqual(plain.json());

    // Metadata and errors are small: sent as they are.
    const meta = await call('GET', '/v2', undefined, { 'accept-encoding': 'gzip' });
    expect(meta.headers['content-encoding']).toBeUndefined();
    expect(meta.json()).toMatchObject({ name: 'hearth' });
  });

  it('pickEncoding reads Accept-Encoding as RFC 9110 does', () => {
    expect(pickEncoding(undefined)).toBeUndefined();
    expect(pickEncoding('identity')).toBeUndefined();
    expect(pickEncoding('gzip')).toBe('gzip');
    expect(pickEncoding('deflate')).toBe('deflate');
    expect(pickEncoding('deflate, gzip')).toBe('gzip');
    expect(pickEncoding('gzip;q=0.2, deflate;q=0.8')).toBe('deflate');
    expect(pickEncoding('*')).toBe('gzip');
    expect(pickEncoding('*;q=0')).toBeUndefined();
    expect(pickEncoding('br, gzip;q=0')).toBeUndefined();
    expect(pickEncoding(['br', 'deflate'])).toBe('deflate');
  });
});
