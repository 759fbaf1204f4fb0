// Cost figures against values computed by hand, on a ManualClock.
import { describe, expect, it } from 'vitest';
import { DEFAULT_PRICES, ManualClock } from '../../core/index.ts';
import { CostLedger, MONTH_MS, cloneTotals, mergeTotals, type LedgerPersistence, type LedgerTotals } from '../../ledger/cost-ledger.ts';

const H = 3_600_000;
const done = (
  at: number,
  billedMs: number,
  extra: Partial<{ coldStart: boolean; coldStartMs: number; ok: boolean; memoryMb: number; name: string }> = {},
) => ({
  name: extra.name ?? 'm',
  version: 1,
  ok: extra.ok ?? true,
  queueMs: 0,
  computeMs: billedMs,
  billedMs,
  memoryMb: extra.memoryMb ?? 512,
  batchSize: 1,
  coldStart: extra.coldStart ?? false,
  coldStartMs: extra.coldStartMs,
  at,
});

describe('CostLedger', () => {
  it('prices compute, requests, idle time and storage as a cloud bill would', async () => {
    const clock = new ManualClock(0);
    const ledger = new CostLedger({ clock, prices: DEFAULT_PRICES });
    const o = ledger.observer;
    const inst = (at: number, from: string, to: string) =>
      o.onInstanceState!({ name: 'm', version: 1, instanceId: 'i1', from: from as never, to: to as never, memoryMb: 512, at });
    ledger.setStorage('m', 1, 1024 ** 3); // 1 GiB stored from t = 0
    inst(0, 'none', 'starting');
    inst(1000, 'starting', 'idle');
    inst(2000, 'idle', 'busy');
    o.onRequestDone!(done(2100, 100, { coldStart: true, coldStartMs: 2100 }));
    inst(2100, 'busy', 'idle');
    inst(3000, 'idle', 'busy');
    o.onRequestDone!(done(3101, 100.4)); // rounded up to 101 ms
    o.onRequestDone!(done(3151, 50)); // the second half of a batch run
    inst(3151, 'busy', 'idle');
    inst(13_151, 'idle', 'gone');
    clock.advance(73 * H); // one tenth of a 730-hour month

    const r = await ledger.report();
    expect(r.currency).toBe('USD');
    expect(r.models).toHaveLength(1);
    const m = r.models[0];
    expect(m).toMatchObject({
      name: 'm',
      version: 1,
      invocations: 3,
      billedMs: 251,
      coldStarts: 1,
      coldStartMs: 2100,
      storageBytes: 1024 ** 3,
    });
    // compute: 251 ms x 0.5 GB = 0.1255 GB-s
    expect(m.computeGbSeconds).toBeCloseTo(0.1255, 12);
    expect(m.computeCost).toBeCloseTo(0.1255 * 0.0000166667, 15);
    expect(m.requestCost).toBeCloseTo(3 * 0.0000002, 15);
    // idle: (2000 - 1000) + (3000 - 2100) + (13151 - 3151) = 11900 ms x 0.5 GB = 5.95 GB-s
    expect(m.idleGbSeconds).toBeCloseTo(5.95, 12);
    expect(m.idleCost).toBeCloseTo(5.95 * 0.0000041667, 15);
    // storage: 1 GiB for 73 h = 0.1 GB-month
    expect(m.storageGbMonths).toBeCloseTo(0.1, 12);
    expect(m.storageCost).toBeCloseTo(0.0023, 12);
    const total = 0.1255 * 0.0000166667 + 3 * 0.0000002 + 5.95 * 0.0000041667 + 0.0023;
    expect(m.totalCost).toBeCloseTo(total, 14);
    expect(r.total.totalCost).toBeCloseTo(total, 14);
    // Always-on: the peak 0.5 GB provisioned for all 73 h at the idle (provisioned) price, plus the same compute, requests and storage.
    const alwaysOnGbs = 0.5 * 73 * 3600;
    expect(m.alwaysOn.gbSeconds).toBeCloseTo(alwaysOnGbs, 6);
    expect(m.alwaysOn.cost).toBeCloseTo(alwaysOnGbs * 0.0000041667 + 0.1255 * 0.0000166667 + 3 * 0.0000002 + 0.0023, 12);
    expect(m.alwaysOn.savings).toBeCloseTo(m.alwaysOn.cost - m.totalCost, 12);
    expect(MONTH_MS).toBe(730 * H);
  });

  it('a report read while a flush is landing counts that flush exactly once, in the report and in totals()', async () => {
    // Like Redis: load() lists the model keys first and reads their values a round trip later; apply() lands a
    // little after it is sent. A report that starts its load while a flush is in flight must not miss or repeat it.
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const persisted: LedgerTotals = new Map();
    let seqSeen = 0;
    const persistence: LedgerPersistence = {
      kind: 'redis',
      async load() {
        const keys = [...persisted.keys()];
        await sleep(20);
        return cloneTotals(new Map(keys.map((k) => [k, persisted.get(k)!])));
      },
      async apply(delta, seq) {
        await sleep(10);
        if (seq <= seqSeen) return;
        mergeTotals(persisted, delta);
        seqSeen = seq;
      },
      async close() {},
    };
    const clock = new ManualClock(0);
    const ledger = new CostLedger({ clock, prices: DEFAULT_PRICES, persistence });
    ledger.observer.onRequestDone!(done(10, 100));
    const flushed = ledger.flush();
    const report = await ledger.report();
    await flushed;
    expect(report.models.map((m) => [m.name, m.invocations])).toEqual([['m', 1]]);
    expect(ledger.totals().map((m) => [m.name, m.invocations])).toEqual([['m', 1]]);
  });

  it('counts a cold start once when its first batch run served several waiting requests', async () => {
    const clock = new ManualClock(0);
    const ledger = new CostLedger({ clock, prices: DEFAULT_PRICES });
    // Two requests waited for one instance and ran in its first batch: same end, same cold-start duration.
    ledger.observer.onRequestDone!(done(900, 20, { coldStart: true, coldStartMs: 850 }));
    ledger.observer.onRequestDone!(done(900, 20, { coldStart: true, coldStartMs: 850 }));
    // Another instance's cold start.
    ledger.observer.onRequestDone!(done(1200, 20, { coldStart: true, coldStartMs: 700 }));
    const m = (await ledger.report()).models[0];
    expect(m).toMatchObject({ invocations: 3, coldStarts: 2, coldStartMs: 1550 });
  });

  it('filters by hour buckets (from/to) and by model name', async () => {
    const clock = new ManualClock(0);
    const ledger = new CostLedger({ clock, prices: DEFAULT_PRICES });
    ledger.observer.onRequestDone!(done(10, 10));
    ledger.observer.onRequestDone!(done(2 * H + 10, 20));
    ledger.observer.onRequestDone!(done(2 * H + 20, 30, { name: 'other' }));
    ledger.observer.onRequestDone!(done(2 * H + 30, 5, { ok: false }));
    clock.advance(3 * H);
    const all = await ledger.report();
    expect(all.total.invocations).toBe(4); // a failed request that ran is billed
    expect(all.total.failures).toBe(1);
    const late = await ledger.report({ from: H });
    expect(late.models.map((m) => [m.name, m.invocations, m.billedMs])).toEqual([
      ['m', 2, 25],
      ['other', 1, 30],
    ]);
    const early = await ledger.report({ to: H, model: 'm' });
    expect(early.models.map((m) => [m.name, m.invocations, m.billedMs])).toEqual([['m', 1, 10]]);
    expect(early.to).toBe(new Date(H).toISOString());
    // A rejected request that never ran (billedMs 0) is a failure but not an invocation.
    ledger.observer.onRequestDone!(done(3 * H, 0, { ok: false }));
    const after = await ledger.report({ from: 3 * H });
    expect(after.models[0]).toMatchObject({ invocations: 0, failures: 1, billedMs: 0, requestCost: 0 });
  });
});
