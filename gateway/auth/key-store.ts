// Where key records live: a Redis hash when Redis answers at start-up (every node reads it on every request, so a
// revocation holds on all nodes at once), else one object per key in the object store (a single node, or nodes
// that accept up to a second of delay). Records hold a hash, never a secret.
import { buffer } from 'node:stream/consumers';
import { Redis } from 'ioredis';
import { hearthError, type Clock } from '../../core/index.ts';
import { isNotFound, type ObjectStore } from '../../model-store/index.ts';
import { redactUrl } from '../../jobs/index.ts';
import type { KeyRecord } from './keys.ts';

export interface KeyStore {
  /** 'redis' or 'store', and why, for the start-up line. */
  readonly describe: string;
  /** The Redis connection when keys live there (the rate limiter shares it, under `prefix`). */
  readonly redis?: Redis;
  readonly prefix?: string;
  get(id: string): Promise<KeyRecord | undefined>;
  list(): Promise<KeyRecord[]>;
  put(rec: KeyRecord): Promise<void>;
  /** false when there was no such key. */
  delete(id: string): Promise<boolean>;
  /** true for the one caller, cluster-wide, that may create the first admin key. */
  claimBootstrap(): Promise<boolean>;
  close(): Promise<void>;
}

/** Most keys one Hearth holds (each is listed whole by GET /v1/keys). */
export const MAX_KEYS = 10_000;
/** How long a key read from Redis may still be used while Redis does not answer. */
const STALE_OK_MS = 60_000;
/** How long a key read from the object store is reused before it is read again. */
const STORE_CACHE_MS = 1000;

export class RedisKeyStore implements KeyStore {
  readonly describe: string;
  readonly redis: Redis;
  readonly prefix: string;
  readonly #hash: string;
  readonly #bootstrap: string;
  readonly #clock: Clock;
  /** The last answer per key id, for a Redis outage: a known key keeps working for STALE_OK_MS. */
  readonly #lastSeen = new Map<string, { rec: KeyRecord; at: number }>();

  constructor(redis: Redis, prefix: string, clock: Clock, describe: string) {
    this.redis = redis;
    this.prefix = prefix;
    this.#hash = `${prefix}:auth:keys`;
    this.#bootstrap = `${prefix}:auth:bootstrapped`;
    this.#clock = clock;
    this.describe = describe;
  }

  async get(id: string): Promise<KeyRecord | undefined> {
    let raw: string | null;
    try {
      raw = await this.redis.hget(this.#hash, id);
    } catch (err) {
      const seen = this.#lastSeen.get(id);
      if (seen && this.#clock.now() - seen.at <= STALE_OK_MS) return seen.rec;
      throw hearthError('AUTH_UNAVAILABLE', `the key store (Redis) did not answer: ${(err as Error).message}`);
    }
    if (raw === null) {
      this.#lastSeen.delete(id);
      return undefined;
    }
    const rec = JSON.parse(raw) as KeyRecord;
    if (this.#lastSeen.size >= MAX_KEYS) this.#lastSeen.clear();
    this.#lastSeen.set(id, { rec, at: this.#clock.now() });
    return rec;
  }

  async list(): Promise<KeyRecord[]> {
    return (await this.#call(() => this.redis.hvals(this.#hash))).map((v) => JSON.parse(v) as KeyRecord);
  }

  async put(rec: KeyRecord): Promise<void> {
    await this.#call(() => this.redis.hset(this.#hash, rec.id, JSON.stringify(rec)));
  }

  async delete(id: string): Promise<boolean> {
    this.#lastSeen.delete(id);
    return (await this.#call(() => this.redis.hdel(this.#hash, id))) > 0;
  }

  async claimBootstrap(): Promise<boolean> {
    return (await this.#call(() => this.redis.set(this.#bootstrap, String(this.#clock.now()), 'NX'))) === 'OK';
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  async #call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      throw hearthError('AUTH_UNAVAILABLE', `the key store (Redis) did not answer: ${(err as Error).message}`);
    }
  }
}

export const KEYS_PREFIX = 'auth/keys/';

export class ObjectKeyStore implements KeyStore {
  readonly describe: string;
  readonly #store: ObjectStore;
  readonly #clock: Clock;
  readonly #cache = new Map<string, { rec: KeyRecord | undefined; at: number }>();

  constructor(store: ObjectStore, clock: Clock, describe: string) {
    this.#store = store;
    this.#clock = clock;
    this.describe = describe;
  }

  async get(id: string): Promise<KeyRecord | undefined> {
    const hit = this.#cache.get(id);
    if (hit && this.#clock.now() - hit.at < STORE_CACHE_MS) return hit.rec;
    let rec: KeyRecord | undefined;
    try {
      rec = JSON.parse((await buffer(await this.#store.get(`${KEYS_PREFIX}${id}.json`))).toString('utf8')) as KeyRecord;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (this.#cache.size >= MAX_KEYS) this.#cache.clear();
    this.#cache.set(id, { rec, at: this.#clock.now() });
    return rec;
  }

  async list(): Promise<KeyRecord[]> {
    const out: KeyRecord[] = [];
    for (const o of await this.#store.list(KEYS_PREFIX)) {
      const m = /^auth\/keys\/([a-z0-9]+)\.json$/.exec(o.key);
      const rec = m ? await this.get(m[1]) : undefined;
      if (rec) out.push(rec);
    }
    return out;
  }

  async put(rec: KeyRecord): Promise<void> {
    await this.#store.put(`${KEYS_PREFIX}${rec.id}.json`, Buffer.from(JSON.stringify(rec)));
    this.#cache.delete(rec.id);
  }

  async delete(id: string): Promise<boolean> {
    const existed = (await this.#store.stat(`${KEYS_PREFIX}${id}.json`)) !== undefined;
    if (existed) await this.#store.delete(`${KEYS_PREFIX}${id}.json`);
    this.#cache.delete(id);
    return existed;
  }

  async claimBootstrap(): Promise<boolean> {
    // One node per store is the case without Redis: no key at all means nobody has bootstrapped.
    return (await this.#store.list(KEYS_PREFIX)).length === 0;
  }

  async close(): Promise<void> {}
}

/**
 * How long start-up waits for Redis before keys go to the object store. A refused connection fails at once; a slow
 * Redis gets this long, because a node that falls back does not see the keys made or revoked on the others.
 */
const START_WAIT_MS = 5000;

/** Redis when it answers at start-up, else the object store (the ledger chooses the same way). */
export async function openKeyStore(o: { redisUrl?: string; prefix: string; store: ObjectStore; clock: Clock }): Promise<KeyStore> {
  if (o.redisUrl) {
    const redis = new Redis(o.redisUrl, {
      lazyConnect: true,
      connectTimeout: START_WAIT_MS,
      commandTimeout: 2000,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      retryStrategy: (n) => Math.min(1000, 50 * 2 ** Math.min(n, 10)),
    });
    redis.on('error', () => {});
    try {
      await Promise.race([
        redis.connect().then(() => redis.ping()),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`no answer within ${START_WAIT_MS} ms`)), START_WAIT_MS + 200).unref(),
        ),
      ]);
      return new RedisKeyStore(redis, o.prefix, o.clock, `redis at ${redactUrl(o.redisUrl)}`);
    } catch (err) {
      redis.disconnect();
      return new ObjectKeyStore(o.store, o.clock, `the object store (redis did not answer: ${(err as Error).message})`);
    }
  }
  return new ObjectKeyStore(o.store, o.clock, 'the object store');
}
