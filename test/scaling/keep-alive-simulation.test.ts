// simulateKeepAlive: a small mixed trace through the real autoscaler and ledger under three policies.
import { describe, expect, it } from 'vitest';
import { DEFAULT_HISTOGRAM, DEFAULT_PRICES } from '../../core/index.ts';
import { CostLedger } from '../../ledger/index.ts';
import { simulateKeepAlive, type SimulatedFunction } from '../../scaling/keep-alive-simulation.ts';

const MIN = 60_000;
const H = 60 * MIN;

function trace() {
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const functions: SimulatedFunction[] = [];
  const arrivals: { at: number; name: string }[] = [];
  for (let i = 0; i < 12; i++) {
    const name = `f${i}`;
    functions.push({ name, memoryMb: 256, coldStartMs: 800, serviceMs: 100 });
    if (i % 2 === 0) {
      const period = (2 + i) * MIN; // periodic: 2..12 minutes
      for (let t = i * 1000; t < 6 * H; t += period) arrivals.push({ at: t, name });
    } else {
      const meanGap = (5 + 3 * i) * MIN; // Poisson, one call per 8..38 minutes on average
      for (let t = 0; ;) {
        t += Math.round(-Math.log(1 - rnd()) * meanGap);
        if (t >= 6 * H) break;
        arrivals.push({ at: t, name });
      }
    }
  }
  arrivals.sort((a, b) => a.at - b.at);
  return { functions, arrivals };
}

describe('simulateKeepAlive', () => {
  const { functions, arrivals } = trace();
  const run = (keepAlive: Parameters<typeof simulateKeepAlive>[0]['keepAlive']) =>
    simulateKeepAlive({
      functions,
      arrivals,
      keepAlive,
      durationMs: 7 * H,
      meter: (clock) => new CostLedger({ clock, prices: DEFAULT_PRICES }),
    });
  const hist = run({ ...DEFAULT_HISTOGRAM });
  const fixed10 = run({ kind: 'fixed', idleMs: 10 * MIN });
  const fixed1 = run({ kind: 'fixed', idleMs: MIN });

  it('serves every arrival under every policy', () => {
    for (const r of [hist, fixed10, fixed1]) {
      expect(r.requests).toBe(arrivals.length);
      expect(r.functions).toHaveLength(12);
      expect(r.functions.reduce((a, f) => a + f.requests, 0)).toBe(arrivals.length);
    }
  });

  it('the histogram learns the periodic functions and beats fixed 10 min on idle memory without more cold starts on them', () => {
    const periodic = (r: typeof hist) => r.functions.filter((_, i) => i % 2 === 0);
    const sum = (r: typeof hist, f: (l: (typeof hist.functions)[number]) => number) => periodic(r).reduce((a, l) => a + f(l), 0);
    expect(periodic(hist).every((l) => l.policy === 'histogram')).toBe(true);
    expect(sum(hist, (l) => l.idleGbSeconds)).toBeLessThan(sum(fixed10, (l) => l.idleGbSeconds));
    expect(sum(hist, (l) => l.coldStarts)).toBeLessThanOrEqual(sum(fixed10, (l) => l.coldStarts));
    expect(hist.coldStarts).toBeLessThan(fixed1.coldStarts);
    // Nothing is free: the fixed 1-minute policy wastes the least idle memory, at the most cold starts.
    expect(fixed1.idleGbSeconds).toBeLessThan(hist.idleGbSeconds);
  });
});
