// The executor's private engine: admission, the dispatch loop over every pool (CPU slots to the pool whose head
// ranks highest, memory to cold starts with LRU eviction of other models' idle instances), instance start-up
// and retirement, keep-alive, counters and observer hooks. executor/index.ts is its public facade.
import os from 'node:os';
import {
  defaultModelConfig,
  describeClamps,
  elementCount,
  fitModelConfig,
  hearthError,
  isHearthError,
  type Clock,
  type Config,
  type ErrorCode,
  type HearthError,
  type InputTensor,
  isDeferred,
  shown,
  type Manifest,
  type ConfigClamp,
  type ModelConfig,
  type NodeCapacity,
  type PrintedTensor,
  type Tensor,
} from '../core/index.ts';
import type { PrintPlan } from '../functions/print-outputs.ts';
import type { LoadMessageOptions } from '../functions/protocol.ts';
import { tensorBytes } from '../functions/tensor-transfer.ts';
import type { ArtifactSource } from '../model-store/artifact-cache.ts';
import { batchSignature, mergeRequests, splitOutputs } from './batcher.ts';
import { Instance } from './instance.ts';
import { ModelPool, type Waiting } from './model-pool.ts';
import { instanceMemoryMb, NodeResources } from './node-resources.ts';
import type { PoolView, QueuedRequest } from './scheduler.ts';
import type { CancelSignal, ExecutorObserver, InferRequest, InferResult, InstanceState, ModelStats, StuckRun } from './types.ts';
import { WorkerPool } from './worker-pool.ts';

export interface EngineOptions {
  config: Readonly<Config>;
  clock: Clock;
  artifacts: ArtifactSource;
  getConfig: (name: string) => Promise<ModelConfig>;
  observer?: ExecutorObserver;
  /** Lets LoadOptions.runtime = 'fault' through to the workers. Tests only. */
  allowTestRuntimes?: boolean;
  /** Extra load options per model (tests use it to pick the fault runtime). */
  loadOptions?: (manifest: Manifest) => Partial<LoadMessageOptions> | undefined;
  /**
   * Longest a request may wait in the queue (for a slot, memory or a starting instance) when the caller sets no
   * deadline. Default 30 s.
   */
  queueBudgetMs?: number;
  /** Longest a model load may take. Default 120 s. */
  loadTimeoutMs?: number;
  /**
   * 'executor' (default): an idle instance retires after its model's keep-alive (fixed idleMs; for the
   * histogram policy, its fallbackIdleMs). 'external': the autoscaler retires instances through control.
   */
  keepAlive?: 'executor' | 'external';
  /** Worker entry override (tests). */
  workerEntry?: URL;
  /** CPU cores the node counts (the cap on a session's op threads). Default os.availableParallelism(). */
  cores?: number;
  /** Where warnings go (a stored serving config clamped to this node, a stuck run); the gateway passes its logger. */
  log?: { warn(msg: string): void };
  /**
   * The manifest the registry holds now for a version (throws MODEL_NOT_FOUND / VERSION_NOT_FOUND). Pools are made
   * only for the current upload: a request still carrying the manifest of a deleted or replaced one (a job chunk
   * that read it earlier, another node's manifest cache) is refused instead of starting instances of it. Absent:
   * manifests are trusted (tests).
   */
  currentManifest?: (name: string, version: number) => Promise<Manifest>;
  /**
   * How long a worker may stay inside a native call after its instance ended (a run past its timeout) before it
   * counts as stuck: listed, and its model version refused on this node until it returns. Default 2000 ms.
   */
  stuckGraceMs?: number;
  /** Longest close() waits for native calls in flight to return. Default config.limits.shutdownTimeoutMs. */
  closeTimeoutMs?: number;
}

/** One pool as the autoscaler and /v1/status see it; structurally a superset of the autoscaler's PoolStatus. */
export interface PoolSnapshot {
  key: string;
  name: string;
  version: number;
  config: Readonly<ModelConfig>;
  /** Memory one instance of this pool reserves. */
  memoryMb: number;
  /** Requests waiting in the queue. */
  queued: number;
  counts: Record<InstanceState, number>;
  inflight: number;
  ratePerSec: number;
  coldStartMs: number;
  serviceMs: number;
  instances: { id: string; state: InstanceState; inflight: number; lastUsedAt: number; idleSince: number; createdAt: number; memoryMb: number }[];
}

/** What the autoscaler drives (structurally its PoolControl) plus a few extras for status pages and tests. */
export interface ExecutorControl {
  pools(): PoolSnapshot[];
  pool(name: string, version: number): PoolSnapshot | undefined;
  node(): { slots: number; memoryMb: number; memoryUsedMb: number; busySlots: number; peakSlots: number; heldSlots: number; stuckRuns: StuckRun[] };
  /** Starts one more instance of the pool (a cold start, or a pre-warm) if maxInstances and memory allow. */
  startInstance(name: string, version: number): void;
  /** Retires that instance if it is idle. */
  retireInstance(name: string, version: number, instanceId: string): void;
  /** Retires the pool's longest-idle instance; false when none is idle. */
  retireIdleInstance(name: string, version: number): boolean;
  /** Starts or retires (idle only) instances until the pool has `n` live ones, within min/maxInstances and memory. */
  scaleTo(name: string, version: number, n: number): { started: number; retired: number };
}

const DEFAULT_PRIORITY = 5;
const STUCK_GRACE_MS = 2000;
/** Deleted uploads remembered (tombstones), and unloaded pools whose counters and footprint are kept, each at most. */
const MAX_REMEMBERED = 10_000;

/**
 * A worker still inside a native call after its instance ended (Instance.drainingNative): it cannot be stopped, so
 * its core (a held slot) and its memory stay counted until it returns; past the grace it is a stuck run.
 */
interface NativeHold {
  pool: ModelPool;
  inst: Instance;
  kind: 'run' | 'load';
  since: number;
  stuck: boolean;
  timer: unknown;
}

/** One upload of a version: name, version and content (a re-upload of the same name and version is another). */
function artifactOf(m: Manifest): string {
  return `${m.name}@${m.version}#${m.sha256}`;
}

/** The same, down to the upload: a re-upload of the very same bytes has another createdAt. */
function uploadOf(m: Manifest): string {
  return `${artifactOf(m)}@${m.createdAt}`;
}

/** Adds to a map used as a bounded memo: past MAX_REMEMBERED, the oldest entry goes. */
function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value as K);
}

function abortError(signal: CancelSignal): unknown {
  return signal.reason ?? new DOMException('The request was aborted', 'AbortError');
}

export class Engine {
  #o: EngineOptions;
  #clock: Clock;
  #node: NodeResources;
  #capacity: NodeCapacity;
  /** Instance loads in progress, and a count of those begun: a load is measured only when it ran alone. */
  #loading = 0;
  #loadsBegun = 0;
  #workers: WorkerPool;
  #observer: ExecutorObserver;
  /** The pool of each `name@version`: it belongs to one upload (ModelPool.artifact); another one retires it. */
  #pools = new Map<string, ModelPool>();
  /** Pools being made, by upload. */
  #poolInit = new Map<string, Promise<ModelPool>>();
  #configs = new Map<string, ModelConfig | Promise<ModelConfig>>();
  /** Uploads deleted (uploadOf), with the code a request still carrying their manifest gets. */
  #deleted = new Map<string, ErrorCode>();
  /** Bumped by every delete: a pool made across one checks its upload again. */
  #deletes = 0;
  /**
   * What an unloaded pool knew, by `name@version`: its counters (the statistics still show them) and its measured
   * footprint, both taken up again when a pool of the same upload is made.
   */
  #unloaded = new Map<string, { artifact: string; stats: ModelStats; measuredMb: number | undefined }>();
  /** Workers inside native calls whose instances ended (see NativeHold). */
  #holds = new Map<Instance, NativeHold>();
  /** Every instance whose worker has not ended yet (dropped pools' and held ones included). */
  #alive = new Set<Instance>();
  /** Artifacts refused on this node while a stuck run of them lasts: how many, and why. */
  #quarantine = new Map<string, { count: number; reason: string }>();
  #keepAliveTimers = new Map<Instance, unknown>();
  #seq = 0;
  #pumping = false;
  #pumpAgain = false;
  #pumpScheduled = false;
  #closed = false;

  constructor(o: EngineOptions) {
    this.#o = o;
    this.#clock = o.clock;
    this.#observer = guarded(o.observer ?? {});
    this.#node = new NodeResources({ slots: o.config.executor.slots, memoryMb: o.config.executor.memoryMb });
    this.#capacity = Object.freeze({ cores: o.cores ?? os.availableParallelism(), slots: o.config.executor.slots, memoryMb: o.config.executor.memoryMb });
    this.#workers = new WorkerPool({
      size: o.config.executor.prewarmWorkers,
      workerData: { allowTestRuntimes: !!o.allowTestRuntimes, preload: ['onnx'] },
      clock: o.clock,
      ...(o.workerEntry ? { entry: o.workerEntry } : {}),
    });
    // Background: the first cold start finds a booted worker when this has finished.
    this.#workers.fill().catch(() => {});
  }

  /** Resolves when the pre-spawned workers are booted (tests and benchmarks wait for it). */
  prewarmed(): Promise<void> {
    return this.#workers.fill();
  }

  setObserver(observer: ExecutorObserver): void {
    this.#observer = guarded(observer);
  }

  // ---- requests -------------------------------------------------------------------------------------------

  async infer(req: InferRequest): Promise<InferResult> {
    const arrivedAt = this.#clock.now();
    if (this.#closed) throw hearthError('OVERLOADED', 'the executor is shutting down');
    const pool = await this.#livePool(req.manifest);
    const { name, version } = req.manifest;
    const priority = req.priority ?? (req.source === 'batch' ? 0 : DEFAULT_PRIORITY);
    if (!Number.isInteger(priority) || priority < 0 || priority > 9) {
      throw hearthError('INVALID_REQUEST', `priority: expected an integer in [0, 9], got ${req.priority}`);
    }
    this.#observer.onRequestQueued?.({ name, version, at: arrivedAt });
    pool.rate.recordArrival(arrivedAt);
    const refused = this.#refusal(pool);
    if (refused) {
      this.#finishFailed(pool, arrivedAt, 'REJECTED', refused);
      throw refused;
    }
    if (req.signal?.aborted) {
      this.#finishFailed(pool, arrivedAt, 'CANCELED', undefined);
      throw abortError(req.signal);
    }
    if (pool.scheduler.size >= pool.config.maxQueueSize) {
      const live = Math.max(1, pool.liveInstances().length * pool.config.concurrency);
      const retryAfter = Math.max(1, Math.ceil((pool.scheduler.size * pool.serviceMs) / live / pool.maxBatchItems / 1000));
      const err = hearthError('QUEUE_FULL', `model ${pool.key}: ${pool.scheduler.size} requests are queued (maxQueueSize ${pool.config.maxQueueSize}); retry after ${retryAfter} s`, {
        headers: { 'Retry-After': String(retryAfter) },
      });
      this.#finishFailed(pool, arrivedAt, 'REJECTED', err);
      throw err;
    }
    try {
      checkTensorData(req.inputs);
    } catch (e) {
      this.#finishFailed(pool, arrivedAt, 'REJECTED', e as HearthError);
      throw e;
    }
    const deadline = req.deadline ?? arrivedAt + (this.#o.queueBudgetMs ?? 30_000);
    if (deadline <= arrivedAt) {
      const err = hearthError('OVERLOADED', `model ${pool.key}: the request's deadline had passed when it arrived`);
      this.#finishFailed(pool, arrivedAt, 'REJECTED', err);
      throw err;
    }
    const sig = pool.maxBatchItems > 1 && pool.layout ? batchSignature(pool.layout, req.inputs) : { key: '', items: 1 };
    const q: QueuedRequest = { id: ++this.#seq, poolKey: pool.key, priority, arrivedAt, deadline, batchKey: sig.key, items: sig.items };
    return new Promise<InferResult>((resolve, reject) => {
      const w: Waiting = { q, req, resolve, reject, deadlineTimer: undefined };
      w.deadlineTimer = this.#clock.setTimeout(() => this.#expire(pool, w), deadline - arrivedAt);
      if (req.signal) {
        // A bound method, not an arrow function over a block-scoped const: with the arrow, V8's young-generation
        // GC kept about 2.2 MB of finished requests alive at every scavenge (promoted, then freed only by full
        // GCs), and scavenge pauses on the HTTP thread went from about 1.3 to 3.7 ms at c=16. Reproduced outside
        // Hearth in 30 lines, where V8's allocation-site pretenuring is the mechanism; the bound form keeps nothing.
        w.onAbort = this.#cancel.bind(this, pool, w);
        req.signal.addEventListener('abort', w.onAbort, { once: true });
      }
      pool.waiting.set(q.id, w);
      pool.scheduler.enqueue(q);
      this.#schedulePump();
    });
  }

  /** A queued request whose client went away (its signal aborted) leaves the queue. */
  #cancel(pool: ModelPool, w: Waiting): void {
    if (!this.#unqueue(pool, w)) return;
    this.#finishFailed(pool, w.q.arrivedAt, 'CANCELED', undefined);
    w.reject(abortError(w.req.signal!));
    this.#pump();
  }

  #expire(pool: ModelPool, w: Waiting): void {
    if (!this.#unqueue(pool, w)) return;
    const waited = Math.round(this.#clock.now() - w.q.arrivedAt);
    const err = hearthError('OVERLOADED', `model ${pool.key}: no instance, CPU slot or memory became free within the request's deadline (waited ${waited} ms)`);
    this.#finishFailed(pool, w.q.arrivedAt, 'REJECTED', err);
    w.reject(err);
    this.#pump();
  }

  /** Takes a waiting request out of its pool; false when it already left (running or answered). */
  #unqueue(pool: ModelPool, w: Waiting): boolean {
    if (!pool.waiting.delete(w.q.id)) return false;
    pool.scheduler.remove(w.q);
    this.#detach(w);
    return true;
  }

  #detach(w: Waiting): void {
    this.#clock.clearTimeout(w.deadlineTimer);
    if (w.onAbort) w.req.signal?.removeEventListener('abort', w.onAbort);
  }

  /** Counts a request that never ran. */
  #finishFailed(pool: ModelPool, arrivedAt: number, reason: 'REJECTED' | 'CANCELED' | 'OTHER', err: HearthError | undefined): void {
    const now = this.#clock.now();
    pool.stats.fail.count++;
    pool.stats.fail.ns += Math.round((now - arrivedAt) * 1e6);
    this.#observer.onRequestDone?.({
      name: pool.manifest.name,
      version: pool.manifest.version,
      ok: false,
      reason,
      ...(err ? { code: err.code } : {}),
      queueMs: now - arrivedAt,
      computeMs: 0,
      billedMs: 0,
      memoryMb: pool.memoryMb,
      batchSize: 0,
      coldStart: false,
      at: now,
    });
  }

  // ---- dispatch -------------------------------------------------------------------------------------------

  /**
   * Dispatch for new arrivals runs once per event-loop turn (setImmediate), not inside infer(): every request
   * decoded in the same I/O turn is queued first, so they can join one batch instead of the first one running
   * alone. Completions and timers still pump at once (they free capacity that queued work is waiting for).
   */
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /** Runs the dispatch loop; re-entrant calls (from callbacks inside it) make it loop once more. */
  #pump(): void {
    if (this.#closed) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        this.#dispatch();
        this.#keepMinimum();
      } while (this.#pumpAgain);
    } finally {
      this.#pumping = false;
    }
  }

  #dispatch(): void {
    // Bounded: each pass either runs a batch, starts an instance, or stops.
    for (let guard = 0; guard < 100_000; guard++) {
      const now = this.#clock.now();
      const ranked: { pool: ModelPool; rank: number }[] = [];
      for (const pool of this.#pools.values()) if (pool.scheduler.size > 0) ranked.push({ pool, rank: 0 });
      if (ranked.length === 0) return;
      // Ranking only matters when pools compete for the node.
      if (ranked.length > 1) {
        for (const r of ranked) r.rank = r.pool.scheduler.rank(this.#view(r.pool, now), now);
        ranked.sort((a, b) => b.rank - a.rank);
      }
      let progressed = false;
      for (const { pool } of ranked) {
        if (this.#holdForBatch(pool, now)) continue;
        const placement = pool.scheduler.place(this.#view(pool, now), now);
        if (placement.kind === 'run') {
          // No free slot: this pool waits, but others may still need a cold start (that takes no slot).
          if (this.#node.freeSlots <= 0) continue;
          const inst = pool.instances.get(placement.instanceId);
          if (!inst || (inst.state !== 'idle' && inst.state !== 'busy') || inst.inflight >= inst.concurrency) continue;
          this.#runBatch(pool, inst, now);
          progressed = true;
          break;
        }
        if (placement.kind === 'cold-start' && this.#startInstance(pool)) {
          progressed = true;
          break;
        }
      }
      if (!progressed) return;
    }
  }

  /** The scheduler's view of a pool; canGrow is computed only if the strategy asks (it scans every pool). */
  #view(pool: ModelPool, now: number): PoolView {
    const engine = this;
    let canGrow: boolean | undefined;
    return {
      key: pool.key,
      instances: [...pool.instances.values()],
      maxInstances: pool.config.maxInstances,
      coldStartMs: pool.coldStartMs,
      serviceMs: pool.serviceMs,
      ratePerSec: pool.rate.panicRate(now),
      maxBatchItems: pool.maxBatchItems,
      get canGrow() {
        return (canGrow ??= engine.#canGrow(pool));
      },
    };
  }

  /** maxQueueDelayMs: a batchable pool may hold its head briefly for more requests to join it. */
  #holdForBatch(pool: ModelPool, now: number): boolean {
    const delay = pool.config.batching.maxQueueDelayMs;
    if (delay <= 0 || pool.maxBatchItems <= 1 || pool.scheduler.size >= pool.maxBatchItems) return false;
    const head = pool.scheduler.peek(now);
    if (!head || head.batchKey === '' || now >= head.arrivedAt + delay) return false;
    if (pool.delayTimer === undefined) {
      pool.delayTimer = this.#clock.setTimeout(() => {
        pool.delayTimer = undefined;
        this.#pump();
      }, head.arrivedAt + delay - now);
    }
    return true;
  }

  #runBatch(pool: ModelPool, inst: Instance, now: number): void {
    const taken = pool.scheduler.take(now, pool.maxBatchItems);
    const batch: Waiting[] = [];
    for (const q of taken) {
      const w = pool.waiting.get(q.id);
      if (!w) continue;
      pool.waiting.delete(q.id);
      this.#detach(w);
      batch.push(w);
    }
    if (batch.length === 0) return;
    this.#node.takeSlot();
    this.#clearKeepAlive(inst);
    // The instance's first run is its cold start's; a request counts as cold when it was already waiting
    // before the instance became ready (one pre-warmed by load() or the autoscaler serves warm).
    const firstRun = inst.runs === 0;
    const coldOf = (w: Waiting) => firstRun && w.q.arrivedAt < inst.readyAt;
    const cold = batch.some(coldOf);
    let inputs: InputTensor[];
    let offsets: number[] | undefined;
    let outputNames: string[] | undefined;
    try {
      if (batch.length === 1) {
        inputs = batch[0].req.inputs;
        outputNames = batch[0].req.outputs;
      } else {
        const merged = mergeRequests(
          batch.map((w) => w.req.inputs),
          pool.layout,
        );
        inputs = merged.inputs;
        offsets = merged.offsets;
        outputNames = unionOutputs(batch);
      }
    } catch (e) {
      this.#node.releaseSlot();
      for (const w of batch) this.#failRun(pool, w, e, now, 0, 1, inst, coldOf(w));
      return;
    }
    const startedAt = now;
    const maxResponseBytes = this.#o.config.limits.maxResponseBytes;
    inst.run(inputs, outputNames, pool.config.timeoutMs, printPlan(batch, offsets, pool), { maxBytes: maxResponseBytes, requests: batch.length }).then(
      (r) => {
        this.#node.releaseSlot();
        const end = this.#clock.now();
        const computeMs = r.computeMs;
        pool.stats.executionCount++;
        // An instance's first run pays one-time warm-up (the session's first run, a fresh thread's cold JIT):
        // measured over HTTP, 28-41 ms for silero's first batch of 16 against 4-6 ms for the next full ones. In
        // the run-time average it made a busy instance look slower than a cold start, and the growth rule
        // (batchAbsorbs) started a second instance that only split the batches.
        if (!firstRun) pool.recordService(computeMs);
        this.#observer.onRun?.({ name: pool.manifest.name, version: pool.manifest.version, batchSize: batch.length, computeMs, at: end, firstRun });
        let perRequest: Tensor[][];
        try {
          perRequest = offsets ? splitOutputs(r.outputs, offsets, pool.layout) : [r.outputs];
        } catch (e) {
          for (const w of batch) this.#failRun(pool, w, e, startedAt, computeMs, batch.length, inst, coldOf(w));
          return;
        }
        let coldStartMs: number | undefined;
        if (cold) {
          coldStartMs = end - inst.createdAt;
          pool.stats.coldStarts++;
          pool.stats.coldStartNs += Math.round(coldStartMs * 1e6);
        }
        // Requests whose deferred inputs did not parse on the instance: their rows ran as zeros; they fail alone.
        const failedAt = r.failed ? new Map(r.failed.map((f) => [f.request, f])) : undefined;
        for (let i = 0; i < batch.length; i++) {
          const w = batch[i];
          const wCold = coldOf(w);
          const f = failedAt?.get(i);
          if (f) {
            this.#failRun(pool, w, hearthError(f.code, f.message), startedAt, computeMs, batch.length, inst, wCold);
            continue;
          }
          const queueMs = startedAt - w.q.arrivedAt;
          const printed = r.printed?.[i];
          const outputs = selectOutputs(perRequest[i], w.req.outputs, w.req.printOutputs);
          // The instance bounded the run's bytes and each request's text; a request's own share is checked here.
          const bytes = responseBytes(outputs, printed);
          if (bytes > maxResponseBytes) {
            const err = hearthError('RESPONSE_TOO_LARGE', `the outputs take ${bytes} bytes, more than MAX_RESPONSE_BYTES (${maxResponseBytes} bytes); ask for less`);
            this.#failRun(pool, w, err, startedAt, computeMs, batch.length, inst, wCold);
            continue;
          }
          const result: InferResult = { outputs, ...(printed ? { printed } : {}), coldStart: wCold, queueMs, computeMs, batchSize: batch.length };
          if (wCold && inst.timings) {
            result.coldStartMs = coldStartMs;
            result.breakdown = { ...inst.timings, firstRunMs: computeMs };
          }
          const s = pool.stats;
          s.inferenceCount++;
          s.lastInference = Date.now();
          s.success.count++;
          s.success.ns += Math.round((end - w.q.arrivedAt) * 1e6);
          s.queue.count++;
          s.queue.ns += Math.round(queueMs * 1e6);
          s.computeInfer.count++;
          // The three parts add up to the run as the host saw it (thread hop counted in compute_infer).
          s.computeInfer.ns += Math.round(Math.max(0, computeMs - r.inputMs - r.outputMs) * 1e6);
          s.computeInput.count++;
          s.computeInput.ns += Math.round(r.inputMs * 1e6);
          s.computeOutput.count++;
          s.computeOutput.ns += Math.round(r.outputMs * 1e6);
          s.bySource![w.req.source === 'batch' ? 'batch' : 'online']++;
          this.#observer.onRequestDone?.({
            name: pool.manifest.name,
            version: pool.manifest.version,
            ok: true,
            queueMs,
            computeMs,
            billedMs: Math.max(1, Math.ceil(computeMs / batch.length)),
            memoryMb: inst.memoryMb,
            batchSize: batch.length,
            coldStart: wCold,
            ...(wCold && coldStartMs !== undefined ? { coldStartMs } : {}),
            at: end,
          });
          w.resolve(result);
        }
        this.#pump();
      },
      (e) => {
        this.#node.releaseSlot();
        const ranMs = this.#clock.now() - startedAt;
        for (const w of batch) this.#failRun(pool, w, e, startedAt, ranMs, batch.length, inst, coldOf(w));
        this.#pump();
      },
    );
  }

  #failRun(pool: ModelPool, w: Waiting, e: unknown, startedAt: number, ranMs: number, batchSize: number, inst: Instance, cold: boolean): void {
    const now = this.#clock.now();
    const err = isHearthError(e) ? e : hearthError('INTERNAL', (e as Error)?.message ?? String(e), { cause: e });
    pool.stats.fail.count++;
    pool.stats.fail.ns += Math.round((now - w.q.arrivedAt) * 1e6);
    this.#observer.onRequestDone?.({
      name: pool.manifest.name,
      version: pool.manifest.version,
      ok: false,
      reason: err.code === 'INSTANCE_FAILED' || err.code === 'TIMEOUT' ? 'BACKEND' : 'OTHER',
      code: err.code,
      queueMs: startedAt - w.q.arrivedAt,
      computeMs: ranMs,
      // Time an instance spent on the request is billed even when it failed (Lambda bills timeouts).
      billedMs: ranMs > 0 ? Math.max(1, Math.ceil(ranMs / batchSize)) : 0,
      memoryMb: inst.memoryMb,
      batchSize,
      coldStart: cold,
      at: now,
    });
    w.reject(err);
  }

  // ---- instances ------------------------------------------------------------------------------------------

  /** Memory an instance of `pool` could get now, evicting other models' idle instances if need be. */
  #canGrow(pool: ModelPool): boolean {
    if (pool.liveInstances().length >= pool.config.maxInstances) return false;
    const need = pool.memoryMb;
    if (this.#node.freeMb >= need) return true;
    let freeable = this.#node.freeMb;
    for (const v of this.#evictable(pool)) {
      freeable += v.memoryMb;
      if (freeable >= need) return true;
    }
    return false;
  }

  /** Idle instances of other pools above their minInstances, least recently used first. */
  #evictable(except: ModelPool): Instance[] {
    const out: Instance[] = [];
    for (const p of this.#pools.values()) {
      if (p === except) continue;
      const idle = [...p.instances.values()].filter((i) => i.state === 'idle' && i.inflight === 0);
      const spare = p.liveInstances().length - p.config.minInstances;
      idle.sort((a, b) => a.idleSince - b.idleSince);
      out.push(...idle.slice(0, Math.max(0, spare)));
    }
    return out.sort((a, b) => a.idleSince - b.idleSince);
  }

  /** Reserves memory (evicting if it must) and starts one instance; false when the node cannot hold it. */
  #startInstance(pool: ModelPool, opts: { evict?: boolean } = {}): boolean {
    if (this.#closed || pool.liveInstances().length >= pool.config.maxInstances) return false;
    // A dropped or refused pool starts nothing; nor one whose timed-out run is still inside onnxruntime (a request
    // that made one instance run for ever would make the next one do the same: wait for it to return or be stuck).
    if (pool.dropped || pool.quarantine !== undefined || pool.draining > 0 || pool.memoryMb > this.#node.memoryMb) return false;
    const need = pool.memoryMb;
    if (!this.#node.reserve(need)) {
      if (opts.evict === false || !this.#canGrow(pool)) return false;
      for (const v of this.#evictable(pool)) {
        if (this.#node.freeMb >= need) break;
        void v.retire();
      }
      if (!this.#node.reserve(need)) return false;
    }
    const inst = new Instance({
      manifest: pool.manifest,
      memoryMb: need,
      concurrency: pool.config.concurrency,
      clock: this.#clock,
      hooks: { onState: (i, from, to) => this.#onInstanceState(pool, i, from, to) },
    });
    pool.instances.set(inst.id, inst);
    this.#alive.add(inst);
    void inst.ended.then(() => this.#alive.delete(inst));
    void this.#boot(pool, inst);
    return true;
  }

  async #boot(pool: ModelPool, inst: Instance): Promise<void> {
    const t0 = this.#clock.now();
    const cfg = pool.config;
    try {
      // The thread and the artifact come in parallel: a cold start waits for the slower of the two.
      const acquiring = this.#workers.acquire();
      const fetching = this.#o.artifacts.ensure(pool.manifest);
      const [acq, art] = await Promise.all([acquiring, fetching]).catch(async (e) => {
        const a = await acquiring.catch(() => undefined);
        if (a) await this.#workers.terminate(a.worker);
        throw e;
      });
      if (inst.state !== 'starting') {
        await this.#workers.terminate(acq.worker);
        this.#startAbandoned(pool);
        return;
      }
      inst.attach(acq.worker, (w) => this.#workers.terminate(w));
      const options: LoadMessageOptions = {
        intraOpNumThreads: cfg.runtime.intraOpNumThreads,
        graphOptimizationLevel: cfg.runtime.graphOptimizationLevel,
        ...this.#o.loadOptions?.(pool.manifest),
      };
      // The load's RSS growth is the instance's footprint, when nothing else loaded meanwhile (a concurrent load or a
      // large request would be counted in). It replaces the size estimate in the reservation once it is larger.
      const alone = this.#loading++ === 0;
      const begun = ++this.#loadsBegun;
      const rss0 = process.memoryUsage.rss();
      let loaded: Awaited<ReturnType<Instance['load']>>;
      try {
        loaded = await inst.load(art.dir, options, this.#o.loadTimeoutMs ?? 120_000);
      } finally {
        this.#loading--;
      }
      if (alone && begun === this.#loadsBegun) this.#recordFootprint(pool, (process.memoryUsage.rss() - rss0) / 1024 ** 2);
      if (inst.state !== 'starting') {
        this.#startAbandoned(pool);
        return;
      }
      inst.timings = { acquireMs: acq.acquireMs, fetchMs: art.fetchMs, fetchSource: art.source, loadMs: loaded.loadMs };
      pool.recordColdStart(this.#clock.now() - t0);
      inst.ready(loaded);
      for (const r of pool.readyWaiters.splice(0)) r.resolve();
    } catch (e) {
      if (inst.abandoned || (inst.gone && inst.timings === undefined && this.#closed)) {
        this.#startAbandoned(pool);
        return;
      }
      const err = isHearthError(e) ? e : hearthError('INSTANCE_FAILED', `starting ${pool.key}: ${(e as Error)?.message ?? e}`, { cause: e });
      // The requests that were already waiting when this start began would only start the same failing load
      // again: they get its error instead. Later arrivals wait for (or trigger) the next attempt.
      {
        if (pool.liveInstances().every((i) => i === inst)) for (const r of pool.readyWaiters.splice(0)) r.reject(err);
        for (const w of [...pool.waiting.values()]) {
          if (w.q.arrivedAt > inst.createdAt || !this.#unqueue(pool, w)) continue;
          this.#finishFailed(pool, w.q.arrivedAt, 'OTHER', err);
          w.reject(err);
        }
      }
      if (!inst.gone) await inst.retire();
    }
    this.#pump();
  }

  /**
   * An instance was retired on purpose while starting (unload, shutdown): waiting requests get a fresh instance
   * from the pump; load() callers are told, unless another instance is on its way.
   */
  #startAbandoned(pool: ModelPool): void {
    if (pool.liveInstances().length === 0) for (const r of pool.readyWaiters.splice(0)) r.reject(unloadedWhileLoading(pool));
    this.#pump();
  }

  #onInstanceState(pool: ModelPool, inst: Instance, from: InstanceState | 'none', to: InstanceState | 'gone'): void {
    const { name, version } = pool.manifest;
    this.#observer.onInstanceState?.({ name, version, instanceId: inst.id, from, to, memoryMb: inst.memoryMb, at: this.#clock.now() });
    if (to === 'gone') {
      this.#clearKeepAlive(inst);
      pool.instances.delete(inst.id);
      const native = inst.drainingNative;
      if (native) this.#hold(pool, inst, native);
      else this.#node.release(inst.memoryMb);
      // A serving instance that failed is replaced at once (without evicting anyone); otherwise queued work
      // asks for a new instance in the pump.
      if (inst.failed && inst.readyAt !== Infinity && !this.#closed) queueMicrotask(() => this.#startInstance(pool, { evict: false }));
      queueMicrotask(() => this.#pump());
    } else if (to === 'idle') {
      this.#armKeepAlive(pool, inst);
      queueMicrotask(() => this.#pump());
    } else if (to === 'retiring') {
      this.#clearKeepAlive(inst);
    }
  }

  /**
   * An ended instance whose worker is still inside a native call: its core and memory stay counted until the call
   * returns (Instance.ended); past the grace it is a stuck run, and its model version is refused meanwhile.
   */
  #hold(pool: ModelPool, inst: Instance, kind: 'run' | 'load'): void {
    const h: NativeHold = { pool, inst, kind, since: this.#clock.now(), stuck: false, timer: undefined };
    this.#holds.set(inst, h);
    this.#node.holdSlot();
    pool.draining++;
    h.timer = this.#clock.setTimeout(() => this.#stuck(h), this.#o.stuckGraceMs ?? STUCK_GRACE_MS);
    void inst.ended.then(() => {
      this.#holds.delete(inst);
      this.#clock.clearTimeout(h.timer);
      this.#node.unholdSlot();
      this.#node.release(inst.memoryMb);
      pool.draining--;
      if (h.stuck) this.#unquarantine(pool.artifact);
      this.#pump();
    });
  }

  #stuck(h: NativeHold): void {
    if (!this.#holds.has(h.inst)) return;
    h.stuck = true;
    const { pool } = h;
    const what = h.kind === 'run' ? `a run of it passed its timeoutMs (${pool.config.timeoutMs} ms)` : 'a load of it was given up';
    const reason =
      `model ${pool.key}: ${what} and is stuck computing inside onnxruntime, which cannot interrupt it (since ` +
      `${new Date(h.since).toISOString()}, holding a CPU slot); this node refuses the model until that ${h.kind} returns or the node restarts`;
    this.#o.log?.warn(`${reason} (instance ${h.inst.id})`);
    const q = this.#quarantine.get(pool.artifact);
    if (q) q.count++;
    else this.#quarantine.set(pool.artifact, { count: 1, reason });
    const current = this.#pools.get(pool.key);
    if (current?.artifact === pool.artifact) this.#refuse(current, reason);
  }

  /** A pool whose model is refused on this node: its waiting requests and load() callers are told, its instances go. */
  #refuse(pool: ModelPool, reason: string): void {
    pool.quarantine = reason;
    const err = hearthError('MODEL_UNAVAILABLE', reason);
    for (const w of [...pool.waiting.values()]) {
      if (!this.#unqueue(pool, w)) continue;
      this.#finishFailed(pool, w.q.arrivedAt, 'REJECTED', err);
      w.reject(err);
    }
    for (const r of pool.readyWaiters.splice(0)) r.reject(err);
    for (const i of pool.instances.values()) void i.retire();
  }

  #unquarantine(artifact: string): void {
    const q = this.#quarantine.get(artifact);
    if (!q || --q.count > 0) return;
    this.#quarantine.delete(artifact);
    for (const pool of this.#pools.values()) if (pool.artifact === artifact) pool.quarantine = undefined;
  }

  /** Why a request for the pool is refused at once, if it is: waiting would not help. */
  #refusal(pool: ModelPool): HearthError | undefined {
    if (pool.quarantine !== undefined) return hearthError('MODEL_UNAVAILABLE', pool.quarantine);
    const need = pool.memoryMb;
    if (need > this.#node.memoryMb) {
      const why = pool.requested.memoryMb === need ? 'memoryMb in its serving config' : "the model's footprint, measured at load or else estimated from its size";
      return hearthError(
        'MODEL_UNAVAILABLE',
        `model ${pool.key}: one instance needs ${need} MB (${why}), more than this node's whole memory budget of ${this.#node.memoryMb} MB (EXECUTOR_MEMORY_MB); it cannot run on this node`,
      );
    }
    return undefined;
  }

  /** Starts instances for pools below minInstances, without evicting anyone. */
  #keepMinimum(): void {
    for (const pool of this.#pools.values()) {
      while (pool.liveInstances().length < pool.config.minInstances) {
        if (!this.#startInstance(pool, { evict: false })) break;
      }
    }
  }

  #keepAliveMs(pool: ModelPool): number {
    const k = pool.config.keepAlive;
    return k.kind === 'fixed' ? k.idleMs : k.fallbackIdleMs;
  }

  #armKeepAlive(pool: ModelPool, inst: Instance): void {
    if ((this.#o.keepAlive ?? 'executor') !== 'executor') return;
    this.#clearKeepAlive(inst);
    const idleMs = this.#keepAliveMs(pool);
    const timer = this.#clock.setTimeout(() => {
      this.#keepAliveTimers.delete(inst);
      if (inst.state !== 'idle') return;
      // Provisioned instances (minInstances) stay.
      if (pool.liveInstances().length <= pool.config.minInstances) return;
      void inst.retire();
    }, idleMs);
    this.#keepAliveTimers.set(inst, timer);
  }

  #clearKeepAlive(inst: Instance): void {
    const t = this.#keepAliveTimers.get(inst);
    if (t !== undefined) {
      this.#clock.clearTimeout(t);
      this.#keepAliveTimers.delete(inst);
    }
  }

  // ---- pools and configs ----------------------------------------------------------------------------------

  /** The pool of the manifest's upload: the one serving now when the content matches (the hot path), else made. */
  async #pool(manifest: Manifest): Promise<ModelPool> {
    const have = this.#pools.get(`${manifest.name}@${manifest.version}`);
    if (have && have.manifest.sha256 === manifest.sha256) return have;
    const id = uploadOf(manifest);
    let init = this.#poolInit.get(id);
    if (!init) {
      init = this.#makePool(manifest).finally(() => this.#poolInit.delete(id));
      this.#poolInit.set(id, init);
    }
    return init;
  }

  /** #pool, again if the pool was dropped (a delete or an unload) while the caller waited for it. */
  async #livePool(manifest: Manifest): Promise<ModelPool> {
    for (let attempt = 0; ; attempt++) {
      const pool = await this.#pool(manifest);
      if (!pool.dropped) return pool;
      if (attempt === 2) throw hearthError('MODEL_UNAVAILABLE', `model ${pool.key} was unloaded again and again while this request waited for it`, { headers: { 'Retry-After': '1' } });
    }
  }

  /**
   * Makes the pool of an upload that is still current (a deleted one is refused), retiring the pool of another
   * upload of the same name and version: a re-upload after a delete is a new model, not the old one's pool.
   */
  async #makePool(manifest: Manifest): Promise<ModelPool> {
    const key = `${manifest.name}@${manifest.version}`;
    for (let attempt = 0; ; attempt++) {
      this.#refuseDeleted(manifest);
      const deletes = this.#deletes;
      const [config] = await Promise.all([this.#config(manifest.name), this.#checkCurrent(manifest)]);
      // A delete went by while the store was read: what was read may be gone; read again (a few times at most).
      if (deletes !== this.#deletes && attempt < 3) continue;
      this.#refuseDeleted(manifest);
      const have = this.#pools.get(key);
      if (have && have.manifest.sha256 === manifest.sha256) return have;
      if (have) {
        const err = hearthError('VERSION_NOT_FOUND', `model ${key}: the upload this request was for (sha256 ${have.manifest.sha256.slice(0, 12)}...) was replaced by another`);
        this.#dropPool(have, err);
      }
      const pool = new ModelPool(manifest, config, this.#clock, this.#capacity);
      const before = this.#unloaded.get(key);
      this.#unloaded.delete(key);
      if (before?.artifact === pool.artifact) {
        Object.assign(pool.stats, before.stats);
        if (before.measuredMb !== undefined) pool.recordFootprint(before.measuredMb);
      }
      pool.quarantine = this.#quarantine.get(pool.artifact)?.reason;
      this.#warnClamps(pool);
      this.#pools.set(key, pool);
      return pool;
    }
  }

  /** VERSION_NOT_FOUND or MODEL_NOT_FOUND when the manifest is that of a deleted upload. */
  #refuseDeleted(manifest: Manifest): void {
    const code = this.#deleted.get(uploadOf(manifest));
    if (code) throw deletedError(manifest, code);
  }

  /** Checks with the registry that the manifest is the version's current one; remembers it as deleted if not. */
  async #checkCurrent(manifest: Manifest): Promise<void> {
    if (!this.#o.currentManifest) return;
    let current: Manifest;
    try {
      current = await this.#o.currentManifest(manifest.name, manifest.version);
    } catch (e) {
      if (isHearthError(e) && (e.code === 'MODEL_NOT_FOUND' || e.code === 'VERSION_NOT_FOUND')) {
        remember(this.#deleted, uploadOf(manifest), e.code);
        throw deletedError(manifest, e.code);
      }
      throw e;
    }
    if (uploadOf(current) !== uploadOf(manifest)) {
      remember(this.#deleted, uploadOf(manifest), 'VERSION_NOT_FOUND');
      throw deletedError(manifest, 'VERSION_NOT_FOUND');
    }
  }

  /**
   * Takes a pool out of the engine: the autoscaler no longer sees it, its instances retire, nothing restarts them.
   * With `err` (its upload is gone), its waiting requests and load() callers fail with it; without (an unload),
   * what it knew is kept for the next pool of the same upload.
   */
  #dropPool(pool: ModelPool, err?: HearthError): Promise<void>[] {
    if (this.#pools.get(pool.key) === pool) this.#pools.delete(pool.key);
    pool.dropped = true;
    if (!err) remember(this.#unloaded, pool.key, { artifact: pool.artifact, stats: pool.stats, measuredMb: pool.measuredMb });
    if (pool.delayTimer !== undefined) {
      this.#clock.clearTimeout(pool.delayTimer);
      pool.delayTimer = undefined;
    }
    if (err) {
      for (const w of [...pool.waiting.values()]) {
        if (!this.#unqueue(pool, w)) continue;
        this.#finishFailed(pool, w.q.arrivedAt, 'OTHER', err);
        w.reject(err);
      }
      for (const r of pool.readyWaiters.splice(0)) r.reject(err);
    }
    return [...pool.instances.values()].map((i) => i.retire());
  }

  async #config(name: string): Promise<ModelConfig> {
    const have = this.#configs.get(name);
    if (have) return have;
    const p = this.#o.getConfig(name);
    this.#configs.set(name, p);
    try {
      const c = await p;
      if (this.#configs.get(name) === p) this.#configs.set(name, c);
      // A config set meanwhile (PUT) is newer; one dropped meanwhile (an unload or a delete) leaves this one.
      return this.#configs.get(name) ?? c;
    } catch (e) {
      if (this.#configs.get(name) === p) this.#configs.delete(name);
      throw e;
    }
  }

  setConfig(name: string, config: ModelConfig): void {
    this.#configs.set(name, config);
    for (const pool of this.#pools.values()) {
      if (pool.manifest.name !== name) continue;
      pool.applyConfig(config);
      this.#warnClamps(pool);
      // Fewer maxInstances: idle extras go now, busy ones when they finish their run and idle out.
      let extra = pool.liveInstances().length - pool.config.maxInstances;
      for (const i of [...pool.instances.values()].sort((a, b) => a.idleSince - b.idleSince)) {
        if (extra <= 0) break;
        if (i.state === 'idle') {
          void i.retire();
          extra--;
        }
      }
      for (const i of pool.instances.values()) if (i.state === 'idle') this.#armKeepAlive(pool, i);
    }
    this.#pump();
  }

  /** A serving config as this node would apply it to `manifest`'s pool (for GET and PUT config), with what it clamps. */
  fitConfig(manifest: Manifest, requested: ModelConfig): { config: ModelConfig; clamped: ConfigClamp[] } {
    const pool = this.#pools.get(`${manifest.name}@${manifest.version}`);
    return fitModelConfig(requested, this.#capacity, instanceMemoryMb(manifest.sizeBytes, requested.memoryMb, pool?.measuredMb));
  }

  /** A measured footprint: every instance of the pool now reserves the new amount, and the config is refitted. */
  #recordFootprint(pool: ModelPool, mb: number): void {
    if (!(mb > 0) || !pool.recordFootprint(mb)) return;
    const each = pool.memoryMb;
    for (const i of pool.instances.values()) {
      this.#node.resize(i.memoryMb, each);
      i.memoryMb = each;
    }
    this.#warnClamps(pool);
  }

  /**
   * Logs what the node does not apply of a pool's stored config, once per change. A default the node cannot hold
   * (maxInstances 4 on a 2-slot node) is clamped silently: nobody asked for it.
   */
  #warnClamps(pool: ModelPool): void {
    const defaults = defaultModelConfig() as unknown as Record<string, unknown>;
    const asked = pool.clamped.filter((c) => c.field.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], defaults) !== c.requested);
    const text = describeClamps(asked);
    if (text === pool.warned) return;
    pool.warned = text;
    if (text) this.#o.log?.warn(`serving config of ${pool.key} clamped to this node: ${text}`);
  }

  async load(manifest: Manifest): Promise<void> {
    const pool = await this.#livePool(manifest);
    const refused = this.#refusal(pool);
    if (refused) throw refused;
    const counts = pool.countByState();
    if (counts.idle + counts.busy > 0) return;
    const ready = new Promise<void>((resolve, reject) => pool.readyWaiters.push({ resolve, reject }));
    if (counts.starting === 0 && !this.#startInstance(pool)) {
      pool.readyWaiters.pop();
      throw hearthError('OVERLOADED', `model ${pool.key}: the node has no memory for another instance (${pool.memoryMb} MB needed, ${this.#node.freeMb} MB free, nothing idle to evict)`);
    }
    await ready;
  }

  /**
   * Retires the model's instances. Its pools go too (a load after it reads the serving config again), except those
   * with requests waiting, which get a fresh instance; a load() still waiting for an instance is told.
   */
  async unload(name: string, version?: number): Promise<void> {
    const ends: Promise<void>[] = [];
    for (const pool of [...this.#pools.values()]) {
      if (pool.manifest.name !== name || (version !== undefined && pool.manifest.version !== version)) continue;
      for (const r of pool.readyWaiters.splice(0)) r.reject(unloadedWhileLoading(pool));
      if (pool.waiting.size === 0) ends.push(...this.#dropPool(pool));
      else for (const i of pool.instances.values()) ends.push(i.retire());
    }
    this.#configs.delete(name);
    await Promise.all(ends);
  }

  async remove(name: string, version?: number): Promise<void> {
    this.#deletes++;
    const code: ErrorCode = version === undefined ? 'MODEL_NOT_FOUND' : 'VERSION_NOT_FOUND';
    const ends: Promise<void>[] = [];
    for (const pool of [...this.#pools.values()]) {
      if (pool.manifest.name !== name || (version !== undefined && pool.manifest.version !== version)) continue;
      remember(this.#deleted, uploadOf(pool.manifest), code);
      ends.push(...this.#dropPool(pool, deletedError(pool.manifest, code)));
    }
    // An unloaded upload has no pool to mark: a request still carrying it is checked against the registry.
    for (const key of [...this.#unloaded.keys()]) if (version === undefined ? key.startsWith(`${name}@`) : key === `${name}@${version}`) this.#unloaded.delete(key);
    this.#configs.delete(name);
    await Promise.all(ends);
    this.#pump();
  }

  checkConfig(config: ModelConfig): void {
    if (config.memoryMb !== undefined && config.memoryMb > this.#capacity.memoryMb) {
      throw hearthError(
        'INVALID_CONFIG',
        `memoryMb: ${config.memoryMb} is more than this node's whole memory budget of ${this.#capacity.memoryMb} MB (EXECUTOR_MEMORY_MB): no instance could start here; ask for at most ${this.#capacity.memoryMb}, or null to size instances from the model`,
      );
    }
  }

  busyNativeThreads(): number {
    let n = 0;
    for (const i of this.#alive) if (i.nativeWorker) n++;
    return n;
  }

  isLoaded(name: string, version: number): boolean {
    const pool = this.#pools.get(`${name}@${version}`);
    if (!pool) return false;
    const c = pool.countByState();
    return c.idle + c.busy > 0;
  }

  stats(filter: { name?: string; version?: number } = {}): ModelStats[] {
    const out: ModelStats[] = [];
    for (const stats of [...[...this.#pools.values()].map((p) => p.stats), ...[...this.#unloaded.values()].map((u) => u.stats)]) {
      if (filter.name !== undefined && stats.name !== filter.name) continue;
      if (filter.version !== undefined && stats.version !== filter.version) continue;
      out.push(structuredClone(stats));
    }
    return out.sort((a, b) => (a.name === b.name ? a.version - b.version : a.name < b.name ? -1 : 1));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const err = hearthError('OVERLOADED', 'the executor is shutting down');
    const ends: Promise<void>[] = [];
    for (const pool of this.#pools.values()) {
      if (pool.delayTimer !== undefined) this.#clock.clearTimeout(pool.delayTimer);
      for (const w of [...pool.waiting.values()]) {
        if (!this.#unqueue(pool, w)) continue;
        this.#finishFailed(pool, w.q.arrivedAt, 'OTHER', err);
        w.reject(err);
      }
      for (const r of pool.readyWaiters.splice(0)) r.reject(err);
      for (const i of pool.instances.values()) ends.push(i.retire());
    }
    await Promise.all(ends);
    // Terminating a worker mid native onnxruntime call aborts the process, and cannot stop it anyway: runs in flight
    // get until the deadline to return; those still inside then (stuck ones) are left to the process's exit, which
    // must not wait for them (busyNativeThreads; main.ts).
    const native = [...this.#alive].filter((i) => i.nativeWorker);
    if (native.length > 0) {
      let timer: unknown;
      const deadline = new Promise<void>((resolve) => (timer = this.#clock.setTimeout(resolve, this.#o.closeTimeoutMs ?? this.#o.config.limits.shutdownTimeoutMs)));
      await Promise.race([Promise.all(native.filter((i) => !this.#holds.get(i)?.stuck).map((i) => i.ended)), deadline]);
      this.#clock.clearTimeout(timer);
    }
    for (const h of this.#holds.values()) this.#clock.clearTimeout(h.timer);
    await this.#workers.close(new Set([...this.#alive].map((i) => i.nativeWorker).filter((w) => w !== undefined)));
  }

  // ---- control (autoscaler) -------------------------------------------------------------------------------

  readonly control: ExecutorControl = {
    pools: () => [...this.#pools.values()].map((p) => this.#snapshot(p)),
    pool: (name, version) => {
      const p = this.#pools.get(`${name}@${version}`);
      return p && this.#snapshot(p);
    },
    node: () => ({
      slots: this.#node.slots,
      memoryMb: this.#node.memoryMb,
      memoryUsedMb: this.#node.reservedMb,
      busySlots: this.#node.busySlots,
      peakSlots: this.#node.peakSlots,
      heldSlots: this.#node.heldSlots,
      stuckRuns: [...this.#holds.values()]
        .filter((h) => h.stuck)
        .map((h) => ({ model: h.pool.manifest.name, version: h.pool.manifest.version, instanceId: h.inst.id, kind: h.kind, since: new Date(h.since).toISOString() })),
    }),
    startInstance: (name, version) => {
      const p = this.#pools.get(`${name}@${version}`);
      if (p) this.#startInstance(p);
    },
    retireInstance: (name, version, instanceId) => {
      const inst = this.#pools.get(`${name}@${version}`)?.instances.get(instanceId);
      if (inst && inst.state === 'idle') void inst.retire();
    },
    retireIdleInstance: (name, version) => {
      const p = this.#pools.get(`${name}@${version}`);
      const idle = p && [...p.instances.values()].filter((i) => i.state === 'idle').sort((a, b) => a.idleSince - b.idleSince)[0];
      if (!idle) return false;
      void idle.retire();
      return true;
    },
    scaleTo: (name, version, n) => {
      const p = this.#pools.get(`${name}@${version}`);
      const res = { started: 0, retired: 0 };
      if (!p) return res;
      const target = Math.min(p.config.maxInstances, Math.max(p.config.minInstances, n));
      while (p.liveInstances().length < target && this.#startInstance(p)) res.started++;
      while (p.liveInstances().length > target && this.control.retireIdleInstance(name, version)) res.retired++;
      return res;
    },
  };

  #snapshot(p: ModelPool): PoolSnapshot {
    const now = this.#clock.now();
    const instances = [...p.instances.values()].map((i) => ({
      id: i.id,
      state: i.state,
      inflight: i.inflight,
      lastUsedAt: i.lastUsedAt || i.createdAt,
      idleSince: i.idleSince,
      createdAt: i.createdAt,
      memoryMb: i.memoryMb,
    }));
    return {
      key: p.key,
      name: p.manifest.name,
      version: p.manifest.version,
      config: p.config,
      memoryMb: p.memoryMb,
      instances,
      queued: p.scheduler.size,
      counts: p.countByState(),
      inflight: instances.reduce((n, i) => n + i.inflight, 0),
      ratePerSec: p.rate.stableRate(now),
      coldStartMs: p.coldStartMs,
      serviceMs: p.serviceMs,
    };
  }
}

/**
 * Every numeric input's data must hold exactly its shape's elements. This is what catches a tensor whose
 * buffer was already transferred by an earlier infer() (a detached buffer reads as length 0): it answers
 * INVALID_TENSOR here instead of reaching a worker, where a short buffer would hang the run or abort the
 * process inside the runtime.
 */
function checkTensorData(inputs: readonly InputTensor[]): void {
  for (const t of inputs) {
    // Deferred JSON is counted where it is parsed, on the instance thread; here only bounded by its text, in O(1)
    // (n numbers take 2n + 1 bytes), so that no caller can make the instance allocate from a shape alone.
    if (isDeferred(t)) {
      for (const p of t.data.parts) {
        if (p.json && !(p.count <= (p.json.length - 1) / 2)) {
          throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": shape [${p.shape.join(',')}] needs ${p.count} elements, but its data array of ${p.json.length} bytes cannot hold them`);
        }
      }
      continue;
    }
    const want = elementCount(t.shape);
    if (t.data.length === want) continue;
    const detached = !Array.isArray(t.data) && t.data.buffer.byteLength === 0 && want > 0;
    throw hearthError(
      'INVALID_TENSOR',
      detached
        ? `input "${shown(t.name)}": its data buffer is detached (already sent to an earlier infer(), which takes ownership of input buffers); pass a copy`
        : `input "${shown(t.name)}": shape [${t.shape.join(',')}] needs ${want} elements, got ${t.data.length}`,
    );
  }
}

/** Bytes of a response's output data: its tensors' bytes and its printed JSON text. O(outputs), not O(data). */
function responseBytes(outputs: readonly Tensor[], printed: readonly PrintedTensor[] | undefined): number {
  let n = 0;
  for (const t of outputs) n += Array.isArray(t.data) ? tensorBytes(t) : t.data.byteLength;
  if (printed) for (const p of printed) n += p.json.length;
  return n;
}

function unionOutputs(batch: Waiting[]): string[] | undefined {
  const names = new Set<string>();
  for (const w of batch) {
    if (!w.req.outputs) return undefined;
    for (const n of w.req.outputs) names.add(n);
  }
  return [...names];
}

/** The outputs a request asked for (all when `wanted` is undefined), less those it got printed. */
function selectOutputs(all: Tensor[], wanted: string[] | undefined, printed: string[] | undefined): Tensor[] {
  const kept = printed?.length ? all.filter((t) => !printed.includes(t.name)) : all;
  if (!wanted) return kept;
  const out: Tensor[] = [];
  for (const n of wanted) {
    const t = kept.find((x) => x.name === n);
    if (t) out.push(t);
  }
  return out;
}

/** What the instance prints as JSON for each request of a run (InferRequest.printOutputs); undefined when none asks. */
function printPlan(batch: readonly Waiting[], offsets: number[] | undefined, pool: ModelPool): PrintPlan | undefined {
  if (!batch.some((w) => w.req.printOutputs?.length)) return undefined;
  const names = batch.map((w) => w.req.printOutputs ?? []);
  if (!offsets) return { names };
  const axes: Record<string, number> = {};
  if (pool.layout) for (const [name, axis] of pool.layout.outputs) axes[name] = axis;
  return { offsets, axes, names };
}

/** The answer to a request that carries the manifest of a deleted upload. */
function deletedError(m: Manifest, code: ErrorCode): HearthError {
  return hearthError(code, code === 'MODEL_NOT_FOUND' ? `model "${m.name}" was deleted` : `model "${m.name}" version ${m.version} was deleted (or replaced by another upload)`);
}

/** The answer to a load() whose instance an unload retired before it was ready: nothing failed, it may load again. */
function unloadedWhileLoading(pool: ModelPool): HearthError {
  return hearthError('MODEL_UNAVAILABLE', `model ${pool.key} was unloaded while this load was starting it; nothing failed: load it again`, { headers: { 'Retry-After': '1' } });
}

/** An observer whose hooks cannot throw into the engine: a failing subscriber must not strand requests. */
function guarded(o: ExecutorObserver): ExecutorObserver {
  const wrap = <E>(fn: ((e: E) => void) | undefined) =>
    fn &&
    ((e: E) => {
      try {
        fn.call(o, e);
      } catch {
        // Observers (ledger, metrics, autoscaler) are best-effort from the request path's point of view.
      }
    });
  return {
    onRequestQueued: wrap(o.onRequestQueued),
    onRequestDone: wrap(o.onRequestDone),
    onRun: wrap(o.onRun),
    onInstanceState: wrap(o.onInstanceState),
  };
}
