// A key's maxBodyBytes against bodies sent without Content-Length (chunked), on every route family that reads a
// body: each is cut at the key's limit with 413 naming it. The first such upload ended the whole process (the
// counting stream's error had no listener while the upload waited for its version). Multipart without a length
// gets 411. After each, the node serves as before and holds nothing of the refused body.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipartBody } from '../helpers/model-bodies.ts';
import { expectError, expectIntact, expectNoUploadLeftovers, request, startNodeWithVad, type Baseline, type HostileNode } from './rig.ts';

const ADMIN = `hk_hostile_${'h'.repeat(43)}`;
let node: HostileNode;
let base: Baseline;
let key: string;
let keyId: string;

beforeAll(async () => {
  ({ node, base } = await startNodeWithVad({ env: { AUTH: 'on', HEARTH_ADMIN_KEY: ADMIN } }));
  const made = await request(node, {
    method: 'POST',
    path: '/v1/keys',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'small bodies', scopes: ['models:write', 'infer', 'jobs'], maxBodyBytes: 4096 }),
  });
  expect(made.status, made.body.toString()).toBe(201);
  key = made.json!.key as string;
  keyId = made.json!.id as string;
});
afterAll(async () => {
  await node?.stop();
});

/** 256 KiB in 4 KiB chunks, with no Content-Length (Node sends Transfer-Encoding: chunked). */
function chunked(path: string, contentType: string, extra: Record<string, string> = {}) {
  return request(node, {
    method: path.startsWith('/v1/datasets/') ? 'PUT' : 'POST',
    path,
    headers: { 'content-type': contentType, authorization: `Bearer ${key}`, ...extra },
    body: (req) => {
      let sent = 0;
      const more = () => {
        while (sent < 256 * 1024) {
          sent += 4096;
          if (!req.write(Buffer.alloc(4096, 0x31))) return void req.once('drain', more);
        }
        req.end();
      };
      req.on('error', () => {});
      more();
    },
  });
}

const cases: [string, string, string, Record<string, string>?][] = [
  ['a raw ONNX upload', '/v1/models/big', 'application/octet-stream'],
  ['a .tar.gz upload', '/v1/models/big', 'application/gzip'],
  ['a dataset', '/v1/datasets/big', 'application/x-ndjson'],
  ['a job body', '/v1/jobs', 'application/json'],
  ['a V2 JSON inference', '/v2/models/vad/infer', 'application/json'],
  ['a V2 binary inference', '/v2/models/vad/infer', 'application/octet-stream', { 'inference-header-content-length': '100' }],
];

describe("a chunked body past its key's maxBodyBytes", () => {
  for (const [what, path, type, extra] of cases) {
    it(`${what}: 413 PAYLOAD_TOO_LARGE naming the key's limit, and the node carries on`, async () => {
      const res = await chunked(path, type, extra);
      expectError(res, 413, 'PAYLOAD_TOO_LARGE', node);
      expect(res.json!.error).toContain(`key ${keyId}`);
      expect(res.json!.error).toContain('maxBodyBytes');
      await expectIntact(node, base);
      await expectNoUploadLeftovers(node);
    });
  }

  it('a multipart upload without Content-Length: 411 LENGTH_REQUIRED, before a byte of it is read', async () => {
    const mp = multipartBody([{ filename: 'model.onnx', data: Buffer.alloc(10_000, 1) }]);
    const res = await request(node, {
      method: 'POST',
      path: '/v1/models/big',
      headers: { 'content-type': mp.contentType, authorization: `Bearer ${key}`, 'transfer-encoding': 'chunked' },
      body: mp.body,
    });
    expectError(res, 411, 'LENGTH_REQUIRED', node);
    await expectIntact(node, base);
  });

  it('the same key still sends a body within its limit', async () => {
    const res = await request(node, {
      method: 'PUT',
      path: '/v1/datasets/small',
      headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${key}` },
      body: '{"inputs":[]}\n',
    });
    expect(res.status, res.body.toString()).toBe(201);
    expect(res.json!.key).toBe(`datasets/key-${keyId}/small.jsonl`);
  });
});
