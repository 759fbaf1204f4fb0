// One conformance suite for every ObjectStore backend: each backend's test file calls it with a factory.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHearthError } from '../../core/index.ts';
import { isNotFound, type ObjectStore } from '../../model-store/index.ts';

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A body of `total` bytes made on the fly, `chunk` bytes at a time: never held in memory whole. */
function generated(total: number, chunk = 1024 * 1024): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  let sent = 0;
  let seq = 0;
  const stream = new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(chunk, total - sent);
      const buf = Buffer.alloc(n, seq++ % 251);
      buf.writeUInt32LE(seq, 0);
      hash.update(buf);
      sent += n;
      this.push(buf);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

export interface ConformanceOptions {
  /** Size of the large streamed put; it must cross the backend's multipart threshold where there is one. */
  largeBytes: number;
}

export function objectStoreConformance(
  name: string,
  make: () => Promise<{ store: ObjectStore; cleanup: () => Promise<void> }>,
  opts: ConformanceOptions,
): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    let store: ObjectStore;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ store, cleanup } = await make());
      await store.init();
      await store.init(); // idempotent
    });
    afterAll(async () => {
      await store?.close();
      await cleanup?.();
    });

    it('puts a buffer and gets the same bytes back', async () => {
      const body = randomBytes(1000);
      expect(await store.put('a/b/one.bin', body)).toEqual({ sizeBytes: 1000 });
      expect((await readAll(await store.get('a/b/one.bin'))).equals(body)).toBe(true);
      const st = await store.stat('a/b/one.bin');
      expect(st?.sizeBytes).toBe(1000);
      expect(st?.key).toBe('a/b/one.bin');
      expect(st?.lastModified).toBeInstanceOf(Date);
    });

    it('puts a stream and overwrites an existing key whole', async () => {
      await store.put('over/x', Buffer.from('first version, longer'));
      const res = await store.put('over/x', Readable.from([Buffer.from('sec'), Buffer.from('ond')]));
      expect(res.sizeBytes).toBe(6);
      expect((await readAll(await store.get('over/x'))).toString()).toBe('second');
    });

    it('stores an empty object', async () => {
      expect(await store.put('empty/zero', Buffer.alloc(0))).toEqual({ sizeBytes: 0 });
      expect((await store.stat('empty/zero'))?.sizeBytes).toBe(0);
      expect((await readAll(await store.get('empty/zero'))).length).toBe(0);
    });

    it('answers undefined for stat and NotFound for get on a missing key', async () => {
      expect(await store.stat('nope/missing')).toBeUndefined();
      const err = await store.get('nope/missing').then(
        () => undefined,
        (e) => e,
      );
      expect(isNotFound(err)).toBe(true);
    });

    it('lists by prefix in key order, including partial segment prefixes', async () => {
      await store.put('list/m/2/b.bin', Buffer.from('bb'));
      await store.put('list/m/1/a.bin', Buffer.from('a'));
      await store.put('list/m/10/c.bin', Buffer.from('ccc'));
      await store.put('list/mx/1/d.bin', Buffer.from('d'));
      expect((await store.list('list/m/')).map((o) => o.key)).toEqual(['list/m/1/a.bin', 'list/m/10/c.bin', 'list/m/2/b.bin']);
      expect((await store.list('list/m')).map((o) => o.key)).toEqual([
        'list/m/1/a.bin',
        'list/m/10/c.bin',
        'list/m/2/b.bin',
        'list/mx/1/d.bin',
      ]);
      expect((await store.list('list/m/1')).map((o) => o.key)).toEqual(['list/m/1/a.bin', 'list/m/10/c.bin']);
      expect((await store.list('list/m/2/b.bin'))[0]).toMatchObject({ key: 'list/m/2/b.bin', sizeBytes: 2 });
      expect(await store.list('list/none/')).toEqual([]);
      const all = (await store.list('')).map((o) => o.key);
      expect(all).toEqual([...all].sort());
      expect(all).toContain('list/mx/1/d.bin');
    });

    it('lists the direct children of a folder: objects and sub-folders, never what lies deeper', async () => {
      await store.put('tree/a.bin', Buffer.from('a'));
      await store.put('tree/sub/b.bin', Buffer.from('bb'));
      await store.put('tree/sub/deeper/c.bin', Buffer.from('ccc'));
      await store.put('tree/sub2/d.bin', Buffer.from('d'));
      await store.put('tree-x/e.bin', Buffer.from('e'));
      await store.put('tree/only-deep/x/y/z.bin', Buffer.from('z'));
      const top = await store.listChildren('tree/');
      expect(top.objects.map((o) => o.key)).toEqual(['tree/a.bin']);
      expect(top.objects[0]).toMatchObject({ sizeBytes: 1 });
      expect(top.objects[0].lastModified).toBeInstanceOf(Date);
      // A folder holding objects only further down is a child too (S3's CommonPrefixes).
      expect(top.folders).toEqual(['tree/only-deep/', 'tree/sub/', 'tree/sub2/']);
      const sub = await store.listChildren('tree/sub/');
      expect(sub).toEqual({ objects: [expect.objectContaining({ key: 'tree/sub/b.bin', sizeBytes: 2 })], folders: ['tree/sub/deeper/'] });
      expect(await store.listChildren('tree/none/')).toEqual({ objects: [], folders: [] });
      const root = await store.listChildren('');
      expect(root.folders).toEqual(expect.arrayContaining(['tree/', 'tree-x/']));
      expect(root.folders).toEqual([...root.folders].sort());
      expect(root.folders.every((f) => f.endsWith('/') && !f.slice(0, -1).includes('/'))).toBe(true);
      expect(root.folders.some((f) => f.startsWith('.hearth'))).toBe(false);
      // A folder whose last object is deleted is gone from the listing.
      await store.delete('tree/sub2/d.bin');
      expect((await store.listChildren('tree/')).folders).toEqual(['tree/only-deep/', 'tree/sub/']);
      for (const bad of ['tree', 'tree//', '../', '/tree/']) await expect(store.listChildren(bad)).rejects.toThrow(/prefix|key/);
    });

    it('deletes, and deleting a missing key is not an error', async () => {
      await store.put('del/k', Buffer.from('x'));
      await store.delete('del/k');
      expect(await store.stat('del/k')).toBeUndefined();
      await store.delete('del/k');
      await store.delete('del/never/was');
      expect(await store.list('del/')).toEqual([]);
    });

    it('rejects keys with "..", empty segments or a leading slash', async () => {
      for (const key of ['../escape', 'a/../../b', '/abs', 'a//b', '']) {
        await expect(store.put(key, Buffer.from('x'))).rejects.toThrow(/key/);
      }
    });

    it('leaves nothing visible when the body stream fails midway, and rethrows the body error', async () => {
      const before = (await store.list('')).map((o) => o.key);
      let n = 0;
      const failing = new Readable({
        read() {
          n++;
          if (n < 4) this.push(Buffer.alloc(3 * 1024 * 1024, n));
          else this.destroy(new Error('client went away'));
        },
      });
      await expect(store.put('broken/obj', failing)).rejects.toThrow('client went away');
      expect(await store.stat('broken/obj')).toBeUndefined();
      expect((await store.list('')).map((o) => o.key)).toEqual(before);
    });

    it(`streams a ${Math.round(opts.largeBytes / 2 ** 20)} MiB body through put and get with the same sha256`, async () => {
      const body = generated(opts.largeBytes);
      const res = await store.put('large/blob.bin', body.stream);
      expect(res.sizeBytes).toBe(opts.largeBytes);
      expect((await store.stat('large/blob.bin'))?.sizeBytes).toBe(opts.largeBytes);
      const h = createHash('sha256');
      let got = 0;
      for await (const c of await store.get('large/blob.bin')) {
        h.update(c as Buffer);
        got += (c as Buffer).length;
      }
      expect(got).toBe(opts.largeBytes);
      expect(h.digest('hex')).toBe(body.sha256());
      await store.delete('large/blob.bin');
      expect(await store.stat('large/blob.bin')).toBeUndefined();
    });

    it('HearthError STORE_UNAVAILABLE is the only error kind besides NotFound for store failures', () => {
      // Guard for the error contract: the helper used by the registry recognises both kinds.
      expect(isNotFound(new Error('x'))).toBe(false);
      expect(isHearthError(new Error('x'))).toBe(false);
    });
  });
}
