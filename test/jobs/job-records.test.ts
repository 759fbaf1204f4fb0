// Job records in Redis: pages newest first with ties broken by id, a state that only moves forward, chunk ranges,
// a bounded list of callback attempts, and every key gone on removal.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobRecords, MAX_CALLBACK_ATTEMPTS_KEPT, type JobRecord } from '../../jobs/job-records.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';

let redis: TestRedis;
let client: Redis;

beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.close();
});

function record(id: string, createdAt: number): JobRecord {
  return { id, model: 'm', version: 1, state: 'queued', totalRows: 1, chunkSize: 1, chunks: 1, input: 'inline', priority: 0, createdAt };
}

describe('job records', () => {
  it('pages newest first; equal creation times never repeat or drop a job across pages', async () => {
    const records = new JobRecords(uniquePrefix('records'));
    const times = [1000, 2000, 2000, 2000, 2000, 3000, 1000];
    const ids = times.map((_, i) => `j${String.fromCharCode(97 + i)}`);
    for (const [i, t] of times.entries()) await records.create(client, record(ids[i], t));
    const seen: string[] = [];
    let cursor: { createdAt: number; id: string } | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await records.page(client, 2, cursor);
      seen.push(...page.ids);
      if (!page.next) break;
      const [t, id] = page.next.split(':');
      cursor = { createdAt: Number(t), id };
    }
    // Newest first; within one time, Redis's reverse order (larger id first).
    expect(seen).toEqual(['jf', 'je', 'jd', 'jc', 'jb', 'jg', 'ja']);
  });

  it('moves state forward only: running from queued, one terminal state that sticks', async () => {
    const records = new JobRecords(uniquePrefix('states'));
    await records.create(client, record('jx', 1));
    await records.markRunning(client, 'jx', 5);
    expect(await records.get(client, 'jx')).toMatchObject({ state: 'running', startedAt: 5 });
    expect(await records.finish(client, 'jx', 'cancelled', 9)).toBe(true);
    expect(await records.finish(client, 'jx', 'completed', 10)).toBe(false);
    await records.markRunning(client, 'jx', 11);
    expect(await records.get(client, 'jx')).toMatchObject({ state: 'cancelled', startedAt: 5, finishedAt: 9 });
    // A job that fails before it ever ran still gets a start time, so durations are never negative.
    await records.create(client, record('jy', 1));
    expect(await records.finish(client, 'jy', 'failed', 7, 'model gone')).toBe(true);
    expect(await records.get(client, 'jy')).toMatchObject({ state: 'failed', startedAt: 7, finishedAt: 7, error: 'model gone' });
  });

  it("keeps each chunk's row range, the latest callback attempts only, and removes every key of a job", async () => {
    const prefix = uniquePrefix('ranges');
    const records = new JobRecords(prefix);
    const rec = { ...record('jr', 1), totalRows: 10, chunkSize: 6, chunks: 3 };
    await records.create(client, rec, [0, 4, 6]);
    expect(await records.chunkRanges(client, rec)).toEqual([
      [0, 4],
      [4, 6],
      [6, 10],
    ]);
    // A record written before chunks had a byte bound: cut by chunkSize alone.
    const old = { ...record('jo', 1), totalRows: 10, chunkSize: 4, chunks: 3 };
    await records.create(client, old);
    expect(await records.chunkRanges(client, old)).toEqual([
      [0, 4],
      [4, 8],
      [8, 10],
    ]);
    for (let i = 0; i < MAX_CALLBACK_ATTEMPTS_KEPT + 5; i++) await records.addCallbackAttempt(client, 'jr', { at: String(i), ok: false });
    const attempts = await records.callbackAttempts(client, 'jr');
    expect(attempts.map((a) => a.at)).toEqual(Array.from({ length: MAX_CALLBACK_ATTEMPTS_KEPT }, (_, i) => String(i + 5)));
    await records.setChunk(client, 'jr', 0, { done: 1, failed: 0, billedMs: 1, requests: 1 });
    expect(await records.createdBefore(client, 2, 0, 10)).toEqual(['jo', 'jr']);
    await records.remove(client, 'jr');
    expect(await client.keys(`${prefix}:hearth:job:jr*`)).toEqual([]);
    expect(await records.createdBefore(client, 2, 0, 10)).toEqual(['jo']);
  });
});
