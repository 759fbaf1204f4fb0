import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { FsObjectStore } from '../../model-store/index.ts';
import { objectStoreConformance } from './object-store-conformance.ts';

objectStoreConformance(
  'fs',
  async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-fs-store-'));
    return { store: new FsObjectStore({ root }), cleanup: () => fs.rm(root, { recursive: true, force: true }) };
  },
  { largeBytes: 80 * 1024 * 1024 },
);

describe('FsObjectStore specifics', () => {
  it('never lists its temp folder and removes temp files of a failed put', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-fs-store-'));
    try {
      const store = new FsObjectStore({ root });
      await store.init();
      await fs.writeFile(path.join(root, '.hearth-tmp', 'left-over.part'), 'x');
      await store.put('k/v', Buffer.from('v'));
      expect((await store.list('')).map((o) => o.key)).toEqual(['k/v']);
      const { Readable } = await import('node:stream');
      const failing = new Readable({
        read() {
          this.destroy(new Error('boom'));
        },
      });
      await expect(store.put('k/w', failing)).rejects.toThrow('boom');
      expect(await fs.readdir(path.join(root, '.hearth-tmp'))).toEqual(['left-over.part']);
      await expect(store.put('.hearth-tmp/x', Buffer.from('x'))).rejects.toThrow(/reserved/);
      // Deleting the last key prunes its empty folders.
      await store.delete('k/v');
      expect((await fs.readdir(root)).sort()).toEqual(['.hearth-tmp']);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('a put survives a delete that prunes its folder between the folder being made and the rename', async () => {
    // Two nodes: one backs off a version claim (deleting the folder's only object, which prunes the folder)
    // just as the other renames its own claim into that folder.
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-fs-store-'));
    const store = new FsObjectStore({ root });
    const realRename = fs.rename;
    let spy: { mockRestore(): void } | undefined;
    try {
      await store.init();
      await store.put('models/m/1/.upload-other', Buffer.alloc(0));
      spy = vi.spyOn(fs, 'rename').mockImplementationOnce(async (from, to) => {
        await store.delete('models/m/1/.upload-other');
        return realRename(from, to);
      });
      await store.put('models/m/1/.upload-mine', Buffer.from('x'));
      expect((await store.list('models/')).map((o) => o.key)).toEqual(['models/m/1/.upload-mine']);
    } finally {
      spy?.mockRestore();
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('maps an unwritable root to STORE_UNAVAILABLE', async () => {
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-fs-store-')), 'a-file');
    await fs.writeFile(file, 'not a folder');
    const store = new FsObjectStore({ root: file });
    await expect(store.init()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await fs.rm(path.dirname(file), { recursive: true, force: true });
  });
});
