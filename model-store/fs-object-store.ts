// The embedded object store: one file per key under a root folder. A put writes to a temp file in a hidden
// folder under the same root (so the final rename never crosses a filesystem), fsyncs it and renames it into place.
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { hearthError } from '../core/index.ts';
import {
  checkFolderPrefix,
  checkObjectKey,
  ObjectNotFoundError,
  type ObjectChildren,
  type ObjectInfo,
  type ObjectStore,
} from './object-store.ts';

/** Hidden folder for in-flight writes; list() never descends into it and no key may start with it. */
const TEMP_DIR = '.hearth-tmp';

export class FsObjectStore implements ObjectStore {
  readonly kind = 'fs';
  readonly #root: string;
  readonly #tempDir: string;

  constructor(opts: { root: string }) {
    this.#root = path.resolve(opts.root);
    this.#tempDir = path.join(this.#root, TEMP_DIR);
  }

  async init(): Promise<void> {
    await wrap('init', this.#root, () => fs.mkdir(this.#tempDir, { recursive: true }));
  }

  async put(key: string, body: Readable | Buffer, _opts?: { sizeBytes?: number }): Promise<{ sizeBytes: number }> {
    const file = this.#path(key);
    const tmp = path.join(this.#tempDir, `${randomUUID()}.part`);
    let sizeBytes = 0;
    let bodyError: Error | undefined;
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    // Listen before the first await: a body that fails while the folder is made must not be an unhandled 'error'.
    source.once('error', (e: Error) => (bodyError ??= e));
    try {
      await fs.mkdir(this.#tempDir, { recursive: true });
    } catch (e) {
      source.destroy();
      throw storeError('put', key, e);
    }
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sizeBytes += chunk.length;
        cb(null, chunk);
      },
    });
    const out = createWriteStream(tmp, { flags: 'wx' });
    try {
      await pipeline(source, counter, out);
      // The data must be on disk before the rename makes it visible, or a crash could expose a short file.
      const fh = await fs.open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      // A delete elsewhere in the folder prunes it once it looks empty, which it does until this rename lands:
      // make it again and retry rather than fail the put.
      for (let attempt = 0; ; attempt++) {
        await fs.mkdir(path.dirname(file), { recursive: true });
        try {
          await fs.rename(tmp, file);
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 3) throw e;
        }
      }
      // And the rename itself must survive a crash: sync the folder entry (best effort; not every fs allows it).
      const dir = await fs.open(path.dirname(file), 'r').catch(() => undefined);
      await dir?.sync().catch(() => {});
      await dir?.close();
    } catch (e) {
      // A stream destroyed before its file was open still opens (then closes) it: remove the file after that, or a
      // body that failed at once would leave an empty .part behind (seen in CI with a corrupt gzip dataset).
      if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
      await fs.rm(tmp, { force: true }).catch(() => {});
      if (bodyError !== undefined) throw bodyError;
      throw storeError('put', key, e);
    }
    return { sizeBytes };
  }

  async get(key: string): Promise<Readable> {
    const file = this.#path(key);
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, 'r');
    } catch (e) {
      if (isMissing(e)) throw new ObjectNotFoundError(key);
      throw storeError('get', key, e);
    }
    let isFile: boolean;
    try {
      isFile = (await fh.stat()).isFile();
    } catch (e) {
      await fh.close().catch(() => {});
      throw storeError('get', key, e);
    }
    if (!isFile) {
      await fh.close();
      throw new ObjectNotFoundError(key);
    }
    return fh.createReadStream({ autoClose: true });
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const file = this.#path(key);
    try {
      const st = await fs.stat(file);
      return st.isFile() ? { key, sizeBytes: st.size, lastModified: st.mtime } : undefined;
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw storeError('stat', key, e);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    // Start the walk at the deepest folder the prefix names entirely; keys are filtered by prefix afterwards.
    const slash = prefix.lastIndexOf('/');
    const startKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const out: ObjectInfo[] = [];
    const walk = async (dirKey: string): Promise<void> => {
      const dir = dirKey ? path.join(this.#root, ...dirKey.split('/')) : this.#root;
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (e) {
        if (isMissing(e)) return;
        throw storeError('list', prefix, e);
      }
      for (const ent of entries) {
        if (!dirKey && ent.name === TEMP_DIR) continue;
        const key = dirKey ? `${dirKey}/${ent.name}` : ent.name;
        if (ent.isDirectory()) {
          if (prefix.startsWith(key + '/') || key.startsWith(prefix) || (key + '/').startsWith(prefix)) await walk(key);
        } else if (ent.isFile() && key.startsWith(prefix)) {
          const st = await fs
            .stat(path.join(dir, ent.name))
            .catch((e) => (isMissing(e) ? undefined : Promise.reject(storeError('list', prefix, e))));
          if (st) out.push({ key, sizeBytes: st.size, lastModified: st.mtime });
        }
      }
    };
    if (startKey && !isValidKey(startKey)) return [];
    await walk(startKey);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async listChildren(prefix: string): Promise<ObjectChildren> {
    checkFolderPrefix(prefix);
    const dirKey = prefix.slice(0, -1);
    const dir = dirKey ? path.join(this.#root, ...dirKey.split('/')) : this.#root;
    const objects: ObjectInfo[] = [];
    const folders: string[] = [];
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (isMissing(e)) return { objects, folders };
      throw storeError('list', prefix, e);
    }
    for (const ent of entries) {
      if (!dirKey && ent.name === TEMP_DIR) continue;
      const full = path.join(dir, ent.name);
      if (ent.isDirectory()) {
        // A folder an interrupted put left empty holds no object, as S3 would see it.
        const inside = await fs.readdir(full).catch((e) => (isMissing(e) ? [] : Promise.reject(storeError('list', prefix, e))));
        if (inside.length) folders.push(`${prefix}${ent.name}/`);
      } else if (ent.isFile()) {
        const st = await fs.stat(full).catch((e) => (isMissing(e) ? undefined : Promise.reject(storeError('list', prefix, e))));
        if (st) objects.push({ key: `${prefix}${ent.name}`, sizeBytes: st.size, lastModified: st.mtime });
      }
    }
    objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    folders.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return { objects, folders };
  }

  async delete(key: string): Promise<void> {
    const file = this.#path(key);
    try {
      await fs.unlink(file);
    } catch (e) {
      if (isMissing(e)) return;
      throw storeError('delete', key, e);
    }
    // Prune folders the delete left empty, so a deleted model leaves no trace on disk.
    let dir = path.dirname(file);
    while (dir !== this.#root && dir.startsWith(this.#root + path.sep)) {
      try {
        await fs.rmdir(dir);
      } catch {
        break;
      }
      dir = path.dirname(dir);
    }
  }

  async close(): Promise<void> {}

  #path(key: string): string {
    checkObjectKey(key);
    if (key === TEMP_DIR || key.startsWith(TEMP_DIR + '/')) throw new TypeError(`object key "${key}": reserved prefix ${TEMP_DIR}`);
    return path.join(this.#root, ...key.split('/'));
  }
}

function isValidKey(key: string): boolean {
  try {
    checkObjectKey(key);
    return true;
  } catch {
    return false;
  }
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function wrap<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw storeError(op, key, e);
  }
}

function storeError(op: string, key: string, e: unknown) {
  // The errno code, not the message: a system error's message holds the absolute path on this node.
  const err = e as NodeJS.ErrnoException;
  const why = typeof err?.code === 'string' ? `${err.code}${err.syscall ? ` (${err.syscall})` : ''}` : (err?.message ?? String(e));
  return hearthError('STORE_UNAVAILABLE', `fs store ${op} "${key}": ${why}`, { cause: e });
}
