// The node's budgets and admission control, on real worker threads with the test-only fault runtime:
// memory eviction of another model's idle instance, 503 when nothing can be evicted, CPU slots never exceeded,
// 429 with Retry-After, deadline 503, abort, and keep-alive as production applies it (the autoscaler retiring idle
// instances through executor.control) on a ManualClock.
import { afterEach, describe, expect, it } from 'vitest';
import { isHearthError, ManualClock, type Manifest } from '../../core/index.ts';
import type { InferResult } from '../../executor/index.ts';
import { onnxFixtureDir } from '../fixtures/golden.ts';
import { Autoscaler } from '../../scaling/index.ts';
import { FAULT_SPECS, faultInputs, makeRig, manifestOf, type TestRig } from './helpers.ts';

let rig: TestRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** A fault-runtime model named `name` (its files are the mlp fixture's; the runtime ignores them). */
async function faultModel(r: TestRig, name: string): Promise<Manifest> {
  const f = await manifestOf(name, onnxFixtureDir('mlp-dynamic'), FAULT_SPECS);
  r.sources.set(`${name}@1`, f.dir);
  return f.manifest;
}

async function errorOf(p: Promise<unknown>): Promise<{ code: string; headers?: Record<string, string>; name?: string }> {
  try {
    await p;
    return { code: 'ok' };
  } catch (e) {
    if (isHearthError(e)) return { code: e.code, headers: e.headers };
    return { code: 'other', name: (e as Error).name };
  }
}

const faultRig = (extra: Parameters<typeof makeRig>[0] = {}) =>
  makeRig({ allowTestRuntimes: true, loadOptions: () => ({ runtime: 'fault' }), ...extra });

describe('memory budget', () => {
  it('evicts the least recently used idle instance of another model to make room', async () => {
    const states: string[] = [];
    rig = await faultRig({
      env: { EXECUTOR_MEMORY_MB: '200' },
      configs: { a: { memoryMb: 100 }, b: { memoryMb: 100 }, c: { memoryMb: 100 } },
      observer: { onInstanceState: (e) => states.push(`${e.name}:${e.to}`) },
    });
    const [a, b, c] = [await faultModel(rig, 'a'), await faultModel(rig, 'b'), await faultModel(rig, 'c')];
    await rig.executor.infer({ manifest: a, inputs: faultInputs(0) });
    await rig.executor.infer({ manifest: b, inputs: faultInputs(0) });
    await rig.executor.infer({ manifest: a, inputs: faultInputs(0) }); // a is now more recent than b
    expect(rig.executor.control.node().memoryUsedMb).toBe(200);
    const r = await rig.executor.infer({ manifest: c, inputs: faultInputs(0) });
    expect(r.coldStart).toBe(true);
    expect(rig.executor.isLoaded('a', 1)).toBe(true);
    expect(rig.executor.isLoaded('b', 1)).toBe(false);
    expect(rig.executor.isLoaded('c', 1)).toBe(true);
    expect(states).toContain('b:gone');
    expect(rig.executor.control.node().memoryUsedMb).toBe(200);
  });

  it('answers 503 OVERLOADED at the deadline when the budget is full and nothing is idle, and serves after', async () => {
    rig = await faultRig({ env: { EXECUTOR_MEMORY_MB: '100' }, configs: { busy: { memoryMb: 100 }, other: { memoryMb: 100 } } });
    const busy = await faultModel(rig, 'busy');
    const other = await faultModel(rig, 'other');
    await rig.executor.infer({ manifest: busy, inputs: faultInputs(0) });
    const long = rig.executor.infer({ manifest: busy, inputs: faultInputs(1600) }); // busy for 600 ms
    const now = performance.timeOrigin + performance.now();
    const starved = await errorOf(rig.executor.infer({ manifest: other, inputs: faultInputs(0), deadline: now + 150 }));
    expect(starved.code).toBe('OVERLOADED');
    // Once `busy` is idle again it can be evicted, so a patient request gets through.
    const patient = rig.executor.infer({ manifest: other, inputs: faultInputs(0) });
    expect((await long).outputs).toHaveLength(2);
    expect((await patient).coldStart).toBe(true);
    expect(rig.executor.isLoaded('busy', 1)).toBe(false);
  });
});

describe('CPU slots', () => {
  it('never runs more at once than EXECUTOR_SLOTS, even with more instances and concurrency', async () => {
    rig = await faultRig({
      env: { EXECUTOR_SLOTS: '2' },
      configs: { s: { maxInstances: 4, concurrency: 2, batching: { maxBatchSize: 1 } } },
    });
    const m = await faultModel(rig, 's');
    await rig.executor.load(m);
    const results: { r: InferResult; at: number }[] = [];
    await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const at = performance.timeOrigin + performance.now();
        results.push({ r: await rig!.executor.infer({ manifest: m, inputs: faultInputs(1040, i) }), at });
      }),
    );
    expect(rig.executor.control.node().peakSlots).toBe(2);
    // Recount from the runs themselves: at no instant do more than two overlap. Each run lasts ~40 ms; `at` is taken
    // just before infer() and the compute time inside the worker, so each interval is trimmed by 2 ms at both ends
    // for that clock skew — a third run really overlapping would still overlap by tens of ms.
    const edges = results.flatMap(({ r, at }) => [
      { t: at + r.queueMs + 2, d: 1 },
      { t: at + r.queueMs + r.computeMs - 2, d: -1 },
    ]);
    edges.sort((x, y) => x.t - y.t || x.d - y.d);
    let cur = 0;
    let peak = 0;
    for (const e of edges) peak = Math.max(peak, (cur += e.d));
    expect(peak).toBeLessThanOrEqual(2);
    expect(rig.executor.stats({ name: 's' })[0].inferenceCount).toBe(12);
  });
});

describe('admission', () => {
  it('a full queue answers 429 QUEUE_FULL with Retry-After', async () => {
    rig = await faultRig({ configs: { q: { maxInstances: 1, maxQueueSize: 2, batching: { maxBatchSize: 1 } } } });
    const m = await faultModel(rig, 'q');
    await rig.executor.load(m);
    const running = rig.executor.infer({ manifest: m, inputs: faultInputs(1300) });
    await new Promise((r) => setTimeout(r, 30)); // let it leave the queue for the instance
    const queued = [
      rig.executor.infer({ manifest: m, inputs: faultInputs(0) }),
      rig.executor.infer({ manifest: m, inputs: faultInputs(0) }),
    ];
    const rejected = await errorOf(rig.executor.infer({ manifest: m, inputs: faultInputs(0) }));
    expect(rejected.code).toBe('QUEUE_FULL');
    expect(Number(rejected.headers?.['Retry-After'])).toBeGreaterThanOrEqual(1);
    await Promise.all([running, ...queued]);
    expect(rig.executor.stats({ name: 'q' })[0].fail.count).toBe(1);
  });

  it('a deadline that passes in the queue answers 503; an abort removes the request from the queue', async () => {
    const done: string[] = [];
    rig = await faultRig({
      configs: { d: { maxInstances: 1, batching: { maxBatchSize: 1 } } },
      observer: { onRequestDone: (e) => done.push(e.ok ? 'ok' : `${e.reason}:${e.code ?? ''}`) },
    });
    const m = await faultModel(rig, 'd');
    await rig.executor.load(m);
    const running = rig.executor.infer({ manifest: m, inputs: faultInputs(1300) });
    await new Promise((r) => setTimeout(r, 30));
    const now = performance.timeOrigin + performance.now();
    const late = errorOf(rig.executor.infer({ manifest: m, inputs: faultInputs(0), deadline: now + 50 }));
    const ac = new AbortController();
    const aborted = errorOf(rig.executor.infer({ manifest: m, inputs: faultInputs(0), signal: ac.signal }));
    const kept = rig.executor.infer({ manifest: m, inputs: faultInputs(0, 5) });
    await new Promise((r) => setTimeout(r, 10));
    expect(rig.executor.control.pool('d', 1)!.queued).toBe(3);
    ac.abort();
    expect(rig.executor.control.pool('d', 1)!.queued).toBe(2);
    expect((await aborted).name).toBe('AbortError');
    expect((await late).code).toBe('OVERLOADED');
    await running;
    expect(((await kept).outputs[1].data as Float32Array)[0]).toBe(5);
    expect(done.sort()).toEqual(['CANCELED:', 'REJECTED:OVERLOADED', 'ok', 'ok'].sort());
  });
});

describe('keep-alive (the autoscaler on the real engine, as createHearth wires them)', () => {
  let autoscaler: Autoscaler | undefined;
  afterEach(() => {
    autoscaler?.stop();
    autoscaler = undefined;
  });

  /** An autoscaler ticking every second on `clock`, fed by the rig's executor and driving it through control. */
  function scaleWith(r: TestRig, clock: ManualClock): void {
    autoscaler = new Autoscaler({ clock, control: r.executor.control, tickMs: 1000 });
    r.executor.setObserver(autoscaler.observer);
    autoscaler.start();
  }

  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  };

  it('retires an idle instance at its fixed idleMs and not before; a request restarts the idle period (ManualClock)', async () => {
    const clock = new ManualClock(1_000_000);
    rig = await faultRig({ clock, configs: { k: { keepAlive: { kind: 'fixed', idleMs: 60_000 } } } });
    scaleWith(rig, clock);
    const m = await faultModel(rig, 'k');
    await rig.executor.infer({ manifest: m, inputs: faultInputs(0) });
    expect(rig.executor.isLoaded('k', 1)).toBe(true);
    // Ticks fall on whole seconds from the request's end: the last one here finds it idle for 59 s.
    clock.advance(59_000);
    expect(rig.executor.isLoaded('k', 1)).toBe(true);
    await rig.executor.infer({ manifest: m, inputs: faultInputs(0) });
    clock.advance(59_000);
    expect(rig.executor.isLoaded('k', 1)).toBe(true);
    // The next tick finds it idle for 60 s: it goes.
    clock.advance(1_000);
    expect(rig.executor.isLoaded('k', 1)).toBe(false);
    await until(() => rig!.executor.control.pool('k', 1)!.instances.length === 0);
    expect(rig.executor.control.pool('k', 1)!.instances).toHaveLength(0);
    expect(rig.executor.control.node().memoryUsedMb).toBe(0);
  });

  it('minInstances keeps provisioned instances warm past the keep-alive', async () => {
    const clock = new ManualClock(0);
    rig = await faultRig({ clock, configs: { p: { minInstances: 1, keepAlive: { kind: 'fixed', idleMs: 1000 } } } });
    scaleWith(rig, clock);
    const m = await faultModel(rig, 'p');
    await rig.executor.infer({ manifest: m, inputs: faultInputs(0) });
    clock.advance(10_000);
    expect(rig.executor.isLoaded('p', 1)).toBe(true);
    expect(rig.executor.control.pool('p', 1)!.instances).toHaveLength(1);
  });
});
