// Job metadata in Redis: one hash per job, one hash of per-chunk progress, one list of callback deliveries, the
// chunks' first rows, and a sorted set for listing newest first. State moves only forward (queued -> running -> a
// terminal state), enforced by small Lua scripts so two nodes can never move it back.
import type { Redis } from 'ioredis';

export const JOB_STATES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL_STATES: readonly JobState[] = ['completed', 'failed', 'cancelled'];

export interface JobRecord {
  id: string;
  model: string;
  version: number;
  /** The model version's size, for pricing its memory like the executor does. */
  sizeBytes?: number;
  state: JobState;
  totalRows: number;
  chunkSize: number;
  chunks: number;
  /** The dataset key the rows came from, or 'inline'; the rows themselves are copied per chunk under jobs/{id}/input/. */
  input: string;
  priority: number;
  callbackUrl?: string;
  /** The API key that created the job (AUTH on); other keys but admin see 404. */
  owner?: string;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  error?: string;
}

/** What one chunk has done; overwritten as a whole, so a retried chunk never counts twice. */
export interface ChunkProgress {
  done: number;
  failed: number;
  billedMs: number;
  requests: number;
  /** Set when the chunk's results object is written. */
  final?: boolean;
}

export interface CallbackAttempt {
  at: string;
  ok: boolean;
  status?: number;
  error?: string;
}

const MARK_RUNNING = `
if redis.call('HGET', KEYS[1], 'state') == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'running', 'startedAt', ARGV[1])
  return 1
end
return 0`;

// Moves a job to a terminal state unless it is in one already; ARGV: state, finishedAt, error ('' for none).
const FINISH = `
local s = redis.call('HGET', KEYS[1], 'state')
if s == 'queued' or s == 'running' then
  redis.call('HSET', KEYS[1], 'state', ARGV[1], 'finishedAt', ARGV[2])
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[3]) end
  if redis.call('HEXISTS', KEYS[1], 'startedAt') == 0 then redis.call('HSET', KEYS[1], 'startedAt', ARGV[2]) end
  return 1
end
return 0`;

/** Callback delivery attempts kept per job (a job makes at most its callbackAttempts, plus a retry after a stall). */
export const MAX_CALLBACK_ATTEMPTS_KEPT = 20;

export class JobRecords {
  readonly #prefix: string;
  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  key(id: string): string {
    return `${this.#prefix}:hearth:job:${id}`;
  }
  #chunksKey(id: string): string {
    return `${this.#prefix}:hearth:job:${id}:chunks`;
  }
  #callbacksKey(id: string): string {
    return `${this.#prefix}:hearth:job:${id}:callbacks`;
  }
  #startsKey(id: string): string {
    return `${this.#prefix}:hearth:job:${id}:starts`;
  }
  /** Every job by creation time, or one owner's jobs (so a key's listing never scans the others'). */
  #indexKey(owner?: string): string {
    return owner === undefined ? `${this.#prefix}:hearth:jobs` : `${this.#prefix}:hearth:jobs:owner:${owner}`;
  }

  /** Writes a new job's record; `starts` holds each chunk's first row (chunks are cut by rows and by bytes). */
  async create(redis: Redis, rec: JobRecord, starts?: readonly number[]): Promise<void> {
    const fields: Record<string, string> = {
      id: rec.id,
      model: rec.model,
      version: String(rec.version),
      state: rec.state,
      totalRows: String(rec.totalRows),
      chunkSize: String(rec.chunkSize),
      chunks: String(rec.chunks),
      input: rec.input,
      priority: String(rec.priority),
      createdAt: String(rec.createdAt),
    };
    if (rec.callbackUrl) fields.callbackUrl = rec.callbackUrl;
    if (rec.sizeBytes !== undefined) fields.sizeBytes = String(rec.sizeBytes);
    if (rec.owner !== undefined) fields.owner = rec.owner;
    const m = redis.multi().hset(this.key(rec.id), fields);
    if (starts) m.set(this.#startsKey(rec.id), starts.join(','));
    if (rec.owner !== undefined) m.zadd(this.#indexKey(rec.owner), rec.createdAt, rec.id);
    await m.zadd(this.#indexKey(), rec.createdAt, rec.id).exec().then(checkMulti);
  }

  /** Row range [start, end) of each chunk; records written before chunks had a byte bound are cut by chunkSize alone. */
  async chunkRanges(redis: Redis, rec: JobRecord): Promise<[number, number][]> {
    const text = await redis.get(this.#startsKey(rec.id));
    const starts = text ? text.split(',').map(Number) : Array.from({ length: rec.chunks }, (_, n) => n * rec.chunkSize);
    return starts.map((s, n) => [s, n + 1 < starts.length ? starts[n + 1] : rec.totalRows]);
  }

  async get(redis: Redis, id: string): Promise<JobRecord | undefined> {
    const h = await redis.hgetall(this.key(id));
    return h.id ? parseRecord(h) : undefined;
  }

  async state(redis: Redis, id: string): Promise<JobState | undefined> {
    return ((await redis.hget(this.key(id), 'state')) ?? undefined) as JobState | undefined;
  }

  async markRunning(redis: Redis, id: string, at: number): Promise<void> {
    await redis.eval(MARK_RUNNING, 1, this.key(id), String(at));
  }

  /** True when this call moved the job to `state`; false when it was terminal already. */
  async finish(redis: Redis, id: string, state: 'completed' | 'failed' | 'cancelled', at: number, error = ''): Promise<boolean> {
    return (await redis.eval(FINISH, 1, this.key(id), state, String(at), error)) === 1;
  }

  async setChunk(redis: Redis, id: string, chunk: number, p: ChunkProgress): Promise<void> {
    await redis.hset(this.#chunksKey(id), String(chunk), JSON.stringify(p));
  }

  async chunks(redis: Redis, id: string): Promise<Map<number, ChunkProgress>> {
    const h = await redis.hgetall(this.#chunksKey(id));
    return new Map(Object.entries(h).map(([k, v]) => [Number(k), JSON.parse(v) as ChunkProgress]));
  }

  /** Records a delivery attempt; only the latest MAX_CALLBACK_ATTEMPTS_KEPT are kept. */
  async addCallbackAttempt(redis: Redis, id: string, a: CallbackAttempt): Promise<void> {
    await redis
      .multi()
      .rpush(this.#callbacksKey(id), JSON.stringify(a))
      .ltrim(this.#callbacksKey(id), -MAX_CALLBACK_ATTEMPTS_KEPT, -1)
      .exec()
      .then(checkMulti);
  }

  async callbackAttempts(redis: Redis, id: string): Promise<CallbackAttempt[]> {
    return (await redis.lrange(this.#callbacksKey(id), 0, -1)).map((s) => JSON.parse(s) as CallbackAttempt);
  }

  /** Ids newest first (only `owner`'s when given), after the cursor `${createdAt}:${id}` when given. */
  async page(
    redis: Redis,
    limit: number,
    cursor?: { createdAt: number; id: string },
    owner?: string,
  ): Promise<{ ids: string[]; next?: string }> {
    const index = this.#indexKey(owner);
    const ids: string[] = [];
    let max = cursor ? String(cursor.createdAt) : '+inf';
    let offset = 0;
    // Equal scores come back in reverse lexical order of member; skip those at or before the cursor.
    for (;;) {
      const batch = await redis.zrevrangebyscore(index, max, '-inf', 'WITHSCORES', 'LIMIT', offset, limit + 1);
      if (batch.length === 0) break;
      for (let i = 0; i < batch.length; i += 2) {
        const id = batch[i];
        const score = Number(batch[i + 1]);
        if (cursor && score === cursor.createdAt && id >= cursor.id) continue;
        ids.push(id);
        if (ids.length > limit) break;
      }
      if (ids.length > limit || batch.length < 2 * (limit + 1)) break;
      offset += limit + 1;
      max = cursor ? String(cursor.createdAt) : max;
    }
    const more = ids.length > limit;
    const pageIds = ids.slice(0, limit);
    if (!more) return { ids: pageIds };
    const last = pageIds[pageIds.length - 1];
    const score = await redis.zscore(index, last);
    return { ids: pageIds, next: `${score}:${last}` };
  }

  /** Up to `limit` job ids created before `before` (ms), oldest first, after skipping `offset` of them. */
  async createdBefore(redis: Redis, before: number, offset: number, limit: number): Promise<string[]> {
    return redis.zrangebyscore(this.#indexKey(), '-inf', `(${before}`, 'LIMIT', offset, limit);
  }

  /** Removes every key of a job (used by tests' cleanup and by purges). */
  async remove(redis: Redis, id: string): Promise<void> {
    const owner = await redis.hget(this.key(id), 'owner');
    const m = redis.multi();
    if (owner !== null) m.zrem(this.#indexKey(owner), id);
    await m
      .del(this.key(id), this.#chunksKey(id), this.#callbacksKey(id), this.#startsKey(id))
      .zrem(this.#indexKey(), id)
      .exec()
      .then(checkMulti);
  }
}

function checkMulti(res: [Error | null, unknown][] | null): void {
  if (!res) throw new Error('redis transaction aborted');
  for (const [err] of res) if (err) throw err;
}

function parseRecord(h: Record<string, string>): JobRecord {
  const rec: JobRecord = {
    id: h.id,
    model: h.model,
    version: Number(h.version),
    state: h.state as JobState,
    totalRows: Number(h.totalRows),
    chunkSize: Number(h.chunkSize),
    chunks: Number(h.chunks),
    input: h.input,
    priority: Number(h.priority),
    createdAt: Number(h.createdAt),
  };
  if (h.callbackUrl) rec.callbackUrl = h.callbackUrl;
  if (h.sizeBytes) rec.sizeBytes = Number(h.sizeBytes);
  if (h.startedAt) rec.startedAt = Number(h.startedAt);
  if (h.finishedAt) rec.finishedAt = Number(h.finishedAt);
  if (h.error) rec.error = h.error;
  if (h.owner) rec.owner = h.owner;
  return rec;
}
