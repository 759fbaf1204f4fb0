// Uploads that used to cost a node far more than their size: a gzip bomb (answered 413 only after writing
// gigabytes), thousands of tiny files, and an explicit version that left POST no number. This node runs with
// small limits (MAX_MODEL_BYTES 4 MiB, MAX_ARCHIVE_FILES 100) so each case is cheap to send.
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipartBody, sileroBytes, tarBytes, tarGz, type TarEntry } from '../helpers/model-bodies.ts';
import {
  startNodeWithVad,
  expectError,
  expectIntact,
  expectNoUploadLeftovers,
  request,
  sileroAnswer,
  storeKeys,
  type Baseline,
  type HostileNode,
} from './rig.ts';

const MAX_BYTES = 4 * 1024 * 1024;
const MAX_FILES = 100;

let node: HostileNode;
let base: Baseline;

beforeAll(async () => {
  ({ node, base } = await startNodeWithVad({ env: { MAX_MODEL_BYTES: String(MAX_BYTES), MAX_ARCHIVE_FILES: String(MAX_FILES) } }));
});
afterAll(async () => {
  await node?.stop();
});

const post = (type: string, body: Buffer) =>
  request(node, { method: 'POST', path: '/v1/models/bad', headers: { 'content-type': type }, body });

async function survived(): Promise<void> {
  await expectIntact(node, base);
  await expectNoUploadLeftovers(node);
}

describe('gzip bombs', () => {
  it('one 64 MiB file of zeros (64 KB compressed): 413 MODEL_TOO_LARGE, refused at its tar header', async () => {
    const body = gzipSync(await tarBytes([{ name: 'model.onnx', data: Buffer.alloc(64 * 1024 * 1024) }]));
    expect(body.length).toBeLessThan(200 * 1024);
    const res = await post('application/gzip', body);
    expectError(res, 413, 'MODEL_TOO_LARGE', node);
    expect(res.json!.error).toMatch(/MAX_MODEL_BYTES/);
    await survived();
  });

  it('64 MiB of zeros with no tar entry at all: 413 MODEL_TOO_LARGE once past what its entries account for', async () => {
    const res = await post('application/gzip', gzipSync(Buffer.alloc(64 * 1024 * 1024)));
    expectError(res, 413, 'MODEL_TOO_LARGE', node);
    expect(res.json!.error).toMatch(/unpacks to more bytes than its files and tar framing account for/);
    await survived();
  });

  it('a real model followed by 600 KiB of zero padding (within the tar allowance) is accepted', async () => {
    const tar = await tarBytes([{ name: 'model.onnx', data: sileroBytes() }]);
    const res = await post('application/gzip', gzipSync(Buffer.concat([tar, Buffer.alloc(600 * 1024)])));
    expect(res.status, res.body.toString()).toBe(201);
    expect((await request(node, { method: 'DELETE', path: '/v1/models/bad' })).status).toBe(200);
    await survived();
  });

  it('twelve 512 KiB files, each small, 6 MiB together: 413 MODEL_TOO_LARGE', async () => {
    const entries: TarEntry[] = Array.from({ length: 12 }, (_, i) => ({ name: `w${i}.bin`, data: Buffer.alloc(512 * 1024, i) }));
    const res = await post('application/gzip', await tarGz(entries));
    expectError(res, 413, 'MODEL_TOO_LARGE', node);
    await survived();
  });
});

describe('file counts', () => {
  it(`a tar of ${MAX_FILES + 50} one-byte files: 413 PAYLOAD_TOO_LARGE naming MAX_ARCHIVE_FILES`, async () => {
    const entries: TarEntry[] = Array.from({ length: MAX_FILES + 50 }, (_, i) => ({ name: `f${i}.bin`, data: Buffer.from('x') }));
    const res = await post('application/gzip', await tarGz(entries));
    expectError(res, 413, 'PAYLOAD_TOO_LARGE', node);
    expect(res.json!.error).toMatch(new RegExp(`MAX_ARCHIVE_FILES \\(${MAX_FILES}\\)`));
    await survived();
  });

  it(`a tar of ${MAX_FILES + 50} empty folders: 413 PAYLOAD_TOO_LARGE naming MAX_ARCHIVE_FILES`, async () => {
    const entries: TarEntry[] = Array.from({ length: MAX_FILES + 50 }, (_, i) => ({ name: `d${i}/`, type: 'directory' as const }));
    const res = await post('application/gzip', await tarGz(entries));
    expectError(res, 413, 'PAYLOAD_TOO_LARGE', node);
    expect(res.json!.error).toMatch(/MAX_ARCHIVE_FILES/);
    await survived();
  });

  it(`a multipart body of ${MAX_FILES + 50} files: 413 PAYLOAD_TOO_LARGE naming MAX_ARCHIVE_FILES`, async () => {
    const mp = multipartBody(Array.from({ length: MAX_FILES + 50 }, (_, i) => ({ filename: `f${i}.bin`, data: Buffer.from('x') })));
    const res = await post(mp.contentType, mp.body);
    expectError(res, 413, 'PAYLOAD_TOO_LARGE', node);
    expect(res.json!.error).toMatch(/MAX_ARCHIVE_FILES/);
    await survived();
  });

  it(`exactly ${MAX_FILES} files is accepted`, async () => {
    const entries: TarEntry[] = [
      { name: 'model.onnx', data: sileroBytes() },
      ...Array.from({ length: MAX_FILES - 1 }, (_, i) => ({ name: `f${i}.bin`, data: Buffer.from('x') })),
    ];
    const res = await post('application/gzip', await tarGz(entries));
    expect(res.status, res.body.toString()).toBe(201);
    expect((res.json!.files as unknown[]).length).toBe(MAX_FILES);
    expect((await request(node, { method: 'DELETE', path: '/v1/models/bad' })).status).toBe(200);
    await survived();
  });
});

describe('version numbers', () => {
  it('PUT 2147483647 leaves POST room: POST answers 2147483648, and a PUT above 2147483647 is refused', async () => {
    const silero = sileroBytes();
    const put = await request(node, {
      method: 'PUT',
      path: '/v1/models/ver/versions/2147483647',
      headers: { 'content-type': 'application/octet-stream' },
      body: silero,
    });
    expect(put.status, put.body.toString()).toBe(201);
    const next = await request(node, {
      method: 'POST',
      path: '/v1/models/ver',
      headers: { 'content-type': 'application/octet-stream' },
      body: silero,
    });
    expect(next.status, next.body.toString()).toBe(201);
    expect(next.json!.version).toBe(2147483648);
    expect((await request(node, { path: '/v1/models/ver' })).json).toEqual({
      name: 'ver',
      versions: [2147483647, 2147483648],
      latest: 2147483648,
    });
    expect(await sileroAnswer(node, 'ver')).toEqual(base.answer);
    const tooHigh = await request(node, {
      method: 'PUT',
      path: '/v1/models/ver/versions/2147483650',
      headers: { 'content-type': 'application/octet-stream' },
      body: silero,
    });
    expectError(tooHigh, 400, 'INVALID_NAME', node);
    expect(tooHigh.json!.error).toMatch(/up to 2147483647/);
    const keys = storeKeys(node).filter((k) => k.startsWith('models/ver/'));
    expect(keys).toEqual([
      'models/ver/2147483647/files/model.onnx',
      'models/ver/2147483647/manifest.json',
      'models/ver/2147483648/files/model.onnx',
      'models/ver/2147483648/manifest.json',
    ]);
    await expectIntact(node, base, { expectKeys: keys });
    await expectNoUploadLeftovers(node);
  });
});
