// A model of the executor for simulated time: instances that take coldStartMs to start and serviceMs per request,
// no worker threads. It implements PoolControl and emits the same ExecutorObserver events as the real executor,
// so the real Autoscaler, keep-alive policies and CostLedger can replay a trace on a ManualClock (tests, benchmarks).
import type { Clock, ExecutorObserver, InstanceState, ManualClock, ModelConfig } from '../core/index.ts';
import type { NodeBudget, PoolControl, PoolInstanceView, PoolStatus } from './autoscaler.ts';

export interface SimulatedModel {
  name: string;
  version: number;
  config: ModelConfig;
  /** Memory of one instance. */
  memoryMb: number;
  /** From instance start to ready. */
  coldStartMs: number;
  /** One request's run time. */
  serviceMs: number;
}

export interface SimulatedRequestResult {
  name: string;
  version: number;
  arrivedAt: number;
  doneAt: number;
  coldStart: boolean;
  queueMs: number;
}

interface SimInstance {
  id: string;
  state: InstanceState;
  inflight: number;
  startedAt: number;
  lastUsedAt: number;
  ran: boolean;
  /** Requests that triggered this instance's cold start and wait for it. */
  waiting: SimRequest[];
}

interface SimRequest {
  arrivedAt: number;
  cold: boolean;
  onDone?: (r: SimulatedRequestResult) => void;
}

interface SimPool {
  model: SimulatedModel;
  instances: Map<string, SimInstance>;
  queue: SimRequest[];
}

export class SimulatedPools implements PoolControl {
  #clock: Clock;
  #slots: number;
  #memoryMb: number;
  #observer: ExecutorObserver;
  #pools = new Map<string, SimPool>();
  #seq = 0;
  #coldStarts = 0;
  #requests = 0;

  constructor(opts: { clock: Clock | ManualClock; slots?: number; memoryMb?: number; observer?: ExecutorObserver }) {
    this.#clock = opts.clock;
    this.#slots = opts.slots ?? 1024;
    this.#memoryMb = opts.memoryMb ?? 1_048_576;
    this.#observer = opts.observer ?? {};
  }

  /** Replaces the event sink (e.g. a fan-out of autoscaler, ledger and metrics). */
  setObserver(observer: ExecutorObserver): void {
    this.#observer = observer;
  }

  addModel(model: SimulatedModel): void {
    this.#pools.set(`${model.name}@${model.version}`, { model: { ...model }, instances: new Map(), queue: [] });
  }

  setConfig(name: string, version: number, config: ModelConfig): void {
    this.#pool(name, version).model.config = config;
  }

  /** Requests served so far, and how many of them waited for a cold start. */
  get totals(): { requests: number; coldStarts: number } {
    return { requests: this.#requests, coldStarts: this.#coldStarts };
  }

  /** One arrival now. Completion is reported through the observer and `onDone`. */
  invoke(name: string, version: number, onDone?: (r: SimulatedRequestResult) => void): void {
    const pool = this.#pool(name, version);
    const now = this.#clock.now();
    this.#observer.onRequestQueued?.({ name, version, at: now });
    const req: SimRequest = { arrivedAt: now, cold: false, onDone };
    const free = [...pool.instances.values()].find(
      (i) => (i.state === 'idle' || i.state === 'busy') && i.inflight < pool.model.config.concurrency,
    );
    if (free) return this.#run(pool, free, req);
    const c = pool.model.config.concurrency;
    const starting = [...pool.instances.values()].find((i) => i.state === 'starting' && i.waiting.length < c);
    if (starting) {
      starting.waiting.push(req);
      return;
    }
    const live = [...pool.instances.values()].filter((i) => i.state !== 'retiring').length;
    if (live < pool.model.config.maxInstances && this.#usedMb() + pool.model.memoryMb <= this.#memoryMb) {
      const inst = this.#start(pool);
      req.cold = true;
      inst.waiting.push(req);
      return;
    }
    pool.queue.push(req);
  }

  /** Simulates an instance dying (any state); requests waiting on it go back to the pool queue. */
  killInstance(name: string, version: number, instanceId: string): void {
    const pool = this.#pool(name, version);
    const inst = pool.instances.get(instanceId);
    if (!inst) return;
    pool.instances.delete(instanceId);
    pool.queue.unshift(...inst.waiting);
    this.#emit(pool, inst, 'gone');
  }

  // PoolControl

  pools(): PoolStatus[] {
    return [...this.#pools.values()].map((p) => ({
      name: p.model.name,
      version: p.model.version,
      config: p.model.config,
      memoryMb: p.model.memoryMb,
      instances: [...p.instances.values()].map((i): PoolInstanceView => ({
        id: i.id,
        state: i.state,
        lastUsedAt: i.lastUsedAt,
        createdAt: i.startedAt,
      })),
      queued: p.queue.length,
    }));
  }

  node(): NodeBudget {
    return { slots: this.#slots, memoryMb: this.#memoryMb, memoryUsedMb: this.#usedMb() };
  }

  startInstance(name: string, version: number): void {
    this.#start(this.#pool(name, version));
  }

  retireInstance(name: string, version: number, instanceId: string): void {
    const pool = this.#pool(name, version);
    const inst = pool.instances.get(instanceId);
    if (!inst || inst.state !== 'idle') return;
    pool.instances.delete(instanceId);
    this.#emit(pool, inst, 'gone');
  }

  // Internals

  #pool(name: string, version: number): SimPool {
    const p = this.#pools.get(`${name}@${version}`);
    if (!p) throw new RangeError(`model "${name}" version ${version}: not added to the simulation`);
    return p;
  }

  #usedMb(): number {
    let mb = 0;
    for (const p of this.#pools.values()) mb += p.instances.size * p.model.memoryMb;
    return mb;
  }

  #emit(pool: SimPool, inst: SimInstance, to: InstanceState | 'gone', from: InstanceState | 'none' = inst.state): void {
    if (to !== 'gone') inst.state = to;
    const m = pool.model;
    this.#observer.onInstanceState?.({
      name: m.name,
      version: m.version,
      instanceId: inst.id,
      from,
      to,
      memoryMb: m.memoryMb,
      at: this.#clock.now(),
    });
  }

  #start(pool: SimPool): SimInstance {
    const now = this.#clock.now();
    const inst: SimInstance = {
      id: `sim-${++this.#seq}`,
      state: 'starting',
      inflight: 0,
      startedAt: now,
      lastUsedAt: now,
      ran: false,
      waiting: [],
    };
    pool.instances.set(inst.id, inst);
    this.#emit(pool, inst, 'starting', 'none');
    this.#clock.setTimeout(() => {
      if (pool.instances.get(inst.id) !== inst) return;
      this.#emit(pool, inst, 'idle');
      inst.lastUsedAt = this.#clock.now();
      const waiting = inst.waiting.splice(0);
      for (const r of waiting) this.#run(pool, inst, r);
      this.#drain(pool, inst);
    }, pool.model.coldStartMs);
    return inst;
  }

  #drain(pool: SimPool, inst: SimInstance): void {
    while (pool.queue.length && inst.inflight < pool.model.config.concurrency && pool.instances.get(inst.id) === inst) {
      this.#run(pool, inst, pool.queue.shift()!);
    }
  }

  #run(pool: SimPool, inst: SimInstance, req: SimRequest): void {
    const m = pool.model;
    const start = this.#clock.now();
    inst.inflight++;
    if (inst.state !== 'busy') this.#emit(pool, inst, 'busy');
    const firstRun = !inst.ran;
    inst.ran = true;
    this.#clock.setTimeout(() => {
      const at = this.#clock.now();
      inst.inflight--;
      inst.lastUsedAt = at;
      this.#requests++;
      if (req.cold) this.#coldStarts++;
      const computeMs = at - start;
      this.#observer.onRun?.({ name: m.name, version: m.version, batchSize: 1, computeMs, at });
      this.#observer.onRequestDone?.({
        name: m.name,
        version: m.version,
        ok: true,
        queueMs: start - req.arrivedAt,
        computeMs,
        billedMs: Math.max(1, Math.ceil(computeMs)),
        memoryMb: m.memoryMb,
        batchSize: 1,
        coldStart: req.cold,
        coldStartMs: req.cold && firstRun ? at - inst.startedAt : undefined,
        at,
      });
      req.onDone?.({
        name: m.name,
        version: m.version,
        arrivedAt: req.arrivedAt,
        doneAt: at,
        coldStart: req.cold,
        queueMs: start - req.arrivedAt,
      });
      if (pool.instances.get(inst.id) !== inst) return;
      this.#drain(pool, inst);
      if (inst.inflight === 0 && inst.state === 'busy') this.#emit(pool, inst, 'idle');
    }, m.serviceMs);
  }
}

/**
 * Replays arrivals (sorted by `at`, clock ms) on a ManualClock: advances to each arrival, invokes it,
 * then advances to `until` so keep-alive and pending completions play out.
 */
export function replayTrace(
  clock: ManualClock,
  pools: SimulatedPools,
  arrivals: Iterable<{ at: number; name: string; version: number }>,
  until?: number,
): void {
  for (const a of arrivals) {
    if (a.at > clock.now()) clock.advance(a.at - clock.now());
    pools.invoke(a.name, a.version);
  }
  if (until !== undefined && until > clock.now()) clock.advance(until - clock.now());
}
