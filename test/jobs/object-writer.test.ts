// Streaming a job's chunk inputs and results into the store: the object appears only on end(), an abort leaves the
// earlier object as it was, and a store that fails (at once or part-way) fails the next write instead of hanging it.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hearthError } from '../../core/index.ts';
import { ObjectWriter } from '../../jobs/object-writer.ts';
import { FsObjectStore, type ObjectStore } from '../../model-store/index.ts';
import { faultyStore } from '../helpers/faulty-store.ts';

let dir: string;
let store: FsObjectStore;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-object-writer-'));
  store = new FsObjectStore({ root: dir });
  await store.init();
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const read = async (key: string): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const c of await store.get(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

const line = (i: number) => `{"index":${i},"pad":"${'x'.repeat(1000)}"}\n`;

describe('ObjectWriter', () => {
  it('streams lines into one object that appears on end; an abort keeps the earlier object', async () => {
    const w = new ObjectWriter(store, 'jobs/j/results/000000.jsonl');
    let text = '';
    for (let i = 0; i < 500; i++) {
      await w.write(line(i));
      text += line(i);
    }
    expect(w.bytes).toBe(Buffer.byteLength(text));
    expect(await store.stat('jobs/j/results/000000.jsonl')).toBeUndefined();
    expect(await w.end()).toEqual({ sizeBytes: Buffer.byteLength(text) });
    expect(await read('jobs/j/results/000000.jsonl')).toBe(text);

    const retry = new ObjectWriter(store, 'jobs/j/results/000000.jsonl');
    for (let i = 0; i < 100; i++) await retry.write(line(i));
    await retry.abort();
    expect(await read('jobs/j/results/000000.jsonl')).toBe(text);
    expect(await fs.readdir(path.join(dir, '.hearth-tmp'))).toEqual([]);
  });

  it('a store that refuses the object without reading it fails the first write that must wait', async () => {
    const refusing = faultyStore(store, { put: () => true });
    const w = new ObjectWriter(refusing, 'jobs/j/results/000001.jsonl');
    const writes = (async () => {
      for (let i = 0; i < 1000; i++) await w.write(line(i));
    })();
    await expect(writes).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });

  it('a store that fails part-way fails the writes after it', async () => {
    const failing = {
      put: async (_key: string, body: Readable | Buffer) => {
        let n = 0;
        for await (const _ of body as Readable) if (++n > 3) throw hearthError('STORE_UNAVAILABLE', 'gone part-way');
        return { sizeBytes: 0 };
      },
    } as unknown as ObjectStore;
    const w = new ObjectWriter(failing, 'k');
    const writes = (async () => {
      for (let i = 0; i < 1000; i++) await w.write(line(i));
      await w.end();
    })();
    await expect(writes).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: 'gone part-way' });
  });
});
