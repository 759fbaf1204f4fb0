// The model registry over an ObjectStore: immutable versions under models/{name}/{version}/, each made visible
// by writing its manifest.json last; serving configs at models/{name}/config.json.
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  defaultModelConfig,
  hearthError,
  mergeModelConfig,
  MODEL_NAME_PATTERN,
  systemClock,
  type Clock,
  type Manifest,
  type ModelConfig,
} from '../core/index.ts';
import { isNotFound, type ObjectStore } from './object-store.ts';

export interface ModelSummary {
  name: string;
  /** Visible versions, ascending. */
  versions: number[];
  latest: number;
}

/** A version number held by one in-flight upload in this process; release it when the upload ends either way. */
export interface VersionReservation {
  name: string;
  version: number;
  /** The marker object that holds the number across nodes; delete it once the manifest is written. */
  claimKey: string;
  release(): void;
}

export interface RegistryOptions {
  clock?: Clock;
  /** Default keep-alive for serving configs that do not set one (config.executor.keepAliveMs). */
  keepAliveMs?: number;
  /** Version folders without a manifest older than this are crash leftovers and get swept. Default one hour. */
  staleUploadMs?: number;
}

const MANIFEST = 'manifest.json';
const CONFIG = 'config.json';
/** Marker objects of in-flight uploads inside a version folder. */
const CLAIM_PREFIX = '.upload-';
const MAX_VERSION = 2 ** 31 - 1;

export function checkModelName(name: string): string {
  if (typeof name !== 'string' || !MODEL_NAME_PATTERN.test(name)) {
    throw hearthError('INVALID_NAME', `model name "${name}": expected ${MODEL_NAME_PATTERN} (lower case letters, digits, ".", "_", "-"; at most 63)`);
  }
  return name;
}

/** Parses a version path segment: a positive integer. */
export function parseVersion(raw: string | number): number {
  const s = String(raw);
  if (!/^[1-9][0-9]{0,9}$/.test(s) || Number(s) > MAX_VERSION) {
    throw hearthError('INVALID_NAME', `version "${s}": expected a positive integer up to ${MAX_VERSION}`);
  }
  return Number(s);
}

export class ModelRegistry {
  readonly #store: ObjectStore;
  readonly #clock: Clock;
  readonly #keepAliveMs: number;
  readonly #staleUploadMs: number;
  /** Per-model chains that serialise version allocation in this process. */
  readonly #locks = new Map<string, Promise<void>>();
  /** name -> versions being uploaded right now by this process. */
  readonly #reserved = new Map<string, Set<number>>();

  constructor(store: ObjectStore, opts: RegistryOptions = {}) {
    this.#store = store;
    this.#clock = opts.clock ?? systemClock;
    this.#keepAliveMs = opts.keepAliveMs ?? 600_000;
    this.#staleUploadMs = opts.staleUploadMs ?? 3_600_000;
  }

  get store(): ObjectStore {
    return this.#store;
  }

  versionPrefix(name: string, version: number): string {
    return `models/${name}/${version}/`;
  }

  fileKey(manifest: Pick<Manifest, 'name' | 'version'>, filePath: string): string {
    return `${this.versionPrefix(manifest.name, manifest.version)}${filePath}`;
  }

  async listModels(): Promise<ModelSummary[]> {
    const byName = new Map<string, number[]>();
    for (const o of await this.#store.list('models/')) {
      const m = /^models\/([^/]+)\/([0-9]+)\/manifest\.json$/.exec(o.key);
      if (!m) continue;
      const list = byName.get(m[1]) ?? [];
      list.push(Number(m[2]));
      byName.set(m[1], list);
    }
    return [...byName.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, versions]) => summary(name, versions));
  }

  async getModel(name: string): Promise<ModelSummary> {
    checkModelName(name);
    const versions = (await this.#scan(name)).visible;
    if (!versions.length) throw hearthError('MODEL_NOT_FOUND', `model "${name}" does not exist`);
    return summary(name, versions);
  }

  /** The manifest of one version, or of the latest when `version` is omitted. */
  async getManifest(name: string, version?: number): Promise<Manifest> {
    checkModelName(name);
    const v = version ?? (await this.getModel(name)).latest;
    let body: Readable;
    try {
      body = await this.#store.get(this.fileKey({ name, version: v }, MANIFEST));
    } catch (e) {
      if (!isNotFound(e)) throw e;
      const versions = (await this.#scan(name)).visible;
      if (!versions.length) throw hearthError('MODEL_NOT_FOUND', `model "${name}" does not exist`);
      throw hearthError('VERSION_NOT_FOUND', `model "${name}" has no version ${v} (versions: ${versions.join(', ')})`);
    }
    return JSON.parse((await readAll(body)).toString('utf8')) as Manifest;
  }

  /** Streams one file of a version, e.g. for the artifact cache. */
  async openFile(manifest: Pick<Manifest, 'name' | 'version'>, filePath: string): Promise<Readable> {
    try {
      return await this.#store.get(this.fileKey(manifest, filePath));
    } catch (e) {
      if (isNotFound(e)) throw hearthError('VERSION_NOT_FOUND', `model "${manifest.name}" version ${manifest.version} has no file "${filePath}"`);
      throw e;
    }
  }

  /**
   * Holds a version number for an upload. Without `version`, the next one after every version folder in the
   * store (finished or not) and every reservation in this process. With `version`, 409 VERSION_EXISTS when it is
   * taken; a manifest-less folder older than staleUploadMs is a crash leftover and is cleared first.
   */
  async reserveVersion(name: string, version?: number): Promise<VersionReservation> {
    checkModelName(name);
    return this.#withLock(name, async () => {
      const reserved = this.#reserved.get(name) ?? new Set<number>();
      const scan = await this.#scan(name);
      let v: number;
      if (version === undefined) {
        v = Math.max(0, ...scan.folders.keys(), ...reserved) + 1;
      } else {
        v = version;
        if (scan.visible.includes(v)) throw hearthError('VERSION_EXISTS', `model "${name}" version ${v} already exists; versions are immutable`);
        if (reserved.has(v)) throw hearthError('VERSION_EXISTS', `model "${name}" version ${v} is being uploaded right now`);
        const leftover = scan.folders.get(v);
        if (leftover) {
          if (this.#clock.now() - leftover.newest < this.#staleUploadMs) {
            throw hearthError('VERSION_EXISTS', `model "${name}" version ${v} is being uploaded right now`);
          }
          await this.#deletePrefix(this.versionPrefix(name, v));
        }
      }
      // Another node may pick the same number at the same moment. Each writes a claim, then lists the folder:
      // whoever sees anything besides its own claim backs off. Both may back off, never both proceed, because
      // each lists only after its own write. Automatic versions then try the next number.
      for (let attempt = 0; ; attempt++) {
        if (v > MAX_VERSION) throw hearthError('INVALID_NAME', `model "${name}" has run out of version numbers`);
        const claimKey = `${this.versionPrefix(name, v)}${CLAIM_PREFIX}${randomUUID()}`;
        await this.#store.put(claimKey, Buffer.alloc(0));
        let others;
        try {
          others = (await this.#store.list(this.versionPrefix(name, v))).filter((o) => o.key !== claimKey);
        } catch (e) {
          // A claim nobody holds would block this version number for staleUploadMs.
          await this.#store.delete(claimKey).catch(() => {});
          throw e;
        }
        if (!others.length) {
          reserved.add(v);
          this.#reserved.set(name, reserved);
          let released = false;
          return {
            name,
            version: v,
            claimKey,
            release: () => {
              if (released) return;
              released = true;
              reserved.delete(v);
              if (!reserved.size) this.#reserved.delete(name);
            },
          };
        }
        await this.#store.delete(claimKey);
        if (version !== undefined) throw hearthError('VERSION_EXISTS', `model "${name}" version ${v} is being uploaded right now`);
        if (attempt >= 20) throw hearthError('STORE_UNAVAILABLE', `model "${name}": could not claim a version number after ${attempt + 1} attempts`);
        v++;
        await new Promise((r) => setTimeout(r, Math.random() * 20));
      }
    });
  }

  /** Writes the manifest last: this is what makes the version visible. */
  async writeManifest(manifest: Manifest): Promise<void> {
    const key = this.fileKey(manifest, MANIFEST);
    if (await this.#store.stat(key)) {
      throw hearthError('VERSION_EXISTS', `model "${manifest.name}" version ${manifest.version} already exists; versions are immutable`);
    }
    await this.#store.put(key, Buffer.from(JSON.stringify(manifest, null, 2)));
  }

  /** Removes every object of a version under the prefix, manifest first so that it disappears at once. */
  async deleteVersion(name: string, version: number): Promise<void> {
    await this.getManifest(name, version); // 404s with the right code
    await this.#store.delete(this.fileKey({ name, version }, MANIFEST));
    await this.#deletePrefix(this.versionPrefix(name, version));
    if (!(await this.#scan(name)).visible.length) await this.#store.delete(`models/${name}/${CONFIG}`);
  }

  /** Removes the model, every version and its serving config; answers the versions removed. */
  async deleteModel(name: string): Promise<number[]> {
    const { versions } = await this.getModel(name);
    for (const v of versions) await this.#store.delete(this.fileKey({ name, version: v }, MANIFEST));
    await this.#deletePrefix(`models/${name}/`);
    return versions;
  }

  /** The model's serving config: the stored one merged over the defaults. MODEL_NOT_FOUND for unknown models. */
  async getServingConfig(name: string): Promise<ModelConfig> {
    await this.getModel(name);
    return this.#readServingConfig(name);
  }

  /** Validates `patch` strictly (INVALID_CONFIG), merges it over the current config and persists the result. */
  async putServingConfig(name: string, patch: unknown): Promise<ModelConfig> {
    await this.getModel(name);
    return this.#withLock(name, async () => {
      const next = mergeModelConfig(await this.#readServingConfig(name), patch);
      await this.#store.put(`models/${name}/${CONFIG}`, Buffer.from(JSON.stringify(next, null, 2)));
      return next;
    });
  }

  /** Removes version folders that have no manifest and nothing newer than staleUploadMs: leftovers of a crash. */
  async sweepIncomplete(): Promise<string[]> {
    const byFolder = new Map<string, { manifest: boolean; newest: number }>();
    for (const o of await this.#store.list('models/')) {
      const m = /^(models\/[^/]+\/[0-9]+\/)(.*)$/.exec(o.key);
      if (!m) continue;
      const f = byFolder.get(m[1]) ?? { manifest: false, newest: 0 };
      if (m[2] === MANIFEST) f.manifest = true;
      f.newest = Math.max(f.newest, o.lastModified.getTime());
      byFolder.set(m[1], f);
    }
    const swept: string[] = [];
    for (const [prefix, f] of byFolder) {
      if (f.manifest || this.#clock.now() - f.newest < this.#staleUploadMs) continue;
      const [, name, v] = prefix.split('/');
      if (this.#reserved.get(name)?.has(Number(v))) continue;
      await this.#deletePrefix(prefix);
      swept.push(prefix);
    }
    return swept;
  }

  async #readServingConfig(name: string): Promise<ModelConfig> {
    const base = defaultModelConfig(this.#keepAliveMs);
    let body: Readable;
    try {
      body = await this.#store.get(`models/${name}/${CONFIG}`);
    } catch (e) {
      if (isNotFound(e)) return base;
      throw e;
    }
    return mergeModelConfig(base, JSON.parse((await readAll(body)).toString('utf8')));
  }

  /** Version folders of a model: which are visible and the newest write time of each. */
  async #scan(name: string): Promise<{ visible: number[]; folders: Map<number, { newest: number }> }> {
    const folders = new Map<number, { newest: number }>();
    const visible: number[] = [];
    for (const o of await this.#store.list(`models/${name}/`)) {
      const m = /^models\/[^/]+\/([0-9]+)\/(.*)$/.exec(o.key);
      if (!m) continue;
      const v = Number(m[1]);
      const f = folders.get(v) ?? { newest: 0 };
      f.newest = Math.max(f.newest, o.lastModified.getTime());
      folders.set(v, f);
      if (m[2] === MANIFEST) visible.push(v);
    }
    return { visible: visible.sort((a, b) => a - b), folders };
  }

  async #deletePrefix(prefix: string): Promise<void> {
    for (const o of await this.#store.list(prefix)) await this.#store.delete(o.key);
  }

  async #withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(name) ?? Promise.resolve();
    const run = prev.then(fn);
    const tail = run.then(
      () => {},
      () => {},
    );
    this.#locks.set(name, tail);
    void tail.then(() => {
      if (this.#locks.get(name) === tail) this.#locks.delete(name);
    });
    return run;
  }
}

function summary(name: string, versions: number[]): ModelSummary {
  const sorted = [...versions].sort((a, b) => a - b);
  return { name, versions: sorted, latest: sorted[sorted.length - 1] };
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
