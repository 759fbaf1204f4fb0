// The model registry over an ObjectStore: immutable versions under models/{name}/{version}/, each made visible
// by writing its manifest.json last; uploaded files under {version}/files/, apart from Hearth's own objects
// (manifest.json, .upload-* claims, models/{name}/config.json). Listings go one folder level at a time.
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  defaultModelConfig,
  hearthError,
  mergeModelConfig,
  MODEL_NAME_PATTERN,
  shown,
  systemClock,
  type Clock,
  type HearthError,
  type Manifest,
  type ModelConfig,
} from '../core/index.ts';
import { brokenVersion, checkManifest } from './manifest-check.ts';
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
/** Uploaded files live under this folder of their version, so no upload can name one of Hearth's own objects. */
const FILES_FOLDER = 'files/';
/** Largest explicit version (PUT): what fits a signed 32-bit integer, so Unix-time versions fit until 2038. */
export const MAX_EXPLICIT_VERSION = 2 ** 31 - 1;
/** Largest version at all: POST numbers continue past any explicit one, up to the largest exact JS integer. */
export const MAX_VERSION = Number.MAX_SAFE_INTEGER;
/** A manifest is Hearth's own small JSON; one larger than this is broken, not read whole. */
const MANIFEST_MAX_BYTES = 64 * 1024 * 1024;
/** Store calls a listing keeps in flight at once. */
const LIST_CONCURRENCY = 8;

export function checkModelName(name: string): string {
  if (typeof name !== 'string' || !MODEL_NAME_PATTERN.test(name)) {
    throw hearthError(
      'INVALID_NAME',
      `model name "${shown(name)}": expected ${MODEL_NAME_PATTERN} (lower case letters, digits, ".", "_", "-"; at most 63)`,
    );
  }
  return name;
}

/**
 * MODEL_NOT_FOUND in Triton's wording, so that Triton and KServe client code matching on it works unchanged.
 * The name was checked against MODEL_NAME_PATTERN before any lookup, so it is safe to quote.
 */
export function unknownModel(name: string): HearthError {
  return hearthError('MODEL_NOT_FOUND', `Request for unknown model: '${name}' is not found`);
}

/** VERSION_NOT_FOUND in Triton's wording. */
export function unknownVersion(name: string, version: number): HearthError {
  return hearthError('VERSION_NOT_FOUND', `Request for unknown model: '${name}' version ${version} is not found`);
}

/** Parses a version path segment: a positive integer (explicit uploads are further capped, see reserveVersion). */
export function parseVersion(raw: string | number): number {
  const s = String(raw);
  if (!/^[1-9][0-9]{0,15}$/.test(s) || !Number.isSafeInteger(Number(s))) {
    throw hearthError(
      'INVALID_NAME',
      `version "${s.length > 40 ? `${s.slice(0, 40)}…` : s}": expected a positive integer up to ${MAX_VERSION}`,
    );
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

  /** Where a file of a version sits: under files/ in the current layout, beside manifest.json in the old one. */
  fileKey(manifest: Pick<Manifest, 'name' | 'version' | 'layout'>, filePath: string): string {
    const folder = manifest.layout === 'files' ? FILES_FOLDER : '';
    return `${this.versionPrefix(manifest.name, manifest.version)}${folder}${filePath}`;
  }

  /** Every model with a visible version. Lists folders (models, then versions) and stats manifests; never the files. */
  async listModels(): Promise<ModelSummary[]> {
    const names = (await this.#store.listChildren('models/')).folders
      .map((f) => f.slice('models/'.length, -1))
      .filter((n) => MODEL_NAME_PATTERN.test(n))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const found = await mapLimit(names, LIST_CONCURRENCY, async (name) => ({ name, versions: (await this.#scan(name)).visible }));
    return found.filter((m) => m.versions.length).map((m) => summary(m.name, m.versions));
  }

  async getModel(name: string): Promise<ModelSummary> {
    checkModelName(name);
    const versions = (await this.#scan(name)).visible;
    if (!versions.length) throw unknownModel(name);
    return summary(name, versions);
  }

  /**
   * The manifest of one version, or of the latest when `version` is omitted. It is checked before it is
   * returned (its name and version, paths, hashes and id): a manifest that fails makes the version broken
   * (MODEL_INVALID), never trusted.
   */
  async getManifest(name: string, version?: number): Promise<Manifest> {
    checkModelName(name);
    const v = version ?? (await this.getModel(name)).latest;
    let body: Readable;
    try {
      body = await this.#store.get(this.#manifestKey(name, v));
    } catch (e) {
      if (!isNotFound(e)) throw e;
      throw await this.#versionMissing(name, v);
    }
    const text = await readAtMost(body, MANIFEST_MAX_BYTES);
    if (text === undefined) throw brokenVersion({ name, version: v }, `is larger than ${MANIFEST_MAX_BYTES} bytes`);
    let raw: unknown;
    try {
      raw = JSON.parse(text.toString('utf8'));
    } catch {
      throw brokenVersion({ name, version: v }, 'is not valid JSON');
    }
    return checkManifest(raw, { name, version: v });
  }

  /** Streams one file of a version, e.g. for the artifact cache. */
  async openFile(manifest: Pick<Manifest, 'name' | 'version' | 'layout'>, filePath: string): Promise<Readable> {
    try {
      return await this.#store.get(this.fileKey(manifest, filePath));
    } catch (e) {
      if (isNotFound(e))
        throw hearthError('VERSION_NOT_FOUND', `model "${manifest.name}" version ${manifest.version} has no file "${filePath}"`);
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
    if (version !== undefined && (!Number.isSafeInteger(version) || version < 1 || version > MAX_EXPLICIT_VERSION)) {
      // Explicit numbers stop well below MAX_VERSION, so POST, which continues after the highest, always has room.
      throw hearthError(
        'INVALID_NAME',
        `version ${version}: an explicit version is a positive integer up to ${MAX_EXPLICIT_VERSION}; higher numbers are left to POST`,
      );
    }
    return this.#withLock(name, async () => {
      const reserved = this.#reserved.get(name) ?? new Set<number>();
      const scan = await this.#scan(name);
      let v: number;
      if (version === undefined) {
        v = Math.max(0, ...scan.folders, ...reserved) + 1;
      } else {
        v = version;
        if (scan.visible.includes(v))
          throw hearthError('VERSION_EXISTS', `model "${name}" version ${v} already exists; versions are immutable`);
        if (reserved.has(v)) throw hearthError('VERSION_EXISTS', `model "${name}" version ${v} is being uploaded right now`);
        if (scan.folders.includes(v)) {
          if (this.#clock.now() - (await this.#newestWrite(this.versionPrefix(name, v))) < this.#staleUploadMs) {
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
        let others: number;
        try {
          const here = await this.#store.listChildren(this.versionPrefix(name, v));
          others = here.objects.filter((o) => o.key !== claimKey).length + here.folders.length;
        } catch (e) {
          // A claim nobody holds would block this version number for staleUploadMs.
          await this.#store.delete(claimKey).catch(() => {});
          throw e;
        }
        if (!others) {
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
        if (attempt >= 20)
          throw hearthError('STORE_UNAVAILABLE', `model "${name}": could not claim a version number after ${attempt + 1} attempts`);
        v++;
        await new Promise((r) => setTimeout(r, Math.random() * 20));
      }
    });
  }

  /** Writes the manifest last: this is what makes the version visible. It must pass the checks every read applies. */
  async writeManifest(manifest: Manifest): Promise<void> {
    checkManifest(manifest, manifest);
    const key = this.#manifestKey(manifest.name, manifest.version);
    if (await this.#store.stat(key)) {
      throw hearthError('VERSION_EXISTS', `model "${manifest.name}" version ${manifest.version} already exists; versions are immutable`);
    }
    await this.#store.put(key, Buffer.from(JSON.stringify(manifest, null, 2)));
  }

  /** Removes every object of a version under the prefix, manifest first so that it disappears at once. A broken version can be deleted too. */
  async deleteVersion(name: string, version: number): Promise<void> {
    checkModelName(name);
    if (!(await this.#store.stat(this.#manifestKey(name, version)))) throw await this.#versionMissing(name, version);
    await this.#store.delete(this.#manifestKey(name, version));
    await this.#deletePrefix(this.versionPrefix(name, version));
    if (!(await this.#scan(name)).visible.length) await this.#store.delete(`models/${name}/${CONFIG}`);
  }

  /** Removes the model, every version and its serving config; answers the versions removed. */
  async deleteModel(name: string): Promise<number[]> {
    const { versions } = await this.getModel(name);
    for (const v of versions) await this.#store.delete(this.#manifestKey(name, v));
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
    const swept: string[] = [];
    const names = (await this.#store.listChildren('models/')).folders.map((f) => f.slice('models/'.length, -1));
    for (const name of names.filter((n) => MODEL_NAME_PATTERN.test(n))) {
      const { visible, folders } = await this.#scan(name);
      for (const v of folders) {
        if (visible.includes(v) || this.#reserved.get(name)?.has(v)) continue;
        const prefix = this.versionPrefix(name, v);
        if (this.#clock.now() - (await this.#newestWrite(prefix)) < this.#staleUploadMs) continue;
        await this.#deletePrefix(prefix);
        swept.push(prefix);
      }
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

  /** Version folders of a model, and which of them are visible (hold a manifest). One listing plus a stat per version. */
  async #scan(name: string): Promise<{ visible: number[]; folders: number[] }> {
    const folders: number[] = [];
    for (const f of (await this.#store.listChildren(`models/${name}/`)).folders) {
      const m = /^models\/[^/]+\/([1-9][0-9]{0,15})\/$/.exec(f);
      if (m && Number.isSafeInteger(Number(m[1]))) folders.push(Number(m[1]));
    }
    const visible = await mapLimit(folders, LIST_CONCURRENCY, async (v) =>
      (await this.#store.stat(this.#manifestKey(name, v))) ? v : undefined,
    );
    return { visible: visible.filter((v): v is number => v !== undefined).sort((a, b) => a - b), folders };
  }

  /** The newest write time under a prefix: how long ago an unfinished version folder was last touched. */
  async #newestWrite(prefix: string): Promise<number> {
    let newest = 0;
    for (const o of await this.#store.list(prefix)) newest = Math.max(newest, o.lastModified.getTime());
    return newest;
  }

  #manifestKey(name: string, version: number): string {
    return `${this.versionPrefix(name, version)}${MANIFEST}`;
  }

  /** MODEL_NOT_FOUND when the model has no visible version at all, else VERSION_NOT_FOUND listing the versions. */
  async #versionMissing(name: string, version: number) {
    const versions = (await this.#scan(name)).visible;
    if (!versions.length) return unknownModel(name);
    return unknownVersion(name, version);
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

/** The whole stream, or undefined once it passes `max` bytes (the rest is not read). */
async function readAtMost(s: Readable, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of s) {
    n += (c as Buffer).length;
    if (n > max) {
      s.destroy();
      return undefined;
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** `fn` over `items` with at most `limit` calls in flight; results in the order of `items`. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}
