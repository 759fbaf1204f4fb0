// The upload API over a real socket: a multipart body streamed in small chunks, and clients that hang up
// mid-upload (which must leave nothing behind), on the fs store and on s3 (s3rver).
import fs from 'node:fs/promises';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restingLeftovers, settledLeftovers, startTestHearth, type StoreBackend, type TestHearth } from '../helpers/app.ts';
import { multipartBody, sileroBytes, upscalerFiles } from '../helpers/model-bodies.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => Promise<boolean>, what: string, limitMs = 15_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await sleep(25);
  }
}

describe.each<StoreBackend>(['fs', 's3'])('uploads over a real socket on the %s store', (backend) => {
  let h: TestHearth;
  let base: URL;

  beforeAll(async () => {
    h = await startTestHearth({ backend });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const addr = h.app.server.address() as { port: number };
    base = new URL(`http://127.0.0.1:${addr.port}`);
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Opens a chunked POST; the caller writes the body and ends or destroys it. */
  function open(pathname: string, contentType: string, headers: Record<string, string> = {}) {
    const req = http.request(new URL(pathname, base), { method: 'POST', headers: { 'content-type': contentType, ...headers } });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    return { req, response };
  }

  it('accepts a multipart body streamed in 64 KiB chunks (chunked transfer encoding)', async () => {
    const mp = multipartBody(upscalerFiles().map((f) => ({ filename: f.path, data: f.data })));
    const { req, response } = open('/v1/models/streamed', mp.contentType);
    for (let off = 0; off < mp.body.length; off += 64 * 1024) {
      if (!req.write(mp.body.subarray(off, off + 64 * 1024))) await new Promise((r) => req.once('drain', r));
      await sleep(1);
    }
    req.end();
    const res = await response;
    expect(res.status).toBe(201);
    const m = JSON.parse(res.body);
    expect(m).toMatchObject({ name: 'streamed', version: 1, format: 'tfjs-layers' });
    expect(m.inputs[0].shape).toEqual([-1, -1, -1, 3]);
    expect(await fs.readdir(h.stagingDir)).toEqual([]);
  });

  it('a client that hangs up after sending the whole body (during inspection) leaves no version behind', async () => {
    const before = await restingLeftovers(h);
    const silero = sileroBytes();
    const { req, response } = open('/v1/models/late-hangup', 'application/octet-stream', { 'content-length': String(silero.length) });
    response.catch(() => {});
    req.end(silero);
    // The body is complete once the store holds the model file; the manifest comes only after inspection.
    await until(async () => (await h.deps.store!.stat('models/late-hangup/1/files/model.onnx')) !== undefined, 'the body to be stored');
    req.destroy();
    expect(await settledLeftovers(h, before, 15_000)).toEqual(before);
    expect((await fetch(new URL('/v1/models/late-hangup', base))).status).toBe(404);
  });

  for (const kind of ['raw ONNX', 'multipart'] as const) {
    it(`a client that disconnects mid-upload (${kind}) leaves nothing behind, and the version number is not used up`, async () => {
      const before = await restingLeftovers(h);
      const silero = sileroBytes();
      const body =
        kind === 'raw ONNX'
          ? { data: silero, type: 'application/octet-stream' }
          : (() => {
              const mp = multipartBody([{ filename: 'model.onnx', data: silero }]);
              return { data: mp.body, type: mp.contentType };
            })();
      const { req, response } = open('/v1/models/hangup', body.type, { 'content-length': String(body.data.length) });
      response.catch(() => {});
      req.write(body.data.subarray(0, 1024 * 1024));
      // Wait until the server has started staging this upload, then hang up.
      await until(async () => (await fs.readdir(h.stagingDir).catch(() => [])).length > 0, 'the upload to start');
      req.destroy();
      expect(await settledLeftovers(h, before, 15_000)).toEqual(before);
      expect((await fetch(new URL('/v1/models/hangup', base))).status).toBe(404);
      const ok = await fetch(new URL('/v1/models/hangup', base), {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: new Uint8Array(silero),
      });
      expect(ok.status).toBe(201);
      expect((await ok.json()).version).toBe(1);
      expect((await fetch(new URL('/v1/models/hangup', base), { method: 'DELETE' })).status).toBe(200);
    });
  }
});
