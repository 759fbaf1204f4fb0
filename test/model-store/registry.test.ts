// ModelRegistry and ModelUploader logic on the fs store with a stub inspector (model loading is covered by the
// upload API tests): version allocation under concurrency, visibility by manifest, sweeping crash leftovers.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, hearthError, type ModelFormat } from '../../core/index.ts';
import { FsObjectStore, ModelRegistry, ModelUploader, parseVersion, type ObjectStore } from '../../model-store/index.ts';

describe('ModelRegistry and ModelUploader', () => {
  let root: string;
  let store: FsObjectStore;
  let registry: ModelRegistry;
  let uploader: ModelUploader;
  const clock = new ManualClock(Date.now());
  const inspected: { dir: string; format: ModelFormat; files: string[] }[] = [];

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-registry-'));
    store = new FsObjectStore({ root: path.join(root, 'store') });
    await store.init();
    registry = new ModelRegistry(store, { clock });
    uploader = new ModelUploader({
      registry,
      stagingDir: path.join(root, 'staging'),
      maxModelBytes: 1024 * 1024,
      clock,
      inspector: async (dir, format) => {
        inspected.push({ dir, format, files: (await fs.readdir(dir)).sort() });
        const first = await fs.readFile(path.join(dir, 'model.onnx')).catch(() => Buffer.alloc(0));
        if (first.toString().startsWith('bad')) throw hearthError('MODEL_INVALID', 'stub says bad');
        // Lets a test hold an upload open between staging and manifest.
        if (first.toString().startsWith('slow')) await new Promise((r) => setTimeout(r, 200));
        return { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1] }] };
      },
    });
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  const onnx = (text: string) => ({ kind: 'onnx' as const, stream: Readable.from([Buffer.from(text)]) });

  it('gives concurrent uploads of one model distinct, consecutive versions', async () => {
    const manifests = await Promise.all([1, 2, 3, 4].map((i) => uploader.upload('par', undefined, onnx(`slow model ${i}`))));
    expect(manifests.map((m) => m.version).sort()).toEqual([1, 2, 3, 4]);
    expect(await registry.getModel('par')).toEqual({ name: 'par', versions: [1, 2, 3, 4], latest: 4 });
    // Staging held the file under model.onnx while it was inspected, and is empty now.
    expect(inspected.at(-1)).toMatchObject({ format: 'onnx', files: ['model.onnx'] });
    expect(await fs.readdir(path.join(root, 'staging'))).toEqual([]);
  });

  it('refuses an explicit version that is being uploaded right now', async () => {
    const slow = uploader.upload('race', 5, onnx('slow one'));
    await new Promise((r) => setTimeout(r, 50));
    await expect(uploader.upload('race', 5, onnx('second'))).rejects.toMatchObject({ code: 'VERSION_EXISTS' });
    expect((await slow).version).toBe(5);
    // The next automatic version follows the explicit one.
    expect((await uploader.upload('race', undefined, onnx('next'))).version).toBe(6);
  });

  it('keeps a version invisible until its manifest exists, and resolves "latest" from visible versions only', async () => {
    await store.put('models/vis/3/model.onnx', Buffer.from('half-written'));
    await expect(registry.getModel('vis')).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    await uploader.upload('vis', 1, onnx('ok'));
    expect(await registry.getModel('vis')).toEqual({ name: 'vis', versions: [1], latest: 1 });
    expect((await registry.getManifest('vis')).version).toBe(1);
    await expect(registry.getManifest('vis', 3)).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
    // A fresh upload skips past the unfinished folder rather than writing into it.
    expect((await uploader.upload('vis', undefined, onnx('ok'))).version).toBe(4);
  });

  it('sweeps manifest-less version folders once they are older than an hour, and nothing else', async () => {
    await store.put('models/crash/1/model.onnx', Buffer.from('left by a crash'));
    await uploader.upload('crash', 2, onnx('fine'));
    expect(await registry.sweepIncomplete()).toEqual([]); // too recent
    clock.advance(2 * 3_600_000);
    const swept = await registry.sweepIncomplete();
    expect(swept).toContain('models/crash/1/');
    expect(swept).toContain('models/vis/3/');
    expect((await store.list('models/crash/')).map((o) => o.key)).toEqual([
      'models/crash/2/files/model.onnx',
      'models/crash/2/manifest.json',
    ]);
    // An explicit upload onto a stale leftover folder clears it and succeeds.
    await store.put('models/crash/9/model.onnx', Buffer.from('old leftover'));
    clock.advance(2 * 3_600_000);
    expect((await uploader.upload('crash', 9, onnx('fresh'))).files[0].sizeBytes).toBe(5);
  });

  it('an inspector refusal removes every object and the staging folder', async () => {
    const before = (await store.list('')).map((o) => o.key);
    await expect(uploader.upload('par', undefined, onnx('bad bytes'))).rejects.toMatchObject({ code: 'MODEL_INVALID' });
    expect((await store.list('')).map((o) => o.key)).toEqual(before);
    expect(await fs.readdir(path.join(root, 'staging'))).toEqual([]);
    expect((await registry.getModel('par')).latest).toBe(4);
  });

  it('two nodes on one store never hand out the same version (claims in the version folder)', async () => {
    const other = new ModelRegistry(store, { clock });
    const held = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? registry : other).reserveVersion('shared')));
    const versions = held.map((r) => r.version);
    expect(new Set(versions).size).toBe(8);
    for (const r of held) {
      expect((await store.list(registry.versionPrefix('shared', r.version))).map((o) => o.key)).toEqual([r.claimKey]);
      await store.delete(r.claimKey);
      r.release();
    }
    const both = await Promise.allSettled([registry.reserveVersion('shared2', 3), other.reserveVersion('shared2', 3)]);
    expect(both.filter((s) => s.status === 'fulfilled').length).toBeLessThanOrEqual(1);
    for (const s of both) if (s.status === 'rejected') expect(s.reason).toMatchObject({ code: 'VERSION_EXISTS' });
  });

  it('a store failure right after a version claim is written removes the claim, so the version stays free', async () => {
    let failList = true;
    const flaky: ObjectStore = {
      kind: 'fs',
      init: () => store.init(),
      put: (key, body) => store.put(key, body),
      get: (key) => store.get(key),
      stat: (key) => store.stat(key),
      delete: (key) => store.delete(key),
      close: () => store.close(),
      list: (prefix) => store.list(prefix),
      listChildren: async (prefix) => {
        if (failList && prefix === 'models/flaky/1/') {
          failList = false;
          throw hearthError('STORE_UNAVAILABLE', 'injected');
        }
        return store.listChildren(prefix);
      },
    };
    const reg = new ModelRegistry(flaky, { clock });
    await expect(reg.reserveVersion('flaky', 1)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect((await store.list('models/flaky/')).map((o) => o.key)).toEqual([]);
    const again = await reg.reserveVersion('flaky', 1);
    expect(again.version).toBe(1);
    await store.delete(again.claimKey);
    again.release();
  });

  it('refuses bad names and versions with INVALID_NAME', async () => {
    await expect(registry.getModel('Upper')).rejects.toMatchObject({ code: 'INVALID_NAME' });
    await expect(uploader.upload('../x', undefined, onnx('x'))).rejects.toMatchObject({ code: 'INVALID_NAME' });
    await expect(registry.getModel('a'.repeat(64))).rejects.toMatchObject({ code: 'INVALID_NAME' });
  });

  it('computes the multi-file sha256 from sorted "path sha256" lines', async () => {
    const { createHash } = await import('node:crypto');
    const json = JSON.stringify({
      format: 'graph-model',
      modelTopology: { node: [] },
      weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'w', shape: [7], dtype: 'bool' }] }],
    });
    const files = (async function* () {
      yield { filename: 'w.bin', stream: Readable.from([Buffer.from('weights')]) };
      yield { filename: 'model.json', stream: Readable.from([Buffer.from(json)]) };
    })();
    const m = await uploader.upload('graph', undefined, { kind: 'files', files });
    expect(m.format).toBe('tfjs-graph');
    const sha = (b: string) => createHash('sha256').update(b).digest('hex');
    const expected = createHash('sha256')
      .update(`model.json ${sha(json)}\nw.bin ${sha('weights')}\n`)
      .digest('hex');
    expect(m.sha256).toBe(expected);
    expect(m.sizeBytes).toBe(json.length + 7);
  });
});

describe('store layout, manifest checks and listings', () => {
  let root: string;
  let store: FsObjectStore;
  /** Store calls by kind, for the listing tests. */
  const calls = { list: [] as string[], listChildren: [] as string[], stat: 0, get: 0 };
  let counted: ObjectStore;
  let registry: ModelRegistry;
  let uploader: ModelUploader;
  const clock = new ManualClock(Date.now());

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-layout-'));
    store = new FsObjectStore({ root: path.join(root, 'store') });
    await store.init();
    counted = {
      kind: 'fs',
      init: () => store.init(),
      put: (key, body) => store.put(key, body),
      get: (key) => (calls.get++, store.get(key)),
      stat: (key) => (calls.stat++, store.stat(key)),
      delete: (key) => store.delete(key),
      close: () => store.close(),
      list: (prefix) => (calls.list.push(prefix), store.list(prefix)),
      listChildren: (prefix) => (calls.listChildren.push(prefix), store.listChildren(prefix)),
    };
    registry = new ModelRegistry(counted, { clock });
    uploader = new ModelUploader({
      registry,
      stagingDir: path.join(root, 'staging'),
      maxModelBytes: 1024 * 1024,
      maxArchiveFiles: 300,
      clock,
      inspector: async () => ({
        inputs: [{ name: 'x', datatype: 'FP32', shape: [-1] }],
        outputs: [{ name: 'y', datatype: 'FP32', shape: [-1] }],
      }),
    });
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  const filesBody = (names: string[]) => ({
    kind: 'files' as const,
    files: (async function* () {
      for (const n of names) yield { filename: n, stream: Readable.from([Buffer.from(`bytes of ${n}`)]) };
    })(),
  });
  const onnx = (text: string) => ({ kind: 'onnx' as const, stream: Readable.from([Buffer.from(text)]) });

  it("stores uploaded files under files/, so names like manifest.json never reach Hearth's own keys", async () => {
    const m = await uploader.upload('own', undefined, filesBody(['model.onnx', 'manifest.json', 'config.json', '.upload-1']));
    expect(m.layout).toBe('files');
    expect((await store.list('models/own/')).map((o) => o.key)).toEqual([
      'models/own/1/files/.upload-1',
      'models/own/1/files/config.json',
      'models/own/1/files/manifest.json',
      'models/own/1/files/model.onnx',
      'models/own/1/manifest.json',
    ]);
    expect(await registry.getManifest('own', 1)).toEqual(m);
    const chunks: Buffer[] = [];
    for await (const c of await registry.openFile(m, 'manifest.json')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('bytes of manifest.json');
  });

  it('reads a version in the old layout (files beside manifest.json, no layout field)', async () => {
    const { createHash } = await import('node:crypto');
    const bytes = Buffer.from('old model');
    const sha = createHash('sha256').update(bytes).digest('hex');
    const manifest = {
      name: 'old',
      version: 2,
      format: 'onnx',
      files: [{ path: 'model.onnx', sizeBytes: bytes.length, sha256: sha }],
      sha256: sha,
      sizeBytes: bytes.length,
      createdAt: new Date(0).toISOString(),
      inputs: [],
      outputs: [],
    };
    await store.put('models/old/2/model.onnx', bytes);
    await store.put('models/old/2/manifest.json', Buffer.from(JSON.stringify(manifest)));
    const got = await registry.getManifest('old');
    expect(got).toEqual(manifest);
    const chunks: Buffer[] = [];
    for await (const c of await registry.openFile(got, 'model.onnx')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks)).toEqual(bytes);
    // A new upload of the same model uses the new layout beside it.
    expect((await uploader.upload('old', undefined, onnx('new'))).version).toBe(3);
    expect(await store.stat('models/old/3/files/model.onnx')).toBeDefined();
  });

  it('a manifest that does not match its path is a broken version: MODEL_INVALID on read, still listed, deletable', async () => {
    const m = await uploader.upload('victim', undefined, onnx('victim'));
    await store.put('models/liar/1/files/model.onnx', Buffer.from('x'));
    await store.put('models/liar/1/manifest.json', Buffer.from(JSON.stringify(m)));
    await expect(registry.getManifest('liar', 1)).rejects.toMatchObject({
      code: 'MODEL_INVALID',
      message: expect.stringMatching(/names model victim/),
    });
    await expect(registry.getManifest('liar')).rejects.toMatchObject({ code: 'MODEL_INVALID' });
    await store.put('models/junk/1/manifest.json', Buffer.from('{not json'));
    await expect(registry.getManifest('junk', 1)).rejects.toMatchObject({
      code: 'MODEL_INVALID',
      message: expect.stringMatching(/not valid JSON/),
    });
    expect(await registry.getModel('liar')).toEqual({ name: 'liar', versions: [1], latest: 1 });
    await registry.deleteVersion('liar', 1);
    await registry.deleteModel('junk');
    expect(await store.list('models/liar/')).toEqual([]);
    expect(await store.list('models/junk/')).toEqual([]);
    // Nor is one written: a manifest must pass the same checks on its way in.
    await expect(registry.writeManifest({ ...m, version: 9, sha256: 'f'.repeat(64) })).rejects.toMatchObject({ code: 'MODEL_INVALID' });
    expect(await store.stat('models/victim/9/manifest.json')).toBeUndefined();
  });

  it('lists models one folder level at a time: the cost does not grow with the files of a version', async () => {
    const measure = async () => {
      calls.list.length = 0;
      calls.listChildren.length = 0;
      calls.stat = 0;
      calls.get = 0;
      const models = await registry.listModels();
      return { models, list: [...calls.list], listChildren: calls.listChildren.length, stat: calls.stat, get: calls.get };
    };
    const before = await measure();
    await uploader.upload('many', undefined, filesBody(['model.onnx', ...Array.from({ length: 250 }, (_, i) => `f${i}.bin`)]));
    const after = await measure();
    expect(after.models.find((m) => m.name === 'many')).toEqual({ name: 'many', versions: [1], latest: 1 });
    expect(after.list).toEqual([]);
    expect(after.get).toBe(0);
    // One more model: one folder listing and one manifest stat, whatever its 251 files.
    expect(after.listChildren - before.listChildren).toBe(1);
    expect(after.stat - before.stat).toBe(1);
  });

  it('refuses the file past MAX_ARCHIVE_FILES and leaves nothing', async () => {
    const before = (await store.list('')).map((o) => o.key);
    await expect(
      uploader.upload('toomany', undefined, filesBody(['model.onnx', ...Array.from({ length: 300 }, (_, i) => `f${i}.bin`)])),
    ).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      message: expect.stringMatching(/MAX_ARCHIVE_FILES \(300\)/),
    });
    expect((await store.list('')).map((o) => o.key)).toEqual(before);
  });

  it('keeps room for POST above any explicit version: PUT 2147483647, then POST answers 2147483648', async () => {
    expect((await uploader.upload('top', 2 ** 31 - 1, onnx('a'))).version).toBe(2 ** 31 - 1);
    expect((await uploader.upload('top', undefined, onnx('b'))).version).toBe(2 ** 31);
    expect(await registry.getModel('top')).toEqual({ name: 'top', versions: [2 ** 31 - 1, 2 ** 31], latest: 2 ** 31 });
    expect((await registry.getManifest('top', 2 ** 31)).version).toBe(2 ** 31);
    await expect(uploader.upload('top', 2 ** 31 + 5, onnx('c'))).rejects.toMatchObject({
      code: 'INVALID_NAME',
      message: expect.stringMatching(/up to 2147483647/),
    });
    expect(parseVersion('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
    for (const bad of ['9007199254740992', '0', '01', '-1', '1.5', '1e3', ''])
      expect(() => parseVersion(bad)).toThrow(/expected a positive integer/);
  });
});
