// Ledger persistence in Redis: one hash per model version, fields "<bucketStart>:<quantity>", added with
// HINCRBYFLOAT inside a Lua script that also records the writer's flush sequence, so a retried flush
// (reply lost, connection dropped) is applied at most once. Every node adds to the same hashes.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  MAX_KEYS,
  QUANTITY_KEYS,
  emptyQuantities,
  type LedgerPersistence,
  type LedgerTotals,
  type QuantityKey,
} from './ledger-quantities.ts';

const APPLY = `
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= last then return 0 end
for i = 2, #ARGV, 4 do
  if ARGV[i + 3] == 'm' then
    local cur = tonumber(redis.call('HGET', ARGV[i], ARGV[i + 1]) or '0')
    if tonumber(ARGV[i + 2]) > cur then redis.call('HSET', ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
  else
    redis.call('HINCRBYFLOAT', ARGV[i], ARGV[i + 1], ARGV[i + 2])
  end
  redis.call('SADD', KEYS[2], ARGV[i])
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', 2592000)
return 1
`;

// Takes or renews the storage lease (KEYS[1]) for writer ARGV[1] for ARGV[2] ms; 1 when this writer holds it.
const LEASE = `
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`;

// Gives the lease up (KEYS[1]) if writer ARGV[1] holds it, so another node takes over at its next flush.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`;

export class RedisLedgerPersistence implements LedgerPersistence {
  readonly kind = 'redis' as const;
  #redis: Redis;
  #prefix: string;
  #writer: string;
  #ownsClient: boolean;

  /** `writer` names this ledger's flush sequence; a new process gets a new one, so its sequence may restart at 1. */
  constructor(redis: Redis, opts: { prefix?: string; writer?: string; ownsClient?: boolean } = {}) {
    this.#redis = redis;
    this.#prefix = `${opts.prefix ?? 'hearth'}:ledger`;
    this.#writer = opts.writer ?? randomUUID();
    this.#ownsClient = opts.ownsClient ?? true;
  }

  async load(): Promise<LedgerTotals> {
    const out: LedgerTotals = new Map();
    const keys = await this.#redis.smembers(`${this.#prefix}:models`);
    for (const k of keys) {
      const h = await this.#redis.hgetall(k);
      const model = k.slice(this.#prefix.length + 3);
      const buckets = new Map<number, ReturnType<typeof emptyQuantities>>();
      for (const [field, value] of Object.entries(h)) {
        const i = field.indexOf(':');
        const bucket = Number(field.slice(0, i));
        const q = field.slice(i + 1) as QuantityKey;
        if (!Number.isFinite(bucket) || !QUANTITY_KEYS.includes(q)) continue;
        let b = buckets.get(bucket);
        if (!b) buckets.set(bucket, (b = emptyQuantities()));
        b[q] = Number(value);
      }
      out.set(model, buckets);
    }
    return out;
  }

  async apply(delta: LedgerTotals, seq: number): Promise<void> {
    const args: string[] = [String(seq)];
    for (const [model, buckets] of delta) {
      const key = `${this.#prefix}:m:${model}`;
      for (const [bucket, q] of buckets) {
        for (const k of QUANTITY_KEYS) {
          if (!q[k]) continue;
          args.push(key, `${bucket}:${k}`, String(q[k]), MAX_KEYS.has(k) ? 'm' : 'i');
        }
      }
    }
    if (args.length === 1) return;
    await this.#redis.eval(APPLY, 2, `${this.#prefix}:seq:${this.#writer}`, `${this.#prefix}:models`, ...args);
  }

  async storageLease(ttlMs: number): Promise<boolean> {
    return (await this.#redis.eval(LEASE, 1, `${this.#prefix}:storage-lease`, this.#writer, String(Math.max(1, Math.ceil(ttlMs))))) === 1;
  }

  async close(): Promise<void> {
    await this.#redis.eval(RELEASE, 1, `${this.#prefix}:storage-lease`, this.#writer).catch(() => {});
    if (this.#ownsClient) this.#redis.disconnect();
  }
}
