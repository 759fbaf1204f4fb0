// The node-local artifact cache: downloads once, verifies hashes, refetches corrupt entries, evicts LRU.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../core/index.ts';
import { ArtifactCache, type OpenArtifactFile } from '../../model-store/artifact-cache.ts';

function manifestOf(name: string, files: Record<string, Buffer>): Manifest {
  const list = Object.entries(files).map(([p, b]) => ({
    path: p,
    sizeBytes: b.length,
    sha256: createHash('sha256').update(b).digest('hex'),
  }));
  const lines = [...list]
    .sort((a, b) => a.path.localeCompare(b.path))
    .map((f) => `${f.path} ${f.sha256}\n`)
    .join('');
  return {
    name,
    version: 1,
    format: 'onnx',
    files: list,
    sha256: list.length === 1 ? list[0].sha256 : createHash('sha256').update(lines).digest('hex'),
    sizeBytes: list.reduce((n, f) => n + f.sizeBytes, 0),
    createdAt: new Date(0).toISOString(),
    inputs: [],
    outputs: [],
  };
}

/** A fake store that counts reads and can be told to lie. */
function fakeStore(contents: Map<string, Record<string, Buffer>>) {
  const reads: string[] = [];
  const open: OpenArtifactFile = async (m, p) => {
    reads.push(`${m.name}/${p}`);
    const b = contents.get(m.name)?.[p];
    if (!b) throw new Error(`no such object models/${m.name}/${m.version}/${p}`);
    // Two chunks, so hashing across chunk boundaries is exercised.
    return Readable.from([b.subarray(0, b.length >> 1), b.subarray(b.length >> 1)]);
  };
  return { reads, open };
}

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-cache-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('ArtifactCache', () => {
  it('downloads once, then serves from cache; concurrent ensure() shares one download', async () => {
    const files = { 'model.json': Buffer.from('{"a":1}'), 'weights/group1-shard1of1.bin': Buffer.alloc(5000, 7) };
    const m = manifestOf('tf', files);
    const store = fakeStore(new Map([['tf', files]]));
    const cache = new ArtifactCache({ dir: path.join(root, 'a'), maxBytes: 1e9, openFile: store.open });
    const [a, b] = await Promise.all([cache.ensure(m), cache.ensure(m)]);
    expect(a.source).toBe('store');
    expect(b).toBe(a);
    expect(store.reads).toHaveLength(2);
    expect(await fs.readFile(path.join(a.dir, 'weights/group1-shard1of1.bin'))).toEqual(files['weights/group1-shard1of1.bin']);
    const c = await cache.ensure(m);
    expect(c.source).toBe('cache');
    expect(c.dir).toBe(a.dir);
    expect(store.reads).toHaveLength(2);
    expect(path.basename(c.dir)).toBe(m.sha256);
  });

  it('detects a corrupt entry by its hash and fetches it again', async () => {
    const files = { 'model.onnx': Buffer.from('real model bytes '.repeat(100)) };
    const m = manifestOf('x', files);
    const store = fakeStore(new Map([['x', files]]));
    const cache = new ArtifactCache({ dir: path.join(root, 'b'), maxBytes: 1e9, openFile: store.open });
    const first = await cache.ensure(m);
    // Same size, different bytes: only the hash can tell.
    const bad = Buffer.from(files['model.onnx']);
    bad[10] ^= 0xff;
    await fs.writeFile(path.join(first.dir, 'model.onnx'), bad);
    const again = await cache.ensure(m);
    expect(again.source).toBe('store');
    expect(await fs.readFile(path.join(again.dir, 'model.onnx'))).toEqual(files['model.onnx']);
    expect(store.reads).toHaveLength(2);
  });

  it('a new process verifies what it finds on disk, and trusts it when intact', async () => {
    const files = { 'model.onnx': Buffer.from('persisted') };
    const m = manifestOf('p', files);
    const dir = path.join(root, 'c');
    const store = fakeStore(new Map([['p', files]]));
    await new ArtifactCache({ dir, maxBytes: 1e9, openFile: store.open }).ensure(m);
    const later = new ArtifactCache({ dir, maxBytes: 1e9, openFile: store.open });
    expect((await later.ensure(m)).source).toBe('cache');
    expect(store.reads).toHaveLength(1);
  });

  it('rejects bytes from the store that do not match the manifest and leaves nothing behind', async () => {
    const files = { 'model.onnx': Buffer.from('good') };
    const m = manifestOf('lie', files);
    const store = fakeStore(new Map([['lie', { 'model.onnx': Buffer.from('evil') }]]));
    const dir = path.join(root, 'd');
    const cache = new ArtifactCache({ dir, maxBytes: 1e9, openFile: store.open });
    await expect(cache.ensure(m)).rejects.toThrow(/sha256/);
    expect(await fs.readdir(dir)).toEqual([]);
    expect(cache.sizeBytes).toBe(0);
  });

  it("refuses a manifest that claims another artifact's sha256, and the victim's entry keeps its own bytes", async () => {
    const victim = { 'model.onnx': Buffer.from('victim model bytes') };
    const attacker = { 'model.onnx': Buffer.from('attack model bytes'), 'extra.bin': Buffer.from('x') };
    const mv = manifestOf('victim', victim);
    const forged = { ...manifestOf('evil', attacker), sha256: mv.sha256 };
    const store = fakeStore(
      new Map([
        ['victim', victim],
        ['evil', attacker],
      ]),
    );
    const cache = new ArtifactCache({ dir: path.join(root, 'poison'), maxBytes: 1e9, openFile: store.open });
    const first = await cache.ensure(mv);
    await expect(cache.ensure(forged)).rejects.toMatchObject({ code: 'MODEL_INVALID' });
    expect(store.reads).toEqual(['victim/model.onnx']);
    const again = await cache.ensure(mv);
    expect(again).toMatchObject({ dir: first.dir, source: 'cache' });
    expect(await fs.readFile(path.join(again.dir, 'model.onnx'))).toEqual(victim['model.onnx']);
    // Files that hash honestly but a top-level sha256 that is not their id: refused the same way.
    await expect(cache.ensure({ ...mv, sha256: 'f'.repeat(64) })).rejects.toThrow(/not the id of its files/);
    // And an unsafe path never reaches the disk.
    const bad = { ...mv, files: [{ ...mv.files[0], path: '../outside.onnx' }] };
    await expect(cache.ensure(bad)).rejects.toMatchObject({ code: 'MODEL_INVALID' });
  });

  it('hashes an entry found on disk before trusting it: a folder poisoned by an older process is fetched again', async () => {
    const files = { 'model.onnx': Buffer.from('the real model, 32 bytes long..!') };
    const m = manifestOf('v', files);
    const dir = path.join(root, 'poisoned');
    await fs.mkdir(path.join(dir, m.sha256), { recursive: true });
    // Same size and name, other bytes: what the forged-manifest attack left in a cache folder named by a claim.
    await fs.writeFile(path.join(dir, m.sha256, 'model.onnx'), Buffer.from('an attacker model, 32 bytes long'));
    const store = fakeStore(new Map([['v', files]]));
    const cache = new ArtifactCache({ dir, maxBytes: 1e9, openFile: store.open });
    const got = await cache.ensure(m);
    expect(got.source).toBe('store');
    expect(await fs.readFile(path.join(got.dir, 'model.onnx'))).toEqual(files['model.onnx']);
  });

  it('evicts the least recently used entries past maxBytes', async () => {
    const mk = (n: string) => ({ 'model.onnx': Buffer.alloc(1000, n.charCodeAt(0)) });
    const contents = new Map([
      ['a', mk('a')],
      ['b', mk('b')],
      ['c', mk('c')],
    ]);
    const store = fakeStore(contents);
    const cache = new ArtifactCache({ dir: path.join(root, 'e'), maxBytes: 2500, openFile: store.open });
    const [ma, mb, mc] = ['a', 'b', 'c'].map((n) => manifestOf(n, contents.get(n)!));
    await cache.ensure(ma);
    await cache.ensure(mb);
    await cache.ensure(ma); // a is now more recent than b
    await cache.ensure(mc); // over budget: b goes
    expect(cache.keys().sort()).toEqual([ma.sha256, mc.sha256].sort());
    expect(cache.sizeBytes).toBe(2000);
    expect((await cache.ensure(ma)).source).toBe('cache');
    expect((await cache.ensure(mb)).source).toBe('store');
  });
});
