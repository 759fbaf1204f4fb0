// The keep-alive suite's inputs and its replay: the generated trace is reproducible and has the published
// shape; the replay through the real autoscaler prices what it simulates; the report states goals without
// asserting them. No timing assertions.
import { describe, expect, it } from 'vitest';
import { describeTrace, generateTrace, seededRandom } from '../../benchmarks/lib/azure-trace.ts';
import { KEEP_ALIVE_POLICIES, runKeepAliveSuite, simulateWithAutoscaler, simulateWithTracker } from '../../benchmarks/suites/keep-alive.ts';
import { evaluateGoals, emptyReport, renderMarkdown } from '../../benchmarks/report/report.ts';
import { describeMachine } from '../../benchmarks/lib/machine.ts';
import { percentile, median, summarize } from '../../benchmarks/lib/percentiles.ts';
import { formatDuration, Progress } from '../../benchmarks/lib/progress.ts';

describe('generateTrace', () => {
  it('is reproducible from its seed and differs across seeds', () => {
    const a = generateTrace({ seed: 7, durationMs: 3_600_000 });
    const b = generateTrace({ seed: 7, durationMs: 3_600_000 });
    const c = generateTrace({ seed: 8, durationMs: 3_600_000 });
    expect(Array.from(a.at.slice(0, 50))).toEqual(Array.from(b.at.slice(0, 50)));
    expect(a.functions).toEqual(b.functions);
    expect(a.at.length).not.toBe(c.at.length);
  });

  it('has the published shape: rare majority, a few hot functions, rates over orders of magnitude, mixed patterns', () => {
    const t = generateTrace({ seed: 2019, durationMs: 6 * 3_600_000 });
    const d = describeTrace(t);
    expect(d.functions).toBe(200);
    expect(d.shareAtMostHourly).toBeGreaterThan(0.3);
    expect(d.shareAtMostHourly).toBeLessThan(0.6);
    expect(d.shareAtMostPerMinute).toBeGreaterThan(0.7);
    expect(d.rateOrdersOfMagnitude).toBeGreaterThan(4);
    expect(d.top20PctShareOfInvocations).toBeGreaterThan(0.9);
    expect(d.patterns.periodic).toBeGreaterThan(20);
    expect(d.patterns.poisson).toBeGreaterThan(50);
    expect(d.patterns.bursty).toBeGreaterThan(10);
    // Sorted arrivals inside the trace window, each naming a known function.
    let sorted = true;
    for (let i = 1; i < t.at.length; i++) if (t.at[i] < t.at[i - 1]) sorted = false;
    expect(sorted).toBe(true);
    expect(t.at[t.at.length - 1]).toBeLessThan(t.durationMs + 1000);
    expect(t.fn.reduce((m, f) => Math.max(m, f), 0)).toBeLessThan(200);
  });

  it('gives periodic functions a cron period and rejects bad sizes', () => {
    const t = generateTrace({ seed: 3, durationMs: 3_600_000 });
    for (const f of t.functions.filter((x) => x.pattern === 'periodic')) expect(f.periodMs! % 60_000).toBe(0);
    expect(() => generateTrace({ functions: 0 })).toThrow(/functions/);
    expect(() => generateTrace({ durationMs: 0 })).toThrow(/durationMs/);
    const r = seededRandom(1);
    for (let i = 0; i < 100; i++) {
      const x = r();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
  });
});

describe('keep-alive replay', () => {
  const trace = generateTrace({ seed: 11, functions: 40, durationMs: 2 * 3_600_000, maxDailyRate: 5_000 });
  const cost = [{ model: 'm', coldFromStoreMs: 50, coldFromCacheMs: 40, serviceMs: 2 }];

  it('counts every invocation and prices compute, requests and idle time, under both drivers', () => {
    for (const sim of [simulateWithAutoscaler, simulateWithTracker]) {
      const row = sim(trace, 'fixed-10m', { kind: 'fixed', idleMs: 600_000 }, cost);
      expect(row.invocations).toBe(trace.at.length);
      expect(row.coldStarts).toBeGreaterThan(0);
      expect(row.coldStarts).toBeLessThan(row.invocations);
      expect(row.coldStartRate).toBeCloseTo(row.coldStarts / row.invocations, 12);
      expect(row.totalCost / (row.computeCost + row.requestCost + row.idleCost)).toBeCloseTo(1, 6);
      expect(row.idleGbSeconds).toBeGreaterThan(0);
    }
  });

  it('a longer fixed keep-alive trades idle memory for fewer cold starts', () => {
    const rows = KEEP_ALIVE_POLICIES.filter((p) => p.policy.kind === 'fixed').map((p) =>
      simulateWithAutoscaler(trace, p.name, p.policy, cost, undefined, { tickMs: 1000 }),
    );
    expect(rows.map((r) => r.policy)).toEqual(['fixed-1m', 'fixed-10m', 'fixed-20m']);
    expect(rows[0].coldStarts).toBeGreaterThan(rows[1].coldStarts);
    expect(rows[1].coldStarts).toBeGreaterThanOrEqual(rows[2].coldStarts);
    expect(rows[0].idleGbSeconds).toBeLessThan(rows[1].idleGbSeconds);
    expect(rows[1].idleGbSeconds).toBeLessThan(rows[2].idleGbSeconds);
  });

  it('the suite reports every policy and the histogram comparison, and the report states it as a goal without asserting it', () => {
    const r = runKeepAliveSuite({ seed: 5, functions: 30, durationMs: 3_600_000, tickMs: 5000, costModels: cost });
    expect(r.rows.map((x) => x.policy)).toEqual(['fixed-1m', 'fixed-10m', 'fixed-20m', 'histogram']);
    expect(r.costModelSource).toBe('cold-warm suite');
    expect(r.histogramVsFixed10m).toBeDefined();
    const report = emptyReport('smoke', [], describeMachine(), ['keep-alive']);
    report.keepAlive = r.rows;
    const { rows: _rows, ...details } = r;
    report.keepAliveDetails = details;
    const goals = evaluateGoals(report);
    const g = goals.find((x) => x.id === 'histogram-vs-fixed-10m')!;
    expect(typeof g.met).toBe('boolean');
    if (g.met) expect(g.gap).toBeUndefined();
    else expect(g.gap).toMatch(/higher/);
    expect(goals.find((x) => x.id === 'warm-p50')!.met).toBeNull();
    const md = renderMarkdown(report);
    expect(md).toContain('## keep-alive');
    expect(md).toContain('| histogram |');
  });
});

describe('report helpers', () => {
  it('percentiles are nearest-rank and the median averages the middle pair', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile([], 50)).toBeNaN();
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(summarize([1, 2, 3]).count).toBe(3);
  });

  it('progress writes suite, step and ETA lines', () => {
    const lines: string[] = [];
    let now = 0;
    const p = new Progress(
      [
        { name: 'a', estimateMs: 10_000 },
        { name: 'b', estimateMs: 20_000 },
      ],
      { sink: { write: (l) => lines.push(l) }, now: () => now },
    );
    p.beginSuite('a', 2);
    now = 1000;
    p.step('one');
    now = 2000;
    p.step('two');
    expect(p.etaMs()).toBe(20_000);
    p.endSuite();
    expect(lines.some((l) => l.includes('[a 2/2] two') && l.includes('ETA'))).toBe(true);
    expect(formatDuration(125_000)).toBe('2m05s');
  });
});
