// Strategy choices with a fake clock and fake instances: packing, affinity, cold start against waiting,
// a priority inversion that `event` fixes, and aging that prevents starvation.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/index.ts';
import type { InstanceView, PoolView, QueuedRequest, Scheduler } from '../../executor/scheduler.ts';
import { EventScheduler } from '../../executor/strategies/event.ts';
import { StatefulScheduler } from '../../executor/strategies/stateful.ts';
import { StatelessScheduler } from '../../executor/strategies/stateless.ts';
import { effectivePriority, urgencyRank } from '../../executor/strategies/urgency.ts';

let nextId = 1;
function req(at: number, over: Partial<QueuedRequest> = {}): QueuedRequest {
  return { id: nextId++, poolKey: 'm@1', priority: 5, arrivedAt: at, deadline: at + 60_000, batchKey: 'k', items: 1, ...over };
}
function inst(id: string, over: Partial<InstanceView> = {}): InstanceView {
  return { id, state: 'idle', inflight: 0, concurrency: 1, lastUsedAt: 0, createdAt: 0, ...over };
}
function pool(instances: InstanceView[], over: Partial<PoolView> = {}): PoolView {
  return { key: 'm@1', instances, maxInstances: 4, coldStartMs: 500, serviceMs: 10, ratePerSec: 0, canGrow: true, ...over };
}

/**
 * A tiny deterministic pool driven by a scheduler: each step places the head, runs it for serviceMs on the
 * chosen instance, and retires instances idle for longer than keepAliveMs.
 */
function simulate(s: Scheduler, clock: ManualClock, ids: string[], steps: number, gapMs: number, keepAliveMs: number) {
  const lastUsed = new Map(ids.map((id) => [id, 0]));
  const alive = new Set(ids);
  const used: string[] = [];
  for (let n = 0; n < steps; n++) {
    s.enqueue(req(clock.now()));
    const p = pool([...alive].map((id) => inst(id, { lastUsedAt: lastUsed.get(id)!, createdAt: 0 })));
    const placement = s.place(p, clock.now());
    expect(placement.kind).toBe('run');
    if (placement.kind !== 'run') break;
    s.take(clock.now(), 1);
    used.push(placement.instanceId);
    clock.advance(10);
    lastUsed.set(placement.instanceId, clock.now());
    clock.advance(gapMs);
    for (const id of alive) if (clock.now() - lastUsed.get(id)! > keepAliveMs && lastUsed.get(id)! > 0) alive.delete(id);
    for (const id of alive) if (lastUsed.get(id) === 0 && clock.now() > keepAliveMs) alive.delete(id);
  }
  return { used, alive };
}

describe('stateful placement', () => {
  it('packs sequential traffic onto one instance so the others idle out', () => {
    const clock = new ManualClock(0);
    const { used, alive } = simulate(new StatefulScheduler(), clock, ['a', 'b', 'c'], 50, 90, 1000);
    expect(new Set(used).size).toBe(1);
    expect(alive.size).toBe(1);
  });

  it('prefers the most recently used free instance', () => {
    const s = new StatefulScheduler();
    s.enqueue(req(100));
    const p = pool([inst('a', { lastUsedAt: 50 }), inst('b', { lastUsedAt: 90 }), inst('c', { lastUsedAt: 70 })]);
    expect(s.place(p, 100)).toEqual({ kind: 'run', instanceId: 'b' });
  });

  it('warm affinity beats fewer runs in flight on a cold instance', () => {
    const s = new StatefulScheduler({ warmWindowMs: 60_000 });
    s.enqueue(req(1_000_000));
    const p = pool([
      inst('stale', { concurrency: 4, inflight: 0, lastUsedAt: 1_000_000 - 600_000 }),
      inst('never', { concurrency: 4, inflight: 0, lastUsedAt: 0 }),
      inst('warm', { state: 'busy', concurrency: 4, inflight: 2, lastUsedAt: 1_000_000 - 1_000 }),
    ]);
    expect(s.place(p, 1_000_000)).toEqual({ kind: 'run', instanceId: 'warm' });
  });

  it('among warm instances, the least outstanding work wins, then packing', () => {
    const s = new StatefulScheduler();
    s.enqueue(req(10_000));
    const busyMru = inst('mru', { state: 'busy', concurrency: 4, inflight: 3, lastUsedAt: 9_999 });
    const lighter = inst('light', { state: 'busy', concurrency: 4, inflight: 1, lastUsedAt: 9_000 });
    const lighterOlder = inst('light-old', { state: 'busy', concurrency: 4, inflight: 1, lastUsedAt: 8_000 });
    expect(s.place(pool([busyMru, lighterOlder, lighter]), 10_000)).toEqual({ kind: 'run', instanceId: 'light' });
  });

  it('never places on starting, retiring or full instances', () => {
    const s = new StatefulScheduler();
    s.enqueue(req(0));
    const p = pool(
      [
        inst('s', { state: 'starting' }),
        inst('r', { state: 'retiring', lastUsedAt: 5 }),
        inst('f', { state: 'busy', inflight: 1, lastUsedAt: 9 }),
      ],
      { maxInstances: 3 },
    );
    expect(s.place(p, 10)).toEqual({ kind: 'wait' });
  });

  it('starts an instance for an empty pool, unless the node has no room', () => {
    const s = new StatefulScheduler();
    s.enqueue(req(0));
    expect(s.place(pool([]), 0)).toEqual({ kind: 'cold-start' });
    expect(s.place(pool([], { canGrow: false }), 0)).toEqual({ kind: 'wait' });
    expect(s.place(pool([inst('r', { state: 'retiring' })], { maxInstances: 1 }), 0)).toEqual({ kind: 'cold-start' });
  });

  describe('cold start against waiting', () => {
    const busy = [inst('a', { state: 'busy', inflight: 1, lastUsedAt: 1 })];
    function withQueue(n: number): StatefulScheduler {
      const s = new StatefulScheduler();
      for (let i = 0; i < n; i++) s.enqueue(req(0));
      return s;
    }
    it('waits while queue × serviceMs / slots is below the cold-start time', () => {
      const s = withQueue(3); // 3 × 10 ms / 1 = 30 ms < 500 ms
      expect(s.expectedWaitMs(pool(busy), 0)).toBe(30);
      expect(s.place(pool(busy), 0)).toEqual({ kind: 'wait' });
    });
    it('starts an instance once the expected wait exceeds it', () => {
      const s = withQueue(60); // 600 ms > 500 ms
      expect(s.place(pool(busy), 0)).toEqual({ kind: 'cold-start' });
      // The same queue with a cheap cold start, and with a slow one.
      expect(withQueue(3).place(pool(busy, { coldStartMs: 20 }), 0)).toEqual({ kind: 'cold-start' });
      expect(withQueue(60).place(pool(busy, { coldStartMs: 5_000 }), 0)).toEqual({ kind: 'wait' });
    });
    it('counts more slots per instance as more capacity', () => {
      const s = withQueue(60);
      const wide = [inst('a', { state: 'busy', inflight: 2, concurrency: 2, lastUsedAt: 1 })];
      expect(s.expectedWaitMs(pool(wide), 0)).toBe(300);
      expect(s.place(pool(wide), 0)).toEqual({ kind: 'wait' });
    });
    it('counts an instance already starting, so repeated calls do not start one each', () => {
      const s = withQueue(60);
      const p = pool([...busy, inst('s', { state: 'starting', createdAt: 0 })]);
      expect(s.place(p, 0)).toEqual({ kind: 'wait' }); // 600 / 2 = 300 ms < 500 ms
    });
    it('counts batchable requests in runs of maxBatchItems, non-batchable ones a run each', () => {
      const s = withQueue(60); // batch key 'k': 60 items in ceil(60 / 16) = 4 runs of 10 ms
      expect(s.expectedWaitMs(pool(busy, { maxBatchItems: 16 }), 0)).toBe(40);
      expect(s.place(pool(busy, { maxBatchItems: 16 }), 0)).toEqual({ kind: 'wait' });
      for (let i = 0; i < 10; i++) s.enqueue(req(0, { batchKey: '' }));
      expect(s.expectedWaitMs(pool(busy, { maxBatchItems: 16 }), 0)).toBe(140);
      const taken = s.take(0, 16);
      expect(taken).toHaveLength(16);
      expect(s.expectedWaitMs(pool(busy, { maxBatchItems: 16 }), 0)).toBe(130); // 44 items: 3 runs + 10 solo
      for (const r of taken) expect(s.remove(r)).toBe(false);
    });
    it('never grows past maxInstances or the memory budget', () => {
      expect(withQueue(60).place(pool(busy, { maxInstances: 1 }), 0)).toEqual({ kind: 'wait' });
      expect(withQueue(60).place(pool(busy, { canGrow: false }), 0)).toEqual({ kind: 'wait' });
    });
  });
});

describe('queue order and batching', () => {
  it.each([
    ['stateful', () => new StatefulScheduler()],
    ['event', () => new EventScheduler()],
  ] as const)('%s: take() gathers same-key requests up to maxItems and leaves the rest in order', (_name, make) => {
    const s = make();
    const a1 = req(0, { batchKey: 'A', items: 2 });
    const b1 = req(1, { batchKey: 'B' });
    const a2 = req(2, { batchKey: 'A', items: 3 });
    const a3 = req(3, { batchKey: 'A', items: 2 });
    const solo = req(4, { batchKey: '' });
    const a4 = req(5, { batchKey: 'A', items: 1 });
    for (const r of [a1, b1, a2, a3, solo, a4]) s.enqueue(r);
    expect(s.size).toBe(6);
    // 2 + 3 = 5; a3 (2) would overflow 6, a4 (1) fits.
    expect(s.take(10, 6).map((r) => r.id)).toEqual([a1.id, a2.id, a4.id]);
    expect(s.size).toBe(3);
    expect(s.take(10, 6).map((r) => r.id)).toEqual([b1.id]);
    expect(s.take(10, 6).map((r) => r.id)).toEqual([a3.id]);
    expect(s.take(10, 6).map((r) => r.id)).toEqual([solo.id]);
    expect(s.take(10, 6)).toEqual([]);
    expect(s.peek(10)).toBeUndefined();
  });

  it.each([
    ['stateful', () => new StatefulScheduler()],
    ['event', () => new EventScheduler()],
  ] as const)('%s: the head always runs, even when it alone exceeds maxItems; a non-batchable head runs alone', (_name, make) => {
    const s = make();
    const big = req(0, { batchKey: 'A', items: 10 });
    const small = req(1, { batchKey: 'A', items: 1 });
    s.enqueue(big);
    s.enqueue(small);
    expect(s.take(0, 4)).toEqual([big]);
    const solo = req(2, { batchKey: '' });
    const s2 = make();
    s2.enqueue(solo);
    s2.enqueue(req(3, { batchKey: '' }));
    expect(s2.take(0, 16)).toEqual([solo]);
  });

  it.each([
    ['stateful', () => new StatefulScheduler()],
    ['event', () => new EventScheduler()],
  ] as const)('%s: remove() takes a request out once (deadline, disconnect)', (_name, make) => {
    const s = make();
    const a = req(0, { priority: 2 });
    const b = req(1, { priority: 7 });
    s.enqueue(a);
    s.enqueue(b);
    expect(s.remove(a)).toBe(true);
    expect(s.remove(a)).toBe(false);
    expect(s.size).toBe(1);
    expect(s.take(5, 16)).toEqual([b]);
    expect(s.remove(b)).toBe(false);
    expect(s.size).toBe(0);
  });
});

describe('event priority', () => {
  it('fixes a priority inversion: an online request queued behind batch work runs first', () => {
    const clock = new ManualClock(1_000);
    const fifo = new StatelessScheduler();
    const event = new EventScheduler({ agingMs: 1_000 });
    const batchJobs = Array.from({ length: 20 }, (_, i) => req(clock.now() + i, { priority: 0, batchKey: 'jobs' }));
    clock.advance(50);
    const online = req(clock.now(), { priority: 9, batchKey: 'online' });
    for (const s of [fifo, event]) {
      for (const r of batchJobs) s.enqueue(r);
      s.enqueue(online);
    }
    // stateless (FIFO) serves the batch jobs first: the online request waits behind all 20.
    expect(fifo.peek(clock.now())).toBe(batchJobs[0]);
    const fifoOrder: number[] = [];
    while (fifo.size) fifoOrder.push(...fifo.take(clock.now(), 1).map((r) => r.id));
    expect(fifoOrder.indexOf(online.id)).toBe(20);
    // Event serves it at once.
    expect(event.peek(clock.now())).toBe(online);
    expect(event.take(clock.now(), 16)).toEqual([online]);
    expect(event.peek(clock.now())).toBe(batchJobs[0]);
  });

  it('batch mates of a high-priority head come from the highest levels first', () => {
    const s = new EventScheduler();
    const low = req(0, { priority: 1, batchKey: 'A' });
    const mid = req(1, { priority: 5, batchKey: 'A' });
    const high = req(2, { priority: 9, batchKey: 'A' });
    const high2 = req(3, { priority: 9, batchKey: 'A' });
    for (const r of [low, mid, high, high2]) s.enqueue(r);
    expect(s.take(2, 3).map((r) => r.id)).toEqual([high.id, high2.id, mid.id]);
    expect(s.take(2, 3)).toEqual([low]);
  });

  it('aging prevents starvation under a steady stream of high-priority work', () => {
    // One instance; every 10 ms one run finishes and a fresh priority-9 request arrives, so there is always
    // fresher high-priority work than the single priority-0 request.
    function servedAt(agingMs: number): number | undefined {
      const clock = new ManualClock(0);
      const s = new EventScheduler({ agingMs });
      const starving = req(0, { priority: 0, batchKey: 'low' });
      s.enqueue(starving);
      for (let i = 0; i < 3; i++) s.enqueue(req(0, { priority: 9, batchKey: 'high' }));
      for (let step = 0; step < 2_000; step++) {
        const [r] = s.take(clock.now(), 1);
        if (r === starving) return clock.now();
        clock.advance(10);
        s.enqueue(req(clock.now(), { priority: 9, batchKey: 'high' }));
      }
      return undefined;
    }
    // Without aging it never runs within 20 s of simulated time.
    expect(servedAt(Number.POSITIVE_INFINITY)).toBeUndefined();
    // With one level per 100 ms it runs once it reaches level 9 and is older than every fresh request: ≈ 900 ms.
    const at = servedAt(100)!;
    expect(at).toBeGreaterThanOrEqual(900);
    expect(at).toBeLessThanOrEqual(1_000);
  });

  it('effective priority grows one level per agingMs, uncapped', () => {
    const r = req(0, { priority: 3 });
    expect(effectivePriority(r, 999, 1_000)).toBe(3);
    expect(effectivePriority(r, 1_000, 1_000)).toBe(4);
    expect(effectivePriority(r, 20_000, 1_000)).toBe(23);
    expect(effectivePriority(req(0, { priority: 42 }), 0, 1_000)).toBe(9);
  });

  describe('rank across pools', () => {
    it('higher effective priority wins, then the pool with the higher request rate, then age', () => {
      const now = 10_000;
      const rankOf = (priority: number, arrivedAt: number, ratePerSec: number) => {
        const s = new EventScheduler({ agingMs: 1_000 });
        s.enqueue(req(arrivedAt, { priority }));
        return s.rank(pool([], { ratePerSec }), now);
      };
      expect(rankOf(9, now, 0)).toBeGreaterThan(rankOf(8, now, 10_000));
      expect(rankOf(5, now, 50)).toBeGreaterThan(rankOf(5, now, 5));
      expect(rankOf(5, now - 500, 5)).toBeGreaterThan(rankOf(5, now - 100, 5));
      // Aging across pools: a batch request waiting 10 s outranks a fresh online one in a busy pool.
      expect(rankOf(0, now - 10_000, 0)).toBeGreaterThan(rankOf(9, now, 10_000));
      expect(new EventScheduler().rank(pool([]), now)).toBe(Number.NEGATIVE_INFINITY);
    });

    it('stateful ranks on the same scale, by its FIFO head', () => {
      const s = new StatefulScheduler({ agingMs: 1_000 });
      const head = req(0, { priority: 5 });
      s.enqueue(head);
      s.enqueue(req(1, { priority: 9 }));
      expect(s.rank(pool([]), 100)).toBe(urgencyRank(head, pool([]), 100, 1_000));
    });
  });
});

describe('event placement', () => {
  it('takes the free slot with the fewest runs in flight, then the most recently used', () => {
    const s = new EventScheduler();
    s.enqueue(req(0));
    const p = pool([
      inst('a', { state: 'busy', concurrency: 2, inflight: 1, lastUsedAt: 90 }),
      inst('b', { concurrency: 2, inflight: 0, lastUsedAt: 10 }),
      inst('c', { concurrency: 2, inflight: 0, lastUsedAt: 50 }),
    ]);
    expect(s.place(p, 100)).toEqual({ kind: 'run', instanceId: 'c' });
  });

  it('starts one instance per waiting request not already covered by a starting one', () => {
    const s = new EventScheduler();
    const busy = inst('a', { state: 'busy', inflight: 1 });
    s.enqueue(req(0));
    expect(s.place(pool([busy]), 0)).toEqual({ kind: 'cold-start' });
    expect(s.place(pool([busy, inst('s1', { state: 'starting' })]), 0)).toEqual({ kind: 'wait' });
    s.enqueue(req(0));
    expect(s.place(pool([busy, inst('s1', { state: 'starting' })]), 0)).toEqual({ kind: 'cold-start' });
    expect(s.place(pool([busy, inst('s1', { state: 'starting' })], { maxInstances: 2 }), 0)).toEqual({ kind: 'wait' });
    expect(s.place(pool([busy], { canGrow: false }), 0)).toEqual({ kind: 'wait' });
  });
});

describe('growth of a batchable pool', () => {
  it.each([
    ['stateless', () => new StatelessScheduler()],
    ['event', () => new EventScheduler()],
    ['stateful', () => new StatefulScheduler()],
  ] as const)(
    '%s: a burst that fits one run waits for the instance that began starting this very tick instead of starting a second',
    (_name, make) => {
      const s = make();
      for (let i = 0; i < 16; i++) s.enqueue(req(100));
      // Empty pool: the burst starts one instance.
      expect(s.place(pool([], { maxBatchItems: 16 }), 100)).toEqual({ kind: 'cold-start' });
      // Same tick, that instance is starting: its remaining start time equals a new cold start's, so it absorbs the burst.
      const starting = pool([inst('a', { state: 'starting', createdAt: 100 })], { maxBatchItems: 16 });
      expect(s.place(starting, 100)).toEqual({ kind: 'wait' });
      // One request more than a run holds: the second instance is worth starting.
      s.enqueue(req(100));
      expect(s.place(starting, 100)).toEqual({ kind: 'cold-start' });
    },
  );
});
