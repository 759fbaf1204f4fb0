// The autoscaler: every tick it sizes each model pool by Little's law from its arrival rate and service time,
// with Knative KPA's stable and panic windows, the model's keep-alive policy for the last instance, and the
// node's CPU and memory budget. It drives pools only through the small PoolControl seam, so the same code runs
// the real executor and the trace simulation (scaling/simulated-pools.ts).
import {
  ColdStartCounter,
  type Clock,
  type Config,
  type ExecutorObserver,
  type InstanceState,
  type KeepAlivePolicy,
  type ModelConfig,
  type SchedulingStrategy,
} from '../core/index.ts';
import type { StuckRun } from '../executor/index.ts';
import { KeepAliveTracker, type IdleHistogramView, type KeepAliveDecision } from './keep-alive.ts';
import { RateWindow } from './rate-window.ts';
import { RunCost } from './run-cost.ts';

/** One instance as the autoscaler sees it. */
export interface PoolInstanceView {
  readonly id: string;
  readonly state: InstanceState;
  /** Clock ms of its last run's end (or creation). */
  readonly lastUsedAt?: number;
  /** Clock ms since which it has been idle, when known. */
  readonly idleSince?: number;
  readonly createdAt?: number;
}

/** Since when an instance has been idle, from whatever its view offers. */
function idleFrom(i: PoolInstanceView): number {
  return Math.max(i.idleSince ?? 0, i.lastUsedAt ?? 0, i.createdAt ?? 0);
}

/** One pool (model version) as the autoscaler sees it. */
export interface PoolStatus {
  readonly name: string;
  readonly version: number;
  readonly config: Readonly<ModelConfig>;
  /** Memory one instance of this pool reserves. */
  readonly memoryMb: number;
  readonly instances: readonly PoolInstanceView[];
  /** Requests waiting for an instance. */
  readonly queued: number;
}

export interface NodeBudget {
  /** CPU slots: the most inferences this node runs at once. */
  readonly slots: number;
  readonly memoryMb: number;
  readonly memoryUsedMb: number;
  /** Runs stuck in native code, each holding a slot (the real executor's; see executor/types.ts). */
  readonly stuckRuns?: readonly StuckRun[];
}

/** What the autoscaler needs from an executor, real or simulated. Both actions are fire-and-forget. */
export interface PoolControl {
  pools(): readonly PoolStatus[];
  node(): NodeBudget;
  /** Starts one more instance of the pool (a cold start, or a pre-warm). */
  startInstance(name: string, version: number): void;
  /** Retires one idle instance; ignored when it is no longer idle. */
  retireInstance(name: string, version: number, instanceId: string): void;
}

export interface AutoscalerOptions {
  clock: Clock;
  control: PoolControl;
  tickMs?: number;
  stableWindowMs?: number;
  panicWindowMs?: number;
  /** Share of each instance's concurrency to aim for (KPA: 0.7). */
  targetUtilization?: number;
  /** Panic starts when the panic-window demand reaches this multiple of ready instances (KPA: 2, i.e. 200%). */
  panicThreshold?: number;
  scaleDownDelayMs?: number;
  /** Service time assumed before a pool's first completed request. */
  defaultServiceMs?: number;
  /** Latency samples kept per pool for the percentiles. */
  latencySamples?: number;
  /** Called when a tick throws; the next tick runs anyway. */
  onError?: (err: unknown) => void;
}

/** Builds the autoscaler's options from the node config. */
export function autoscalerOptions(config: Readonly<Config>): Omit<AutoscalerOptions, 'clock' | 'control' | 'onError'> {
  const a = config.autoscaler;
  return {
    tickMs: a.tickMs,
    stableWindowMs: a.stableWindowMs,
    panicWindowMs: a.panicWindowMs,
    targetUtilization: a.targetUtilization,
    scaleDownDelayMs: a.scaleDownDelayMs,
  };
}

export interface PoolScalingStatus {
  name: string;
  version: number;
  instances: { starting: number; idle: number; busy: number };
  desiredInstances: number;
  /** Requests waiting for an instance. */
  queued: number;
  /** Requests completed successfully. */
  requests: number;
  failures: number;
  /** Instance cold starts that requests waited for (a batch served by one counts once). */
  coldStarts: number;
  /** Requests that waited for a cold start. */
  coldRequests: number;
  /** Arrival rate over the stable window. */
  ratePerSec: number;
  panicRatePerSec: number;
  panicking: boolean;
  /** Service time per request the sizing uses: recent run time per item, for a batching pool per item of a full batch. */
  serviceMs: number;
  /** Arrival to answer, over the most recent requests. */
  latencyMs: { p50: number; p95: number; p99: number };
  keepAlive: KeepAliveDecision & {
    /** Time since the pool's last request ended (0 while it is busy). */
    idleForMs: number;
    /** Offsets from the last request's end during which the pool is kept warm. */
    warmFromMs: number;
    warmUntilMs: number;
    stableWindowMs: number;
    panicWindowMs: number;
    scaleDownDelayMs: number;
  };
  strategy: SchedulingStrategy;
  minInstances: number;
  maxInstances: number;
}

/** One pool's keep-alive policy, decision and learned idle times. */
export interface PoolKeepAliveView {
  version: number;
  policy: KeepAlivePolicy;
  decision: PoolScalingStatus['keepAlive'];
  instances: PoolScalingStatus['instances'];
  histogram: IdleHistogramView;
}

class PoolState {
  readonly rate: RateWindow;
  /** What a run costs per item, learned from the pool's runs: the service time of the sizing. */
  readonly cost: RunCost;
  readonly keepAlive: KeepAliveTracker;
  pending = 0;
  lastDoneAt: number | undefined;
  firstSeenAt: number;
  panicUntil = -Infinity;
  desired = 0;
  /** Recent rate-based desired sizes, decreasing, for the scale-down delay. */
  history: Array<{ at: number; desired: number }> = [];
  requests = 0;
  failures = 0;
  coldStarts = 0;
  coldRequests = 0;
  latencies: number[] = [];
  latencyNext = 0;
  constructor(
    now: number,
    config: Readonly<ModelConfig> | undefined,
    o: Required<Omit<AutoscalerOptions, 'clock' | 'control' | 'onError'>>,
  ) {
    this.rate = new RateWindow({
      stableWindowMs: o.stableWindowMs,
      panicWindowMs: o.panicWindowMs,
      bucketMs: Math.min(1000, o.panicWindowMs / 2),
    });
    this.cost = new RunCost({ decayMs: o.panicWindowMs });
    this.keepAlive = new KeepAliveTracker(config?.keepAlive ?? { kind: 'fixed', idleMs: 600_000 });
    this.firstSeenAt = now;
  }
}

const key = (name: string, version: number) => `${name}@${version}`;

export class Autoscaler {
  #clock: Clock;
  #control: PoolControl;
  #o: Required<Omit<AutoscalerOptions, 'clock' | 'control' | 'onError'>>;
  #onError: (err: unknown) => void;
  #pools = new Map<string, PoolState>();
  #coldStartCounter = new ColdStartCounter();
  #timer: unknown;
  #running = false;
  readonly observer: ExecutorObserver;

  constructor(opts: AutoscalerOptions) {
    this.#clock = opts.clock;
    this.#control = opts.control;
    this.#onError = opts.onError ?? (() => {});
    this.#o = {
      tickMs: opts.tickMs ?? 1000,
      stableWindowMs: opts.stableWindowMs ?? 60_000,
      panicWindowMs: opts.panicWindowMs ?? 6_000,
      targetUtilization: opts.targetUtilization ?? 0.7,
      panicThreshold: opts.panicThreshold ?? 2,
      scaleDownDelayMs: opts.scaleDownDelayMs ?? 30_000,
      defaultServiceMs: opts.defaultServiceMs ?? 100,
      latencySamples: opts.latencySamples ?? 1024,
    };
    if (!(this.#o.targetUtilization > 0 && this.#o.targetUtilization <= 1)) {
      throw new RangeError(`targetUtilization: expected (0, 1], got ${this.#o.targetUtilization}`);
    }
    if (!(this.#o.tickMs > 0)) throw new RangeError(`tickMs: expected a positive number, got ${this.#o.tickMs}`);
    this.observer = {
      onRequestQueued: (e) => this.#arrived(e.name, e.version, e.at),
      onRequestDone: (e) => this.#done(e),
      // A first run includes the runtime's warm-up: it says nothing about what the next runs will cost.
      onRun: (e) => {
        if (!e.firstRun) this.#state(e.name, e.version, undefined, e.at).cost.record(e.batchSize, e.computeMs, e.at);
      },
    };
  }

  get options(): Readonly<Required<Omit<AutoscalerOptions, 'clock' | 'control' | 'onError'>>> {
    return this.#o;
  }

  /** Starts ticking every tickMs on the injected clock. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    const loop = () => {
      if (!this.#running) return;
      try {
        this.tick();
      } catch (err) {
        // A failing pass (e.g. a pool snapshot that throws) must neither stop the loop nor escape a timer callback.
        this.#onError(err);
      }
      if (this.#running) this.#timer = this.#clock.setTimeout(loop, this.#o.tickMs);
    };
    this.#timer = this.#clock.setTimeout(loop, this.#o.tickMs);
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One scaling pass over every pool, at the clock's current time. Public so simulations can step it. */
  tick(): void {
    const now = this.#clock.now();
    const node = this.#control.node();
    let freeMb = node.memoryMb - node.memoryUsedMb;
    const pools = this.#control.pools();
    const seen = new Set<string>();
    // Pools below their minInstances go first: provisioned concurrency is a promise, extra capacity is not.
    const plans = pools.map((p) => ({ p, plan: this.#plan(p, now, node) }));
    plans.sort((a, b) => Number(b.plan.belowMin) - Number(a.plan.belowMin));
    for (const { p, plan } of plans) {
      seen.add(key(p.name, p.version));
      if (plan.target > plan.current) {
        for (let i = plan.current; i < plan.target; i++) {
          if (p.memoryMb > freeMb) break;
          freeMb -= p.memoryMb;
          this.#control.startInstance(p.name, p.version);
        }
      } else if (plan.target < plan.current && !plan.panicking) {
        // Capacity beyond the target goes once it has sat idle for the scale-down delay, so instances the executor
        // started on demand under load are not torn down between bursts. A pool whose keep-alive has run out goes at once.
        const idle = p.instances
          .filter((x) => x.state === 'idle' && (plan.coldNow || now - idleFrom(x) >= this.#o.scaleDownDelayMs))
          .sort((a, b) => idleFrom(a) - idleFrom(b));
        for (const inst of idle.slice(0, plan.current - plan.target)) this.#control.retireInstance(p.name, p.version, inst.id);
      }
    }
    for (const k of this.#pools.keys()) if (!seen.has(k) && this.#pools.get(k)!.pending === 0) this.#pools.delete(k);
  }

  /** Per-pool scaling state for GET /v1/status, in pool order. */
  snapshot(now = this.#clock.now()): PoolScalingStatus[] {
    return this.#control.pools().map((p) => {
      const s = this.#state(p.name, p.version, p.config, now);
      s.keepAlive.setPolicy(p.config.keepAlive);
      const count = (st: InstanceState) => p.instances.filter((i) => i.state === st).length;
      const d = s.keepAlive.decide();
      const lat = [...s.latencies].sort((a, b) => a - b);
      const q = (f: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.ceil(f * lat.length) - 1)] : 0);
      return {
        name: p.name,
        version: p.version,
        instances: { starting: count('starting'), idle: count('idle'), busy: count('busy') },
        desiredInstances: s.desired,
        queued: p.queued,
        requests: s.requests,
        failures: s.failures,
        coldStarts: s.coldStarts,
        coldRequests: s.coldRequests,
        ratePerSec: round3(s.rate.stableRate(now)),
        panicRatePerSec: round3(s.rate.panicRate(now)),
        panicking: now < s.panicUntil,
        serviceMs: round3(this.#serviceMs(s, p)),
        latencyMs: { p50: q(0.5), p95: q(0.95), p99: q(0.99) },
        keepAlive: {
          ...d,
          idleForMs: this.#idleFor(s, p, now),
          warmFromMs: d.prewarmMs,
          warmUntilMs: d.prewarmMs + d.keepAliveMs,
          stableWindowMs: this.#o.stableWindowMs,
          panicWindowMs: this.#o.panicWindowMs,
          scaleDownDelayMs: this.#o.scaleDownDelayMs,
        },
        strategy: p.config.scheduling.strategy,
        minInstances: p.config.minInstances,
        maxInstances: p.config.maxInstances,
      };
    });
  }

  /**
   * The keep-alive view of each pool of one model (GET /v1/models/{name}/keep-alive): its status as snapshot()
   * gives it, with the policy as configured and the idle-time histogram the decision is read from.
   */
  keepAlive(name: string, now = this.#clock.now()): PoolKeepAliveView[] {
    const policies = new Map(this.#control.pools().map((p) => [key(p.name, p.version), p.config.keepAlive]));
    return this.snapshot(now)
      .filter((p) => p.name === name)
      .map((p) => ({
        version: p.version,
        policy: policies.get(key(p.name, p.version))!,
        decision: p.keepAlive,
        instances: p.instances,
        histogram: this.#pools.get(key(p.name, p.version))!.keepAlive.histogram(),
      }));
  }

  #state(name: string, version: number, config: Readonly<ModelConfig> | undefined, now: number): PoolState {
    const k = key(name, version);
    let s = this.#pools.get(k);
    if (!s) {
      s = new PoolState(now, config, this.#o);
      this.#pools.set(k, s);
    }
    return s;
  }

  #arrived(name: string, version: number, at: number): void {
    const s = this.#state(name, version, undefined, at);
    s.rate.recordArrival(at);
    // An idle time is the gap between the end of the previous request and this arrival, as in the paper.
    if (s.pending === 0 && s.lastDoneAt !== undefined) s.keepAlive.recordIdle(Math.max(0, at - s.lastDoneAt));
    s.pending++;
  }

  #done(e: Parameters<NonNullable<ExecutorObserver['onRequestDone']>>[0]): void {
    const s = this.#state(e.name, e.version, undefined, e.at);
    s.pending = Math.max(0, s.pending - 1);
    s.lastDoneAt = Math.max(s.lastDoneAt ?? e.at, e.at);
    if (e.ok) {
      s.requests++;
    } else {
      s.failures++;
    }
    if (e.coldStart) s.coldRequests++;
    if (this.#coldStartCounter.newColdStart(e) !== undefined) s.coldStarts++;
    const total = e.queueMs + e.computeMs;
    if (s.latencies.length < this.#o.latencySamples) s.latencies.push(total);
    else s.latencies[s.latencyNext] = total;
    s.latencyNext = (s.latencyNext + 1) % this.#o.latencySamples;
  }

  /**
   * Service time per request for the sizing. A pool that batches is costed per item of a full batch (RunCost):
   * its instances take more load by running larger batches, and sizing it from the busy time per item at the
   * current batch size started a second instance that only split the batches (measured: throughput fell by a
   * quarter on a 2-core node).
   */
  #serviceMs(s: PoolState, p: PoolStatus): number {
    return s.cost.perItemAtMs(p.config.batching.maxBatchSize) ?? this.#o.defaultServiceMs;
  }

  #idleFor(s: PoolState, p: PoolStatus, now: number): number {
    const busy = s.pending > 0 || p.queued > 0 || p.instances.some((i) => i.state === 'busy');
    return busy ? 0 : Math.max(0, now - (s.lastDoneAt ?? s.firstSeenAt));
  }

  #plan(
    p: PoolStatus,
    now: number,
    node: NodeBudget,
  ): { target: number; current: number; belowMin: boolean; panicking: boolean; coldNow: boolean } {
    const s = this.#state(p.name, p.version, p.config, now);
    s.keepAlive.setPolicy(p.config.keepAlive);
    const o = this.#o;
    const serviceSec = this.#serviceMs(s, p) / 1000;
    const perInstance = Math.max(1, p.config.concurrency) * o.targetUtilization;
    // Little's law: requests in the system = arrival rate x time in service.
    const stableDesired = Math.ceil((s.rate.stableRate(now) * serviceSec) / perInstance - 1e-9);
    const panicDesired = Math.ceil((s.rate.panicRate(now) * serviceSec) / perInstance - 1e-9);
    const live = p.instances.filter((i) => i.state !== 'retiring');
    const current = live.length;
    const ready = live.filter((i) => i.state === 'idle' || i.state === 'busy').length;
    if (panicDesired > current && panicDesired >= o.panicThreshold * Math.max(1, ready)) s.panicUntil = now + o.stableWindowMs;
    const panicking = now < s.panicUntil;
    // Scale up at once when the short window demands more than the pool has; while panicking nothing scales down (KPA).
    let rateDesired = Math.max(stableDesired, panicDesired > current ? panicDesired : 0, panicking ? Math.max(panicDesired, s.desired) : 0);
    // Max over the scale-down delay, kept as a monotonic deque: amortised O(1) per tick.
    const h = s.history;
    while (h.length && h[h.length - 1].desired <= rateDesired) h.pop();
    h.push({ at: now, desired: rateDesired });
    while (h.length && h[0].at < now - o.scaleDownDelayMs) h.shift();
    if (h.length) rateDesired = Math.max(rateDesired, h[0].desired);

    // The keep-alive policy alone decides whether an idle pool keeps (or regains, when pre-warming) an instance.
    const idleFor = this.#idleFor(s, p, now);
    let target: number;
    const idle = s.pending === 0 && p.queued === 0 && !live.some((i) => i.state === 'busy');
    const coldNow = idle && !s.keepAlive.shouldBeWarm(idleFor);
    if (idle) {
      target = coldNow ? 0 : Math.max(1, rateDesired);
    } else {
      target = Math.max(1, rateDesired);
    }
    // More instances than the node can run at once would only hold memory. The caps come last, after the pool's
    // minimum: a minInstances above them (a config that does not fit the node) must not start more.
    const cpuCap = Math.max(1, Math.ceil(node.slots / Math.max(1, p.config.concurrency)));
    target = Math.max(target, p.config.minInstances);
    target = Math.min(target, p.config.maxInstances, cpuCap);
    s.desired = target;
    return { target, current, belowMin: current < p.config.minInstances, panicking, coldNow };
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
