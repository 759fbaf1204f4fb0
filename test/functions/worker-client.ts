// A minimal host for one instance worker, for tests and the thread-hop measurement: spawn, load,
// run with transferred tensors, dispose. The executor has the real host; this one only follows
// functions/protocol.ts literally, which is what these tests check.
import { Worker } from 'node:worker_threads';
import { HearthError, type ModelFormat, type Tensor } from '../../core/index.ts';
import {
  WORKER_ENTRY_URL,
  transferTensors,
  type LoadedMessage,
  type LoadMessageOptions,
  type ResultMessage,
  type WorkerData,
  type WorkerToHost,
} from '../../functions/index.ts';

export class WorkerClient {
  readonly worker: Worker;
  readonly ready: Promise<number>;
  /** Every message the worker sent, in order. */
  readonly messages: WorkerToHost[] = [];
  #nextId = 1;
  #pending = new Map<number, { resolve: (m: ResultMessage) => void; reject: (e: Error) => void }>();
  #loadWaiter?: { resolve: (m: LoadedMessage) => void; reject: (e: Error) => void };
  #disposeWaiter?: () => void;
  /** Resolves with the exit code when the thread ends. */
  readonly exited: Promise<number>;
  /** Errors the Worker emitted (uncaught exceptions in the thread). */
  readonly errors: Error[] = [];

  constructor(workerData: WorkerData = {}) {
    this.worker = new Worker(WORKER_ENTRY_URL, { workerData });
    let readyResolve!: (ms: number) => void;
    this.ready = new Promise((r) => (readyResolve = r));
    this.exited = new Promise((r) => this.worker.once('exit', r));
    this.worker.on('error', (e) => {
      this.errors.push(e);
      this.#failAll(e);
    });
    this.worker.on('exit', (code) => this.#failAll(new Error(`worker exited with code ${code}`)));
    this.worker.on('message', (m: WorkerToHost) => {
      this.messages.push(m);
      if (m.type === 'ready') readyResolve(m.bootMs);
      else if (m.type === 'loaded') this.#loadWaiter?.resolve(m);
      else if (m.type === 'disposed') this.#disposeWaiter?.();
      else if (m.type === 'result') this.#pending.get(m.id)?.resolve(m);
      else if (m.type === 'error') {
        const err = new HearthError(m.code, m.message);
        if (m.id === undefined) this.#loadWaiter?.reject(err);
        else this.#pending.get(m.id)?.reject(err);
      }
    });
  }

  #failAll(e: Error): void {
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
    this.#loadWaiter?.reject(e);
  }

  async load(dir: string, format: ModelFormat, options?: LoadMessageOptions): Promise<LoadedMessage> {
    await this.ready;
    return new Promise((resolve, reject) => {
      this.#loadWaiter = { resolve, reject };
      this.worker.postMessage({ type: 'load', dir, format, options });
    });
  }

  /** Runs; the inputs' buffers are transferred (so they are detached here afterwards). */
  run(inputs: Tensor[], outputs?: string[]): Promise<ResultMessage> {
    const id = this.#nextId++;
    const moved = transferTensors(inputs);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, {
        resolve: (m) => {
          this.#pending.delete(id);
          resolve(m);
        },
        reject: (e) => {
          this.#pending.delete(id);
          reject(e);
        },
      });
      this.worker.postMessage({ type: 'run', id, inputs: moved.tensors, outputs }, moved.transfer);
    });
  }

  dispose(): Promise<void> {
    return new Promise((resolve) => {
      this.#disposeWaiter = resolve;
      this.worker.postMessage({ type: 'dispose' });
    });
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}
