// Instance lifecycle: memory reserved for an instance (evicting other models' idle instances, least recently used
// first, when it must), its boot (a pre-spawned worker and the artifact in parallel, then the load), its retirement
// (by the autoscaler through control, or idle extras past a smaller maxInstances), minInstances kept, and a worker
// that stays inside a native call after its instance ended: its slot and memory held, past a grace a stuck run that
// makes the node refuse its model until the call returns. The engine (executor/engine.ts) admits and dispatches.
import os from 'node:os';
import {
  hearthError,
  isHearthError,
  type Clock,
  type Config,
  type ExecutorObserver,
  type HearthError,
  type InstanceState,
  type Manifest,
  type NodeCapacity,
} from '../core/index.ts';
import type { LoadMessageOptions } from '../functions/index.ts';
import type { ArtifactSource } from '../model-store/index.ts';
import { Instance } from './instance.ts';
import type { ModelPool, Waiting } from './model-pool.ts';
import { NodeResources } from './node-resources.ts';
import type { ExecutorLog, StuckRun } from './types.ts';
import { WorkerPool } from './worker-pool.ts';

const STUCK_GRACE_MS = 2000;

/** The engine's options this file reads (documented in engine.ts). */
export interface LifecycleOptions {
  config: Readonly<Config>;
  clock: Clock;
  artifacts: ArtifactSource;
  allowTestRuntimes?: boolean;
  loadOptions?: (manifest: Manifest) => Partial<LoadMessageOptions> | undefined;
  loadTimeoutMs?: number;
  workerEntry?: URL;
  cores?: number;
  stuckGraceMs?: number;
  closeTimeoutMs?: number;
}

/** What the lifecycle needs from the engine. */
export interface LifecycleHost {
  readonly pools: ReadonlyMap<string, ModelPool>;
  readonly log: ExecutorLog;
  observer(): ExecutorObserver;
  closed(): boolean;
  /** Runs the dispatch loop (capacity changed). */
  pump(): void;
  /** Fails the pool's waiting requests (those `which` picks) with `err`, each counted as never run. */
  failWaiting(pool: ModelPool, err: HearthError, reason: 'REJECTED' | 'OTHER', which?: (w: Waiting) => boolean): void;
  /** Logs what the node does not apply of the pool's config (the footprint changed). */
  warnClamps(pool: ModelPool): void;
}

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

export class InstanceLifecycle {
  readonly node: NodeResources;
  readonly capacity: NodeCapacity;
  #o: LifecycleOptions;
  #h: LifecycleHost;
  #clock: Clock;
  #workers: WorkerPool;
  /** Instance loads in progress, and a count of those begun: a load is measured only when it ran alone. */
  #loading = 0;
  #loadsBegun = 0;
  /** Workers inside native calls whose instances ended (see NativeHold). */
  #holds = new Map<Instance, NativeHold>();
  /** Every instance whose worker has not ended yet (dropped pools' and held ones included). */
  #alive = new Set<Instance>();
  /** Artifacts refused on this node while a stuck run of them lasts: how many, and why. */
  #quarantine = new Map<string, { count: number; reason: string }>();

  constructor(o: LifecycleOptions, host: LifecycleHost) {
    this.#o = o;
    this.#h = host;
    this.#clock = o.clock;
    this.node = new NodeResources({ slots: o.config.executor.slots, memoryMb: o.config.executor.memoryMb });
    this.capacity = Object.freeze({
      cores: o.cores ?? os.availableParallelism(),
      slots: o.config.executor.slots,
      memoryMb: o.config.executor.memoryMb,
    });
    this.#workers = new WorkerPool({
      size: o.config.executor.prewarmWorkers,
      workerData: { allowTestRuntimes: !!o.allowTestRuntimes, preload: ['onnx'] },
      clock: o.clock,
      ...(o.workerEntry ? { entry: o.workerEntry } : {}),
    });
    // Background: the first cold start finds a booted worker when this has finished.
    this.#workers.fill().catch(() => {});
  }

  /** Resolves when the pre-spawned workers are booted. */
  prewarmed(): Promise<void> {
    return this.#workers.fill();
  }

  /** Why a model whose stuck run still lasts is refused, if it is. */
  quarantined(artifact: string): string | undefined {
    return this.#quarantine.get(artifact)?.reason;
  }

  /** Memory an instance of `pool` could get now, evicting other models' idle instances if need be. */
  canGrow(pool: ModelPool): boolean {
    if (pool.liveInstances().length >= pool.config.maxInstances) return false;
    const need = pool.memoryMb;
    if (this.node.freeMb >= need) return true;
    let freeable = this.node.freeMb;
    for (const v of this.#evictable(pool)) {
      freeable += v.memoryMb;
      if (freeable >= need) return true;
    }
    return false;
  }

  /** Idle instances of other pools above their minInstances, least recently used first. */
  #evictable(except: ModelPool): Instance[] {
    const out: Instance[] = [];
    for (const p of this.#h.pools.values()) {
      if (p === except) continue;
      const idle = [...p.instances.values()].filter((i) => i.state === 'idle' && i.inflight === 0);
      const spare = p.liveInstances().length - p.config.minInstances;
      idle.sort((a, b) => a.idleSince - b.idleSince);
      out.push(...idle.slice(0, Math.max(0, spare)));
    }
    return out.sort((a, b) => a.idleSince - b.idleSince);
  }

  /** Reserves memory (evicting if it must) and starts one instance; false when the node cannot hold it. */
  start(pool: ModelPool, opts: { evict?: boolean } = {}): boolean {
    if (this.#h.closed() || pool.liveInstances().length >= pool.config.maxInstances) return false;
    // A dropped or refused pool starts nothing; nor one whose timed-out run is still inside onnxruntime (a request
    // that made one instance run for ever would make the next one do the same: wait for it to return or be stuck).
    if (pool.dropped || pool.quarantine !== undefined || pool.draining > 0 || pool.memoryMb > this.node.memoryMb) return false;
    const need = pool.memoryMb;
    if (!this.node.reserve(need)) {
      if (opts.evict === false || !this.canGrow(pool)) return false;
      for (const v of this.#evictable(pool)) {
        if (this.node.freeMb >= need) break;
        void v.retire();
      }
      if (!this.node.reserve(need)) return false;
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

  /** Retires the pool's instance `id` if it is idle (the autoscaler's keep-alive and scale-down). */
  retireIdle(pool: ModelPool, id: string): void {
    const inst = pool.instances.get(id);
    if (inst && inst.state === 'idle') void inst.retire();
  }

  /** After a smaller maxInstances: the longest-idle extras go now, busy ones when the autoscaler finds them idle. */
  trimToMax(pool: ModelPool): void {
    let extra = pool.liveInstances().length - pool.config.maxInstances;
    for (const i of [...pool.instances.values()].sort((a, b) => a.idleSince - b.idleSince)) {
      if (extra <= 0) break;
      if (i.state === 'idle') {
        void i.retire();
        extra--;
      }
    }
  }

  /** Starts instances for pools below minInstances, without evicting anyone. */
  keepMinimum(): void {
    for (const pool of this.#h.pools.values()) {
      while (pool.liveInstances().length < pool.config.minInstances) {
        if (!this.start(pool, { evict: false })) break;
      }
    }
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
      if (inst.abandoned || (inst.gone && inst.timings === undefined && this.#h.closed())) {
        this.#startAbandoned(pool);
        return;
      }
      const err = isHearthError(e)
        ? e
        : hearthError('INSTANCE_FAILED', `starting ${pool.key}: ${(e as Error)?.message ?? e}`, { cause: e });
      // The requests that were already waiting when this start began would only start the same failing load
      // again: they get its error instead. Later arrivals wait for (or trigger) the next attempt.
      if (pool.liveInstances().every((i) => i === inst)) for (const r of pool.readyWaiters.splice(0)) r.reject(err);
      this.#h.failWaiting(pool, err, 'OTHER', (w) => w.q.arrivedAt <= inst.createdAt);
      if (!inst.gone) await inst.retire();
    }
    this.#h.pump();
  }

  /**
   * An instance was retired on purpose while starting (unload, shutdown): waiting requests get a fresh instance
   * from the pump; load() callers are told, unless another instance is on its way.
   */
  #startAbandoned(pool: ModelPool): void {
    if (pool.liveInstances().length === 0) for (const r of pool.readyWaiters.splice(0)) r.reject(unloadedWhileLoading(pool));
    this.#h.pump();
  }

  #onInstanceState(pool: ModelPool, inst: Instance, from: InstanceState | 'none', to: InstanceState | 'gone'): void {
    const { name, version } = pool.manifest;
    this.#h.observer().onInstanceState?.({ name, version, instanceId: inst.id, from, to, memoryMb: inst.memoryMb, at: this.#clock.now() });
    if (to === 'gone') {
      pool.instances.delete(inst.id);
      const native = inst.drainingNative;
      if (native) this.#hold(pool, inst, native);
      else this.node.release(inst.memoryMb);
      // A serving instance that failed is replaced at once (without evicting anyone); otherwise queued work
      // asks for a new instance in the pump.
      if (inst.failed && inst.readyAt !== Infinity && !this.#h.closed()) queueMicrotask(() => this.start(pool, { evict: false }));
      queueMicrotask(() => this.#h.pump());
    } else if (to === 'idle') {
      queueMicrotask(() => this.#h.pump());
    }
  }

  /** A measured footprint: every instance of the pool now reserves the new amount, and the config is refitted. */
  #recordFootprint(pool: ModelPool, mb: number): void {
    if (!(mb > 0) || !pool.recordFootprint(mb)) return;
    const each = pool.memoryMb;
    for (const i of pool.instances.values()) {
      this.node.resize(i.memoryMb, each);
      i.memoryMb = each;
    }
    this.#h.warnClamps(pool);
  }

  /**
   * An ended instance whose worker is still inside a native call: its core and memory stay counted until the call
   * returns (Instance.ended); past the grace it is a stuck run, and its model version is refused meanwhile.
   */
  #hold(pool: ModelPool, inst: Instance, kind: 'run' | 'load'): void {
    const h: NativeHold = { pool, inst, kind, since: this.#clock.now(), stuck: false, timer: undefined };
    this.#holds.set(inst, h);
    this.node.holdSlot();
    pool.draining++;
    h.timer = this.#clock.setTimeout(() => this.#stuck(h), this.#o.stuckGraceMs ?? STUCK_GRACE_MS);
    void inst.ended.then(() => {
      this.#holds.delete(inst);
      this.#clock.clearTimeout(h.timer);
      this.node.unholdSlot();
      this.node.release(inst.memoryMb);
      pool.draining--;
      if (h.stuck) this.#unquarantine(pool.artifact);
      this.#h.pump();
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
    this.#h.log.warn(
      { model: pool.manifest.name, version: pool.manifest.version, instanceId: h.inst.id },
      `${reason} (instance ${h.inst.id})`,
    );
    const q = this.#quarantine.get(pool.artifact);
    if (q) q.count++;
    else this.#quarantine.set(pool.artifact, { count: 1, reason });
    const current = this.#h.pools.get(pool.key);
    if (current?.artifact === pool.artifact) this.#refuse(current, reason);
  }

  /** A pool whose model is refused on this node: its waiting requests and load() callers are told, its instances go. */
  #refuse(pool: ModelPool, reason: string): void {
    pool.quarantine = reason;
    const err = hearthError('MODEL_UNAVAILABLE', reason);
    this.#h.failWaiting(pool, err, 'REJECTED');
    for (const r of pool.readyWaiters.splice(0)) r.reject(err);
    for (const i of pool.instances.values()) void i.retire();
  }

  #unquarantine(artifact: string): void {
    const q = this.#quarantine.get(artifact);
    if (!q || --q.count > 0) return;
    this.#quarantine.delete(artifact);
    for (const pool of this.#h.pools.values()) if (pool.artifact === artifact) pool.quarantine = undefined;
  }

  /** Runs stuck inside native code now. */
  stuckRuns(): StuckRun[] {
    return [...this.#holds.values()]
      .filter((h) => h.stuck)
      .map((h) => ({
        model: h.pool.manifest.name,
        version: h.pool.manifest.version,
        instanceId: h.inst.id,
        kind: h.kind,
        since: new Date(h.since).toISOString(),
      }));
  }

  busyNativeThreads(): number {
    let n = 0;
    for (const i of this.#alive) if (i.nativeWorker) n++;
    return n;
  }

  /**
   * After every pool's instances were retired: terminating a worker mid native onnxruntime call aborts the process,
   * and cannot stop it anyway, so runs in flight get until the deadline to return; those still inside then (stuck
   * ones) are left to the process's exit, which must not wait for them (busyNativeThreads; main.ts).
   */
  async close(): Promise<void> {
    const native = [...this.#alive].filter((i) => i.nativeWorker);
    if (native.length > 0) {
      let timer: unknown;
      const deadline = new Promise<void>(
        (resolve) => (timer = this.#clock.setTimeout(resolve, this.#o.closeTimeoutMs ?? this.#o.config.limits.shutdownTimeoutMs)),
      );
      await Promise.race([Promise.all(native.filter((i) => !this.#holds.get(i)?.stuck).map((i) => i.ended)), deadline]);
      this.#clock.clearTimeout(timer);
    }
    for (const h of this.#holds.values()) this.#clock.clearTimeout(h.timer);
    await this.#workers.close(new Set([...this.#alive].map((i) => i.nativeWorker).filter((w) => w !== undefined)));
  }
}

/** The answer to a load() whose instance an unload retired before it was ready: nothing failed, it may load again. */
export function unloadedWhileLoading(pool: ModelPool): HearthError {
  return hearthError('MODEL_UNAVAILABLE', `model ${pool.key} was unloaded while this load was starting it; nothing failed: load it again`, {
    headers: { 'Retry-After': '1' },
  });
}
