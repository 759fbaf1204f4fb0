// One pool per model version: its queue (a Scheduler), its instances, the requests waiting in it, its
// counters and its measured cold-start and service times. The engine (executor/engine.ts) moves work
// between pools; this file holds what one pool knows about itself.
import { fitModelConfig, type Clock, type ConfigClamp, type Manifest, type ModelConfig, type NodeCapacity } from '../core/index.ts';
import { batchLayoutOf, type BatchLayout } from './batcher.ts';
import type { Instance } from './instance.ts';
import { instanceMemoryMb } from './node-resources.ts';
import type { QueuedRequest, Scheduler } from './scheduler.ts';
import { createScheduler } from './strategies/index.ts';
import type { InferRequest, InferResult, InstanceState, ModelStats } from './types.ts';
import { ChurnMap } from './churn-map.ts';

/** A request waiting in a pool, with what it takes to answer it. */
export interface Waiting {
  q: QueuedRequest;
  req: InferRequest;
  resolve: (r: InferResult) => void;
  reject: (e: unknown) => void;
  deadlineTimer: unknown;
  onAbort?: () => void;
}

const EWMA_ALPHA = 0.2;

export class ModelPool {
  /** `name@version`: what the autoscaler, stats and messages call it. */
  readonly key: string;
  /** `name@version#sha256`: the upload it serves; another upload of the same version gets another pool. */
  readonly artifact: string;
  readonly manifest: Manifest;
  /** The serving config as stored (what was asked). */
  requested: ModelConfig;
  /** The config this node applies: `requested` clamped to its cores, slots and memory (fitModelConfig). */
  config: ModelConfig;
  /** What the clamp changed; empty when the requested config fits. */
  clamped: ConfigClamp[] = [];
  /** The clamps last logged (the engine warns once per change). */
  warned = '';
  scheduler: Scheduler;
  /** Where each tensor keeps its batch axis; undefined when the model cannot batch. */
  readonly layout: BatchLayout | undefined;
  readonly instances = new Map<string, Instance>();
  /** Queued requests by id; a ChurnMap because ids come and go all the time (see churn-map.ts). */
  readonly waiting = new ChurnMap<number, Waiting>();
  readonly rate = new ArrivalRate();
  readonly stats: ModelStats;
  /** Callers of load() waiting for an instance to become ready. */
  readyWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  /** Timer that re-runs dispatch when a batching delay (maxQueueDelayMs) ends. */
  delayTimer: unknown;
  /** Taken out of the engine (its model deleted or replaced, or unloaded): it starts no instance again. */
  dropped = false;
  /** Why its model is refused on this node (a stuck run of it), while it is. */
  quarantine: string | undefined;
  /** Its ended instances whose workers are still inside a native call (it starts no new one meanwhile). */
  draining = 0;
  #clock: Clock;
  #capacity: NodeCapacity;
  #coldStartMs: number | undefined;
  #serviceMs: number | undefined;
  /** RSS growth of the last instance load measured alone (no other load overlapping), in MB. */
  #measuredMb: number | undefined;

  constructor(manifest: Manifest, requested: ModelConfig, clock: Clock, capacity: NodeCapacity) {
    this.key = `${manifest.name}@${manifest.version}`;
    this.artifact = `${this.key}#${manifest.sha256}`;
    this.manifest = manifest;
    this.requested = requested;
    this.#capacity = capacity;
    this.config = this.#fit();
    this.#clock = clock;
    this.layout = batchLayoutOf(manifest);
    this.scheduler = createScheduler(this.config.scheduling.strategy, { poolKey: this.key, config: this.config, clock });
    this.stats = {
      name: manifest.name,
      version: manifest.version,
      lastInference: 0,
      inferenceCount: 0,
      executionCount: 0,
      success: { count: 0, ns: 0 },
      fail: { count: 0, ns: 0 },
      queue: { count: 0, ns: 0 },
      computeInfer: { count: 0, ns: 0 },
      computeInput: { count: 0, ns: 0 },
      computeOutput: { count: 0, ns: 0 },
      coldStarts: 0,
      coldStartNs: 0,
      bySource: { online: 0, batch: 0 },
    };
  }

  /** Memory one instance reserves: the model's footprint (measured, else estimated), or the declared memoryMb if larger. */
  get memoryMb(): number {
    return instanceMemoryMb(this.manifest.sizeBytes, this.requested.memoryMb, this.#measuredMb);
  }

  get measuredMb(): number | undefined {
    return this.#measuredMb;
  }

  /** The RSS growth of an instance load measured alone; answers true when it changed the reservation (and refits). */
  recordFootprint(mb: number): boolean {
    const before = this.memoryMb;
    this.#measuredMb = mb;
    if (this.memoryMb === before) return false;
    this.config = this.#fit();
    return true;
  }

  #fit(): ModelConfig {
    const { config, clamped } = fitModelConfig(this.requested, this.#capacity, this.memoryMb);
    this.clamped = clamped;
    return config;
  }

  /** Most request items merged into one run; 1 when the model cannot batch or batching is off. */
  get maxBatchItems(): number {
    return this.layout && this.config.batching.maxBatchSize > 1 ? this.config.batching.maxBatchSize : 1;
  }

  /** Measured time from instance start to ready (moving average); before the first, a guess from the size. */
  get coldStartMs(): number {
    return this.#coldStartMs ?? 150 + this.manifest.sizeBytes / 50_000; // ~50 MB/s load
  }

  /** Measured run time (moving average). */
  get serviceMs(): number {
    return this.#serviceMs ?? 5;
  }

  recordColdStart(ms: number): void {
    this.#coldStartMs = this.#coldStartMs === undefined ? ms : this.#coldStartMs + EWMA_ALPHA * (ms - this.#coldStartMs);
  }

  recordService(ms: number): void {
    this.#serviceMs = this.#serviceMs === undefined ? ms : this.#serviceMs + EWMA_ALPHA * (ms - this.#serviceMs);
  }

  /** Instances that count toward maxInstances (everything not on its way out). */
  liveInstances(): Instance[] {
    return [...this.instances.values()].filter((i) => i.state !== 'retiring');
  }

  countByState(): Record<InstanceState, number> {
    const c = { starting: 0, idle: 0, busy: 0, retiring: 0 };
    for (const i of this.instances.values()) c[i.state]++;
    return c;
  }

  /** Applies a new serving config (clamped to the node); a new strategy takes over the queued requests in their order. */
  applyConfig(requested: ModelConfig): void {
    const old = this.config;
    this.requested = requested;
    const config = (this.config = this.#fit());
    for (const i of this.instances.values()) i.concurrency = config.concurrency;
    if (config.scheduling.strategy !== old.scheduling.strategy) {
      const next = createScheduler(config.scheduling.strategy, { poolKey: this.key, config, clock: this.#clock });
      const now = this.#clock.now();
      while (this.scheduler.size > 0) {
        const taken = this.scheduler.take(now, Number.MAX_SAFE_INTEGER);
        if (taken.length === 0) break;
        for (const q of taken) next.enqueue(q);
      }
      this.scheduler = next;
    }
  }
}

/** Arrivals per second over the last 60 s (stable) and 6 s (recent), counted in 1 s buckets. */
export class ArrivalRate {
  #buckets = new Map<number, number>();
  recordArrival(at: number): void {
    const b = Math.floor(at / 1000);
    this.#buckets.set(b, (this.#buckets.get(b) ?? 0) + 1);
    if (this.#buckets.size > 64) for (const k of this.#buckets.keys()) if (k < b - 60) this.#buckets.delete(k);
  }
  #rate(now: number, seconds: number): number {
    const last = Math.floor(now / 1000);
    let n = 0;
    for (const [k, c] of this.#buckets) if (k > last - seconds && k <= last) n += c;
    return n / seconds;
  }
  stableRate(now: number): number {
    return this.#rate(now, 60);
  }
  panicRate(now: number): number {
    return this.#rate(now, 6);
  }
}
