// Issue 13, case 7 (the HTTP surface's wrong answers): a 413 outside uploads is PAYLOAD_TOO_LARGE, a URL too
// long answers 414 URI_TOO_LONG in Hearth's shape (a path parameter over the router's limit, or a URL over the
// parser's), and no error body shows the server's absolute paths, whatever the error.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeWithVad, expectError, expectIntact, request, type Baseline, type HostileNode, type RawResponse } from './rig.ts';
import { tarGz } from '../helpers/model-bodies.ts';
import { openRequest } from './http-raw.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

let node: HostileNode;
let base: Baseline;

beforeAll(async () => {
  ({ node, base } = await startNodeWithVad({ env: { MAX_MODEL_BYTES: String(3 * 1024 * 1024) } }));
});
afterAll(async () => {
  await node?.stop();
});

/** No absolute server path: not the data folder (the cache is inside it), the install folder, nor a quoted errno path. */
function expectNoServerPath(res: RawResponse, what: string): void {
  const body = res.body.toString('utf8');
  for (const dir of [node.dataDir, fs.realpathSync(node.dataDir), ROOT, os.tmpdir() + '/'])
    expect(body, `${what}: ${body}`).not.toContain(dir);
  expect(body, `${what}: ${body}`).not.toMatch(/'\/[^']*'/);
}

describe('413 and 414 answer in Hearth shape with the right code', () => {
  it('a body over the limit on a route that is not an upload is PAYLOAD_TOO_LARGE (it was MODEL_TOO_LARGE)', async () => {
    for (const [method, p] of [
      ['PUT', '/v1/models/vad/config'],
      ['POST', '/v2/models/vad/infer'],
    ]) {
      // Over the old 64 MiB fastify limit too, so the old label shows without sending a byte.
      const ex = openRequest(node, {
        method,
        path: p,
        headers: { 'content-type': 'application/json', 'content-length': 64 * 1024 * 1024 + 1 },
        waitMs: 10_000,
      });
      const res = await ex.answer;
      ex.socket.destroy();
      expectError(res, 413, 'PAYLOAD_TOO_LARGE', node);
    }
  });

  it('an upload over MAX_MODEL_BYTES keeps MODEL_TOO_LARGE, and a client still sending reads it (no reset)', async () => {
    // The rig's client asks for Connection: close and is still writing when the refusal comes: the node reads
    // and drops the rest before closing, so the answer is read rather than lost to EPIPE / ECONNRESET.
    for (let i = 0; i < 5; i++) {
      const res = await request(node, {
        method: 'POST',
        path: '/v1/models/big',
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.alloc(4 * 1024 * 1024, 1),
      });
      expectError(res, 413, 'MODEL_TOO_LARGE', node);
    }
  });

  it('a path parameter longer than the router accepts -> 414 URI_TOO_LONG, not FST_ERR_MAX_PARAM_LENGTH', async () => {
    const long = 'a'.repeat(150);
    for (const [method, p] of [
      ['POST', `/v2/models/${long}/infer`],
      ['GET', `/v1/models/${long}`],
      ['GET', `/v2/models/vad/versions/${'9'.repeat(150)}`],
    ]) {
      const res = await request(node, {
        method,
        path: p,
        headers: { 'content-type': 'application/json' },
        body: method === 'POST' ? '{}' : undefined,
      });
      expectError(res, 414, 'URI_TOO_LONG', node);
      expect(Object.keys(res.json!).sort()).toEqual(['code', 'error']);
      expect(res.json!.error).not.toContain(long);
    }
  });

  it('a URL longer than the HTTP parser accepts -> 414 URI_TOO_LONG; headers too large -> 431 HEADERS_TOO_LARGE', async () => {
    const url = await request(node, { path: `/v2/health/live?q=${'a'.repeat(20_000)}` });
    expectError(url, 414, 'URI_TOO_LONG', node);
    expect(Object.keys(url.json!).sort()).toEqual(['code', 'error']);
    const headers = await request(node, { path: '/v2/health/live', headers: { 'x-big': 'b'.repeat(20_000) } });
    expectError(headers, 431, 'HEADERS_TOO_LARGE', node);
    await expectIntact(node, base);
  });

  it('a URL with bad percent-encoding -> 400 INVALID_REQUEST', async () => {
    const res = await request(node, { path: '/v2/models/%E0%A4%A/ready' });
    expectError(res, 400, 'INVALID_REQUEST', node);
  });
});

describe('no error body shows a server path', () => {
  it('store errors, a bad upload, 404s and bad bodies: every body is free of absolute paths', async () => {
    const store = path.join(node.dataDir, 'store');
    const answers: [string, RawResponse][] = [];
    const ask = async (what: string, opts: Parameters<typeof request>[1]) => answers.push([what, await request(node, opts)]);

    // A file where the store expects a model's folder: the fs store's errno errors name that path.
    fs.writeFileSync(path.join(store, 'models', 'blocked'), 'not a folder');
    await ask('model lookup through a file', { path: '/v1/models/blocked' });
    await ask('V2 metadata through a file', { path: '/v2/models/blocked' });
    await ask('upload into a file', {
      method: 'POST',
      path: '/v1/models/blocked',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.from('x'),
    });
    await ask('infer through a file', {
      method: 'POST',
      path: '/v2/models/blocked/infer',
      headers: { 'content-type': 'application/json' },
      body: '{"inputs":[]}',
    });

    // A tar whose folders nest deeper than the file system allows (the staging path once showed in a 500).
    const deep = `${'d/'.repeat(2100)}model.onnx`;
    await ask('an upload with a too-deep path', {
      method: 'POST',
      path: '/v1/models/deep',
      headers: { 'content-type': 'application/gzip' },
      body: await tarGz([{ name: deep, data: Buffer.from('x') }]),
    });

    // 404s, bad bodies, bad names.
    await ask('unknown model', { path: '/v2/models/nope' });
    await ask('unknown version', { path: '/v2/models/vad/versions/9' });
    await ask('unknown route', { path: '/nowhere' });
    await ask('bad JSON', { method: 'PUT', path: '/v1/models/vad/config', headers: { 'content-type': 'application/json' }, body: '{' });
    await ask('bad config', {
      method: 'PUT',
      path: '/v1/models/vad/config',
      headers: { 'content-type': 'application/json' },
      body: '{"nope":1}',
    });
    await ask('bad name', { path: '/v1/models/..%2F..%2Fetc' });
    await ask('bad tensor', {
      method: 'POST',
      path: '/v2/models/vad/infer',
      headers: { 'content-type': 'application/json' },
      body: '{"inputs":[{"name":"x"}]}',
    });

    fs.rmSync(path.join(store, 'models', 'blocked'));
    for (const [what, res] of answers) {
      expect(res.status, `${what}: ${res.body.toString()}`).toBeGreaterThanOrEqual(400);
      expect(res.json, `${what}: ${res.body.toString()}`).toMatchObject({ error: expect.any(String), code: expect.any(String) });
      expectNoServerPath(res, what);
    }
    await expectIntact(node, base);
  });
});
