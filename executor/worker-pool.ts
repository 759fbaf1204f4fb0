// Pre-spawned, model-less instance workers: a cold start takes a booted thread from here, so it costs the
// artifact fetch and the session load, not the thread spawn and the runtime import. Refilled in the background.
import type { Worker } from 'node:worker_threads';
import { hearthError, settleWithin, type Clock } from '../core/index.ts';
import { resolveWorkerEntry, spawnInstanceWorker, type WorkerData, type WorkerToHost } from '../functions/index.ts';

export interface WorkerPoolOptions {
  /** Workers kept booted and waiting (EXECUTOR_PREWARM_WORKERS). */
  size: number;
  workerData: WorkerData;
  clock: Clock;
  /** Entry file override (tests). Default: the compiled worker (functions/worker-entry.ts). */
  entry?: URL;
  /** Longest a worker may take to boot before it counts as failed. */
  bootTimeoutMs?: number;
  /**
   * When a pre-spawned worker is handed out, boot its replacement only after that worker's first run (or first
   * error, or exit, or after this many ms). Default 2000. On a small machine a replacement booting alongside the
   * session load and first run slows that cold start down; 0 refills at once.
   */
  refillDelayMaxMs?: number;
}

export interface AcquiredWorker {
  worker: Worker;
  /** Time the caller waited: ~0 from the pre-spawned pool, a full boot otherwise. */
  acquireMs: number;
  prewarmed: boolean;
}

export class WorkerPool {
  #opts: WorkerPoolOptions & { bootTimeoutMs: number; refillDelayMaxMs: number };
  #ready: Worker[] = [];
  #booting = 0;
  #boots = new Set<Promise<void>>();
  #closed = false;
  #all = new Set<Worker>();
  /** Workers spawned and not yet ready: still importing their runtimes (onnxruntime's addon among them). */
  #unready = new Map<Worker, Promise<void>>();

  constructor(opts: WorkerPoolOptions) {
    this.#opts = { bootTimeoutMs: 60_000, refillDelayMaxMs: 2_000, ...opts };
  }

  /** Workers booted and waiting. */
  get readyCount(): number {
    return this.#ready.length;
  }

  /** Fills the pool up to its size; resolves when every boot under way has finished (or failed). */
  async fill(): Promise<void> {
    const want = this.#opts.size - this.#ready.length - this.#booting;
    for (let i = 0; i < want; i++) this.#bootIntoPool().catch(() => {});
    await Promise.allSettled([...this.#boots]);
  }

  /** A booted worker that holds no model. Takes a pre-spawned one when there is one, else boots one now. */
  async acquire(): Promise<AcquiredWorker> {
    if (this.#closed) throw hearthError('INTERNAL', 'the executor is shutting down');
    const started = this.#opts.clock.now();
    const w = this.#ready.shift();
    if (w) {
      this.#refillAfterFirstRun(w);
      return { worker: w, acquireMs: this.#opts.clock.now() - started, prewarmed: true };
    }
    // None waiting (a burst of cold starts): refill now, after this cold start has begun its own boot.
    setImmediate(() => this.#refill());
    const worker = await this.#boot();
    return { worker, acquireMs: this.#opts.clock.now() - started, prewarmed: false };
  }

  /** Ends a worker that was handed out; the pool forgets it. */
  async terminate(worker: Worker): Promise<void> {
    this.#all.delete(worker);
    await worker.terminate().catch(() => {});
  }

  /**
   * Ends every worker still known, but those in `keep`: workers inside a native call, which terminate() cannot stop
   * (it would wait for ever) and would make abort the process when the call returns.
   */
  async close(keep: ReadonlySet<Worker> = new Set()): Promise<void> {
    this.#closed = true;
    const all = [...this.#all].filter((w) => !keep.has(w));
    this.#ready = [];
    this.#all.clear();
    // A thread ended while onnxruntime's addon is still loading aborts the whole process (Napi::Error thrown into a
    // torn-down environment), so a booting worker is ended only once it is ready or gone, or after the boot timeout.
    await Promise.all(
      all.map(async (w) => {
        const booting = this.#unready.get(w);
        if (booting) await settleWithin([booting], this.#opts.bootTimeoutMs);
        await w.terminate().catch(() => {});
      }),
    );
  }

  #refillAfterFirstRun(w: Worker): void {
    if (this.#opts.refillDelayMaxMs <= 0) {
      setImmediate(() => this.#refill());
      return;
    }
    let done = false;
    const go = () => {
      if (done) return;
      done = true;
      this.#opts.clock.clearTimeout(timer);
      w.off('message', onMessage);
      w.off('exit', go);
      this.#refill();
    };
    const onMessage = (m: WorkerToHost) => {
      if (m.type === 'result' || m.type === 'error') go();
    };
    const timer = this.#opts.clock.setTimeout(go, this.#opts.refillDelayMaxMs);
    w.on('message', onMessage);
    w.once('exit', go);
  }

  #refill(): void {
    if (this.#closed || this.#ready.length + this.#booting >= this.#opts.size) return;
    // Background: a failed boot is retried on the next acquire.
    this.#bootIntoPool().catch(() => {});
  }

  #bootIntoPool(): Promise<void> {
    const p = this.#bootOne().finally(() => this.#boots.delete(p));
    this.#boots.add(p);
    return p;
  }

  async #bootOne(): Promise<void> {
    this.#booting++;
    try {
      const w = await this.#boot();
      if (this.#closed) {
        await w.terminate();
        return;
      }
      this.#ready.push(w);
      // A pre-spawned worker that dies while waiting simply leaves the pool.
      w.once('exit', () => {
        const i = this.#ready.indexOf(w);
        if (i >= 0) this.#ready.splice(i, 1);
        this.#all.delete(w);
      });
    } finally {
      this.#booting--;
    }
  }

  async #boot(): Promise<Worker> {
    const entry = this.#opts.entry ?? (await resolveWorkerEntry());
    if (this.#closed) throw hearthError('INTERNAL', 'the executor is shutting down');
    const worker = spawnInstanceWorker(entry, { workerData: this.#opts.workerData });
    this.#all.add(worker);
    const booted = new Promise<Worker>((resolve, reject) => {
      const fail = (e: Error) => {
        cleanup();
        this.#all.delete(worker);
        worker.terminate().catch(() => {});
        reject(hearthError('INSTANCE_FAILED', `instance worker failed to boot: ${e.message}`, { cause: e }));
      };
      const onMessage = (m: WorkerToHost) => {
        if (m.type === 'ready') {
          cleanup();
          // Until an instance attaches its own handlers (and while it waits in the pool), an 'error' event with
          // no listener would be thrown in the host process; the 'exit' that follows is what the pool acts on.
          worker.on('error', () => {});
          resolve(worker);
        } else if (m.type === 'error') fail(new Error(m.message));
      };
      const onError = (e: Error) => fail(e);
      const onExit = (code: number) => fail(new Error(`exited with code ${code}`));
      const timer = this.#opts.clock.setTimeout(
        () => fail(new Error(`no ready message within ${this.#opts.bootTimeoutMs} ms`)),
        this.#opts.bootTimeoutMs,
      );
      const cleanup = () => {
        this.#opts.clock.clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
    const settled = booted
      .then(
        () => {},
        () => {},
      )
      .finally(() => this.#unready.delete(worker));
    this.#unready.set(worker, settled);
    return booted;
  }
}
