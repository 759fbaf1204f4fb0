// The object-store contract that every backend (fs, s3) meets; test/model-store/conformance runs against each.
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  key: string;
  sizeBytes: number;
  lastModified: Date;
}

/** What lies directly under a folder-like prefix. */
export interface ObjectChildren {
  /** Objects whose key is the prefix plus one segment, in key order. */
  objects: ObjectInfo[];
  /** Sub-prefixes holding objects, each the prefix plus one segment and "/" (S3's CommonPrefixes), in key order. */
  folders: string[];
}

export interface ObjectStore {
  /** 'fs' or 's3': for logs and status only; no caller may branch on it. */
  readonly kind: string;
  /** Creates the bucket or root folder if it is missing. */
  init(): Promise<void>;
  /** Stores a stream under `key`. The object appears whole or not at all. Resolves with its size. */
  put(key: string, body: Readable | Buffer, opts?: { sizeBytes?: number }): Promise<{ sizeBytes: number }>;
  /** Streams an object; rejects with HearthError-compatible NotFound (see isNotFound) when it is missing. */
  get(key: string): Promise<Readable>;
  /** Size and date, or undefined when the key does not exist. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, in lexical key order. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /**
   * One level under `prefix` ("" or ending in "/"), never descending: the cost grows with the number of direct
   * children, not with everything below them (S3's ListObjectsV2 with delimiter "/").
   */
  listChildren(prefix: string): Promise<ObjectChildren>;
  /** Removes one object; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** What `get` rejects with when the key is missing; the registry maps it to MODEL_NOT_FOUND or VERSION_NOT_FOUND. */
export class ObjectNotFoundError extends Error {
  readonly key: string;
  readonly code = 'OBJECT_NOT_FOUND';
  constructor(key: string) {
    super(`no object at key "${key}"`);
    this.name = 'ObjectNotFoundError';
    this.key = key;
  }
}

export function isNotFound(e: unknown): e is ObjectNotFoundError {
  return e instanceof ObjectNotFoundError;
}

/** A listChildren prefix: "" (the root) or a valid key followed by "/". */
export function checkFolderPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  if (typeof prefix !== 'string' || !prefix.endsWith('/'))
    throw new TypeError(`folder prefix "${prefix}": expected "" or a key ending in "/"`);
  checkObjectKey(prefix.slice(0, -1));
  return prefix;
}

/** Keys are "/"-separated relative paths: no empty, "." or ".." segment, no backslash, no leading "/". */
export function checkObjectKey(key: string): string {
  if (typeof key !== 'string' || key === '' || key.startsWith('/') || key.includes('\\') || key.includes('\0')) {
    throw new TypeError(`object key "${key}": expected a relative "/"-separated path`);
  }
  for (const seg of key.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw new TypeError(`object key "${key}": empty, "." or ".." segment`);
  }
  return key;
}
