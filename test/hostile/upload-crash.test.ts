// Hostile uploads that used to end the whole process (an unhandled 'error' event in the upload pipeline) or answer
// 500 with the staging path: a truncated tar, over-long and over-deep names, a path that is both file and folder,
// and bodies cut off by the client. Each must get a 4xx, and the node must carry on as before.
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipartBody, sileroBytes, tarBytes, tarGz, type TarEntry } from '../helpers/model-bodies.ts';
import { startNodeWithVad, expectError, expectIntact, expectNoUploadLeftovers, request, type Baseline, type HostileNode } from './rig.ts';

let node: HostileNode;
let base: Baseline;

beforeAll(async () => {
  ({ node, base } = await startNodeWithVad());
});
afterAll(async () => {
  await node?.stop();
});

const postGzip = (body: Buffer) =>
  request(node, { method: 'POST', path: '/v1/models/bad', headers: { 'content-type': 'application/gzip' }, body });
const postMultipart = (files: { filename: string; data: Buffer }[]) => {
  const mp = multipartBody(files);
  return request(node, { method: 'POST', path: '/v1/models/bad', headers: { 'content-type': mp.contentType }, body: mp.body });
};
const file = (name: string, text = 'x'): TarEntry => ({ name, data: Buffer.from(text) });

async function survived(): Promise<void> {
  await expectIntact(node, base);
  await expectNoUploadLeftovers(node);
}

describe('a .tar.gz whose tar ends inside an entry (valid gzip around a cut tar)', () => {
  // One 1500-byte file: header 0-512, data 512-2012, padding to 2048, end blocks to 3072. Every cut but the
  // block boundaries leaves the tar reader short of what its last header announced.
  const cuts = [100, 700, 1000, 1500, 2012, 2030, 2600];
  for (const cut of cuts) {
    it(`cut at byte ${cut}: 400 CORRUPT_ARCHIVE`, async () => {
      const tar = await tarBytes([{ name: 'model.json', data: Buffer.alloc(1500, 0x41) }]);
      const res = await postGzip(gzipSync(tar.subarray(0, cut)));
      expectError(res, 400, 'CORRUPT_ARCHIVE', node);
      await survived();
    });
  }
});

describe('names the filesystem refuses', () => {
  it('a tar entry named with 300 characters: 400 UNSAFE_ARCHIVE', async () => {
    const res = await postGzip(await tarGz([file('x'.repeat(300))]));
    expectError(res, 400, 'UNSAFE_ARCHIVE', node);
    expect(res.json!.error).toMatch(/at most 255/);
    await survived();
  });

  it('a multipart file named with 300 characters: 400 INVALID_REQUEST', async () => {
    const res = await postMultipart([{ filename: 'y'.repeat(300), data: Buffer.from('hello') }]);
    expectError(res, 400, 'INVALID_REQUEST', node);
    expect(res.json!.error).toMatch(/at most 255/);
    await survived();
  });

  it('a tar entry 3000 folders deep (longer than PATH_MAX once staged): 400 UNSAFE_ARCHIVE, no server path', async () => {
    const res = await postGzip(await tarGz([file(`${'d/'.repeat(3000)}model.json`)]));
    expectError(res, 400, 'UNSAFE_ARCHIVE', node);
    expect(String(res.json!.error).length).toBeLessThan(400);
    await survived();
  });

  it('a tar entry 40 folders deep: 400 UNSAFE_ARCHIVE naming the depth limit', async () => {
    const res = await postGzip(await tarGz([file(`${'d/'.repeat(40)}model.json`)]));
    expectError(res, 400, 'UNSAFE_ARCHIVE', node);
    expect(res.json!.error).toMatch(/at most 32/);
    await survived();
  });

  it('a tar entry path of 1100 bytes in short names: 400 UNSAFE_ARCHIVE naming the length limit', async () => {
    const res = await postGzip(await tarGz([file(`${`${'n'.repeat(99)}/`.repeat(11)}m`)]));
    expectError(res, 400, 'UNSAFE_ARCHIVE', node);
    expect(res.json!.error).toMatch(/at most 1024/);
    await survived();
  });
});

describe('a path that is both a file and a folder', () => {
  it('tar: file "a/b", then file "a" (EISDIR when staged): 400 UNSAFE_ARCHIVE', async () => {
    const res = await postGzip(await tarGz([file('a/b'), file('a')]));
    expectError(res, 400, 'UNSAFE_ARCHIVE', node);
    await survived();
  });

  it('tar: file "a", then file "a/b" (ENOTDIR when staged): 400 UNSAFE_ARCHIVE', async () => {
    const res = await postGzip(await tarGz([file('a'), file('a/b')]));
    expectError(res, 400, 'UNSAFE_ARCHIVE', node);
    await survived();
  });

  it('multipart: the same file name twice (busboy keeps only the last path segment): 422 MODEL_INVALID', async () => {
    const res = await postMultipart([
      { filename: 'a', data: Buffer.from('1') },
      { filename: 'a', data: Buffer.from('2') },
    ]);
    expectError(res, 422, 'MODEL_INVALID', node);
    expect(res.json!.error).toMatch(/twice/);
    await survived();
  });
});

describe('bodies the client cuts off', () => {
  /** Sends the first `n` bytes of `body` under a Content-Length for all of it, then drops the connection. */
  const cutOff = (type: string, body: Buffer, n: number) =>
    request(node, {
      method: 'POST',
      path: '/v1/models/bad',
      headers: { 'content-type': type, 'content-length': body.length },
      body: (req) => {
        req.write(body.subarray(0, n), () => setTimeout(() => req.destroy(), 200));
      },
    }).then(
      (res) => res,
      (e: Error) => e,
    );

  it('a raw ONNX upload cut halfway: the node carries on and keeps nothing', async () => {
    const silero = sileroBytes();
    await cutOff('application/octet-stream', silero, silero.length >> 1);
    await survived();
  });

  it('a .tar.gz cut inside its gzip stream by the client: the node carries on and keeps nothing', async () => {
    const body = await tarGz([{ name: 'model.onnx', data: sileroBytes() }]);
    await cutOff('application/gzip', body, body.length >> 1);
    await survived();
  });

  it('a multipart upload cut inside its second file: the node carries on and keeps nothing', async () => {
    const mp = multipartBody([
      { filename: 'model.json', data: Buffer.from('{}') },
      { filename: 'w.bin', data: sileroBytes() },
    ]);
    await cutOff(mp.contentType, mp.body, mp.body.length >> 1);
    await survived();
  });
});
