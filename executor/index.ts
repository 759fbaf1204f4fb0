// executor: the host side of inference. createExecutor() returns the Executor facade (executor/types.ts) over a
// private engine (executor/engine.ts): one pool per model version, instances on worker threads, CPU slots and a
// memory budget per node, pluggable scheduling strategies, dynamic batching and admission control.
//
// Request path: infer() -> admission (maxQueueSize -> 429 QUEUE_FULL + Retry-After; deadline -> 503 OVERLOADED;
// AbortSignal -> removed from the queue) -> the pool's Scheduler -> dispatch: whenever a CPU slot is free the pool
// whose head ranks highest runs next; its strategy places the head on an instance, asks for a cold start, or waits.
// Batchable models (see executor/batcher.ts) merge up to batching.maxBatchSize items with equal batch keys.
//
// Cold start: InferResult.coldStart is true for a request that was already waiting when the instance serving it
// became ready, and that instance's first run served it (an instance pre-warmed by load(), minInstances or the
// autoscaler serves its first request warm). breakdown: acquireMs (pre-spawned worker, or a boot) and fetchMs
// (artifact cache or store) run concurrently; then loadMs (session creation in the worker); firstRunMs is that
// first run; coldStartMs spans from the instance's creation to the end of its first run.
//
// Input buffers: infer() transfers each input typed array that spans its whole ArrayBuffer to the worker (it is
// detached on the caller's side afterwards); views into larger buffers (Node Buffer slabs) are copied first.
//
// Deadline: a request that sets none may wait in the queue (for a slot, memory or a starting instance) for
// `queueBudgetMs` (default 30 s) after its arrival; then it answers 503 OVERLOADED. A cold start never fails the
// first request for being "not ready": the request simply waits for the instance within that budget.
//
// For the autoscaler (scaling/autoscaler.ts): `executor.control` implements its PoolControl seam —
//   control.pools()                    per-pool snapshots: counts by state, queued, inflight, memoryMb, config,
//                                      rate, measured cold-start and service times, each instance's view
//   control.node()                     slots, memoryMb, memoryUsedMb (reserved), busySlots, peakSlots, heldSlots
//                                      and stuckRuns (below)
//   control.startInstance(n, v)        one more instance (pre-warm), if maxInstances and memory allow (may evict
//                                      other models' idle instances, least recently used first)
//   control.retireInstance(n, v, id)   retires that instance if it is idle
// The executor retires no idle instance on its own: the autoscaler applies each model's keep-alive policy through
// retireInstance. It does start instances for minInstances, and retires idle extras when maxInstances shrinks.
// Pools exist once a model version has been seen (infer or load). A pool belongs to one upload (name, version,
// sha256): a manifest with another sha256 for the same version retires it; unload and remove (a delete) drop pools,
// and after remove a request still carrying the deleted upload's manifest is refused (MODEL_NOT_FOUND /
// VERSION_NOT_FOUND) rather than starting it. With `currentManifest`, a new pool is made only for the registry's
// current upload of its version.
//
// Stuck runs: onnxruntime cannot interrupt a run, and terminate() cannot stop native code. An instance whose run
// passed its timeout ends at once (the request gets TIMEOUT), but its worker's core and memory stay counted (a held
// slot) until the native call returns; past a grace (stuckGraceMs) it is listed in control.node().stuckRuns and its
// model version answers MODEL_UNAVAILABLE at once until it returns. close() does not wait for such threads, and
// busyNativeThreads() tells the process that an exit must not wait for them either.
//
// Response size: a run's outputs past MAX_RESPONSE_BYTES per request (their bytes, or their JSON text as the
// instance prints it) fail RESPONSE_TOO_LARGE on the instance thread before anything is printed or sent back.
// Observer hooks (ExecutorObserver) fire for every request (queued, done with billedMs = ceil(runMs / batchSize)),
// every successful run, and every instance state change (from 'none' at creation to 'gone'). An observer that
// throws does not stop a request; its error goes to `log` (an optional pino-style logger, `warn(obj, msg)`).
import type { ConfigClamp, Manifest, ModelConfig } from '../core/index.ts';
import { Engine, type EngineOptions, type ExecutorControl } from './engine.ts';
import type { Executor, ExecutorObserver, InferRequest, InferResult, ModelStats } from './types.ts';

export type {
  CancelSignal,
  Executor,
  ExecutorLog,
  ExecutorObserver,
  InferRequest,
  InferResult,
  ModelStats,
  ColdStartBreakdown,
  InstanceState,
  RequestDoneEvent,
  StuckRun,
} from './types.ts';
export type { Scheduler, QueuedRequest, InstanceView, PoolView, Placement } from './scheduler.ts';
export type { ExecutorControl, PoolSnapshot } from './engine.ts';
export { createScheduler, availableStrategies, type SchedulerFactory, type SchedulerContext } from './strategies/index.ts';
export { defaultMemoryMb } from './node-resources.ts';
export { batchLayoutOf, isBatchable } from './batcher.ts';

/** The engine's options less its test-only worker-entry override (documented field by field in engine.ts). */
export type CreateExecutorOptions = Omit<EngineOptions, 'workerEntry'>;

export interface HearthExecutor extends Executor {
  /** The autoscaler's handle on the pools (see the header of this file). */
  readonly control: ExecutorControl;
  /** Resolves when the pre-spawned workers have booted. */
  prewarmed(): Promise<void>;
  /** Replaces the observer (e.g. with a fan-out to the autoscaler, cost ledger and metrics built later). */
  setObserver(observer: ExecutorObserver): void;
}

class ExecutorFacade implements HearthExecutor {
  #engine: Engine;
  readonly control: ExecutorControl;
  constructor(engine: Engine) {
    this.#engine = engine;
    this.control = engine.control;
  }
  infer(req: InferRequest): Promise<InferResult> {
    return this.#engine.infer(req);
  }
  load(manifest: Manifest): Promise<void> {
    return this.#engine.load(manifest);
  }
  unload(name: string, version?: number): Promise<void> {
    return this.#engine.unload(name, version);
  }
  remove(name: string, version?: number): Promise<void> {
    return this.#engine.remove(name, version);
  }
  checkConfig(config: ModelConfig): void {
    this.#engine.checkConfig(config);
  }
  busyNativeThreads(): number {
    return this.#engine.busyNativeThreads();
  }
  isLoaded(name: string, version: number): boolean {
    return this.#engine.isLoaded(name, version);
  }
  stats(filter?: { name?: string; version?: number }): ModelStats[] {
    return this.#engine.stats(filter);
  }
  setConfig(name: string, config: ModelConfig): void {
    this.#engine.setConfig(name, config);
  }
  fitConfig(manifest: Manifest, config: ModelConfig): { config: ModelConfig; clamped: ConfigClamp[] } {
    return this.#engine.fitConfig(manifest, config);
  }
  close(): Promise<void> {
    return this.#engine.close();
  }
  prewarmed(): Promise<void> {
    return this.#engine.prewarmed();
  }
  setObserver(observer: ExecutorObserver): void {
    this.#engine.setObserver(observer);
  }
}

export function createExecutor(opts: CreateExecutorOptions): HearthExecutor {
  return new ExecutorFacade(new Engine(opts));
}
