// RunCost (the service time of the autoscaler's sizing) and what it changes for a pool that batches.
import { describe, expect, it } from 'vitest';
import { ManualClock, defaultModelConfig, type ModelConfig } from '../../core/index.ts';
import { Autoscaler, type PoolControl, type PoolStatus } from '../../scaling/autoscaler.ts';
import { RunCost } from '../../scaling/run-cost.ts';

describe('RunCost', () => {
  it('fits a + b·n over runs of different sizes and answers per item of a full batch', () => {
    const c = new RunCost();
    let total = 0;
    for (let n = 1; n <= 16; n++) {
      c.record(n, 0.5 + 0.1 * n, 0);
      total += n;
    }
    // Plain busy time per item: sum of run times over sum of items.
    expect(c.perItemMs).toBeCloseTo((16 * 0.5 + 0.1 * total) / total, 9);
    expect(c.meanBatch).toBeCloseTo(8.5, 9);
    expect(c.perItemAtMs(16)).toBeCloseTo((0.5 + 1.6) / 16, 9);
    // A pool that does not batch is costed at what its runs took per item.
    expect(c.perItemAtMs(1)).toBe(c.perItemMs);
  });

  it('answers the plain busy time when every run had the same size', () => {
    const c = new RunCost();
    for (let i = 0; i < 50; i++) c.record(1, 2, i);
    expect(c.perItemAtMs(16)).toBeCloseTo(2, 9);
    const eight = new RunCost();
    for (let i = 0; i < 50; i++) eight.record(8, 4, i);
    expect(eight.perItemAtMs(16)).toBeCloseTo(0.5, 9);
  });

  it('extrapolates no further than twice the batches it has seen', () => {
    const c = new RunCost();
    for (let i = 0; i < 10; i++) {
      c.record(1, 1.1, i);
      c.record(3, 1.3, i);
    }
    // Mean 2, spread 1: at most 2 * ceil(2 + 2 * 1) = 8 items, not 64.
    expect(c.perItemAtMs(64)).toBeCloseTo((1 + 0.1 * 8) / 8, 9);
  });

  it('falls back to the plain figure when the fitted slope is not positive', () => {
    const c = new RunCost();
    for (let i = 0; i < 10; i++) {
      c.record(2, 3, i);
      c.record(8, 2, i);
    }
    expect(c.perItemAtMs(16)).toBeCloseTo(c.perItemMs!, 9);
    expect(c.perItemMs).toBeCloseTo(50 / 100, 9);
  });

  it('forgets old runs: weights fall with age', () => {
    const c = new RunCost({ decayMs: 1000 });
    for (let i = 0; i < 100; i++) c.record(1, 10, i);
    expect(c.perItemMs).toBeCloseTo(10, 9);
    c.record(1, 1, 60_000);
    expect(c.perItemMs).toBeCloseTo(1, 6);
  });

  it('ignores runs that carry no measurement', () => {
    const c = new RunCost();
    c.record(0, 5, 0);
    c.record(1, Number.NaN, 0);
    c.record(1, -1, 0);
    expect(c.perItemMs).toBeUndefined();
    expect(c.perItemAtMs(16)).toBeUndefined();
    expect(() => new RunCost({ decayMs: 0 })).toThrow(/decayMs/);
  });
});

/** One model with one busy instance; records the instances the autoscaler starts. */
function onePool(config: ModelConfig) {
  const clock = new ManualClock(0);
  const started: string[] = [];
  const pool: PoolStatus = {
    name: 'm',
    version: 1,
    config,
    memoryMb: 100,
    instances: [{ id: 'i1', state: 'busy', createdAt: 0 }],
    queued: 0,
  };
  const control: PoolControl = {
    pools: () => [pool],
    node: () => ({ slots: 8, memoryMb: 1_000_000, memoryUsedMb: 0 }),
    startInstance: (name) => started.push(name),
    retireInstance: () => {},
  };
  const autoscaler = new Autoscaler({ clock, control, tickMs: 1000 });
  return { clock, started, autoscaler };
}

/**
 * After a slow first run (warm-up, ignored), 3,000 requests/s for 6 s, served in runs of 4 to 12 items that cost 0.8 ms + 0.15 ms per item: 0.25 ms per item
 * at the mean batch of 8, but 0.2 ms per item in a run of 16.
 */
function drive(s: ReturnType<typeof onePool>): void {
  const sizes = [4, 6, 8, 10, 12];
  let k = 0;
  // The instance's first run, slow with warm-up: it must not count.
  s.autoscaler.observer.onRun!({ name: 'm', version: 1, batchSize: 16, computeMs: 500, at: 0, firstRun: true });
  for (let t = 0; t < 6000; t += 10) {
    s.clock.advance(t - s.clock.now());
    for (let i = 0; i < 30; i++) s.autoscaler.observer.onRequestQueued!({ name: 'm', version: 1, at: t });
    const n = sizes[k++ % sizes.length];
    s.autoscaler.observer.onRun!({ name: 'm', version: 1, batchSize: n, computeMs: 0.8 + 0.15 * n, at: t });
  }
  s.autoscaler.tick();
}

describe('Autoscaler sizing a pool that batches', () => {
  it('costs a batching pool per item of a full batch: one instance takes the load by running larger batches', () => {
    const s = onePool({ ...defaultModelConfig(), maxInstances: 4, batching: { maxBatchSize: 16, maxQueueDelayMs: 0 } });
    drive(s);
    // 3,000/s x 0.2 ms / 0.7 = 0.86 -> 1: no second instance to split the batches.
    const st = s.autoscaler.snapshot()[0];
    expect(st.serviceMs).toBeCloseTo(0.2, 3);
    expect(st.desiredInstances).toBe(1);
    expect(s.started).toEqual([]);
  });

  it('the same runs without batching are costed at their busy time per item, and the pool grows', () => {
    const s = onePool({ ...defaultModelConfig(), maxInstances: 4, batching: { maxBatchSize: 1, maxQueueDelayMs: 0 } });
    drive(s);
    // 3,000/s x 0.25 ms / 0.7 = 1.07 -> 2.
    const st = s.autoscaler.snapshot()[0];
    expect(st.serviceMs).toBeCloseTo(0.25, 3);
    expect(st.desiredInstances).toBe(2);
    expect(s.started).toEqual(['m']);
  });
});
