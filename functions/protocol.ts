// The messages between the host (executor) and an instance worker (functions/worker.ts, started from its build by functions/worker-entry.ts).
// Types only. Tensors cross as structured-cloned typed arrays whose ArrayBuffers are in the transfer
// list (see transferTensors), never as JSON; BYTES tensors cross as string arrays.
//
// Life of a worker:
//   spawn  new Worker(WORKER_ENTRY_URL, { workerData })       workerData: WorkerData
//          or, for inspection, fork(entry, [JSON.stringify(workerData)]) (forkInstanceProcess): the same messages
//          over the IPC channel, structured-cloned without transfer lists; the process exits when the channel closes
//   <- { type: 'ready', bootMs }    bootstrap done (tsx registered, preloads imported); bootMs since the thread started
//   -> { type: 'load', dir, format, options }                 at most one session at a time
//   <- { type: 'loaded', inputs, outputs, loadMs, runtime }   or { type: 'error', code, message } (no id)
//   -> { type: 'run', id, inputs, outputs?, print? }          any number, may overlap
//   <- { type: 'result', id, outputs, computeMs, failed?, printed? }   or { type: 'error', id, code, message }
//   -> { type: 'dispose' }
//   <- { type: 'disposed' }                                   the worker may now get another 'load', or be terminated
//
// The worker never leaves an unhandled rejection: every failure it can catch comes back as an 'error'
// message. A run error with code INSTANCE_FAILED means the runtime itself threw (the host should
// replace the instance); INVALID_TENSOR means the inputs did not fit and the instance is fine.
// A worker that dies (process.exit, uncaught exception, native crash) shows up on the host as the
// Worker's 'error' / 'exit' events instead (a child process's 'exit', with its code or signal).
//
// TEST-ONLY FAULT RUNTIME. When workerData.allowTestRuntimes is true, a load with options.runtime = 'fault'
// ignores dir/format and yields a session with
//   inputs  mode INT32 [-1], payload FP32 [-1]      outputs  mode INT32 [-1], payload FP32 [-1] (echo)
// Its run looks at mode[0]:
//   0          echo the inputs (use it to measure the thread hop)
//   1          hang: return a promise that never settles (the thread stays responsive)
//   2          hang: busy-loop forever (the thread is blocked; only terminate() ends it)
//   3          throw an Error (reported as an 'error' message, code INSTANCE_FAILED)
//   4          process.exit(3) (inside a worker this ends only the worker thread)
//   5          throw from a timer, an uncaught exception that kills the worker
//   >= 1000    sleep (mode[0] - 1000) ms, then echo
// options.fault.load = 'throw' | 'hang' | 'exit' makes the load itself fail that way,
// options.fault.loadDelayMs delays a load (to simulate a slow cold start), and options.fault.loadAllocMb makes the
// session hold that much resident memory (to simulate a model's footprint).
// Without allowTestRuntimes, runtime 'fault' is refused with MODEL_INVALID.
import type { ErrorCode, InputTensor, ModelFormat, PrintedTensor, Tensor, TensorSpec } from '../core/index.ts';
import type { PrintPlan } from './print-outputs.ts';
import type { RequestFailure } from './materialize.ts';
import type { LoadOptions } from './runtime.ts';

export interface WorkerData {
  /** Accept LoadOptions.runtime = 'fault'. Tests only. */
  allowTestRuntimes?: boolean;
  /** Runtime modules to import before 'ready', so the first load skips that cost. */
  preload?: ModelFormat[];
}

/** Runtime options carried by a load message (everything of LoadOptions but dir and format). */
export type LoadMessageOptions = Omit<LoadOptions, 'dir' | 'format'>;

export interface LoadMessage {
  type: 'load';
  dir: string;
  format: ModelFormat;
  options?: LoadMessageOptions;
}
/** Inputs may be deferred (JSON text, or a merge plan over several requests' parts): see functions/materialize.ts. */
/** `print`: outputs to return as JSON `data` text too, per request of the run (functions/print-outputs.ts). */
/**
 * `maxResponseBytes`: MAX_RESPONSE_BYTES; the outputs of the run may take at most that times `requests` (the requests
 * merged into it) as bytes, and each request's printed text at most that, or they fail RESPONSE_TOO_LARGE before
 * anything is printed or sent back.
 */
export interface RunMessage {
  type: 'run';
  id: number;
  inputs: InputTensor[];
  outputs?: string[];
  print?: PrintPlan;
  maxResponseBytes?: number;
  requests?: number;
}
export interface DisposeMessage {
  type: 'dispose';
}
export type HostToWorker = LoadMessage | RunMessage | DisposeMessage;

export interface ReadyMessage {
  type: 'ready';
  bootMs: number;
}
export interface LoadedMessage {
  type: 'loaded';
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Time to create the session inside the worker, in ms. */
  loadMs: number;
  /** Which runtime and backend runs the model, e.g. 'onnxruntime-node' or 'tfjs-wasm'. */
  runtime: string;
}
/** `failed`: requests of a merged run whose deferred inputs did not parse; the others' outputs are good. */
/** computeMs: session.run alone; inputMs: parsing deferred inputs; outputMs: printing outputs (all in the worker). */
export interface ResultMessage {
  type: 'result';
  id: number;
  outputs: Tensor[];
  computeMs: number;
  inputMs?: number;
  outputMs?: number;
  failed?: RequestFailure[];
  printed?: PrintedTensor[][];
}
/** A failed load (no id) or a failed run (with the run's id). */
export interface ErrorMessage {
  type: 'error';
  id?: number;
  code: ErrorCode;
  message: string;
}
export interface DisposedMessage {
  type: 'disposed';
}
export type WorkerToHost = ReadyMessage | LoadedMessage | ResultMessage | ErrorMessage | DisposedMessage;
