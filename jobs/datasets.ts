// Datasets: JSON Lines objects under `datasets/{name}.jsonl` in the object store. They need only the store, so
// they keep working when Redis is down.
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { finished, PassThrough, Transform } from 'node:stream';
import { hearthError, isHearthError, type Limits } from '../core/index.ts';
import type { ObjectStore } from '../model-store/index.ts';
import { RowCounter } from './json-lines.ts';
import { shown } from './client-json.ts';

/** Dataset names: letters, digits, `.`, `_`, `-`; they become one path segment of a store key. */
export const DATASET_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const DATASET_PREFIX = 'datasets/';

export interface DatasetInfo {
  name: string;
  /** The key id that owns it (AUTH on); absent for datasets stored with AUTH off. */
  owner?: string;
  key: string;
  bytes: number;
  lastModified: string;
}

export interface DatasetUpload {
  key: string;
  rows: number;
  bytes: number;
  /** Lines that are not a JSON object (a request body); they stay in the dataset and fail as rows when a job runs them. */
  invalidLines: number;
  /** 1-based numbers of the first (up to 20) lines that are not a JSON object. */
  invalidLineNumbers: number[];
}

export interface DatasetPutOptions {
  /** The request's Content-Length, refused at once past MAX_DATASET_BYTES (for a body sent as it is stored). */
  declaredBytes?: number;
  /** Decompresses the body (Content-Encoding gzip or deflate); its output is what is counted and stored. */
  inflater?: Transform;
  /** The Content-Encoding's name, for messages. */
  encoding?: string;
}

/**
 * Who asks, for datasets and jobs: the API key's id (AUTH on) and whether it sees everyone's (admin). With AUTH off
 * the caller is ANYONE: no owner, and everything is visible.
 */
export interface Caller {
  owner?: string;
  admin: boolean;
}

export const ANYONE: Caller = Object.freeze({ admin: true });

/** Key ids as gateway/auth makes them (a folder name of the store). */
const OWNER_PATTERN = /^[a-z0-9]{4,32}$/;

/** `datasets/{name}.jsonl` with no owner (AUTH off); `datasets/key-{owner}/{name}.jsonl` for a key's own datasets. */
export function datasetKey(name: string, owner?: string): string {
  if (typeof name !== 'string' || !DATASET_NAME_PATTERN.test(name) || name.includes('..')) {
    throw hearthError(
      'INVALID_NAME',
      `dataset name ${shown(name)}: expected letters, digits, ".", "_" or "-" (at most 128, starting with a letter or digit)`,
    );
  }
  if (owner !== undefined && !OWNER_PATTERN.test(owner)) throw hearthError('INVALID_REQUEST', `owner ${shown(owner)} is not a key id`);
  return owner === undefined ? `${DATASET_PREFIX}${name}.jsonl` : `${DATASET_PREFIX}key-${owner}/${name}.jsonl`;
}

/** The name and owner of a dataset key, or undefined when `key` is not one. */
function parseDatasetKey(key: string): { name: string; owner?: string } | undefined {
  const m = /^datasets\/(?:key-([a-z0-9]{4,32})\/)?([^/]+)\.jsonl$/.exec(key);
  return m && DATASET_NAME_PATTERN.test(m[2]) && !m[2].includes('..') ? { name: m[2], ...(m[1] ? { owner: m[1] } : {}) } : undefined;
}

/**
 * Resolves the `input` of a job to a store key: a dataset key as PUT returned it or a bare dataset name (the caller's
 * own). Only dataset keys are accepted, so a job can never read a model's files; another key's dataset is not found
 * unless the caller is admin.
 */
export function resolveDatasetKey(input: string, caller: Caller = ANYONE): string {
  if (typeof input !== 'string' || input === '')
    throw hearthError('INVALID_REQUEST', '"input": expected a dataset key such as "datasets/name.jsonl"');
  if (!input.startsWith(DATASET_PREFIX)) return datasetKey(input, caller.owner);
  const parsed = parseDatasetKey(input);
  if (!parsed) throw hearthError('INVALID_REQUEST', `"input": ${shown(input)} is not a dataset key (datasets/<name>.jsonl)`);
  if (!caller.admin && parsed.owner !== caller.owner) throw hearthError('DATASET_NOT_FOUND', `"input": no dataset at key ${input}`);
  return datasetKey(parsed.name, parsed.owner);
}

/** The owner a caller reads or writes as: its own, or (admin only) the one it names. */
function ownerFor(caller: Caller, asOwner?: string): string | undefined {
  if (asOwner === undefined || asOwner === caller.owner) return caller.owner;
  if (!caller.admin) throw hearthError('DATASET_NOT_FOUND', 'no such dataset');
  return asOwner;
}

export class Datasets {
  readonly #store: ObjectStore;
  readonly #limits: Pick<Limits, 'maxDatasetBytes' | 'maxLineBytes'>;
  constructor(store: ObjectStore, limits: Pick<Limits, 'maxDatasetBytes' | 'maxLineBytes'>) {
    this.#store = store;
    this.#limits = limits;
  }

  /**
   * Streams a JSON Lines body into the store, counting rows and lines that are not JSON objects on the way; never
   * buffers the body and holds at most one line of MAX_LINE_BYTES. A body compressed with `inflater` (Content-Encoding
   * gzip or deflate) is decompressed as it streams and its decompressed bytes are counted. A body (or its declared
   * Content-Length, refused before any byte is read) past MAX_DATASET_BYTES, or a line past MAX_LINE_BYTES, fails
   * with 413 PAYLOAD_TOO_LARGE at the first byte past the limit and stores nothing. The body is piped, not handed to
   * a pipeline, so a refusal leaves the request open for its answer.
   */
  async put(name: string, body: Readable, opts: DatasetPutOptions = {}, caller: Caller = ANYONE): Promise<DatasetUpload> {
    const key = datasetKey(name, caller.owner);
    const { maxDatasetBytes, maxLineBytes } = this.#limits;
    const { declaredBytes, inflater, encoding = 'identity' } = opts;
    // A compressed body's declared length says nothing of its size once decompressed: that is counted as it streams.
    if (!inflater && declaredBytes !== undefined && declaredBytes > maxDatasetBytes) {
      throw hearthError(
        'PAYLOAD_TOO_LARGE',
        `dataset "${name}": Content-Length ${declaredBytes} is larger than MAX_DATASET_BYTES (${maxDatasetBytes} bytes)`,
      );
    }
    const counter = new RowCounter({ maxBytes: maxDatasetBytes, maxLineBytes });
    // A body without rows fails at its end, before the store commits the object, so a refused upload never
    // replaces (or deletes) a dataset stored under the same name.
    const needRows = new Transform({
      transform: (chunk, _enc, cb) => cb(null, chunk),
      flush: (cb) =>
        cb(counter.rows === 0 ? hearthError('EMPTY_BODY', `dataset "${name}": the body holds no rows (one JSON object per line)`) : null),
    });
    const out = new PassThrough();
    // The store consumes `out` while the pipeline feeds it; both must settle before the counts are final.
    const stored = this.#store.put(key, out);
    // A client that goes away mid-body fails the upload (and its error is never left unhandled).
    finished(body, { writable: false }, (err) => {
      if (err && !counter.destroyed)
        counter.destroy(
          hearthError('INVALID_REQUEST', `dataset "${name}": the client closed the connection before the body ended`, { cause: err }),
        );
    });
    if (inflater) {
      inflater.on('error', (err) => {
        if (!counter.destroyed)
          counter.destroy(
            hearthError('INVALID_REQUEST', `dataset "${name}": the ${encoding} body could not be decompressed: ${err.message}`),
          );
      });
      body.pipe(inflater).pipe(counter);
    } else {
      body.pipe(counter);
    }
    let failure: Error | undefined;
    await pipeline(counter, needRows, out).catch((e) => {
      failure =
        isHearthError(e) && e.code === 'PAYLOAD_TOO_LARGE'
          ? hearthError('PAYLOAD_TOO_LARGE', `dataset "${name}": ${e.message}`)
          : (e as Error);
      out.destroy(e as Error);
      // Read no further into the body than needed: the rest is discarded as it arrives, never held or decompressed.
      if (inflater) {
        body.unpipe(inflater);
        inflater.unpipe(counter);
        inflater.destroy();
      } else {
        body.unpipe(counter);
      }
      body.resume();
    });
    let sizeBytes: number;
    try {
      ({ sizeBytes } = await stored);
    } catch (e) {
      throw failure ?? e;
    }
    if (failure) throw failure;
    return {
      key,
      rows: counter.rows,
      bytes: sizeBytes,
      invalidLines: counter.invalidLines,
      invalidLineNumbers: counter.invalidLineNumbers,
    };
  }

  /** `asOwner`: an admin reading another key's dataset. */
  async stat(name: string, caller: Caller = ANYONE, asOwner?: string): Promise<DatasetInfo> {
    const owner = ownerFor(caller, asOwner);
    const key = datasetKey(name, owner);
    const info = await this.#store.stat(key);
    if (!info) throw hearthError('DATASET_NOT_FOUND', `no dataset "${name}" (key ${key})`);
    return { name, key, bytes: info.sizeBytes, lastModified: info.lastModified.toISOString(), ...(owner ? { owner } : {}) };
  }

  /** The caller's datasets; an admin's list holds every key's (each with its owner). */
  async list(caller: Caller = ANYONE): Promise<DatasetInfo[]> {
    const prefix = caller.admin || caller.owner === undefined ? DATASET_PREFIX : `${DATASET_PREFIX}key-${caller.owner}/`;
    const out: DatasetInfo[] = [];
    for (const o of await this.#store.list(prefix)) {
      const d = parseDatasetKey(o.key);
      if (!d || (!caller.admin && d.owner !== caller.owner)) continue;
      out.push({
        name: d.name,
        key: o.key,
        bytes: o.sizeBytes,
        lastModified: o.lastModified.toISOString(),
        ...(d.owner ? { owner: d.owner } : {}),
      });
    }
    return out;
  }

  async delete(name: string, caller: Caller = ANYONE, asOwner?: string): Promise<void> {
    const key = datasetKey(name, ownerFor(caller, asOwner));
    if (!(await this.#store.stat(key))) throw hearthError('DATASET_NOT_FOUND', `no dataset "${name}" (key ${key})`);
    await this.#store.delete(key);
  }
}
