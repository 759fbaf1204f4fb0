// The real Autoscaler and keep-alive policies driving the simulated executor on a ManualClock.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_HISTOGRAM,
  DEFAULT_PRICES,
  ManualClock,
  defaultModelConfig,
  type KeepAlivePolicy,
  type ModelConfig,
} from '../../core/index.ts';
import { Autoscaler } from '../../scaling/autoscaler.ts';
import { CostLedger } from '../../ledger/cost-ledger.ts';
import { fanOutObserver } from '../../core/index.ts';
import { SimulatedPools, replayTrace } from '../../scaling/simulated-pools.ts';

const MIN = 60_000;

function setup(
  opts: {
    config?: Partial<ModelConfig>;
    memoryMb?: number;
    nodeMemoryMb?: number;
    slots?: number;
    serviceMs?: number;
    coldStartMs?: number;
  } = {},
) {
  const clock = new ManualClock(0);
  const pools = new SimulatedPools({ clock, slots: opts.slots ?? 64, memoryMb: opts.nodeMemoryMb ?? 1_000_000 });
  const config: ModelConfig = { ...defaultModelConfig(), maxInstances: 20, ...opts.config };
  pools.addModel({
    name: 'm',
    version: 1,
    config,
    memoryMb: opts.memoryMb ?? 1024,
    coldStartMs: opts.coldStartMs ?? 1000,
    serviceMs: opts.serviceMs ?? 100,
  });
  const autoscaler = new Autoscaler({ clock, control: pools, tickMs: 1000, scaleDownDelayMs: 30_000 });
  const ledger = new CostLedger({ clock, prices: DEFAULT_PRICES });
  pools.setObserver(fanOutObserver(autoscaler.observer, ledger.observer));
  autoscaler.start();
  const live = () => pools.pools()[0].instances.filter((i) => i.state !== 'retiring').length;
  const status = () => autoscaler.snapshot()[0];
  return { clock, pools, autoscaler, ledger, live, status };
}

/** Arrivals at rate(t) req/s from `from` to `to`, spaced deterministically. */
function drive(s: ReturnType<typeof setup>, from: number, to: number, rate: (t: number) => number): void {
  let acc = 0;
  const step = 10;
  for (let t = from; t < to; t += step) {
    if (t > s.clock.now()) s.clock.advance(t - s.clock.now());
    acc += (rate(t) * step) / 1000;
    while (acc >= 1) {
      acc -= 1;
      s.pools.invoke('m', 1);
    }
  }
}

describe('Autoscaler on the simulated executor', () => {
  it("a ramp to 50 req/s reaches the Little's-law target within the panic window, and shrinks only after the delay", () => {
    const s = setup({ serviceMs: 100 });
    // 0 -> 50 req/s over 10 s, then hold 50 req/s for 50 s.
    drive(s, 0, 10_000, (t) => (50 * t) / 10_000);
    drive(s, 10_000, 16_000, () => 50);
    // Little's law: 50 req/s x 0.1 s / (1 x 0.7) = 7.14 -> 8 instances, reached within one panic window (6 s) at full rate.
    expect(s.status().desiredInstances).toBe(8);
    expect(s.live()).toBeGreaterThanOrEqual(8);
    // Held until the stable window is full of 50 req/s, the stable demand alone is 8 too.
    drive(s, 16_000, 90_000, () => 50);
    expect(s.status().desiredInstances).toBe(8);
    expect(s.status().ratePerSec).toBeCloseTo(50, 0);
    const peak = s.live();
    expect(peak).toBe(8);
    // Traffic stops. The stable rate decays at once, but nothing shrinks within the scale-down delay (30 s)...
    s.clock.advance(25_000);
    expect(s.live()).toBe(peak);
    // ...then the pool falls back to the keep-alive floor of one warm instance (fixed 10 min).
    s.clock.advance(150_000);
    expect(s.live()).toBe(1);
    expect(s.status().desiredInstances).toBe(1);
    // Counters agree with what was sent.
    const sent = s.pools.totals.requests;
    expect(s.status().requests).toBe(sent);
    expect(s.ledger.totals()[0].invocations).toBe(sent);
  });

  it('idle traffic reaches zero instances after the fixed keep-alive; the next call is cold', () => {
    const s = setup({ config: { keepAlive: { kind: 'fixed', idleMs: 2000 } } });
    for (let i = 0; i < 5; i++) {
      s.pools.invoke('m', 1);
      s.clock.advance(200);
    }
    expect(s.live()).toBeGreaterThanOrEqual(1);
    s.clock.advance(1500); // 1.7 s after the last request ended: still inside the keep-alive
    // Each request that found no free instance started one (on demand, as Lambda would); all are still warm.
    expect(s.live()).toBeGreaterThanOrEqual(1);
    expect(s.status().instances.idle).toBe(s.live());
    s.clock.advance(2000);
    expect(s.live()).toBe(0);
    expect(s.status().keepAlive.policy).toBe('fixed');
    const cold = s.pools.totals.coldStarts;
    s.pools.invoke('m', 1);
    s.clock.advance(2000);
    expect(s.pools.totals.coldStarts).toBe(cold + 1);
  });

  it('minInstances stay warm with no traffic, are re-created after death, and idle GB-s grow', () => {
    const s = setup({ config: { minInstances: 2, keepAlive: { kind: 'fixed', idleMs: 1000 } }, memoryMb: 512 });
    s.clock.advance(1000);
    expect(s.live()).toBe(2);
    s.clock.advance(5000);
    const inst = s.pools.pools()[0].instances;
    expect(inst.filter((i) => i.state === 'idle')).toHaveLength(2);
    s.pools.killInstance('m', 1, inst[0].id);
    expect(s.live()).toBe(1);
    s.clock.advance(1000);
    expect(s.live()).toBe(2);
    // Traffic and a long idle time never take the pool below its minimum.
    for (let i = 0; i < 20; i++) {
      s.pools.invoke('m', 1);
      s.clock.advance(50);
    }
    for (let t = 0; t < 600; t++) {
      s.clock.advance(1000);
      expect(s.live()).toBeGreaterThanOrEqual(2);
    }
    const idle1 = s.ledger.totals()[0].idleGbSeconds;
    s.clock.advance(10_000);
    const idle2 = s.ledger.totals()[0].idleGbSeconds;
    // Two 0.5 GB instances idle for 10 s = 10 GB-s more.
    expect(idle2 - idle1).toBeCloseTo(10, 6);
  });

  it('clamps to the node memory budget and to maxInstances', () => {
    const s = setup({ config: { minInstances: 3, maxInstances: 3 }, memoryMb: 1024, nodeMemoryMb: 2048 });
    s.clock.advance(3000);
    expect(s.live()).toBe(2);
    const t = setup({ config: { maxInstances: 3 }, serviceMs: 100 });
    drive(t, 0, 10_000, () => 100);
    expect(t.status().desiredInstances).toBe(3);
    expect(t.live()).toBeLessThanOrEqual(3);
  });

  it('a tick that throws is reported and the next tick still runs', () => {
    const clock = new ManualClock(0);
    let calls = 0;
    const errors: unknown[] = [];
    const control = {
      pools: () => {
        calls++;
        if (calls === 1) throw new Error('snapshot failed');
        return [];
      },
      node: () => ({ slots: 1, memoryMb: 1024, memoryUsedMb: 0 }),
      startInstance: () => {},
      retireInstance: () => {},
    };
    const a = new Autoscaler({ clock, control, tickMs: 1000, onError: (e) => errors.push(e) });
    a.start();
    expect(() => clock.advance(3000)).not.toThrow();
    expect(errors).toHaveLength(1);
    expect(calls).toBe(3);
    a.stop();
    clock.advance(5000);
    expect(calls).toBe(3);
  });

  it('histogram policy: after learning a 5-minute rhythm the pool is warmed just before each call', () => {
    const s = setup({ config: { keepAlive: { ...DEFAULT_HISTOGRAM } } });
    const arrivals = Array.from({ length: 24 }, (_, i) => ({ at: i * 5 * MIN, name: 'm', version: 1 }));
    const coldBefore: boolean[] = [];
    for (const a of arrivals) {
      s.clock.advance(a.at - s.clock.now());
      s.pools.invoke('m', 1, (r) => coldBefore.push(r.coldStart));
      s.clock.advance(1);
    }
    s.clock.advance(2000);
    expect(s.status().keepAlive.policy).toBe('histogram');
    expect(s.status().keepAlive.prewarmMs).toBe(216_000);
    // The first call is cold; the fallback (10 min) keeps the rest warm while learning; after learning no call is cold.
    expect(coldBefore[0]).toBe(true);
    expect(coldBefore.slice(1).filter(Boolean)).toHaveLength(0);
    // Between calls the pool is unloaded (no instance 60 s after a call) and back before the next.
    s.clock.advance(60_000);
    expect(s.live()).toBe(0);
    s.clock.advance(160_000);
    expect(s.live()).toBe(1);
    replayTrace(s.clock, s.pools, [], s.clock.now() + 1000);
  });
});

/**
 * One call every 5 minutes for 4 hours (48 calls), 1 GB instances, 1 s cold start, 100 ms per call,
 * under three keep-alive policies. Returns cold-start rate and idle GB-s, overall and after the first hour.
 */
function periodicTrace(keepAlive: KeepAlivePolicy) {
  const s = setup({ config: { keepAlive }, memoryMb: 1024, coldStartMs: 1000, serviceMs: 100 });
  const calls = 48;
  const cold: boolean[] = [];
  let idleAtHour = 0;
  for (let i = 0; i < calls; i++) {
    s.clock.advance(i * 5 * MIN - s.clock.now());
    if (i === 12) idleAtHour = s.ledger.totals()[0].idleGbSeconds;
    s.pools.invoke('m', 1, (r) => cold.push(r.coldStart));
  }
  s.clock.advance(5 * MIN);
  const idle = s.ledger.totals()[0].idleGbSeconds;
  return {
    coldRate: cold.filter(Boolean).length / calls,
    coldRateAfterLearning: cold.slice(12).filter(Boolean).length / (calls - 12),
    idleGbSeconds: idle,
    idleGbSecondsAfterLearning: idle - idleAtHour,
    decision: s.status().keepAlive.policy,
  };
}

describe('periodic trace: one call every 5 minutes, three keep-alive policies', () => {
  // Run when the first test needs them, not at collection time.
  let traces: Record<'hist' | 'fixed1' | 'fixed10', ReturnType<typeof periodicTrace>> | undefined;
  const run = () =>
    (traces ??= {
      hist: periodicTrace({ ...DEFAULT_HISTOGRAM }),
      fixed1: periodicTrace({ kind: 'fixed', idleMs: 1 * MIN }),
      fixed10: periodicTrace({ kind: 'fixed', idleMs: 10 * MIN }),
    });

  // The figures docs/architecture.md quotes (keep-alive): cold starts of 48 calls and idle GB-s per call.
  it('gives the figures the docs quote', () => {
    const { hist, fixed1, fixed10 } = run();
    expect(hist.coldRate * 48).toBe(1);
    expect(hist.coldRateAfterLearning).toBe(0);
    expect(hist.idleGbSecondsAfterLearning / 36).toBeCloseTo(82.9, 1);
    expect(fixed1.coldRate).toBe(1);
    expect(fixed1.idleGbSeconds / 48).toBeCloseTo(60.9, 1);
    expect(fixed10.coldRate * 48).toBe(1);
    expect(fixed10.idleGbSeconds / 48).toBeCloseTo(299.9, 1);
  });

  it('histogram: after learning no cold starts and little idle time', () => {
    const { hist, fixed10 } = run();
    expect(hist.decision).toBe('histogram');
    expect(hist.coldRateAfterLearning).toBe(0);
    expect(hist.idleGbSecondsAfterLearning).toBeLessThan(fixed10.idleGbSecondsAfterLearning / 3);
  });

  it('fixed 1 minute: every call is cold', () => {
    expect(run().fixed1.coldRate).toBe(1);
  });

  it('fixed 10 minutes: warm, but idle the whole gap', () => {
    const { fixed10 } = run();
    expect(fixed10.coldRate).toBe(1 / 48);
    // At 1 GB: the first gap loses the 1 s cold start and the 0.1 s call, the 46 others and the 5 min after the last call only the call.
    expect(fixed10.idleGbSeconds).toBeCloseTo(298.9 + 47 * 299.9, 6);
  });
});
