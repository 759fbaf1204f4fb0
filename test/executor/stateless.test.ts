// The stateless strategy with fake instances: FIFO order, any free instance takes the head, cold starts only for
// demand the starting instances will not absorb (for batchable models: counted in batches), batch takes by key,
// removal, and ranking on the shared urgency scale.
import { describe, expect, it } from 'vitest';
import type { InstanceView, PoolView, QueuedRequest } from '../../executor/scheduler.ts';
import { createScheduler, StatelessScheduler } from '../../executor/strategies/index.ts';
import { DEFAULT_AGING_MS, urgencyRank } from '../../executor/strategies/urgency.ts';
import { ManualClock } from '../../core/index.ts';
import { modelConfig } from './helpers.ts';

let seq = 0;
const req = (at: number, o: Partial<QueuedRequest> = {}): QueuedRequest => ({
  id: ++seq,
  poolKey: 'm@1',
  priority: 5,
  arrivedAt: at,
  deadline: at + 1000,
  batchKey: '',
  items: 1,
  ...o,
});
const inst = (id: string, state: InstanceView['state'], inflight = state === 'busy' ? 1 : 0, concurrency = 1): InstanceView => ({
  id,
  state,
  inflight,
  concurrency,
  lastUsedAt: 0,
  createdAt: 0,
});
const pool = (instances: InstanceView[], o: Partial<PoolView> = {}): PoolView => ({
  key: 'm@1',
  instances,
  maxInstances: 2,
  coldStartMs: 100,
  serviceMs: 5,
  ratePerSec: 1,
  canGrow: true,
  ...o,
});

describe('stateless strategy', () => {
  it('serves in arrival order', () => {
    const s = new StatelessScheduler();
    const [a, b, c] = [req(1), req(2), req(3)];
    for (const r of [a, b, c]) s.enqueue(r);
    expect(s.take(10, 1)).toEqual([a]);
    expect(s.remove(b)).toBe(true);
    expect(s.remove(b)).toBe(false);
    expect(s.peek(10)).toBe(c);
    expect(s.size).toBe(1);
  });

  it('any free instance takes the head: idle, or busy below its concurrency', () => {
    const s = new StatelessScheduler();
    s.enqueue(req(1));
    expect(s.place(pool([inst('a', 'busy'), inst('b', 'idle')]))).toEqual({ kind: 'run', instanceId: 'b' });
    expect(s.place(pool([inst('a', 'busy', 1, 2), inst('s', 'starting')]))).toEqual({ kind: 'run', instanceId: 'a' });
    expect(s.place(pool([inst('r', 'retiring')]))).toEqual({ kind: 'cold-start' });
  });

  it('among free instances with equal work, the most recently used takes the head (packing)', () => {
    const s = new StatelessScheduler();
    s.enqueue(req(1));
    const idle = (id: string, lastUsedAt: number): InstanceView => ({ ...inst(id, 'idle'), lastUsedAt });
    expect(s.place(pool([idle('a', 10), idle('b', 30), idle('c', 20)]))).toEqual({ kind: 'run', instanceId: 'b' });
    // Fewer runs in flight still comes first.
    const busyRecent: InstanceView = { ...inst('d', 'busy', 1, 2), lastUsedAt: 99 };
    expect(s.place(pool([busyRecent, idle('a', 10)]))).toEqual({ kind: 'run', instanceId: 'a' });
  });

  it('cold-starts only while the pool is below maxInstances, the node can grow, and demand exceeds what is starting', () => {
    const s = new StatelessScheduler();
    s.enqueue(req(1));
    expect(s.place(pool([]))).toEqual({ kind: 'cold-start' });
    expect(s.place(pool([], { canGrow: false }))).toEqual({ kind: 'wait' });
    expect(s.place(pool([inst('s', 'starting')]))).toEqual({ kind: 'wait' }); // the starting one will take it
    s.enqueue(req(2));
    expect(s.place(pool([inst('s', 'starting')]))).toEqual({ kind: 'cold-start' });
    expect(s.place(pool([inst('s', 'starting'), inst('t', 'starting')]))).toEqual({ kind: 'wait' });
    expect(s.place(pool([inst('a', 'busy'), inst('b', 'busy')]))).toEqual({ kind: 'wait' }); // at maxInstances
  });

  it("take() groups requests with the head's batch key up to maxItems, leaving the others in order", () => {
    const s = new StatelessScheduler();
    const a1 = req(1, { batchKey: 'A', items: 2 });
    const b1 = req(2, { batchKey: 'B' });
    const a2 = req(3, { batchKey: 'A', items: 3 });
    const a3 = req(4, { batchKey: 'A', items: 1 });
    const lone = req(5, { batchKey: '' });
    for (const r of [a1, b1, a2, a3, lone]) s.enqueue(r);
    expect(s.take(10, 4)).toEqual([a1, a3]); // a2 would overflow 4 items
    expect(s.take(10, 4)).toEqual([b1]);
    expect(s.take(10, 4)).toEqual([a2]);
    expect(s.take(10, 4)).toEqual([lone]);
    expect(s.size).toBe(0);
  });

  it('ranks on the shared urgency scale (priority with aging, rate, age), like event and stateful', () => {
    const s = new StatelessScheduler();
    expect(s.rank(pool([]), 100)).toBe(-Infinity);
    const head = req(40);
    s.enqueue(head);
    expect(s.rank(pool([]), 100)).toBe(urgencyRank(head, pool([]), 100, DEFAULT_AGING_MS));
    const older = new StatelessScheduler();
    older.enqueue(req(10));
    expect(older.rank(pool([]), 100)).toBeGreaterThan(s.rank(pool([]), 100));
    // A priority-9 head in an event pool outranks a fresh default-priority stateless head: one scale.
    const ev = createScheduler('event', { poolKey: 'e@1', config: modelConfig(), clock: new ManualClock() });
    ev.enqueue(req(100, { priority: 9 }));
    expect(ev.rank(pool([]), 100)).toBeGreaterThan(s.rank(pool([]), 100));
  });

  it('a batchable pool does not cold-start while its queue fits one run per slot of the instances it has', () => {
    const s = new StatelessScheduler();
    for (let i = 0; i < 15; i++) s.enqueue(req(i, { batchKey: 'A' }));
    const busy = [inst('a', 'busy')];
    expect(s.place(pool(busy, { maxBatchItems: 16 }), 20)).toEqual({ kind: 'wait' });
    // Without batching, the same queue starts another instance (the stateless rule).
    expect(s.place(pool(busy, { maxBatchItems: 1 }), 20)).toEqual({ kind: 'cold-start' });
    // More than one run's worth queued: grow.
    s.enqueue(req(16, { batchKey: 'A' }));
    s.enqueue(req(17, { batchKey: 'A' }));
    expect(s.place(pool(busy, { maxBatchItems: 16 }), 20)).toEqual({ kind: 'cold-start' });
    // A run that takes longer than a cold start is not worth waiting for.
    const small = new StatelessScheduler();
    small.enqueue(req(0, { batchKey: 'A' }));
    small.enqueue(req(0, { batchKey: 'A' }));
    expect(small.place(pool(busy, { maxBatchItems: 16, serviceMs: 500, coldStartMs: 100 }), 0)).toEqual({ kind: 'cold-start' });
    // A starting instance absorbs the queue while the rest of its start is shorter than a new cold start.
    expect(small.place(pool([inst('s', 'starting')], { maxBatchItems: 16 }), 50)).toEqual({ kind: 'wait' });
  });

  it('the registry builds each strategy a model names', () => {
    const ctx = { poolKey: 'm@1', config: modelConfig(), clock: new ManualClock() };
    for (const k of ['stateless', 'stateful', 'event'] as const) expect(createScheduler(k, ctx).strategy).toBe(k);
  });
});
