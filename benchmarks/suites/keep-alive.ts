// keep-alive suite: replays a generated Azure-shaped trace in simulated time against each keep-alive policy.
// Time is a ManualClock. The default driver is the executor's own simulateKeepAlive: the real Autoscaler (which
// applies the keep-alive policy to each pool's last instance and pre-warms) and CostLedger over SimulatedPools,
// the executor's model of pools with a cold-start time and a service time per request; those times come from the
// cold-warm suite when it ran in the same invocation, else from defaults. A second driver, 'tracker', replays the trace with only the
// executor's KeepAliveTracker deciding (no Little's-law sizing, no tick granularity), as a cross-check.
import { ManualClock, DEFAULT_HISTOGRAM, DEFAULT_PRICES, type KeepAlivePolicy, type Prices } from '../../core/index.ts';
import { CostLedger } from '../../ledger/index.ts';
import { KeepAliveTracker, simulateKeepAlive, type SimulatedFunction } from '../../scaling/index.ts';
import { describeTrace, generateTrace, type Trace } from '../lib/azure-trace.ts';
import { percentile, round3 } from '../lib/percentiles.ts';

/** What one invocation costs on the executor, per model. */
export interface ExecutorCostModel {
  model: string;
  /** First start of a function: the artifact comes from the store. */
  coldFromStoreMs: number;
  /** Later starts: the artifact is in the node cache. */
  coldFromCacheMs: number;
  /** Warm run time of one request. */
  serviceMs: number;
}

/**
 * Used when the cold-warm suite did not run in the same invocation: its medians (cold from the store and from
 * the cache, warm p50 over HTTP) from a full run on a 2-core AMD EPYC, Node 20.20, onnxruntime-node 1.30.
 */
export const DEFAULT_COST_MODELS: readonly ExecutorCostModel[] = Object.freeze([
  { model: 'silero-vad', coldFromStoreMs: 39, coldFromCacheMs: 33, serviceMs: 0.6 },
  { model: 'upscaler-tfjs', coldFromStoreMs: 407, coldFromCacheMs: 561, serviceMs: 3.8 },
  { model: 'large-onnx-50mb', coldFromStoreMs: 383, coldFromCacheMs: 301, serviceMs: 4.1 },
]);

export interface KeepAliveRow {
  policy: string;
  /** Share of all invocations that found no warm instance. */
  coldStartRate: number;
  /** GB-seconds of instances loaded but not running (idle warm time and pre-warm loads). */
  idleGbSeconds: number;
  /** compute + requests + idle, at the configured prices (USD). */
  totalCost: number;
  invocations: number;
  coldStarts: number;
  computeGbSeconds: number;
  computeCost: number;
  requestCost: number;
  idleCost: number;
  /** Autoscaler driver: the same traffic priced as always-on instances (the ledger's comparison). */
  alwaysOnCost?: number;
  /** Mean and 75th percentile over functions of each function's own cold-start share (the paper's per-app view). */
  meanFunctionColdStartRate: number;
  p75FunctionColdStartRate: number;
  /** Tracker driver only: pre-warm loads started, and how many of them served a call. */
  prewarms?: number;
  usefulPrewarms?: number;
  /** Share of keep-alive decisions taken by the learned histogram (vs. its fixed fallback). */
  histogramDecisionShare?: number;
  /** Wall time of the simulation itself. */
  simulationMs: number;
}

export interface KeepAliveSuiteResult {
  rows: KeepAliveRow[];
  trace: ReturnType<typeof describeTrace> & { seed: number; durationHours: number };
  costModels: ExecutorCostModel[];
  costModelSource: 'cold-warm suite' | 'defaults';
  driver: string;
  /** Histogram against fixed-10m, reported (never asserted). */
  histogramVsFixed10m?: { fewerColdStarts: boolean; lessIdle: boolean; coldStartRatio: number; idleRatio: number };
}

export const KEEP_ALIVE_POLICIES: ReadonlyArray<{ name: string; policy: KeepAlivePolicy }> = Object.freeze([
  { name: 'fixed-1m', policy: { kind: 'fixed', idleMs: 60_000 } },
  { name: 'fixed-10m', policy: { kind: 'fixed', idleMs: 600_000 } },
  { name: 'fixed-20m', policy: { kind: 'fixed', idleMs: 1_200_000 } },
  { name: 'histogram', policy: { ...DEFAULT_HISTOGRAM } },
]);

interface SimInstance {
  id: number;
  state: 'starting' | 'idle' | 'busy';
  /** Clock ms at which it entered its current state. */
  since: number;
  /** The clock timer that retires it while idle. */
  retireTimer?: unknown;
  /** Started by a pre-warm, not yet used. */
  prewarmed: boolean;
  /** A request waits for this starting instance. */
  claimed: boolean;
  /** While busy: when the work queued on it ends. */
  freeAt: number;
  doneTimer?: unknown;
}

interface SimFunction {
  memoryGb: number;
  cost: ExecutorCostModel;
  tracker: KeepAliveTracker;
  instances: SimInstance[];
  busy: number;
  /** End of the most recent request, for the idle-time samples. */
  lastEndAt: number | undefined;
  everStarted: boolean;
  prewarmTimer?: unknown;
  invocations: number;
  coldStarts: number;
}

/** Replays `trace` under one policy with only the KeepAliveTracker deciding (the 'tracker' driver). */
export function simulateWithTracker(
  trace: Trace,
  name: string,
  policy: KeepAlivePolicy,
  costModels: readonly ExecutorCostModel[],
  prices: Prices = DEFAULT_PRICES,
): KeepAliveRow {
  const wallStart = performance.now();
  const clock = new ManualClock(0);
  let nextInstanceId = 1;
  let idleGbMs = 0;
  let computeGbMs = 0;
  let prewarms = 0;
  let usefulPrewarms = 0;
  let histogramDecisions = 0;
  let decisions = 0;

  const fns: SimFunction[] = trace.functions.map((f) => ({
    memoryGb: f.memoryMb / 1024,
    cost: costModels[f.modelIndex % costModels.length],
    tracker: new KeepAliveTracker(policy),
    instances: [],
    busy: 0,
    lastEndAt: undefined,
    everStarted: false,
    invocations: 0,
    coldStarts: 0,
  }));

  const retire = (f: SimFunction, inst: SimInstance) => {
    const now = clock.now();
    if (inst.state === 'idle' || inst.state === 'starting') idleGbMs += (now - inst.since) * f.memoryGb;
    if (inst.retireTimer !== undefined) clock.clearTimeout(inst.retireTimer);
    f.instances.splice(f.instances.indexOf(inst), 1);
  };

  const startMs = (f: SimFunction) => {
    const ms = f.everStarted ? f.cost.coldFromCacheMs : f.cost.coldFromStoreMs;
    f.everStarted = true;
    return ms;
  };

  // Called when an instance finishes a request: the tracker decides how long the now-idle pool stays warm.
  const onIdle = (f: SimFunction, inst: SimInstance) => {
    const now = clock.now();
    inst.state = 'idle';
    inst.since = now;
    f.lastEndAt = now;
    if (f.busy > 0) {
      // Others still run: this one idles under the plain keep-alive window.
      const d = f.tracker.decide();
      inst.retireTimer = clock.setTimeout(() => retire(f, inst), d.prewarmMs + d.keepAliveMs);
      return;
    }
    const d = f.tracker.decide();
    decisions++;
    if (d.policy === 'histogram') histogramDecisions++;
    if (d.prewarmMs > 0) {
      // Paper: unload now, load again just before the predicted next arrival, keep for the keep-alive window.
      for (const other of [...f.instances]) if (other.state === 'idle') retire(f, other);
      f.prewarmTimer = clock.setTimeout(() => {
        f.prewarmTimer = undefined;
        if (f.instances.length > 0) return;
        prewarms++;
        const pre: SimInstance = {
          id: nextInstanceId++,
          state: 'starting',
          since: clock.now(),
          prewarmed: true,
          claimed: false,
          freeAt: 0,
        };
        f.instances.push(pre);
        clock.setTimeout(() => {
          if (!f.instances.includes(pre) || pre.claimed) return;
          idleGbMs += (clock.now() - pre.since) * f.memoryGb;
          pre.state = 'idle';
          pre.since = clock.now();
          pre.retireTimer = clock.setTimeout(() => retire(f, pre), Math.max(0, d.keepAliveMs - startMs(f)));
        }, startMs(f));
      }, d.prewarmMs);
    } else {
      for (const other of f.instances) {
        if (other.state !== 'idle') continue;
        if (other.retireTimer !== undefined) clock.clearTimeout(other.retireTimer);
        const o = other;
        o.retireTimer = clock.setTimeout(() => retire(f, o), d.keepAliveMs - (now - o.since));
      }
    }
  };

  // Runs one request on `inst`, after whatever is already queued on it (the executor queues on a busy
  // instance rather than start cold when the wait is shorter than a cold start).
  const run = (f: SimFunction, inst: SimInstance) => {
    const now = clock.now();
    if (inst.state !== 'busy') {
      inst.state = 'busy';
      inst.since = now;
      inst.freeAt = now;
      f.busy++;
    }
    const service = f.cost.serviceMs;
    computeGbMs += Math.ceil(service) * f.memoryGb;
    inst.freeAt = Math.max(inst.freeAt, now) + service;
    if (inst.doneTimer !== undefined) clock.clearTimeout(inst.doneTimer);
    inst.doneTimer = clock.setTimeout(() => {
      inst.doneTimer = undefined;
      f.busy--;
      onIdle(f, inst);
    }, inst.freeAt - now);
  };

  const arrive = (f: SimFunction) => {
    const now = clock.now();
    f.invocations++;
    if (f.busy === 0 && f.lastEndAt !== undefined) f.tracker.recordIdle(now - f.lastEndAt);
    if (f.prewarmTimer !== undefined) {
      clock.clearTimeout(f.prewarmTimer);
      f.prewarmTimer = undefined;
    }
    const idle = f.instances.find((i) => i.state === 'idle');
    if (idle) {
      if (idle.retireTimer !== undefined) clock.clearTimeout(idle.retireTimer);
      idle.retireTimer = undefined;
      idleGbMs += (now - idle.since) * f.memoryGb;
      if (idle.prewarmed) {
        usefulPrewarms++;
        idle.prewarmed = false;
      }
      run(f, idle);
      return;
    }
    // All busy: queue behind the one that frees first when that is quicker than a cold start.
    let soonest: SimInstance | undefined;
    for (const i of f.instances) if (i.state === 'busy' && (!soonest || i.freeAt < soonest.freeAt)) soonest = i;
    if (soonest && soonest.freeAt - now < f.cost.coldFromCacheMs) {
      run(f, soonest);
      return;
    }
    // No warm instance: this call starts cold (waiting for a pre-warm still loading counts as cold too).
    f.coldStarts++;
    const loading = f.instances.find((i) => i.state === 'starting' && !i.claimed);
    if (loading) {
      loading.claimed = true;
      usefulPrewarms++;
      idleGbMs += (now - loading.since) * f.memoryGb;
      const remaining = Math.max(0, loading.since + f.cost.coldFromCacheMs - now);
      clock.setTimeout(() => run(f, loading), remaining);
      return;
    }
    const inst: SimInstance = { id: nextInstanceId++, state: 'starting', since: now, prewarmed: false, claimed: true, freeAt: 0 };
    f.instances.push(inst);
    clock.setTimeout(() => run(f, inst), startMs(f));
  };

  for (let i = 0; i < trace.at.length; i++) {
    const t = trace.at[i];
    if (t > clock.now()) clock.advance(t - clock.now());
    arrive(fns[trace.fn[i]]);
  }
  // Let the last requests finish, then charge the idle time still open at the end of the trace.
  clock.advance(Math.max(0, trace.durationMs - clock.now()) + 60_000);
  for (const f of fns) for (const inst of [...f.instances]) if (inst.state !== 'busy') retire(f, inst);

  const invocations = fns.reduce((s, f) => s + f.invocations, 0);
  const coldStarts = fns.reduce((s, f) => s + f.coldStarts, 0);
  const perFn = fns.filter((f) => f.invocations > 0).map((f) => f.coldStarts / f.invocations);
  const idleGbSeconds = idleGbMs / 1000;
  const computeGbSeconds = computeGbMs / 1000;
  const computeCost = computeGbSeconds * prices.computePerGbSecond;
  const requestCost = invocations * prices.perRequest;
  const idleCost = idleGbSeconds * prices.idlePerGbSecond;
  return {
    policy: name,
    coldStartRate: invocations ? coldStarts / invocations : 0,
    idleGbSeconds: round3(idleGbSeconds),
    totalCost: computeCost + requestCost + idleCost,
    invocations,
    coldStarts,
    computeGbSeconds: round3(computeGbSeconds),
    computeCost,
    requestCost,
    idleCost,
    meanFunctionColdStartRate: perFn.length ? perFn.reduce((a, b) => a + b, 0) / perFn.length : 0,
    p75FunctionColdStartRate: perFn.length ? percentile(perFn, 75) : 0,
    prewarms,
    usefulPrewarms,
    ...(policy.kind === 'histogram' ? { histogramDecisionShare: decisions ? histogramDecisions / decisions : 0 } : {}),
    simulationMs: Math.round(performance.now() - wallStart),
  };
}

/**
 * Replays `trace` under one policy through the executor's own simulation (scaling/keep-alive-simulation.ts):
 * the real Autoscaler, keep-alive policies and CostLedger over SimulatedPools on a ManualClock (the
 * 'autoscaler' driver). One instance per function (maxInstances 1), as in the paper's simulation, so the
 * policies differ only in keep-alive and pre-warm, not in scale-out; overlapping requests queue on the instance.
 */
export function simulateWithAutoscaler(
  trace: Trace,
  name: string,
  policy: KeepAlivePolicy,
  costModels: readonly ExecutorCostModel[],
  prices: Prices = DEFAULT_PRICES,
  opts: { tickMs?: number; maxInstances?: number } = {},
): KeepAliveRow {
  const wallStart = performance.now();
  const functions: SimulatedFunction[] = trace.functions.map((f) => {
    const cost = costModels[f.modelIndex % costModels.length];
    return {
      name: f.name,
      memoryMb: f.memoryMb,
      coldStartMs: cost.coldFromCacheMs,
      serviceMs: cost.serviceMs,
      config: { maxInstances: opts.maxInstances ?? 1 },
    };
  });
  const names = trace.functions.map((f) => f.name);
  function* arrivals(): Generator<{ at: number; name: string }> {
    for (let i = 0; i < trace.at.length; i++) yield { at: trace.at[i], name: names[trace.fn[i]] };
  }
  const r = simulateKeepAlive({
    functions,
    arrivals: arrivals(),
    keepAlive: policy,
    durationMs: trace.durationMs + 1_000,
    autoscaler: { tickMs: opts.tickMs ?? 1000 },
    meter: (clock) => new CostLedger({ clock, prices }),
  });
  const rates = r.functions.filter((f) => f.requests > 0).map((f) => f.coldStartRate);
  return {
    policy: name,
    coldStartRate: r.coldStartRate,
    idleGbSeconds: round3(r.idleGbSeconds),
    totalCost: r.totalCost,
    invocations: r.requests,
    coldStarts: r.coldStarts,
    computeGbSeconds: round3(r.computeGbSeconds),
    computeCost: r.computeGbSeconds * prices.computePerGbSecond,
    requestCost: r.requests * prices.perRequest,
    idleCost: r.idleGbSeconds * prices.idlePerGbSecond,
    alwaysOnCost: r.alwaysOnCost,
    meanFunctionColdStartRate: rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : 0,
    p75FunctionColdStartRate: rates.length ? percentile(rates, 75) : 0,
    ...(policy.kind === 'histogram'
      ? { histogramDecisionShare: r.functions.filter((f) => f.policy === 'histogram').length / Math.max(1, r.functions.length) }
      : {}),
    simulationMs: Math.round(performance.now() - wallStart),
  };
}

export type KeepAliveDriver = 'autoscaler' | 'tracker';

export interface KeepAliveSuiteOptions {
  driver?: KeepAliveDriver;
  /** Autoscaler tick in simulated time (the node default, AUTOSCALER_TICK_MS, is 1000). */
  tickMs?: number;
  seed?: number;
  functions?: number;
  durationMs?: number;
  maxDailyRate?: number;
  costModels?: ExecutorCostModel[];
  prices?: Prices;
  onStep?: (label: string) => void;
}

export function runKeepAliveSuite(opts: KeepAliveSuiteOptions = {}): KeepAliveSuiteResult {
  const costModels = opts.costModels && opts.costModels.length ? opts.costModels : [...DEFAULT_COST_MODELS];
  const trace = generateTrace({
    seed: opts.seed ?? 2019,
    functions: opts.functions ?? 200,
    durationMs: opts.durationMs ?? 86_400_000,
    maxDailyRate: opts.maxDailyRate,
    models: costModels.length,
  });
  const driver = opts.driver ?? 'autoscaler';
  const rows: KeepAliveRow[] = [];
  for (const { name, policy } of KEEP_ALIVE_POLICIES) {
    opts.onStep?.(`policy ${name} over ${trace.at.length} invocations`);
    rows.push(
      driver === 'autoscaler'
        ? simulateWithAutoscaler(trace, name, policy, costModels, opts.prices, { tickMs: opts.tickMs })
        : simulateWithTracker(trace, name, policy, costModels, opts.prices),
    );
  }
  const h = rows.find((r) => r.policy === 'histogram');
  const f10 = rows.find((r) => r.policy === 'fixed-10m');
  return {
    rows,
    trace: { ...describeTrace(trace), seed: trace.seed, durationHours: trace.durationMs / 3_600_000 },
    costModels,
    costModelSource: opts.costModels && opts.costModels.length ? 'cold-warm suite' : 'defaults',
    driver:
      driver === 'autoscaler'
        ? 'executor simulateKeepAlive: the real Autoscaler (tick ' +
          (opts.tickMs ?? 1000) +
          ' ms), keep-alive policies and CostLedger over SimulatedPools on a ManualClock, one instance per function'
        : 'executor KeepAliveTracker (recordIdle/decide) on core ManualClock, instances modelled in the suite',
    histogramVsFixed10m:
      h && f10
        ? {
            fewerColdStarts: h.coldStarts < f10.coldStarts,
            lessIdle: h.idleGbSeconds < f10.idleGbSeconds,
            coldStartRatio: f10.coldStarts ? h.coldStarts / f10.coldStarts : NaN,
            idleRatio: f10.idleGbSeconds ? h.idleGbSeconds / f10.idleGbSeconds : NaN,
          }
        : undefined,
  };
}
