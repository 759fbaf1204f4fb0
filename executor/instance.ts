// One instance: a worker_thread holding one model version's session. It tracks its state (starting, idle,
// busy, retiring), runs requests with a per-run timeout, and reports its own death so the pool replaces it.
import type { Worker } from 'node:worker_threads';
import {
  ERROR_CODES,
  hearthError,
  type Clock,
  type ErrorCode,
  type HearthError,
  type InputTensor,
  type Manifest,
  type PrintedTensor,
  type Tensor,
  type TensorSpec,
} from '../core/index.ts';
import {
  transferTensors,
  type LoadMessageOptions,
  type LoadedMessage,
  type ResultMessage,
  type RunMessage,
  type WorkerToHost,
} from '../functions/index.ts';
import type { InstanceView } from './scheduler.ts';
import type { InstanceState } from './types.ts';
import { ChurnMap } from './churn-map.ts';

/** What the instance prints as JSON for each request of a run, and a request of a run that failed alone. */
type PrintPlan = NonNullable<RunMessage['print']>;
type RequestFailure = NonNullable<ResultMessage['failed']>[number];

export interface InstanceHooks {
  /** Every state change, from 'none' at creation to 'gone' at the end. */
  onState(inst: Instance, from: InstanceState | 'none', to: InstanceState | 'gone'): void;
}

export interface RunResult {
  outputs: Tensor[];
  /** Run time measured on the host, from postMessage to the result (includes the thread hop). */
  computeMs: number;
  /** Run time measured inside the worker (session.run only). */
  workerComputeMs: number;
  /** Time the worker spent parsing deferred inputs, and converting and printing outputs. */
  inputMs: number;
  outputMs: number;
  /** Requests of a merged run whose deferred inputs did not parse (their rows ran as zeros); by batch index. */
  failed?: RequestFailure[];
  /** Per request of the run, the outputs printed as JSON text (RunMessage.print); absent from `outputs` when every request printed them. */
  printed?: PrintedTensor[][];
}

interface PendingRun {
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
  timer: unknown;
  startedAt: number;
}

/** Cold-start parts measured while the instance starts. */
export interface StartTimings {
  acquireMs: number;
  fetchMs: number;
  fetchSource: 'store' | 'cache';
  loadMs: number;
}

let instanceSeq = 0;

export class Instance implements InstanceView {
  readonly id: string;
  readonly manifest: Manifest;
  /** Memory it reserves on the node; the engine raises it once the model's footprint has been measured. */
  memoryMb: number;
  readonly createdAt: number;
  concurrency: number;
  lastUsedAt = 0;
  /** Runs started on this instance; the first one is its cold start's first run. */
  runs = 0;
  inflight = 0;
  timings?: StartTimings;
  inputs: TensorSpec[] = [];
  outputs: TensorSpec[] = [];
  /** True when it crashed, hung past a timeout or its runtime threw: it ends as a failure, not a retirement. */
  failed = false;
  /** True when it was retired on purpose while still loading (not a failure of the model). */
  abandoned = false;
  /** When it finished loading; Infinity while starting. */
  readyAt = Infinity;
  /** When the instance last became idle (keep-alive counts from here). */
  idleSince = 0;
  #state: InstanceState | 'gone' = 'starting';
  #worker?: Worker;
  #clock: Clock;
  #hooks: InstanceHooks;
  /** Runs posted to the worker, by id: a ChurnMap (see churn-map.ts), since one comes and goes per batch. */
  #runs = new ChurnMap<number, PendingRun>();
  #runSeq = 0;
  #loading?: { resolve: (m: LoadedMessage) => void; reject: (e: Error) => void };
  #terminate?: (w: Worker) => Promise<void>;
  /** Which runtime the worker loaded (LoadedMessage.runtime). */
  #runtime?: string;
  /** Runs posted to the worker that it has not answered yet (kept after their promises settle). */
  #posted = new Set<number>();
  /** An onnxruntime load posted to the worker that it has not answered yet. */
  #nativeLoad = false;
  /** The worker of an ended instance that is still inside a native call (see #end); undefined once it returned. */
  #draining?: Worker;
  /** Set when it ended while its worker was inside a native call: 'run' (a run past its timeout) or 'load'. */
  #drainingKind?: 'run' | 'load';
  #endedResolve!: () => void;
  /** Settles when the instance is gone and its worker has been ended. */
  readonly ended = new Promise<void>((resolve) => (this.#endedResolve = resolve));

  constructor(opts: { manifest: Manifest; memoryMb: number; concurrency: number; clock: Clock; hooks: InstanceHooks }) {
    this.id = `${opts.manifest.name}@${opts.manifest.version}#${++instanceSeq}`;
    this.manifest = opts.manifest;
    this.memoryMb = opts.memoryMb;
    this.concurrency = opts.concurrency;
    this.#clock = opts.clock;
    this.#hooks = opts.hooks;
    this.createdAt = opts.clock.now();
    this.#hooks.onState(this, 'none', 'starting');
  }

  get state(): InstanceState {
    return this.#state === 'gone' ? 'retiring' : this.#state;
  }

  /** True while onnxruntime creates a session or computes runs natively in the worker: terminating it now would abort the process. */
  get inNativeCall(): boolean {
    return this.#nativeLoad || (this.#runtime === 'onnxruntime-node' && this.#posted.size > 0);
  }

  get gone(): boolean {
    return this.#state === 'gone';
  }

  /**
   * Set from its end until its worker returned from the native call it was in ('run' or 'load'): such a thread
   * cannot be stopped, so its core and memory are still in use (the engine keeps them counted until `ended`).
   */
  get drainingNative(): 'run' | 'load' | undefined {
    return this.#draining ? this.#drainingKind : undefined;
  }

  /** The worker thread while it is inside a native call (shutdown must not terminate it; see #end). */
  get nativeWorker(): Worker | undefined {
    if (this.#draining) return this.#draining;
    return this.inNativeCall ? this.#worker : undefined;
  }

  /** Takes ownership of a booted worker; `terminate` is how it is ended (the worker pool's bookkeeping). */
  attach(worker: Worker, terminate: (w: Worker) => Promise<void>): void {
    this.#worker = worker;
    this.#terminate = terminate;
    worker.on('message', (m: WorkerToHost) => this.#onMessage(m));
    worker.on('error', (e: Error) =>
      this.#die(hearthError('INSTANCE_FAILED', `instance ${this.id} crashed: ${e.message}`, { cause: e }), true),
    );
    worker.on('exit', (code: number) => this.#die(hearthError('INSTANCE_FAILED', `instance ${this.id} exited with code ${code}`), true));
    // It died between its boot and now (its 'exit' already went by): without this, load() would wait for its timeout.
    if (worker.threadId === -1)
      this.#die(hearthError('INSTANCE_FAILED', `instance ${this.id}: its worker exited before the model was loaded`), true);
  }

  /** Loads the model into the worker; resolves with its inputs, outputs and load time. */
  load(dir: string, options: LoadMessageOptions, timeoutMs: number): Promise<LoadedMessage> {
    if (!this.#worker || this.#state === 'gone') return Promise.reject(hearthError('INSTANCE_FAILED', `instance ${this.id} is gone`));
    return new Promise<LoadedMessage>((resolve, reject) => {
      const timer = this.#clock.setTimeout(() => {
        this.#loading = undefined;
        reject(hearthError('TIMEOUT', `loading ${this.manifest.name}@${this.manifest.version} took longer than ${timeoutMs} ms`));
        void this.retire();
      }, timeoutMs);
      this.#loading = {
        resolve: (m) => {
          this.#clock.clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          this.#clock.clearTimeout(timer);
          reject(e);
        },
      };
      this.#worker!.postMessage({ type: 'load', dir, format: this.manifest.format, options });
      this.#nativeLoad = this.manifest.format === 'onnx' && options.runtime === undefined;
    });
  }

  /** Marks a loaded instance ready for work. */
  ready(loaded: LoadedMessage): void {
    this.inputs = loaded.inputs;
    this.outputs = loaded.outputs;
    this.#runtime = loaded.runtime;
    this.idleSince = this.readyAt = this.#clock.now();
    this.#setState('idle');
  }

  /**
   * Runs one (possibly merged) request. The input buffers are transferred to the worker: the caller must not
   * touch them afterwards. Past timeoutMs the run rejects with TIMEOUT and the instance is terminated.
   */
  run(
    inputs: InputTensor[],
    outputs: string[] | undefined,
    timeoutMs: number,
    print?: PrintPlan,
    response?: { maxBytes: number; requests: number },
  ): Promise<RunResult> {
    if (!this.#worker || (this.#state !== 'idle' && this.#state !== 'busy')) {
      return Promise.reject(hearthError('INSTANCE_FAILED', `instance ${this.id} is ${this.#state}, not ready to run`));
    }
    const id = ++this.#runSeq;
    this.runs++;
    this.inflight++;
    const startedAt = this.#clock.now();
    this.lastUsedAt = startedAt;
    if (this.#state === 'idle') this.#setState('busy');
    const { tensors, transfer } = transferTensors(inputs);
    return new Promise<RunResult>((resolve, reject) => {
      const timer = this.#clock.setTimeout(() => {
        if (!this.#runs.delete(id)) return;
        reject(
          hearthError(
            'TIMEOUT',
            `inference on ${this.manifest.name}@${this.manifest.version} ran past its timeoutMs of ${timeoutMs} ms; the instance was terminated`,
          ),
        );
        this.#die(hearthError('INSTANCE_FAILED', `instance ${this.id} was terminated after another request on it timed out`));
      }, timeoutMs);
      this.#runs.set(id, { resolve, reject, timer, startedAt });
      try {
        const limits = response ? { maxResponseBytes: response.maxBytes, requests: response.requests } : {};
        this.#worker!.postMessage({ type: 'run', id, inputs: tensors, outputs, ...(print ? { print } : {}), ...limits }, transfer);
        this.#posted.add(id);
      } catch (e) {
        // Nothing reached the worker (e.g. data that cannot be cloned): only this request fails.
        this.#takeRun(id);
        reject(hearthError('INVALID_TENSOR', `inputs could not be sent to the instance: ${(e as Error).message}`, { cause: e }));
      }
    });
  }

  /**
   * Stops taking work; ends the worker once its runs are done (at once when idle). Resolves once it is gone, or at
   * once while runs are in flight; a worker inside a native call is ended later (see `ended`).
   */
  async retire(): Promise<void> {
    if (this.#state === 'gone') return;
    if (this.#state !== 'retiring') this.#setState('retiring');
    if (this.inflight > 0) return; // #finishRun ends it
    await this.#end();
  }

  #onMessage(m: WorkerToHost): void {
    if (m.type === 'loaded') {
      this.#nativeLoad = false;
      const l = this.#loading;
      this.#loading = undefined;
      l?.resolve(m);
    } else if (m.type === 'result') {
      this.#posted.delete(m.id);
      const r = this.#takeRun(m.id);
      r?.resolve({
        outputs: m.outputs,
        computeMs: this.#clock.now() - r.startedAt,
        workerComputeMs: m.computeMs,
        inputMs: m.inputMs ?? 0,
        outputMs: m.outputMs ?? 0,
        ...(m.failed ? { failed: m.failed.map((f) => ({ ...f, code: knownCode(f.code, 'INVALID_TENSOR') })) } : {}),
        ...(m.printed ? { printed: m.printed } : {}),
      });
    } else if (m.type === 'error') {
      if (m.id === undefined) {
        this.#nativeLoad = false;
        const l = this.#loading;
        this.#loading = undefined;
        l?.reject(hearthError(knownCode(m.code, 'MODEL_INVALID'), m.message));
        return;
      }
      this.#posted.delete(m.id);
      const r = this.#takeRun(m.id);
      const code = knownCode(m.code, 'INSTANCE_FAILED');
      r?.reject(hearthError(code, code === 'INSTANCE_FAILED' ? `instance ${this.id} failed: ${m.message}` : m.message));
      // The runtime itself threw: the session may be broken, so the instance is replaced.
      if (code === 'INSTANCE_FAILED') {
        this.failed = true;
        void this.retire();
      }
    }
  }

  #takeRun(id: number): PendingRun | undefined {
    const r = this.#runs.get(id);
    if (!r) return undefined;
    this.#runs.delete(id);
    this.#clock.clearTimeout(r.timer);
    this.#finishRun();
    return r;
  }

  #finishRun(): void {
    this.inflight--;
    this.lastUsedAt = this.#clock.now();
    if (this.#state === 'busy' && this.inflight === 0) {
      this.idleSince = this.lastUsedAt;
      this.#setState('idle');
    } else if (this.#state === 'retiring' && this.inflight === 0) void this.#end();
  }

  /** The worker died or must be killed: fail what it held, end it. */
  #die(err: HearthError, dead = false): void {
    if (this.#state === 'gone') return;
    this.failed = true;
    const l = this.#loading;
    this.#loading = undefined;
    l?.reject(err);
    for (const [id, r] of this.#runs) {
      this.#runs.delete(id);
      this.#clock.clearTimeout(r.timer);
      r.reject(err);
    }
    this.inflight = 0;
    void this.#end(dead);
  }

  async #end(dead = false): Promise<void> {
    if (this.#state === 'gone') return;
    // Retired while still loading (unload, shutdown): the load will never answer now.
    const l = this.#loading;
    this.#loading = undefined;
    if (l) {
      this.abandoned = true;
      l.reject(hearthError('INSTANCE_FAILED', `instance ${this.id} was retired before it finished loading`));
    }
    const w = this.#worker;
    this.#worker = undefined;
    // Terminating a worker while onnxruntime-node creates a session or computes a run natively makes the addon
    // throw Napi::Error into a torn-down environment, which aborts the whole process; and terminate() cannot stop
    // native code anyway (session.run is synchronous on the worker's thread). So the worker is ended only once
    // those calls have answered, which for a run that never ends is never: the engine keeps such a thread's core
    // and memory counted (drainingNative) and shows it as a stuck run.
    if (w && !dead && this.inNativeCall) {
      this.#draining = w;
      this.#drainingKind = this.#posted.size > 0 ? 'run' : 'load';
    }
    this.#setState('gone');
    if (w) {
      w.removeAllListeners('message');
      // Keep an 'error' listener: an error event with none would be thrown in the host.
      w.removeAllListeners('error');
      w.on('error', () => {});
      w.removeAllListeners('exit');
      if (this.#draining) {
        // Not awaited: retire() and the engine's shutdown must not wait for a run that may never end.
        void this.#drainNative(w)
          .then(() => {
            this.#draining = undefined;
            return this.#terminate?.(w);
          })
          .finally(() => this.#endedResolve());
        return;
      }
      await this.#terminate?.(w);
    }
    this.#endedResolve();
  }

  #drainNative(w: Worker): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        w.off('message', onMessage);
        w.off('exit', done);
        resolve();
      };
      const onMessage = (m: WorkerToHost) => {
        if ((m.type === 'result' || m.type === 'error') && m.id !== undefined) this.#posted.delete(m.id);
        else if (m.type === 'loaded' || m.type === 'error') this.#nativeLoad = false;
        if (!this.inNativeCall) done();
      };
      w.on('message', onMessage);
      w.once('exit', done);
    });
  }

  #setState(to: InstanceState | 'gone'): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#hooks.onState(this, from as InstanceState, to);
  }
}

function knownCode(code: string, fallback: ErrorCode): ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, code) ? (code as ErrorCode) : fallback;
}
