// Replays an invocation trace in simulated time through the real Autoscaler and keep-alive policies and a cost meter
// (the caller's: the ledger's CostLedger), with SimulatedPools standing in for the executor (no worker threads). For
// the keep-alive benchmark: the same trace under several policies gives each one's cold-start rate, idle GB-s and bill.
import {
  ManualClock,
  defaultModelConfig,
  fanOutObserver,
  type Clock,
  type ExecutorObserver,
  type KeepAlivePolicy,
  type ModelConfig,
} from '../core/index.ts';
import { Autoscaler, type AutoscalerOptions } from './autoscaler.ts';
import { SimulatedPools } from './simulated-pools.ts';

/**
 * What the simulation reads from a cost meter: its hooks, and its totals per model version. The ledger's CostLedger
 * fits; it is passed in because scaling/ may not use ledger/.
 */
export interface SimulationMeter {
  readonly observer: ExecutorObserver;
  totals(): readonly {
    name: string;
    version: number;
    idleGbSeconds: number;
    computeGbSeconds: number;
    totalCost: number;
    alwaysOn: { cost: number };
  }[];
}

export interface SimulatedFunction {
  name: string;
  version?: number;
  memoryMb: number;
  coldStartMs: number;
  serviceMs: number;
  /** Serving config over the defaults (maxInstances 64); keepAlive is set by the run. */
  config?: Partial<ModelConfig>;
}

export interface KeepAliveSimulationOptions {
  functions: SimulatedFunction[];
  /** Sorted by `at` (ms from the start of the trace). */
  arrivals: Iterable<{ at: number; name: string; version?: number }>;
  /** One policy for every function, or one per function. */
  keepAlive: KeepAlivePolicy | ((fn: SimulatedFunction) => KeepAlivePolicy);
  /** Simulated time to run after the trace starts (default: last arrival + 1 h). */
  durationMs?: number;
  /** Autoscaler settings; tickMs defaults to 1000 like the node. */
  autoscaler?: Omit<AutoscalerOptions, 'clock' | 'control'>;
  /** Makes the cost meter on the simulation's clock, e.g. `(clock) => new CostLedger({ clock, prices })`. */
  meter: (clock: Clock) => SimulationMeter;
  slots?: number;
  memoryMb?: number;
}

/** What a simulated run counted and cost, for one function or for all of them. */
export interface KeepAliveSimulationTotals {
  requests: number;
  coldStarts: number;
  coldStartRate: number;
  idleGbSeconds: number;
  computeGbSeconds: number;
  totalCost: number;
  alwaysOnCost: number;
}

export interface KeepAliveSimulationLine extends KeepAliveSimulationTotals {
  name: string;
  version: number;
  /** The keep-alive rule that decided at the end of the run. */
  policy: string;
}

export interface KeepAliveSimulationResult extends KeepAliveSimulationTotals {
  /** Per function, in the order given. */
  functions: KeepAliveSimulationLine[];
}

export function simulateKeepAlive(o: KeepAliveSimulationOptions): KeepAliveSimulationResult {
  const clock = new ManualClock(0);
  const pools = new SimulatedPools({ clock, slots: o.slots, memoryMb: o.memoryMb });
  for (const fn of o.functions) {
    const keepAlive = typeof o.keepAlive === 'function' ? o.keepAlive(fn) : o.keepAlive;
    const config: ModelConfig = { ...defaultModelConfig(), maxInstances: 64, ...fn.config, keepAlive };
    pools.addModel({
      name: fn.name,
      version: fn.version ?? 1,
      config,
      memoryMb: fn.memoryMb,
      coldStartMs: fn.coldStartMs,
      serviceMs: fn.serviceMs,
    });
  }
  const autoscaler = new Autoscaler({ clock, control: pools, ...o.autoscaler });
  const ledger = o.meter(clock);
  const requests = new Map<string, { n: number; cold: number }>();
  pools.setObserver(
    fanOutObserver(autoscaler.observer, ledger.observer, {
      onRequestDone: (e) => {
        const k = `${e.name}@${e.version}`;
        const r = requests.get(k) ?? { n: 0, cold: 0 };
        r.n++;
        if (e.coldStart) r.cold++;
        requests.set(k, r);
      },
    }),
  );
  autoscaler.start();
  let last = 0;
  for (const a of o.arrivals) {
    if (a.at > clock.now()) clock.advance(a.at - clock.now());
    pools.invoke(a.name, a.version ?? 1);
    last = a.at;
  }
  const end = o.durationMs ?? last + 3_600_000;
  if (end > clock.now()) clock.advance(end - clock.now());
  autoscaler.stop();

  const costs = new Map(ledger.totals().map((m) => [`${m.name}@${m.version}`, m]));
  const decisions = new Map(autoscaler.snapshot().map((s) => [`${s.name}@${s.version}`, s.keepAlive.policy]));
  const lines = o.functions.map((fn): KeepAliveSimulationLine => {
    const k = `${fn.name}@${fn.version ?? 1}`;
    const r = requests.get(k) ?? { n: 0, cold: 0 };
    const c = costs.get(k);
    return {
      name: fn.name,
      version: fn.version ?? 1,
      requests: r.n,
      coldStarts: r.cold,
      coldStartRate: r.n ? r.cold / r.n : 0,
      idleGbSeconds: c?.idleGbSeconds ?? 0,
      computeGbSeconds: c?.computeGbSeconds ?? 0,
      totalCost: c?.totalCost ?? 0,
      alwaysOnCost: c?.alwaysOn.cost ?? 0,
      policy: decisions.get(k) ?? 'none',
    };
  });
  const sum = (f: (l: KeepAliveSimulationLine) => number) => lines.reduce((a, l) => a + f(l), 0);
  const total = sum((l) => l.requests);
  const cold = sum((l) => l.coldStarts);
  return {
    requests: total,
    coldStarts: cold,
    coldStartRate: total ? cold / total : 0,
    idleGbSeconds: sum((l) => l.idleGbSeconds),
    computeGbSeconds: sum((l) => l.computeGbSeconds),
    totalCost: sum((l) => l.totalCost),
    alwaysOnCost: sum((l) => l.alwaysOnCost),
    functions: lines,
  };
}
