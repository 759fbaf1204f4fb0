import { describe, expect, it } from 'vitest';
import { DEFAULT_HISTOGRAM } from '../../core/index.ts';
import { IdleTimeHistogram, KeepAliveTracker, decideHistogram } from '../../scaling/keep-alive.ts';
import { RateWindow } from '../../scaling/rate-window.ts';

const MIN = 60_000;

describe('RateWindow', () => {
  it('averages arrivals over the stable and the panic window', () => {
    const w = new RateWindow({ stableWindowMs: 60_000, panicWindowMs: 6_000 });
    // 10 req/s for 6 s ending at t = 60 s, nothing before.
    for (let t = 54_000; t < 60_000; t += 100) w.recordArrival(t);
    expect(w.panicRate(59_999)).toBeCloseTo(10, 2);
    expect(w.stableRate(59_999)).toBeCloseTo(1, 2);
    // 6 s later the panic window is empty again, the stable one still remembers.
    expect(w.panicRate(66_000)).toBe(0);
    expect(w.stableRate(66_000)).toBeCloseTo(60 / 59, 5);
    expect(w.stableRate(120_000)).toBe(0);
    expect(w.total).toBe(60);
  });

  it('rejects a panic window longer than the stable one', () => {
    expect(() => new RateWindow({ stableWindowMs: 1000, panicWindowMs: 2000 })).toThrow(/panicWindowMs/);
  });
});

describe('hybrid histogram keep-alive', () => {
  it('falls back to fallbackIdleMs with too few samples', () => {
    const k = new KeepAliveTracker({ ...DEFAULT_HISTOGRAM });
    for (let i = 0; i < 9; i++) k.recordIdle(5 * MIN - 100);
    const d = k.decide();
    expect(d.policy).toBe('histogram-fallback');
    expect(d.keepAliveMs).toBe(DEFAULT_HISTOGRAM.fallbackIdleMs);
    expect(d.prewarmMs).toBe(0);
    expect(d.reason).toMatch(/minSamples/);
  });

  it('learns a periodic pattern: pre-warm at the 5th percentile less 10%, keep to the 99th plus 10%', () => {
    const k = new KeepAliveTracker({ ...DEFAULT_HISTOGRAM });
    for (let i = 0; i < 10; i++) k.recordIdle(5 * MIN - 100); // all in bin 4 = [4, 5) minutes
    const d = k.decide();
    expect(d.policy).toBe('histogram');
    expect(d.prewarmMs).toBe(4 * MIN * 0.9); // 216 s
    expect(d.prewarmMs + d.keepAliveMs).toBe(5 * MIN * 1.1); // 330 s
    expect(k.shouldBeWarm(60_000)).toBe(false); // unloaded right after the call
    expect(k.shouldBeWarm(216_000)).toBe(true); // warm again before the next call at ~300 s
    expect(k.shouldBeWarm(329_999)).toBe(true);
    expect(k.shouldBeWarm(330_000)).toBe(false);
  });

  it('falls back when most idle times are beyond the range', () => {
    const h = new IdleTimeHistogram(MIN, 10 * MIN);
    for (let i = 0; i < 6; i++) h.add(20 * MIN);
    for (let i = 0; i < 4; i++) h.add(2 * MIN);
    const d = decideHistogram({ ...DEFAULT_HISTOGRAM, binMs: MIN, rangeMs: 10 * MIN }, h);
    expect(d.policy).toBe('histogram-fallback');
    expect(d.reason).toMatch(/exceed rangeMs/);
    expect(d.outOfRange).toBe(6);
  });

  it('falls back when idle times spread evenly over the range (low coefficient of variation)', () => {
    const h = new IdleTimeHistogram(MIN, 10 * MIN);
    for (let r = 0; r < 3; r++) for (let i = 0; i < 10; i++) h.add(i * MIN + 1000);
    const d = decideHistogram({ ...DEFAULT_HISTOGRAM, binMs: MIN, rangeMs: 10 * MIN }, h);
    expect(d.policy).toBe('histogram-fallback');
    expect(d.reason).toMatch(/cv/);
  });

  it('short idle times give no pre-warm and keep-alive to the tail bin', () => {
    const k = new KeepAliveTracker({ ...DEFAULT_HISTOGRAM, minSamples: 5 });
    for (let i = 0; i < 100; i++) k.recordIdle(i % 50 === 0 ? 90_000 : 2_000);
    const d = k.decide();
    expect(d.policy).toBe('histogram');
    expect(d.prewarmMs).toBe(0);
    // 2 of 100 samples in bin 1, so the 99th percentile is bin 1: keep to 2 min + 10%.
    expect(d.keepAliveMs).toBe(2 * MIN * 1.1);
  });

  it('fixed policy: warm for idleMs after the last request, never pre-warms', () => {
    const k = new KeepAliveTracker({ kind: 'fixed', idleMs: 2000 });
    expect(k.decide()).toEqual({ policy: 'fixed', prewarmMs: 0, keepAliveMs: 2000 });
    expect(k.shouldBeWarm(1999)).toBe(true);
    expect(k.shouldBeWarm(2000)).toBe(false);
  });
});
