// The stateless strategy with fake instances: FIFO order, any free instance takes the head, cold starts only for
// demand the starting instances will not absorb, batch takes by key, removal, and age ranking.
import { describe, expect, it } from 'vitest';
import type { InstanceView, PoolView, QueuedRequest } from '../../executor/scheduler.ts';
import { createScheduler, StatelessScheduler } from '../../executor/strategies/index.ts';
import { ManualClock } from '../../core/index.ts';
import { modelConfig } from './helpers.ts';

let seq = 0;
const req = (at: number, o: Partial<QueuedRequest> = {}): QueuedRequest => ({
  id: ++seq, poolKey: 'm@1', priority: 5, arrivedAt: at, deadline: at + 1000, batchKey: '', items: 1, ...o,
});
const inst = (id: string, state: InstanceView['state'], inflight = state === 'busy' ? 1 : 0, concurrency = 1): InstanceView => ({
  id, state, inflight, concurrency, lastUsedAt: 0, createdAt: 0,
});
const pool = (instances: InstanceView[], o: Partial<PoolView> = {}): PoolView => ({
  key: 'm@1', instances, maxInstances: 2, coldStartMs: 100, serviceMs: 5, ratePerSec: 1, canGrow: true, ...o,
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

  it('take() groups requests with the head\'s batch key up to maxItems, leaving the others in order', () => {
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

  it('ranks by the age of its head', () => {
    const s = new StatelessScheduler();
    expect(s.rank(pool([]), 100)).toBe(-Infinity);
    s.enqueue(req(40));
    expect(s.rank(pool([]), 100)).toBe(60);
  });

  it('the registry builds each strategy a model names', () => {
    const ctx = { poolKey: 'm@1', config: modelConfig(), clock: new ManualClock() };
    for (const k of ['stateless', 'stateful', 'event'] as const) expect(createScheduler(k, ctx).strategy).toBe(k);
  });
});
