// An upload that forges a manifest: a file named manifest.json inside the upload used to land on the version's
// real manifest key, visible before the model was checked, and the artifact cache trusted its sha256 claim for
// the folder name. The attack below made `vad` run the attacker's model. Uploaded files now live under files/,
// manifests are checked when read, and the cache is keyed by verified hashes.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SILERO_INPUT_SPECS, SILERO_OUTPUT_SPECS, sileroBytes, tweakedSileroBytes } from '../helpers/model-bodies.ts';
import {
  baseline,
  expectError,
  expectIntact,
  expectNoUploadLeftovers,
  request,
  sileroAnswer,
  sileroRequestBody,
  startNode,
  storeKeys,
  uploadSilero,
  type Baseline,
  type HostileNode,
} from './rig.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let node: HostileNode;
let base: Baseline;
/** What the attacker's model (silero with some weights flipped) answers the fixed request. */
let attackerAnswer: unknown;

beforeAll(async () => {
  node = await startNode();
  await uploadSilero(node);
  const res = await request(node, {
    method: 'POST',
    path: '/v1/models/tweaked',
    headers: { 'content-type': 'application/octet-stream' },
    body: tweakedSileroBytes(),
  });
  expect(res.status, res.body.toString()).toBe(201);
  attackerAnswer = await sileroAnswer(node, 'tweaked');
  base = await baseline(node);
});
afterAll(async () => {
  await node?.stop();
});

describe('a forged manifest.json inside an upload', () => {
  it("cannot make another model's cache entry run the attacker's model", async () => {
    expect(attackerAnswer, 'the attacker model must answer differently for this test to mean anything').not.toEqual(base.answer);
    const silero = sileroBytes();
    const evil = tweakedSileroBytes();
    const extra = Buffer.from('a second file, so that the victim entry fails verification and is refetched');
    // Claims the victim's artifact id (silero's sha256) for the attacker's files, each of them hashed honestly.
    const files = [
      { path: 'extra.bin', sizeBytes: extra.length, sha256: sha256(extra) },
      { path: 'model.onnx', sizeBytes: evil.length, sha256: sha256(evil) },
    ];
    const forged = Buffer.from(
      JSON.stringify({
        name: 'evil',
        version: 1,
        format: 'onnx',
        files,
        sha256: sha256(silero),
        sizeBytes: evil.length + extra.length,
        createdAt: new Date().toISOString(),
        inputs: SILERO_INPUT_SPECS,
        outputs: SILERO_OUTPUT_SPECS,
      }),
    );
    // The multipart upload sends the attacker's files and the manifest, opens one more part and holds it open.
    const boundary = '----hearthpoison';
    const part = (filename: string, data: Buffer) =>
      Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
        ),
        data,
        Buffer.from('\r\n'),
      ]);
    const head = Buffer.concat([
      part('model.onnx', evil),
      part('extra.bin', extra),
      part('manifest.json', forged),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="late.bin"\r\n\r\nsome bytes`),
    ]);
    let hold: import('node:http').ClientRequest | undefined;
    const upload = request(node, {
      method: 'POST',
      path: '/v1/models/evil',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + 100_000 },
      body: (req) => {
        hold = req;
        req.write(head);
      },
      timeoutMs: 60_000,
    }).then(
      (r) => r,
      (e: Error) => e,
    );
    // The manifest part has reached the store once its key exists (beside the real manifest's key before the
    // fix, under files/ after it).
    const end = Date.now() + 20_000;
    const landed = () => storeKeys(node).some((k) => k === 'models/evil/1/manifest.json' || k === 'models/evil/1/files/manifest.json');
    while (!landed() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(landed(), 'the upload never stored its manifest.json part').toBe(true);

    // While the upload is held open: is the version visible, and does calling it touch the cache?
    const listed = await request(node, { path: '/v1/models/evil' });
    const called = await request(node, {
      method: 'POST',
      path: '/v2/models/evil/infer',
      headers: { 'content-type': 'application/json' },
      body: sileroRequestBody(),
    });
    hold!.destroy();
    await upload;

    // The victim starts a fresh instance, from the cache.
    const unload = await request(node, { method: 'POST', path: '/v2/repository/models/vad/unload' });
    expect(unload.status, unload.body.toString()).toBe(200);
    expect(await sileroAnswer(node, 'vad')).toEqual(base.answer);

    expectError(listed, 404, 'MODEL_NOT_FOUND', node);
    expectError(called, 404, 'MODEL_NOT_FOUND', node);
    await expectIntact(node, base);
    await expectNoUploadLeftovers(node);
  });

  it('an upload may hold files named manifest.json, config.json and .upload-x: they stay its own files', async () => {
    const boundary = '----hearthnames';
    const part = (filename: string, data: Buffer) =>
      Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
        ),
        data,
        Buffer.from('\r\n'),
      ]);
    const body = Buffer.concat([
      part('model.onnx', sileroBytes()),
      part('manifest.json', Buffer.from('{"name":"someone-else"}')),
      part('config.json', Buffer.from('{"minInstances":64}')),
      part('.upload-0000', Buffer.from('not a claim')),
      Buffer.from(`--${boundary}--\r\n`),
    ]);
    const res = await request(node, {
      method: 'POST',
      path: '/v1/models/names',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
    });
    expect(res.status, res.body.toString()).toBe(201);
    expect((res.json!.files as { path: string }[]).map((f) => f.path)).toEqual([
      '.upload-0000',
      'config.json',
      'manifest.json',
      'model.onnx',
    ]);
    const keys = storeKeys(node).filter((k) => k.startsWith('models/names/'));
    expect(keys).toEqual([
      'models/names/1/files/.upload-0000',
      'models/names/1/files/config.json',
      'models/names/1/files/manifest.json',
      'models/names/1/files/model.onnx',
      'models/names/1/manifest.json',
    ]);
    const manifest = await request(node, { path: '/v1/models/names/versions/1' });
    expect(manifest.json).toMatchObject({ name: 'names', version: 1, layout: 'files' });
    const config = await request(node, { path: '/v1/models/names/config' });
    expect(config.status).toBe(200);
    expect(config.json).not.toMatchObject({ minInstances: 64 });
    expect(await sileroAnswer(node, 'names')).toEqual(base.answer);
    await expectIntact(node, base, { expectKeys: keys });
    const del = await request(node, { method: 'DELETE', path: '/v1/models/names' });
    expect(del.status).toBe(200);
    await expectIntact(node, base);
  });
});

describe('versions in the store layout from before files/', () => {
  it('a version whose files sit beside manifest.json is still listed and served', async () => {
    const vad = (await request(node, { path: '/v1/models/vad/versions/1' })).json!;
    const dir = path.join(node.dataDir, 'store', 'models', 'legacy', '1');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'model.onnx'), sileroBytes());
    const { layout: _layout, ...old } = vad;
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...old, name: 'legacy', version: 1 }));
    const list = await request(node, { path: '/v1/models' });
    expect(list.json!.models).toContainEqual({ name: 'legacy', versions: [1], latest: 1 });
    expect(await sileroAnswer(node, 'legacy')).toEqual(base.answer);
    await expectIntact(node, base, { expectKeys: ['models/legacy/1/manifest.json', 'models/legacy/1/model.onnx'] });
    expect((await request(node, { method: 'DELETE', path: '/v1/models/legacy' })).status).toBe(200);
    await expectIntact(node, base);
  });

  it('a stored manifest that does not match its version is broken (422 MODEL_INVALID), never served, and can be deleted', async () => {
    const vad = (await request(node, { path: '/v1/models/vad/versions/1' })).json!;
    const dir = path.join(node.dataDir, 'store', 'models', 'forged', '1');
    fs.mkdirSync(path.join(dir, 'files'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'files', 'model.onnx'), tweakedSileroBytes());
    // Names itself "vad" and claims vad's hash for the attacker's bytes.
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(vad));
    const get = await request(node, { path: '/v1/models/forged/versions/1' });
    expectError(get, 422, 'MODEL_INVALID', node);
    expect(get.json!.error).toMatch(/broken/);
    const infer = await request(node, {
      method: 'POST',
      path: '/v2/models/forged/infer',
      headers: { 'content-type': 'application/json' },
      body: sileroRequestBody(),
    });
    expectError(infer, 422, 'MODEL_INVALID', node);
    expect((await request(node, { method: 'DELETE', path: '/v1/models/forged/versions/1' })).status).toBe(200);
    await expectIntact(node, base);
  });
});
