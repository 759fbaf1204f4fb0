// Datasets over the fs store (no Redis): a refused upload (empty, a line or the whole past its limit, a compressed
// body that decompresses past it or not at all) leaves the store as it was.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datasets } from '../../jobs/index.ts';
import { FsObjectStore } from '../../model-store/index.ts';

let dir: string;
let store: FsObjectStore;
let datasets: Datasets;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-datasets-'));
  store = new FsObjectStore({ root: dir });
  await store.init();
  datasets = new Datasets(store, { maxLineBytes: 1024, maxDatasetBytes: 64 * 1024 });
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const readKey = async (key: string): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const c of await store.get(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

describe('datasets', () => {
  it('counts rows and lines that are not JSON', async () => {
    const up = await datasets.put('counts', Readable.from([Buffer.from('{"inputs":[]}\nnot json\n\n{"inputs":[]}')]));
    expect(up).toMatchObject({ key: 'datasets/counts.jsonl', rows: 3, invalidLines: 1, invalidLineNumbers: [2] });
  });

  it('an empty body over an existing dataset is refused and keeps the dataset', async () => {
    const body = '{"inputs":[]}\n{"inputs":[]}\n';
    await datasets.put('keep', Readable.from([Buffer.from(body)]));
    await expect(datasets.put('keep', Readable.from([Buffer.from('\n\n')]))).rejects.toMatchObject({ code: 'EMPTY_BODY' });
    expect(await readKey('datasets/keep.jsonl')).toBe(body);
    expect((await store.list('')).map((o) => o.key).filter((k) => k.startsWith('datasets/keep'))).toEqual(['datasets/keep.jsonl']);
  });

  it('an empty body under a new name stores nothing', async () => {
    await expect(datasets.put('none', Readable.from([Buffer.from('   \n')]))).rejects.toMatchObject({ code: 'EMPTY_BODY' });
    expect(await store.stat('datasets/none.jsonl')).toBeUndefined();
  });

  it('a line past maxLineBytes, a body past maxDatasetBytes and a declared length past it are refused; the dataset stays', async () => {
    const body = '{"inputs":[]}\n';
    await datasets.put('bounded', Readable.from([Buffer.from(body)]));
    await expect(datasets.put('bounded', Readable.from([Buffer.from('{"inputs":[]}\n'), Buffer.alloc(1025, 0x61)]))).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      message: 'dataset "bounded": line 2 is longer than MAX_LINE_BYTES (1024 bytes)',
    });
    const many = Array.from({ length: 100 }, () => Buffer.from(body.repeat(50)));
    await expect(datasets.put('bounded', Readable.from(many))).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      message: 'dataset "bounded": the dataset is larger than MAX_DATASET_BYTES (65536 bytes)',
    });
    let read = false;
    const untouched = new Readable({ read: () => void (read = true) });
    await expect(datasets.put('bounded', untouched, { declaredBytes: 64 * 1024 + 1 })).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      message: expect.stringMatching(/Content-Length 65537 .*MAX_DATASET_BYTES/),
    });
    expect(read).toBe(false);
    expect(await readKey('datasets/bounded.jsonl')).toBe(body);
    expect(await fs.readdir(path.join(dir, '.hearth-tmp')).catch(() => [])).toEqual([]);
  });

  it('a gzip body is stored and counted decompressed; past the limits once decompressed, or corrupt, it is refused', async () => {
    const body = '{"inputs":[]}\n'.repeat(100);
    const gz = (text: string | Buffer) => Readable.from([zlib.gzipSync(text)]);
    const up = await datasets.put('packed', gz(body), { inflater: zlib.createGunzip(), encoding: 'gzip' });
    expect(up).toMatchObject({ rows: 100, bytes: body.length, invalidLines: 0 });
    expect(await readKey('datasets/packed.jsonl')).toBe(body);
    // A declared length is the compressed one: it is not compared with the limit, the decompressed bytes are.
    await expect(
      datasets.put('packed', gz(body.repeat(100)), { inflater: zlib.createGunzip(), encoding: 'gzip', declaredBytes: 10 }),
    ).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      message: 'dataset "packed": the dataset is larger than MAX_DATASET_BYTES (65536 bytes)',
    });
    await expect(
      datasets.put('packed', gz(Buffer.alloc(4096, 0x61)), { inflater: zlib.createGunzip(), encoding: 'gzip' }),
    ).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      message: expect.stringMatching(/line 1 is longer than MAX_LINE_BYTES/),
    });
    await expect(
      datasets.put('packed', Readable.from([Buffer.from(body)]), { inflater: zlib.createGunzip(), encoding: 'gzip' }),
    ).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      message: expect.stringMatching(/^dataset "packed": the gzip body could not be decompressed/),
    });
    expect(await readKey('datasets/packed.jsonl')).toBe(body);
    expect(await fs.readdir(path.join(dir, '.hearth-tmp')).catch(() => [])).toEqual([]);
  });
});
