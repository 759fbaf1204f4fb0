// The executor's private engine: admission, the dispatch loop over every pool (CPU slots to the pool whose head
// ranks highest; a cold start when the strategy asks for one), pools and their configs, and the observer hooks.
// Instances start and end in executor/lifecycle.ts; the counters and events of a request's end are built in
// executor/request-stats.ts. executor/index.ts is its public facade.
import {
  defaultModelConfig,
  describeClamps,
  fitModelConfig,
  hearthError,
  isHearthError,
  type Clock,
  type Config,
  type ErrorCode,
  type ExecutorObserver,
  type HearthError,
  type InputTensor,
  type Manifest,
  type ConfigClamp,
  type ModelConfig,
  type PrintedTensor,
  type Tensor,
} from '../core/index.ts';
import type { LoadMessageOptions, RunMessage } from '../functions/index.ts';
import { tensorBytes } from '../functions/index.ts';
import { checkTensorData } from '../protocol/index.ts';
import type { ArtifactSource } from '../model-store/index.ts';
import { batchSignature, mergeRequests, splitOutputs } from './batcher.ts';
import type { Instance } from './instance.ts';
import { InstanceLifecycle, unloadedWhileLoading } from './lifecycle.ts';
import { ModelPool, type Waiting } from './model-pool.ts';
import { instanceMemoryMb } from './node-resources.ts';
import { answered, coldStarted, neverRan, runFailed } from './request-stats.ts';
import type { PoolView, QueuedRequest } from './scheduler.ts';
import type { CancelSignal, ExecutorLog, InferRequest, InferResult, InstanceState, ModelStats, StuckRun } from './types.ts';

/** What the instance prints as JSON for each request of a run. */
type PrintPlan = NonNullable<RunMessage['print']>;

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
  /** Worker entry override (tests). */
  workerEntry?: URL;
  /** CPU cores the node counts (the cap on a session's op threads). Default os.availableParallelism(). */
  cores?: number;
  /**
   * Where warnings go (a stored serving config clamped to this node, a stuck run, an observer that threw); the
   * gateway passes its logger. Without one, the executor's first warning becomes a process warning, the rest are dropped.
   */
  log?: ExecutorLog;
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
  instances: {
    id: string;
    state: InstanceState;
    inflight: number;
    lastUsedAt: number;
    idleSince: number;
    createdAt: number;
    memoryMb: number;
  }[];
}

/** What the autoscaler drives (structurally its PoolControl) plus a few extras for status pages and tests. */
export interface ExecutorControl {
  pools(): PoolSnapshot[];
  pool(name: string, version: number): PoolSnapshot | undefined;
  node(): {
    slots: number;
    memoryMb: number;
    memoryUsedMb: number;
    busySlots: number;
    peakSlots: number;
    heldSlots: number;
    stuckRuns: StuckRun[];
  };
  /** Starts one more instance of the pool (a cold start, or a pre-warm) if maxInstances and memory allow. */
  startInstance(name: string, version: number): void;
  /** Retires that instance if it is idle (idle instances retire only so: the autoscaler applies the keep-alive). */
  retireInstance(name: string, version: number, instanceId: string): void;
}

const DEFAULT_PRIORITY = 5;
/** Deleted uploads remembered (tombstones), and unloaded pools whose counters and footprint are kept, each at most. */
const MAX_REMEMBERED = 10_000;

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
  #life: InstanceLifecycle;
  #log: ExecutorLog;
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
  #seq = 0;
  #pumping = false;
  #pumpAgain = false;
  #pumpScheduled = false;
  #closed = false;

  constructor(o: EngineOptions) {
    this.#o = o;
    this.#clock = o.clock;
    this.#log = o.log ?? processWarningLog();
    this.#observer = guarded(o.observer ?? {}, this.#log);
    this.#life = new InstanceLifecycle(o, {
      pools: this.#pools,
      log: this.#log,
      observer: () => this.#observer,
      closed: () => this.#closed,
      pump: () => this.#pump(),
      failWaiting: (pool, err, reason, which) => this.#failWaiting(pool, err, reason, which),
      warnClamps: (pool) => this.#warnClamps(pool),
    });
  }

  /** Resolves when the pre-spawned workers are booted (tests and benchmarks wait for it). */
  prewarmed(): Promise<void> {
    return this.#life.prewarmed();
  }

  setObserver(observer: ExecutorObserver): void {
    this.#observer = guarded(observer, this.#log);
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
      const err = hearthError(
        'QUEUE_FULL',
        `model ${pool.key}: ${pool.scheduler.size} requests are queued (maxQueueSize ${pool.config.maxQueueSize}); retry after ${retryAfter} s`,
        {
          headers: { 'Retry-After': String(retryAfter) },
        },
      );
      this.#finishFailed(pool, arrivedAt, 'REJECTED', err);
      throw err;
    }
    try {
      // Every input's data must hold its shape's elements (protocol's check; it also names a detached buffer).
      for (const t of req.inputs) checkTensorData(t);
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
    const err = hearthError(
      'OVERLOADED',
      `model ${pool.key}: no instance, CPU slot or memory became free within the request's deadline (waited ${waited} ms)`,
    );
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
    const e = neverRan(pool.stats, pool.manifest, {
      arrivedAt,
      now: this.#clock.now(),
      reason,
      ...(err ? { code: err.code } : {}),
      memoryMb: pool.memoryMb,
    });
    this.#observer.onRequestDone?.(e);
  }

  /** Fails the pool's waiting requests (those `which` picks, else all) with `err`; each counts as never run. */
  #failWaiting(pool: ModelPool, err: HearthError, reason: 'REJECTED' | 'OTHER', which?: (w: Waiting) => boolean): void {
    for (const w of [...pool.waiting.values()]) {
      if ((which && !which(w)) || !this.#unqueue(pool, w)) continue;
      this.#finishFailed(pool, w.q.arrivedAt, reason, err);
      w.reject(err);
    }
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
        this.#life.keepMinimum();
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
          if (this.#life.node.freeSlots <= 0) continue;
          const inst = pool.instances.get(placement.instanceId);
          if (!inst || (inst.state !== 'idle' && inst.state !== 'busy') || inst.inflight >= inst.concurrency) continue;
          this.#runBatch(pool, inst, now);
          progressed = true;
          break;
        }
        if (placement.kind === 'cold-start' && this.#life.start(pool)) {
          progressed = true;
          break;
        }
      }
      if (!progressed) return;
    }
  }

  /** The scheduler's view of a pool; canGrow is computed only if the strategy asks (it scans every pool). */
  #view(pool: ModelPool, now: number): PoolView {
    const life = this.#life; // the getter below runs with `this` bound to the view
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
        return (canGrow ??= life.canGrow(pool));
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
      pool.delayTimer = this.#clock.setTimeout(
        () => {
          pool.delayTimer = undefined;
          this.#pump();
        },
        head.arrivedAt + delay - now,
      );
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
    this.#life.node.takeSlot();
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
      this.#life.node.releaseSlot();
      for (const w of batch) this.#failRun(pool, w, e, now, 0, 1, inst, coldOf(w));
      return;
    }
    const startedAt = now;
    const maxResponseBytes = this.#o.config.limits.maxResponseBytes;
    inst
      .run(inputs, outputNames, pool.config.timeoutMs, printPlan(batch, offsets, pool), {
        maxBytes: maxResponseBytes,
        requests: batch.length,
      })
      .then(
        (r) => {
          this.#life.node.releaseSlot();
          const end = this.#clock.now();
          const computeMs = r.computeMs;
          pool.stats.executionCount++;
          // An instance's first run pays one-time warm-up (the session's first run, a fresh thread's cold JIT):
          // measured over HTTP, 28-41 ms for silero's first batch of 16 against 4-6 ms for the next full ones. In
          // the run-time average it made a busy instance look slower than a cold start, and the growth rule
          // (batchAbsorbs) started a second instance that only split the batches.
          if (!firstRun) pool.recordService(computeMs);
          this.#observer.onRun?.({
            name: pool.manifest.name,
            version: pool.manifest.version,
            batchSize: batch.length,
            computeMs,
            at: end,
            firstRun,
          });
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
            coldStarted(pool.stats, coldStartMs);
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
              const err = hearthError(
                'RESPONSE_TOO_LARGE',
                `the outputs take ${bytes} bytes, more than MAX_RESPONSE_BYTES (${maxResponseBytes} bytes); ask for less`,
              );
              this.#failRun(pool, w, err, startedAt, computeMs, batch.length, inst, wCold);
              continue;
            }
            const result: InferResult = {
              outputs,
              ...(printed ? { printed } : {}),
              coldStart: wCold,
              queueMs,
              computeMs,
              batchSize: batch.length,
            };
            if (wCold && inst.timings) {
              result.coldStartMs = coldStartMs;
              result.breakdown = { ...inst.timings, firstRunMs: computeMs };
            }
            const done = answered(pool.stats, pool.manifest, {
              arrivedAt: w.q.arrivedAt,
              now: end,
              queueMs,
              computeMs,
              inputMs: r.inputMs,
              outputMs: r.outputMs,
              batchSize: batch.length,
              memoryMb: inst.memoryMb,
              coldStart: wCold,
              ...(coldStartMs !== undefined ? { coldStartMs } : {}),
              source: w.req.source === 'batch' ? 'batch' : 'online',
            });
            this.#observer.onRequestDone?.(done);
            w.resolve(result);
          }
          this.#pump();
        },
        (e) => {
          this.#life.node.releaseSlot();
          const ranMs = this.#clock.now() - startedAt;
          for (const w of batch) this.#failRun(pool, w, e, startedAt, ranMs, batch.length, inst, coldOf(w));
          this.#pump();
        },
      );
  }

  #failRun(
    pool: ModelPool,
    w: Waiting,
    e: unknown,
    startedAt: number,
    ranMs: number,
    batchSize: number,
    inst: Instance,
    cold: boolean,
  ): void {
    const err = isHearthError(e) ? e : hearthError('INTERNAL', (e as Error)?.message ?? String(e), { cause: e });
    const done = runFailed(pool.stats, pool.manifest, {
      arrivedAt: w.q.arrivedAt,
      now: this.#clock.now(),
      code: err.code,
      queueMs: startedAt - w.q.arrivedAt,
      computeMs: ranMs,
      batchSize,
      memoryMb: inst.memoryMb,
      coldStart: cold,
    });
    this.#observer.onRequestDone?.(done);
    w.reject(err);
  }

  /** Why a request for the pool is refused at once, if it is: waiting would not help. */
  #refusal(pool: ModelPool): HearthError | undefined {
    if (pool.quarantine !== undefined) return hearthError('MODEL_UNAVAILABLE', pool.quarantine);
    const need = pool.memoryMb;
    if (need > this.#life.node.memoryMb) {
      const why =
        pool.requested.memoryMb === need
          ? 'memoryMb in its serving config'
          : "the model's footprint, measured at load or else estimated from its size";
      return hearthError(
        'MODEL_UNAVAILABLE',
        `model ${pool.key}: one instance needs ${need} MB (${why}), more than this node's whole memory budget of ${this.#life.node.memoryMb} MB (EXECUTOR_MEMORY_MB); it cannot run on this node`,
      );
    }
    return undefined;
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
      if (attempt === 2)
        throw hearthError('MODEL_UNAVAILABLE', `model ${pool.key} was unloaded again and again while this request waited for it`, {
          headers: { 'Retry-After': '1' },
        });
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
        const err = hearthError(
          'VERSION_NOT_FOUND',
          `model ${key}: the upload this request was for (sha256 ${have.manifest.sha256.slice(0, 12)}...) was replaced by another`,
        );
        // Its instances retire in the background; nothing here waits for them.
        for (const ended of this.#dropPool(have, err)) void ended;
      }
      const pool = new ModelPool(manifest, config, this.#clock, this.#life.capacity);
      const before = this.#unloaded.get(key);
      this.#unloaded.delete(key);
      if (before?.artifact === pool.artifact) {
        Object.assign(pool.stats, before.stats);
        if (before.measuredMb !== undefined) pool.recordFootprint(before.measuredMb);
      }
      pool.quarantine = this.#life.quarantined(pool.artifact);
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
      this.#failWaiting(pool, err, 'OTHER');
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
      this.#life.trimToMax(pool);
    }
    this.#pump();
  }

  /** A serving config as this node would apply it to `manifest`'s pool (for GET and PUT config), with what it clamps. */
  fitConfig(manifest: Manifest, requested: ModelConfig): { config: ModelConfig; clamped: ConfigClamp[] } {
    const pool = this.#pools.get(`${manifest.name}@${manifest.version}`);
    return fitModelConfig(requested, this.#life.capacity, instanceMemoryMb(manifest.sizeBytes, requested.memoryMb, pool?.measuredMb));
  }

  /**
   * Logs what the node does not apply of a pool's stored config, once per change. A default the node cannot hold
   * (maxInstances 4 on a 2-slot node) is clamped silently: nobody asked for it.
   */
  #warnClamps(pool: ModelPool): void {
    const defaults = defaultModelConfig() as unknown as Record<string, unknown>;
    const asked = pool.clamped.filter(
      (c) => c.field.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], defaults) !== c.requested,
    );
    const text = describeClamps(asked);
    if (text === pool.warned) return;
    pool.warned = text;
    if (text)
      this.#log.warn(
        { model: pool.manifest.name, version: pool.manifest.version },
        `serving config of ${pool.key} clamped to this node: ${text}`,
      );
  }

  async load(manifest: Manifest): Promise<void> {
    const pool = await this.#livePool(manifest);
    const refused = this.#refusal(pool);
    if (refused) throw refused;
    const counts = pool.countByState();
    if (counts.idle + counts.busy > 0) return;
    const ready = new Promise<void>((resolve, reject) => pool.readyWaiters.push({ resolve, reject }));
    if (counts.starting === 0 && !this.#life.start(pool)) {
      pool.readyWaiters.pop();
      throw hearthError(
        'OVERLOADED',
        `model ${pool.key}: the node has no memory for another instance (${pool.memoryMb} MB needed, ${this.#life.node.freeMb} MB free, nothing idle to evict)`,
      );
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
    for (const key of [...this.#unloaded.keys()])
      if (version === undefined ? key.startsWith(`${name}@`) : key === `${name}@${version}`) this.#unloaded.delete(key);
    this.#configs.delete(name);
    await Promise.all(ends);
    this.#pump();
  }

  checkConfig(config: ModelConfig): void {
    const capacity = this.#life.capacity;
    if (config.memoryMb !== undefined && config.memoryMb > capacity.memoryMb) {
      throw hearthError(
        'INVALID_CONFIG',
        `memoryMb: ${config.memoryMb} is more than this node's whole memory budget of ${capacity.memoryMb} MB (EXECUTOR_MEMORY_MB): no instance could start here; ask for at most ${capacity.memoryMb}, or null to size instances from the model`,
      );
    }
  }

  busyNativeThreads(): number {
    return this.#life.busyNativeThreads();
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
      this.#failWaiting(pool, err, 'OTHER');
      for (const r of pool.readyWaiters.splice(0)) r.reject(err);
      for (const i of pool.instances.values()) ends.push(i.retire());
    }
    await Promise.all(ends);
    await this.#life.close();
  }

  // ---- control (autoscaler) -------------------------------------------------------------------------------

  readonly control: ExecutorControl = {
    pools: () => [...this.#pools.values()].map((p) => this.#snapshot(p)),
    pool: (name, version) => {
      const p = this.#pools.get(`${name}@${version}`);
      return p && this.#snapshot(p);
    },
    node: () => {
      const node = this.#life.node;
      return {
        slots: node.slots,
        memoryMb: node.memoryMb,
        memoryUsedMb: node.reservedMb,
        busySlots: node.busySlots,
        peakSlots: node.peakSlots,
        heldSlots: node.heldSlots,
        stuckRuns: this.#life.stuckRuns(),
      };
    },
    startInstance: (name, version) => {
      const p = this.#pools.get(`${name}@${version}`);
      if (p) this.#life.start(p);
    },
    retireInstance: (name, version, instanceId) => {
      const p = this.#pools.get(`${name}@${version}`);
      if (p) this.#life.retireIdle(p, instanceId);
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
  return hearthError(
    code,
    code === 'MODEL_NOT_FOUND'
      ? `Request for unknown model: '${m.name}' is not found (it was deleted)`
      : `Request for unknown model: '${m.name}' version ${m.version} is not found (it was deleted or replaced by another upload)`,
  );
}

/** An observer whose hooks cannot throw into the engine: a failing subscriber must not strand requests; its error is logged. */
function guarded(o: ExecutorObserver, log: ExecutorLog): ExecutorObserver {
  const wrap = <E>(hook: keyof ExecutorObserver, fn: ((e: E) => void) | undefined) =>
    fn &&
    ((e: E) => {
      try {
        fn(e);
      } catch (err) {
        // Observers (ledger, metrics, autoscaler) are best-effort from the request path's point of view.
        log.warn({ err, hook }, `an executor observer threw in ${hook}; the request went on`);
      }
    });
  return {
    onRequestQueued: wrap('onRequestQueued', o.onRequestQueued?.bind(o)),
    onRequestDone: wrap('onRequestDone', o.onRequestDone?.bind(o)),
    onRun: wrap('onRun', o.onRun?.bind(o)),
    onInstanceState: wrap('onInstanceState', o.onInstanceState?.bind(o)),
  };
}

/**
 * The log of an executor given none: its first warning becomes a process warning (on stderr unless the process
 * listens for 'warning'), later ones are dropped so that a throwing observer does not flood stderr.
 */
function processWarningLog(): ExecutorLog {
  let warned = false;
  return {
    warn(obj, msg) {
      if (warned) return;
      warned = true;
      const err = (obj as { err?: unknown }).err;
      const why = err instanceof Error ? `: ${err.message}` : '';
      process.emitWarning(`${msg}${why} (pass the executor a log to see every warning; later ones are not shown)`, {
        code: 'HEARTH_EXECUTOR',
      });
    },
  };
}
