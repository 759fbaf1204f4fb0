// The ledger survives a restart without counting twice: against a private redis-server, and with snapshots in an fs store.
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PRICES, ManualClock } from '../../core/index.ts';
import { CostLedger, type LedgerPersistence } from '../../ledger/cost-ledger.ts';
import { openLedgerPersistence } from '../../ledger/ledger-open.ts';
import { RedisLedgerPersistence } from '../../ledger/ledger-redis.ts';
import { LEDGER_SNAPSHOT_KEY, StoreLedgerPersistence } from '../../ledger/ledger-store.ts';
import { FsObjectStore } from '../../model-store/index.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';

const H = 3_600_000;

function requestDone(ledger: CostLedger, at: number, billedMs = 10) {
  ledger.observer.onRequestDone!({
    name: 'm',
    version: 1,
    ok: true,
    queueMs: 0,
    computeMs: billedMs,
    billedMs,
    memoryMb: 1024,
    batchSize: 1,
    coldStart: false,
    at,
  });
}

/** Two process lifetimes of a ledger over one persistence backend. */
async function restartScenario(make: () => LedgerPersistence) {
  const clock = new ManualClock(5 * H);
  const a = new CostLedger({ clock, prices: DEFAULT_PRICES, persistence: make() });
  await a.start();
  for (let i = 0; i < 5; i++) requestDone(a, clock.now());
  await a.flush();
  for (let i = 0; i < 2; i++) requestDone(a, clock.now());
  await a.close(); // flushes the last 2
  // Second life: starts from what was persisted, adds its own.
  const b = new CostLedger({ clock, prices: DEFAULT_PRICES, persistence: make() });
  await b.start();
  expect((await b.report()).total.invocations).toBe(7);
  clock.advance(H);
  for (let i = 0; i < 3; i++) requestDone(b, clock.now(), 20);
  await b.flush();
  await b.flush(); // nothing new: nothing added
  const rb = await b.report();
  expect(rb.total.invocations).toBe(10);
  expect(rb.total.billedMs).toBe(7 * 10 + 3 * 20);
  // A third life that crashes before flushing loses its own unflushed events, and never repeats anyone else's.
  const c = new CostLedger({ clock, prices: DEFAULT_PRICES, persistence: make() });
  await c.start();
  requestDone(c, clock.now());
  const d = new CostLedger({ clock, prices: DEFAULT_PRICES, persistence: make() });
  await d.start();
  const rd = await d.report();
  expect(rd.total.invocations).toBe(10);
  expect(rd.total.computeGbSeconds).toBeCloseTo((130 / 1000) * 1, 12);
  // The hourly buckets came back too.
  expect((await d.report({ from: 6 * H })).total.invocations).toBe(3);
  await b.close();
  await d.close();
  return rd;
}

describe('ledger persistence in Redis', () => {
  let redis: TestRedis;
  const clients: Redis[] = [];
  beforeAll(async () => {
    redis = await startTestRedis({ useEnv: false });
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await redis?.close();
  });
  const client = () => {
    const c = new Redis(redis.url, { lazyConnect: false });
    clients.push(c);
    return c;
  };

  it('restarts without double counting', async () => {
    const prefix = uniquePrefix('ledger');
    await restartScenario(() => new RedisLedgerPersistence(client(), { prefix, ownsClient: false }));
    // One hash per model version, fields per hour bucket.
    const h = await client().hgetall(`${prefix}:ledger:m:m@1`);
    expect(Number(h[`${5 * H}:invocations`])).toBe(7);
    expect(Number(h[`${6 * H}:invocations`])).toBe(3);
  });

  it('two nodes on one Redis count the stored bytes once', async () => {
    // Both nodes list the same store; storage is integrated by whichever holds the lease, not by each.
    const prefix = uniquePrefix('ledger');
    const clock = new ManualClock(0);
    const storage = () => [{ name: 'm', version: 1, sizeBytes: 1024 ** 3 }];
    const node = () =>
      new CostLedger({
        clock,
        prices: DEFAULT_PRICES,
        persistence: new RedisLedgerPersistence(client(), { prefix, ownsClient: false }),
        storage,
      });
    const a = node();
    const b = node();
    await a.start();
    await b.start();
    clock.advance(73 * H); // 1 GiB for a tenth of a month
    await a.flush();
    await b.flush();
    expect((await a.report()).total.storageGbMonths).toBeCloseTo(0.1, 9);
    expect((await b.report()).total.storageGbMonths).toBeCloseTo(0.1, 9);
    await a.close();
    await b.close();
  });

  it('applies a retried flush (same sequence) once', async () => {
    const prefix = uniquePrefix('ledger');
    const p = new RedisLedgerPersistence(client(), { prefix, writer: 'w1', ownsClient: false });
    const delta = new Map([
      [
        'm@1',
        new Map([
          [
            0,
            {
              invocations: 2,
              failures: 0,
              billedMs: 20,
              billedMbMs: 20_480,
              idleMbMs: 0,
              coldStarts: 0,
              coldStartMs: 0,
              storageGbMonths: 0,
              peakMemoryMb: 1024,
            },
          ],
        ]),
      ],
    ]);
    await p.apply(delta, 1);
    await p.apply(delta, 1);
    await p.apply(delta, 2);
    const t = await p.load();
    expect(t.get('m@1')!.get(0)!.invocations).toBe(4);
    expect(t.get('m@1')!.get(0)!.peakMemoryMb).toBe(1024); // merged by max, not summed
  });

  it('a flush that fails while Redis is down is retried after it returns, and counted once', async () => {
    const own = await startTestRedis({ persistent: true, useEnv: false });
    try {
      const prefix = uniquePrefix('ledger');
      const c = new Redis(own.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
      c.on('error', () => {});
      clients.push(c);
      const clock = new ManualClock(0);
      const ledger = new CostLedger({
        clock,
        prices: DEFAULT_PRICES,
        persistence: new RedisLedgerPersistence(c, { prefix, ownsClient: false }),
      });
      await ledger.start();
      for (let i = 0; i < 4; i++) requestDone(ledger, 0);
      await ledger.flush();
      await own.stop();
      requestDone(ledger, 0);
      await expect(ledger.flush()).rejects.toThrow();
      requestDone(ledger, 0);
      await own.start();
      await ledger.flush(); // the failed batch, under its own sequence
      await ledger.flush(); // the event recorded after it
      const fresh = new RedisLedgerPersistence(new Redis(own.url), { prefix });
      const t = await fresh.load();
      expect(t.get('m@1')!.get(0)!.invocations).toBe(6);
      await fresh.close();
    } finally {
      await own.close();
    }
  });

  it('openLedgerPersistence picks Redis when it answers', async () => {
    const { persistence } = await openLedgerPersistence({ redisUrl: redis.url, prefix: uniquePrefix('ledger') });
    expect(persistence.kind).toBe('redis');
    await persistence.close();
  });
});

describe('ledger persistence in the object store', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-ledger-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('restarts from the snapshot without double counting', async () => {
    const store = new FsObjectStore({ root: dir });
    await store.init();
    await restartScenario(() => new StoreLedgerPersistence(store));
    const snap = JSON.parse(await fs.readFile(path.join(dir, LEDGER_SNAPSHOT_KEY), 'utf8'));
    expect(snap.format).toBe('hearth-ledger/1');
    expect(snap.models['m@1'][String(5 * H)].invocations).toBe(7);
    expect(snap.seq).toBeGreaterThanOrEqual(3);
  });

  it('openLedgerPersistence falls back when a server accepts the connection but never answers', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const { persistence, why } = await openLedgerPersistence({
        redisUrl: `redis://127.0.0.1:${port}`,
        store: new FsObjectStore({ root: dir }),
        connectTimeoutMs: 300,
      });
      expect(persistence.kind).toBe('store');
      expect(why).toMatch(/did not answer/);
    } finally {
      silent.close();
    }
  });

  it('openLedgerPersistence falls back to the store when Redis does not answer, without hanging', async () => {
    const store = new FsObjectStore({ root: dir });
    // Port 1 on localhost refuses at once.
    const { persistence, why } = await openLedgerPersistence({ redisUrl: 'redis://127.0.0.1:1', store, connectTimeoutMs: 500 });
    expect(persistence.kind).toBe('store');
    expect(why).toMatch(/did not answer/);
  });
});
