// Inspection of an uploaded model: load it once in a throwaway worker thread, so a huge, slow or
// hostile model cannot block or crash the main thread, and read its inputs and outputs as V2 specs.
import { hearthError, type HearthError, type ModelFormat, type TensorSpec } from '../core/index.ts';
import type { LoadMessageOptions, WorkerData, WorkerToHost } from './protocol.ts';
import { resolveWorkerEntry, spawnInstanceWorker } from './worker-entry.ts';

export interface InspectOptions {
  /** Give up (MODEL_INVALID) when loading takes longer than this. Default 120000. */
  timeoutMs?: number;
  /** V8 heap limit of the throwaway worker, in MB (native runtime memory is not covered). */
  maxHeapMb?: number;
  /** Runtime options, as for a real instance (threads, graph optimisation; 'fault' in tests). */
  options?: LoadMessageOptions;
  /** Accept options.runtime = 'fault'. Tests only. */
  allowTestRuntimes?: boolean;
}

export interface ModelSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Session creation time inside the worker, in ms. */
  loadMs: number;
  /** Which runtime loaded it, e.g. 'onnxruntime-node' or 'tfjs-wasm'. */
  runtime: string;
}

/**
 * Loads the model in `dir` once in a fresh worker thread and returns its inputs and outputs
 * (-1 for every dynamic or symbolic dimension; a scalar is []). Throws MODEL_INVALID with the reason
 * when the files are not a loadable model of `format`, or when loading crashes or times out.
 */
export async function inspectModel(dir: string, format: ModelFormat, opts: InspectOptions = {}): Promise<ModelSignature> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const workerData: WorkerData = { allowTestRuntimes: opts.allowTestRuntimes === true };
  const entry = await resolveWorkerEntry();
  return new Promise<ModelSignature>((resolve, reject) => {
    const worker = spawnInstanceWorker(entry, {
      workerData,
      ...(opts.maxHeapMb ? { resourceLimits: { maxOldGenerationSizeMb: opts.maxHeapMb } } : {}),
    });
    let ready = false;
    let settled = false;
    // A load posted and not answered yet. Terminating the worker while onnxruntime-node creates the session
    // makes the addon throw Napi::Error into a torn-down environment, which aborts this whole process.
    let loadPending = false;
    const nativeLoad = format === 'onnx' && opts.options?.runtime === undefined;
    const finish = (result: ModelSignature | HearthError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.removeAllListeners();
      worker.on('error', () => {}); // late errors of a thread we are ending are of no interest
      if (loadPending && nativeLoad) {
        // Timed out mid-load: end the thread once the native load has answered (or the thread has died).
        worker.on('message', (msg: WorkerToHost) => {
          if (msg.type === 'loaded' || msg.type === 'error') void worker.terminate();
        });
      } else void worker.terminate();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(() => {
      finish(hearthError('MODEL_INVALID', `loading the model did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    worker.on('message', (msg: WorkerToHost) => {
      if (msg.type === 'ready') {
        ready = true;
        worker.postMessage({ type: 'load', dir, format, options: opts.options });
        loadPending = true;
      } else if (msg.type === 'loaded') {
        loadPending = false;
        finish({ inputs: msg.inputs, outputs: msg.outputs, loadMs: msg.loadMs, runtime: msg.runtime });
      } else if (msg.type === 'error') {
        loadPending = false;
        finish(hearthError(msg.code, msg.message));
      }
    });
    worker.on('error', (e: Error & { code?: string }) => {
      if (!ready) finish(hearthError('INTERNAL', `the inspection worker failed to start: ${e.message}`, { cause: e }));
      else if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        finish(hearthError('MODEL_INVALID', `loading the model ran out of memory (worker heap limit ${opts.maxHeapMb ?? 'default'} MB)`, { cause: e }));
      } else finish(hearthError('MODEL_INVALID', `the runtime crashed while loading the model: ${e.message}`, { cause: e }));
    });
    worker.on('exit', (code) => {
      finish(hearthError('MODEL_INVALID', `the runtime exited (code ${code}) while loading the model`));
    });
  });
}
