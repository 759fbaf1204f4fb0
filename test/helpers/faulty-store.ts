// An ObjectStore that forwards to a real one, except where a test injects a failure: a store outage part-way
// through an operation, without mocking the store itself.
import type { Readable } from 'node:stream';
import { hearthError } from '../../core/index.ts';
import type { ObjectStore } from '../../model-store/index.ts';

/** Returns true when the operation on `key` should fail with STORE_UNAVAILABLE. */
export type StoreFault = (key: string) => boolean;

export function faultyStore(
  inner: ObjectStore,
  faults: { put?: StoreFault; get?: StoreFault; stat?: StoreFault; list?: StoreFault; delete?: StoreFault },
): ObjectStore {
  const fail = (op: string, key: string) => Promise.reject(hearthError('STORE_UNAVAILABLE', `injected outage: ${op} ${key}`));
  return {
    kind: inner.kind,
    init: () => inner.init(),
    put: (key: string, body: Readable | Buffer, opts?: { sizeBytes?: number }) =>
      faults.put?.(key) ? fail('put', key) : inner.put(key, body, opts),
    get: (key: string) => (faults.get?.(key) ? fail('get', key) : inner.get(key)),
    stat: (key: string) => (faults.stat?.(key) ? fail('stat', key) : inner.stat(key)),
    list: (prefix: string) => (faults.list?.(prefix) ? fail('list', prefix) : inner.list(prefix)),
    listChildren: (prefix: string) => (faults.list?.(prefix) ? fail('list', prefix) : inner.listChildren(prefix)),
    delete: (key: string) => (faults.delete?.(key) ? fail('delete', key) : inner.delete(key)),
    close: () => inner.close(),
  };
}
