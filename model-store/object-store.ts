// The object-store contract that every backend (fs, s3) meets; test/model-store/conformance runs against each.
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  key: string;
  sizeBytes: number;
  lastModified: Date;
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
  /** Removes one object; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}
