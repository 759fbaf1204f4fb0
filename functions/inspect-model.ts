// Inspection of an uploaded model: load it once in a throwaway child process and read its inputs and outputs as
// V2 specs. A process, not a thread, because a hostile model's load is native work that a thread cannot bound:
// constant folding can allocate tens of GB, and a load cannot be stopped. A child is killed (SIGKILL) past its time
// or memory bound, and nothing of it stays in the node.
import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { hearthError, type HearthError, type ModelFormat, type TensorSpec } from '../core/index.ts';
import type { LoadMessageOptions, WorkerData, WorkerToHost } from './protocol.ts';
import { forkInstanceProcess, resolveWorkerEntry } from './worker-entry.ts';

/** INSPECT_TIMEOUT_MS and INSPECT_MAX_RSS_MB when a caller gives none. */
export const DEFAULT_INSPECT_TIMEOUT_MS = 120_000;
export const DEFAULT_INSPECT_MAX_RSS_MB = 2048;
/** How often the child's RSS is read: folding writes a few GB a second, so it passes the bound by little. */
const RSS_POLL_MS = 20;

export interface InspectOptions {
  /** Give up (MODEL_INVALID) when loading takes longer than this, child start included. Default 120000. */
  timeoutMs?: number;
  /** Give up (MODEL_INVALID) when the child's resident memory passes this, in MB (native memory included). Default 2048. */
  maxRssMb?: number;
  /** V8 heap limit of the child, in MB. */
  maxHeapMb?: number;
  /** Runtime options, as for a real instance (threads, graph optimisation; 'fault' in tests). */
  options?: LoadMessageOptions;
  /** Accept options.runtime = 'fault'. Tests only. */
  allowTestRuntimes?: boolean;
  /** Stops the inspection (the child is killed); it rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface ModelSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Session creation time inside the child, in ms. */
  loadMs: number;
  /** Which runtime loaded it, e.g. 'onnxruntime-node' or 'tfjs-wasm'. */
  runtime: string;
}

// Children alive in this process, killed if it exits first: an orphan would go on folding a bomb. Process-wide by
// nature (one 'exit' hook for all), hence module state.
const live = new Set<ChildProcess>();
const killLive = () => {
  for (const c of live) c.kill('SIGKILL');
};

/** An abort reason as an Error (AbortSignal reasons may be anything). */
function asError(reason: unknown): HearthError {
  return reason instanceof Error ? (reason as HearthError) : hearthError('INTERNAL', `inspection stopped: ${String(reason)}`);
}

/** Resident memory of `pid` in MB, from /proc (it counts native allocations); undefined where /proc is missing. */
function residentMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Loads the model in `dir` once in a fresh child process and returns its inputs and outputs (-1 for every dynamic
 * or symbolic dimension; a scalar is []). Throws MODEL_INVALID with the reason when the files are not a loadable
 * model of `format`, or when loading crashes, times out or passes the memory bound.
 */
export async function inspectModel(dir: string, format: ModelFormat, opts: InspectOptions = {}): Promise<ModelSignature> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_INSPECT_TIMEOUT_MS;
  const maxRssMb = opts.maxRssMb ?? DEFAULT_INSPECT_MAX_RSS_MB;
  const workerData: WorkerData = { allowTestRuntimes: opts.allowTestRuntimes === true };
  opts.signal?.throwIfAborted();
  const entry = await resolveWorkerEntry();
  opts.signal?.throwIfAborted();
  return new Promise<ModelSignature>((resolve, reject) => {
    const child = forkInstanceProcess(entry, workerData, { execArgv: opts.maxHeapMb ? [`--max-old-space-size=${opts.maxHeapMb}`] : [] });
    if (live.size === 0) process.once('exit', killLive);
    live.add(child);
    let settled = false;
    const finish = (result: { ok: ModelSignature } | { failed: Error }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(poll);
      opts.signal?.removeEventListener('abort', onAbort);
      child.removeAllListeners();
      child.on('error', () => {}); // late errors of a process we are ending are of no interest
      // Its work is done either way; a kill cannot abort this process, unlike terminating a thread mid-load.
      child.kill('SIGKILL');
      live.delete(child);
      if (live.size === 0) process.removeListener('exit', killLive);
      if ('ok' in result) resolve(result.ok);
      else reject(result.failed);
    };
    const timer = setTimeout(() => {
      finish({
        failed: hearthError(
          'MODEL_INVALID',
          `loading the model did not finish within ${timeoutMs} ms (INSPECT_TIMEOUT_MS); it was stopped`,
        ),
      });
    }, timeoutMs);
    const poll = setInterval(() => {
      const mb = child.pid === undefined ? undefined : residentMb(child.pid);
      if (mb !== undefined && mb > maxRssMb) {
        finish({
          failed: hearthError(
            'MODEL_INVALID',
            `loading the model took more than ${maxRssMb} MB of memory (INSPECT_MAX_RSS_MB); it was stopped at ${Math.round(mb)} MB`,
          ),
        });
      }
    }, RSS_POLL_MS);
    const onAbort = () => finish({ failed: asError(opts.signal!.reason) });
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (msg: WorkerToHost) => {
      if (msg.type === 'ready') {
        child.send({ type: 'load', dir, format, options: opts.options });
      } else if (msg.type === 'loaded') {
        finish({ ok: { inputs: msg.inputs, outputs: msg.outputs, loadMs: msg.loadMs, runtime: msg.runtime } });
      } else if (msg.type === 'error') {
        finish({ failed: hearthError(msg.code, msg.message) });
      }
    });
    child.on('error', (e: Error) => {
      finish({ failed: hearthError('INTERNAL', `the inspection process failed: ${e.message}`, { cause: e }) });
    });
    child.on('exit', (code, signal) => {
      finish({
        failed: hearthError(
          'MODEL_INVALID',
          signal
            ? `the runtime was killed by ${signal} while loading the model`
            : `the runtime exited (code ${code}) while loading the model`,
        ),
      });
    });
  });
}

export interface InspectionQueueOptions {
  /** Inspections running at once (INSPECT_CONCURRENCY). */
  concurrency: number;
  /** Inspections waiting for a turn (INSPECT_QUEUE_SIZE); past it OVERLOADED. */
  queueSize: number;
}

/** Seconds a refused upload is told to wait: about one inspection. */
const RETRY_AFTER_S = 5;

/**
 * Admission for inspections: at most `concurrency` run at once (each may take INSPECT_MAX_RSS_MB and a core), the
 * next `queueSize` wait in arrival order, and any more are refused with 503 OVERLOADED and Retry-After.
 */
export class InspectionQueue {
  readonly #opts: InspectionQueueOptions;
  #running = 0;
  readonly #waiting: { go: () => void }[] = [];

  constructor(opts: InspectionQueueOptions) {
    this.#opts = opts;
  }

  /** Runs `task` in its turn. A `signal` aborted while waiting gives up the place in the queue. */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    if (this.#running < this.#opts.concurrency) this.#running++;
    else await this.#wait(signal);
    try {
      return await task();
    } finally {
      // The slot passes to the next waiter, or is freed.
      const next = this.#waiting.shift();
      if (next) next.go();
      else this.#running--;
    }
  }

  #wait(signal?: AbortSignal): Promise<void> {
    const { concurrency, queueSize } = this.#opts;
    if (this.#waiting.length >= queueSize) {
      return Promise.reject(
        hearthError(
          'OVERLOADED',
          `${concurrency} model inspection(s) are running and ${queueSize} are waiting (INSPECT_CONCURRENCY, INSPECT_QUEUE_SIZE); retry shortly`,
          {
            headers: { 'Retry-After': String(RETRY_AFTER_S) },
          },
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        go: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(asError(signal!.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /** Running and waiting inspections, for status and tests. */
  get counts(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#waiting.length };
  }
}
