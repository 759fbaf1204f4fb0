// The upload API through app.inject() (run by models-upload-fs/-s3.test.ts): real models in, manifests out,
// and every bad upload refused with its code and nothing left behind in the store, its temp folder or staging.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  restingLeftovers,
  settledLeftovers,
  startTestHearth,
  uploadLeftovers,
  type StoreBackend,
  type TestHearth,
} from '../helpers/app.ts';
import { multipartBody, pngBytes, sileroBytes, tarGz, upscalerFiles } from '../helpers/model-bodies.ts';

const SILERO_INPUTS = [
  { name: 'input', datatype: 'FP32', shape: [-1, -1] },
  { name: 'sr', datatype: 'INT64', shape: [] },
  { name: 'h', datatype: 'FP32', shape: [2, -1, 64] },
  { name: 'c', datatype: 'FP32', shape: [2, -1, 64] },
];

/** `authScopes`: the suite runs again with AUTH on, as a key holding only these scopes. */
export function modelUploadSuite(backend: StoreBackend, authScopes?: string[]): void {
  describe(`model upload API on the ${backend} store${authScopes ? `, AUTH on as a key with ${authScopes.join(', ')}` : ''}`, () => {
    let h: TestHearth;
    const silero = sileroBytes();

    beforeAll(async () => {
      // 3 MB: the silero model (1.8 MB) fits, a bigger body does not.
      h = await startTestHearth({ backend, env: { MAX_MODEL_BYTES: String(3 * 1024 * 1024) }, ...(authScopes ? { authScopes } : {}) });
    });
    afterAll(async () => {
      await h?.close();
    });

    const leftovers = () => uploadLeftovers(h);

    const postOnnx = (name: string, payload: Buffer | Readable) =>
      h.app.inject({ method: 'POST', url: `/v1/models/${name}`, headers: { 'content-type': 'application/octet-stream' }, payload });

    it('uploads silero VAD as raw ONNX: 201 with the manifest, and the version becomes visible', async () => {
      const res = await postOnnx('vad', silero);
      expect(res.statusCode).toBe(201);
      const m = res.json();
      expect(m).toMatchObject({ name: 'vad', version: 1, format: 'onnx', sizeBytes: silero.length });
      expect(m.inputs).toEqual(SILERO_INPUTS);
      expect(m.outputs).toHaveLength(3);
      expect(m.files).toEqual([{ path: 'model.onnx', sizeBytes: silero.length, sha256: m.sha256 }]);
      expect(m.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(Number.isNaN(Date.parse(m.createdAt))).toBe(false);
      expect((await h.app.inject({ url: '/v1/models/vad/versions/1' })).json()).toEqual(m);
      // The stored bytes are the uploaded bytes.
      const chunks: Buffer[] = [];
      for await (const c of await h.deps.registry!.openFile(m, 'model.onnx')) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(silero)).toBe(true);
      expect((await leftovers()).staging).toEqual([]);
    });

    it('numbers versions 1, 2, ...; PUT takes an explicit version and 409s a taken one; POST continues after it', async () => {
      expect((await postOnnx('vad', silero)).json().version).toBe(2);
      const put = await h.app.inject({
        method: 'PUT',
        url: '/v1/models/vad/versions/7',
        headers: { 'content-type': 'application/octet-stream' },
        payload: silero,
      });
      expect(put.statusCode).toBe(201);
      expect(put.json().version).toBe(7);
      const before = await restingLeftovers(h);
      const again = await h.app.inject({
        method: 'PUT',
        url: '/v1/models/vad/versions/7',
        headers: { 'content-type': 'application/octet-stream' },
        payload: silero,
      });
      expect(again.statusCode).toBe(409);
      expect(again.json()).toMatchObject({ code: 'VERSION_EXISTS' });
      expect(await settledLeftovers(h, before)).toEqual(before);
      expect((await postOnnx('vad', silero)).json().version).toBe(8);
      const model = await h.app.inject({ url: '/v1/models/vad' });
      expect(model.json()).toEqual({ name: 'vad', versions: [1, 2, 7, 8], latest: 8 });
    });

    it('uploads the upscaler TF.js layers model as a .tar.gz of its folder', async () => {
      const files = upscalerFiles();
      const body = await tarGz([
        { name: 'upscaler/', type: 'directory' },
        ...files.map((f) => ({ name: `upscaler/${f.path}`, data: f.data })),
      ]);
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/models/upscaler',
        headers: { 'content-type': 'application/gzip' },
        payload: body,
      });
      expect(res.statusCode).toBe(201);
      const m = res.json();
      expect(m.format).toBe('tfjs-layers');
      expect(m.inputs).toHaveLength(1);
      expect(m.inputs[0]).toMatchObject({ datatype: 'FP32', shape: [-1, -1, -1, 3] });
      expect(m.outputs).toHaveLength(1);
      expect(m.files.map((f: { path: string }) => f.path)).toEqual(['group1-shard1of1.bin', 'model.json']);
      expect(m.sizeBytes).toBe(files.reduce((s, f) => s + f.data.length, 0));
    });

    it('uploads the upscaler as multipart files (model.json + shard) and silero as multipart model.onnx', async () => {
      const tf = multipartBody(
        upscalerFiles().map((f) => ({ filename: f.path, data: f.data })),
        { note: 'ignored field' },
      );
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/models/upscaler',
        headers: { 'content-type': tf.contentType },
        payload: tf.body,
      });
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({ version: 2, format: 'tfjs-layers' });
      const onnx = multipartBody([{ filename: 'model.onnx', data: silero }]);
      const res2 = await h.app.inject({
        method: 'POST',
        url: '/v1/models/vad-mp',
        headers: { 'content-type': onnx.contentType },
        payload: onnx.body,
      });
      expect(res2.statusCode).toBe(201);
      expect(res2.json().inputs).toEqual(SILERO_INPUTS);
    });

    it('lists models with their versions', async () => {
      const res = await h.app.inject({ url: '/v1/models' });
      expect(res.statusCode).toBe(200);
      expect(res.json().models).toEqual([
        { name: 'upscaler', versions: [1, 2], latest: 2 },
        { name: 'vad', versions: [1, 2, 7, 8], latest: 8 },
        { name: 'vad-mp', versions: [1], latest: 1 },
      ]);
    });

    it('deletes a version, then the model, with 404s afterwards', async () => {
      const del = await h.app.inject({ method: 'DELETE', url: '/v1/models/vad/versions/2' });
      expect(del.statusCode).toBe(200);
      expect(del.json()).toEqual({ name: 'vad', deleted: [2] });
      const gone = await h.app.inject({ url: '/v1/models/vad/versions/2' });
      expect(gone.statusCode).toBe(404);
      expect(gone.json()).toMatchObject({ code: 'VERSION_NOT_FOUND' });
      expect((await h.deps.store!.list('models/vad/2/')).length).toBe(0);
      const delModel = await h.app.inject({ method: 'DELETE', url: '/v1/models/vad-mp' });
      expect(delModel.json()).toEqual({ name: 'vad-mp', deleted: [1] });
      const missing = await h.app.inject({ url: '/v1/models/vad-mp' });
      expect(missing.statusCode).toBe(404);
      expect(missing.json()).toMatchObject({ code: 'MODEL_NOT_FOUND' });
      expect((await h.deps.store!.list('models/vad-mp/')).length).toBe(0);
      expect((await h.app.inject({ method: 'DELETE', url: '/v1/models/vad-mp' })).statusCode).toBe(404);
    });

    describe('bad uploads: a 4xx with a code, and nothing left behind', () => {
      const half = () => silero.subarray(0, Math.floor(silero.length / 2));
      const tfFiles = () => upscalerFiles();
      const cases: {
        title: string;
        status: number;
        code: string;
        message?: RegExp;
        send: () => Promise<import('light-my-request').Response>;
      }[] = [
        { title: 'an empty body', status: 400, code: 'EMPTY_BODY', send: () => postOnnx('bad', Buffer.alloc(0)) },
        {
          title: 'an empty multipart body',
          status: 400,
          code: 'EMPTY_BODY',
          send: () => {
            const mp = multipartBody([], { only: 'a field' });
            return h.app.inject({ method: 'POST', url: '/v1/models/bad', headers: { 'content-type': mp.contentType }, payload: mp.body });
          },
        },
        { title: 'random bytes', status: 422, code: 'MODEL_INVALID', send: () => postOnnx('bad', randomBytes(4096)) },
        {
          title: 'a PNG named model.onnx',
          status: 422,
          code: 'MODEL_INVALID',
          send: () => {
            const mp = multipartBody([{ filename: 'model.onnx', data: pngBytes() }]);
            return h.app.inject({ method: 'POST', url: '/v1/models/bad', headers: { 'content-type': mp.contentType }, payload: mp.body });
          },
        },
        { title: 'a truncated ONNX file', status: 422, code: 'MODEL_INVALID', send: () => postOnnx('bad', half()) },
        {
          title: 'corrupt gzip',
          status: 400,
          code: 'CORRUPT_ARCHIVE',
          send: () =>
            h.app.inject({
              method: 'POST',
              url: '/v1/models/bad',
              headers: { 'content-type': 'application/gzip' },
              payload: randomBytes(5000),
            }),
        },
        {
          title: 'gzip cut short',
          status: 400,
          code: 'CORRUPT_ARCHIVE',
          send: async () => {
            const tgz = await tarGz(tfFiles().map((f) => ({ name: f.path, data: f.data })));
            return h.app.inject({
              method: 'POST',
              url: '/v1/models/bad',
              headers: { 'content-type': 'application/gzip' },
              payload: tgz.subarray(0, tgz.length - 200_000),
            });
          },
        },
        {
          title: 'a tar with a ../ path (after a good file)',
          status: 400,
          code: 'UNSAFE_ARCHIVE',
          send: async () => {
            const [json, shard] = tfFiles();
            const tgz = await tarGz([
              { name: 'model.json', data: json.data },
              { name: `../${shard.path}`, data: shard.data },
            ]);
            return h.app.inject({ method: 'POST', url: '/v1/models/bad', headers: { 'content-type': 'application/gzip' }, payload: tgz });
          },
        },
        {
          title: 'a tar with an absolute path',
          status: 400,
          code: 'UNSAFE_ARCHIVE',
          send: async () => {
            const [json, shard] = tfFiles();
            const tgz = await tarGz([
              { name: 'model.json', data: json.data },
              { name: `/tmp/${shard.path}`, data: shard.data },
            ]);
            return h.app.inject({ method: 'POST', url: '/v1/models/bad', headers: { 'content-type': 'application/gzip' }, payload: tgz });
          },
        },
        {
          title: 'a tar with a symlink',
          status: 400,
          code: 'UNSAFE_ARCHIVE',
          send: async () => {
            const [json] = tfFiles();
            const tgz = await tarGz([
              { name: 'model.json', data: json.data },
              { name: 'group1-shard1of1.bin', type: 'symlink', linkname: '/etc/passwd' },
            ]);
            return h.app.inject({ method: 'POST', url: '/v1/models/bad', headers: { 'content-type': 'application/gzip' }, payload: tgz });
          },
        },
        {
          title: 'a model.json whose shards are missing',
          status: 422,
          code: 'MODEL_INVALID',
          message: /group1-shard1of1\.bin/,
          send: async () => {
            const tgz = await tarGz([{ name: 'model.json', data: tfFiles()[0].data }]);
            return h.app.inject({ method: 'POST', url: '/v1/models/bad', headers: { 'content-type': 'application/gzip' }, payload: tgz });
          },
        },
        {
          title: 'a TensorFlow SavedModel',
          status: 422,
          code: 'MODEL_INVALID',
          message: /tensorflowjs_converter --input_format=tf_saved_model/,
          send: async () => {
            const tgz = await tarGz([
              { name: 'saved_model.pb', data: randomBytes(300) },
              { name: 'variables/variables.index', data: randomBytes(30) },
            ]);
            return h.app.inject({ method: 'POST', url: '/v1/models/bad', headers: { 'content-type': 'application/gzip' }, payload: tgz });
          },
        },
        {
          title: 'a body over MAX_MODEL_BYTES, announced by Content-Length',
          status: 413,
          code: 'MODEL_TOO_LARGE',
          send: () => postOnnx('bad', Buffer.concat([silero, silero])),
        },
        {
          title: 'a streamed body over MAX_MODEL_BYTES (no Content-Length)',
          status: 413,
          code: 'MODEL_TOO_LARGE',
          send: () =>
            postOnnx(
              'bad',
              Readable.from(
                (function* () {
                  for (let i = 0; i < 8; i++) yield silero.subarray(0, 512 * 1024);
                })(),
              ),
            ),
        },
        {
          title: 'multipart files over MAX_MODEL_BYTES together',
          status: 413,
          code: 'MODEL_TOO_LARGE',
          send: () => {
            const mp = multipartBody([
              { filename: 'model.json', data: tfFiles()[0].data },
              { filename: 'a.bin', data: randomBytes(2 * 1024 * 1024) },
              { filename: 'b.bin', data: randomBytes(2 * 1024 * 1024) },
            ]);
            return h.app.inject({ method: 'POST', url: '/v1/models/bad', headers: { 'content-type': mp.contentType }, payload: mp.body });
          },
        },
        {
          title: 'an unsupported Content-Type',
          status: 415,
          code: 'UNSUPPORTED_MEDIA_TYPE',
          send: () => h.app.inject({ method: 'POST', url: '/v1/models/bad', headers: { 'content-type': 'text/plain' }, payload: 'hello' }),
        },
        { title: 'an invalid model name', status: 400, code: 'INVALID_NAME', send: () => postOnnx('Bad%20Name', silero) },
        {
          title: 'an invalid version',
          status: 400,
          code: 'INVALID_NAME',
          send: () =>
            h.app.inject({
              method: 'PUT',
              url: '/v1/models/bad/versions/0',
              headers: { 'content-type': 'application/octet-stream' },
              payload: silero,
            }),
        },
      ];

      for (const c of cases) {
        it(`${c.title} -> ${c.status} ${c.code}`, async () => {
          const before = await restingLeftovers(h);
          const res = await c.send();
          expect(res.statusCode).toBe(c.status);
          const body = res.json();
          expect(body.code).toBe(c.code);
          expect(typeof body.error).toBe('string');
          if (c.message) expect(body.error).toMatch(c.message);
          expect(await settledLeftovers(h, before)).toEqual(before);
          expect((await h.app.inject({ url: '/v1/models/bad' })).statusCode).toBe(404);
        });
      }
    });
  });
}
