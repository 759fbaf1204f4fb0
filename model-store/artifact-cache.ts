// The node-local artifact cache: one folder per model artifact under cacheDir, named by the artifact id computed
// from the per-file hashes that were checked against the bytes (never by a manifest's own claim), bounded by
// cacheMaxBytes with least-recently-used eviction. A second cold start of a version reads from here.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { hearthError, isHearthError, systemClock, type Clock, type Manifest } from '../core/index.ts';
import { artifactId, filesProblem } from './manifest-check.ts';

/** Streams one file of a version from the store (the registry's openFile). */
export type OpenArtifactFile = (manifest: Manifest, filePath: string) => Promise<Readable>;

export interface EnsuredArtifact {
  /** Local folder holding every file of the manifest at its relative path. */
  dir: string;
  /** 'cache' when the files were already here and verified; 'store' when they were downloaded now. */
  source: 'store' | 'cache';
  fetchMs: number;
}

/** What the executor needs from the cache: bring a version's files to local disk. */
export interface ArtifactSource {
  ensure(manifest: Manifest): Promise<EnsuredArtifact>;
}

export interface ArtifactCacheOptions {
  dir: string;
  maxBytes: number;
  openFile?: OpenArtifactFile;
  clock?: Clock;
}

/** A file this process hashed: what it found, so that an unchanged file need not be read again for that same hash. */
interface Verified {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

interface Entry {
  sizeBytes: number;
  lastUsedAt: number;
  /** Each file as last hashed; a file is trusted unread only for the sha256 it was hashed to, and while unchanged. */
  verified?: Map<string, Verified>;
}

const SHA256 = /^[0-9a-f]{64}$/;

export class ArtifactCache implements ArtifactSource {
  #dir: string;
  #maxBytes: number;
  #openFile?: OpenArtifactFile;
  #clock: Clock;
  #entries = new Map<string, Entry>();
  #inflight = new Map<string, Promise<EnsuredArtifact>>();
  #scanned?: Promise<void>;
  /** LRU order: a counter, not a clock, so entries found on disk (ordered by folder mtime) and new ones compare. */
  #useSeq = 0;

  constructor(opts: ArtifactCacheOptions) {
    this.#dir = path.resolve(opts.dir);
    this.#maxBytes = opts.maxBytes;
    this.#openFile = opts.openFile;
    this.#clock = opts.clock ?? systemClock;
  }

  get dir(): string {
    return this.#dir;
  }

  /** Bytes held by complete entries. */
  get sizeBytes(): number {
    let n = 0;
    for (const e of this.#entries.values()) n += e.sizeBytes;
    return n;
  }

  /** sha256 keys of the complete entries, least recently used first. */
  keys(): string[] {
    return [...this.#entries.entries()].sort((a, b) => a[1].lastUsedAt - b[1].lastUsedAt).map(([k]) => k);
  }

  /**
   * Makes the manifest's files available locally. Concurrent calls for the same artifact share one download.
   * A cached entry whose files changed on disk since they were last hashed is hashed again; a mismatch drops
   * the entry and downloads it afresh.
   */
  ensure(manifest: Manifest, openFile?: OpenArtifactFile): Promise<EnsuredArtifact> {
    // The entry's name is the id of the listed per-file hashes, each of which is checked against the bytes before
    // the entry is used: a manifest claiming another artifact's sha256 gets a 422, not that artifact's folder.
    const problem = filesProblem(manifest.files);
    if (problem)
      return Promise.reject(hearthError('MODEL_INVALID', `model "${manifest.name}" version ${manifest.version}: its manifest ${problem}`));
    const key = artifactId(manifest.files);
    if (manifest.sha256 !== key) {
      return Promise.reject(
        hearthError(
          'MODEL_INVALID',
          `model "${manifest.name}" version ${manifest.version}: its manifest's sha256 is not the id of its files`,
        ),
      );
    }
    const pending = this.#inflight.get(key);
    if (pending) return pending;
    const p = this.#ensure(manifest, key, openFile ?? this.#openFile).finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  async #ensure(manifest: Manifest, key: string, openFile: OpenArtifactFile | undefined): Promise<EnsuredArtifact> {
    await this.#scan();
    const started = this.#clock.now();
    const dir = path.join(this.#dir, key);
    const entry = this.#entries.get(key);
    if (entry && (await this.#verify(manifest, dir, entry))) {
      entry.lastUsedAt = ++this.#useSeq;
      // The folder's mtime carries the LRU order across restarts.
      const t = new Date();
      await fs.utimes(dir, t, t).catch(() => {});
      return { dir, source: 'cache', fetchMs: this.#clock.now() - started };
    }
    if (entry) {
      this.#entries.delete(key);
      await fs.rm(dir, { recursive: true, force: true });
    }
    if (!openFile) throw hearthError('INTERNAL', 'artifact cache: no openFile was given to fetch from the store');
    const verified = await this.#download(manifest, key, dir, openFile);
    this.#entries.set(key, { sizeBytes: manifest.files.reduce((n, f) => n + f.sizeBytes, 0), lastUsedAt: ++this.#useSeq, verified });
    await this.#evict(key);
    return { dir, source: 'store', fetchMs: this.#clock.now() - started };
  }

  /** Downloads every file into a temporary folder, hashing as it goes, then renames the folder into place. */
  async #download(manifest: Manifest, key: string, dir: string, openFile: OpenArtifactFile): Promise<Map<string, Verified>> {
    const tmp = path.join(this.#dir, `.tmp-${key.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(tmp, { recursive: true });
    try {
      const verified = new Map<string, Verified>();
      for (const f of manifest.files) {
        const target = safeJoin(tmp, f.path);
        await fs.mkdir(path.dirname(target), { recursive: true });
        const hash = createHash('sha256');
        let size = 0;
        const tap = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            size += chunk.length;
            cb(null, chunk);
          },
        });
        let body: Readable;
        try {
          body = await openFile(manifest, f.path);
        } catch (e) {
          if (isHearthError(e)) throw e;
          throw hearthError(
            'STORE_UNAVAILABLE',
            `fetching ${manifest.name}@${manifest.version} file "${f.path}": ${(e as Error).message}`,
            { cause: e },
          );
        }
        await pipeline(body, tap, createWriteStream(target));
        const digest = hash.digest('hex');
        if (digest !== f.sha256 || size !== f.sizeBytes) {
          throw hearthError(
            'INTERNAL',
            `fetching ${manifest.name}@${manifest.version} file "${f.path}": the store returned ${size} bytes with sha256 ${digest}, the manifest says ${f.sizeBytes} bytes with ${f.sha256}`,
          );
        }
        const st = await fs.stat(target);
        verified.set(f.path, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256: digest });
      }
      // The folder is named by what was hashed: the id of the digests just computed.
      const hashed = artifactId([...verified].map(([p, v]) => ({ path: p, sha256: v.sha256 })));
      if (hashed !== key)
        throw hearthError('INTERNAL', `fetching ${manifest.name}@${manifest.version}: the files hash to artifact ${hashed}, not ${key}`);
      await fs.rm(dir, { recursive: true, force: true });
      await fs.rename(tmp, dir);
      return verified;
    } catch (e) {
      await fs.rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * True when every file is present and matches its sha256. Hashing is skipped only for a file this process
   * hashed to that same sha256 and that is unchanged since (size, mtime, inode), so a warm cache costs a few
   * stat calls, not a full read; anything else is read and hashed.
   */
  async #verify(manifest: Manifest, dir: string, entry: Entry): Promise<boolean> {
    const verified = entry.verified ?? new Map<string, Verified>();
    for (const f of manifest.files) {
      const file = safeJoin(dir, f.path);
      const st = await fs.stat(file).catch(() => undefined);
      if (!st || !st.isFile() || st.size !== f.sizeBytes) return false;
      const seen = verified.get(f.path);
      if (seen && seen.sha256 === f.sha256 && seen.size === st.size && seen.mtimeMs === st.mtimeMs && seen.ino === st.ino) continue;
      const digest = await hashFile(file);
      if (digest !== f.sha256) return false;
      verified.set(f.path, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256: digest });
    }
    entry.verified = verified;
    return true;
  }

  /** Removes least recently used entries until the cache fits; the entry just added is kept even if alone it does not fit. */
  async #evict(keep: string): Promise<void> {
    let total = this.sizeBytes;
    if (total <= this.#maxBytes) return;
    for (const key of this.keys()) {
      if (total <= this.#maxBytes) break;
      if (key === keep || this.#inflight.has(key)) continue;
      const e = this.#entries.get(key)!;
      this.#entries.delete(key);
      total -= e.sizeBytes;
      await fs.rm(path.join(this.#dir, key), { recursive: true, force: true });
    }
  }

  /** Reads what an earlier process left behind: complete entries count, half-written temp folders are removed. */
  #scan(): Promise<void> {
    this.#scanned ??= (async () => {
      await fs.mkdir(this.#dir, { recursive: true });
      const found: { name: string; sizeBytes: number; mtimeMs: number }[] = [];
      for (const name of await fs.readdir(this.#dir)) {
        const full = path.join(this.#dir, name);
        if (name.startsWith('.tmp-')) {
          await fs.rm(full, { recursive: true, force: true });
          continue;
        }
        if (!SHA256.test(name)) continue;
        const st = await fs.stat(full);
        if (!st.isDirectory()) continue;
        found.push({ name, sizeBytes: await folderBytes(full), mtimeMs: st.mtimeMs });
      }
      found.sort((a, b) => a.mtimeMs - b.mtimeMs);
      for (const f of found) this.#entries.set(f.name, { sizeBytes: f.sizeBytes, lastUsedAt: ++this.#useSeq });
    })();
    return this.#scanned;
  }
}

function safeJoin(dir: string, rel: string): string {
  const full = path.resolve(dir, rel);
  if (!full.startsWith(dir + path.sep)) throw hearthError('INTERNAL', `manifest file path "${rel}" leaves its folder`);
  return full;
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  // A sink, not a transform: the stream is consumed for its hash and yields nothing.
  await pipeline(createReadStream(file), async (src: AsyncIterable<Buffer>) => {
    for await (const chunk of src) hash.update(chunk);
  });
  return hash.digest('hex');
}

async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  for (const d of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (d.isFile()) n += (await fs.stat(path.join(d.parentPath ?? d.path, d.name))).size;
  }
  return n;
}
