// Picks the ledger's persistence at start-up: Redis when it answers within a short timeout, else the object
// store snapshot. Start-up never fails or hangs because Redis is down.
import { Redis } from 'ioredis';
import type { LedgerPersistence } from './ledger-quantities.ts';
import { MemoryLedgerPersistence } from './ledger-quantities.ts';
import { RedisLedgerPersistence } from './ledger-redis.ts';
import { StoreLedgerPersistence, type SnapshotStore } from './ledger-store.ts';

export interface OpenLedgerOptions {
  redisUrl?: string;
  /** Key prefix in Redis (config.jobs.prefix). */
  prefix?: string;
  /** The object store (for a snapshot when Redis does not answer). */
  store?: SnapshotStore;
  /** How long to wait for Redis to answer PING. */
  connectTimeoutMs?: number;
}

export async function openLedgerPersistence(opts: OpenLedgerOptions): Promise<{ persistence: LedgerPersistence; why: string }> {
  if (opts.redisUrl) {
    const timeout = opts.connectTimeoutMs ?? 1000;
    const redis = new Redis(opts.redisUrl, {
      lazyConnect: true,
      connectTimeout: timeout,
      maxRetriesPerRequest: 2,
      enableOfflineQueue: true,
      // After start-up, keep reconnecting in the background; flushes fail (and are retried) meanwhile.
      retryStrategy: (n) => Math.min(5000, 200 * n),
    });
    redis.on('error', () => {});
    try {
      await withTimeout(
        (async () => {
          await redis.connect();
          await redis.ping();
        })(),
        timeout + 200,
      );
      return { persistence: new RedisLedgerPersistence(redis, { prefix: opts.prefix }), why: `redis at ${opts.redisUrl}` };
    } catch (err) {
      redis.disconnect();
      const reason = `redis at ${opts.redisUrl} did not answer (${(err as Error).message})`;
      if (opts.store) return { persistence: new StoreLedgerPersistence(opts.store), why: `${reason}; snapshots in the object store` };
      return { persistence: new MemoryLedgerPersistence(), why: `${reason}; in memory only` };
    }
  }
  if (opts.store) return { persistence: new StoreLedgerPersistence(opts.store), why: 'snapshots in the object store' };
  return { persistence: new MemoryLedgerPersistence(), why: 'in memory only' };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    t.unref?.();
    p.finally(() => clearTimeout(t)).then(resolve, reject);
  });
}
