// The body of an instance worker: holds at most one session and answers the host's load, run and
// dispose messages (functions/protocol.ts). Started by path (worker-entry.ts); never imported by the host.
import { MessageChannel, parentPort, workerData as rawWorkerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import {
  elementCount,
  hearthError,
  isHearthError,
  shown,
  type ErrorCode,
  type HearthError,
  type ModelFormat,
  type Tensor,
} from '../core/index.ts';
import type { HostToWorker, LoadMessage, RunMessage, WorkerData, WorkerToHost } from './protocol.ts';
import type { Runtime, Session } from './runtime.ts';
import { materializeInputs } from './materialize.ts';
import { printedByAll, printOutputsWithin } from './print-outputs.ts';
import { tensorBytes, transferTensors } from './tensor-transfer.ts';

// Node 24 has a native Float16Array, and onnxruntime-node then hands float16 tensors to its binding as one, which
// the binding cannot read ("not enough space: expected 12, got 0"). Without it, float16 stays raw Uint16 bits, as on
// Node 20 and as V2 carries FP16. Deleted before the runtime is imported (runtimes load lazily, below).
delete (globalThis as { Float16Array?: unknown }).Float16Array;

/** The host link: a thread's parentPort, or a forked process's IPC channel (inspection; workerData in argv[2]). */
interface HostLink {
  postMessage(msg: WorkerToHost, transfer?: ArrayBuffer[]): void;
  on(event: 'message', listener: (msg: HostToWorker) => void): void;
}

function processLink(): HostLink {
  // A parent that goes away closes the channel: nothing is left to answer.
  process.on('disconnect', () => process.exit(0));
  return {
    // The channel structured-clones (serialization 'advanced'); there is no transfer list across processes.
    postMessage: (msg) => void process.send!(msg),
    on: (_event, listener) => void process.on('message', listener as (m: unknown) => void),
  };
}

const port: HostLink | null = parentPort ?? (process.send ? processLink() : null);
if (!port) throw new Error('functions/worker.ts must run inside a worker_thread or a forked process');
const workerData = (parentPort ? (rawWorkerData ?? {}) : JSON.parse(process.argv[2] ?? '{}')) as WorkerData;

/** One runtime per kind, created on first use so a worker imports only what its model needs. */
class Runtimes {
  #onnx?: Promise<Runtime>;
  #tfjs?: Promise<Runtime & { init(): Promise<string> }>;
  #fault?: Promise<Runtime>;

  forFormat(format: ModelFormat): Promise<Runtime> {
    if (format === 'onnx') return (this.#onnx ??= import('./onnx-runtime.ts').then((m) => new m.OnnxRuntime()));
    if (format === 'tfjs-layers' || format === 'tfjs-graph') return this.tfjs();
    return Promise.reject(hearthError('MODEL_INVALID', `unknown model format ${JSON.stringify(format)}`));
  }

  tfjs(): Promise<Runtime & { init(): Promise<string> }> {
    return (this.#tfjs ??= import('./tfjs-runtime.ts').then((m) => new m.TfjsRuntime()));
  }

  fault(): Promise<Runtime> {
    return (this.#fault ??= import('./fault-runtime.ts').then((m) => new m.FaultRuntime()));
  }

  /** Imports runtime modules ahead of the first load. */
  async preload(formats: readonly ModelFormat[]): Promise<void> {
    for (const f of new Set(formats)) {
      const rt = await this.forFormat(f);
      if (f !== 'onnx') await (rt as Runtime & { init(): Promise<string> }).init();
    }
  }
}

const runtimes = new Runtimes();
let session: Session | undefined;
let loading: Promise<Session | undefined> | undefined;

function post(msg: WorkerToHost, transfer?: ArrayBuffer[]): void {
  port!.postMessage(msg, transfer);
}

function failure(e: unknown, fallback: ErrorCode): { code: ErrorCode; message: string } {
  if (isHearthError(e)) return { code: e.code, message: e.message };
  return { code: fallback, message: e instanceof Error ? e.message : String(e) };
}

async function load(msg: LoadMessage): Promise<void> {
  if (session || loading) {
    post({ type: 'error', code: 'INTERNAL', message: 'this worker already holds a model; dispose it first' });
    return;
  }
  const start = performance.now();
  let runtime: Runtime | undefined;
  loading = (async () => {
    const opts = { ...msg.options, dir: msg.dir, format: msg.format };
    if (opts.runtime === 'fault') {
      if (!workerData.allowTestRuntimes)
        throw hearthError('MODEL_INVALID', 'runtime "fault" is for tests only and this worker does not allow it');
      runtime = await runtimes.fault();
    } else if (opts.runtime !== undefined) {
      throw hearthError('MODEL_INVALID', `unknown runtime ${JSON.stringify(opts.runtime)}`);
    } else {
      runtime = await runtimes.forFormat(msg.format);
    }
    return runtime.load(opts);
  })();
  try {
    session = await loading;
    post({ type: 'loaded', inputs: session!.inputs, outputs: session!.outputs, loadMs: performance.now() - start, runtime: runtime!.name });
  } catch (e) {
    post({ type: 'error', ...failure(e, 'MODEL_INVALID') });
  } finally {
    loading = undefined;
  }
}

/** True unless some deferred input merges parts of several requests. */
function isSingleRequest(inputs: RunMessage['inputs']): boolean {
  for (const t of inputs) {
    const parts = (t.data as { parts?: { request: number }[] }).parts;
    if (parts?.some((p) => p.request !== 0)) return false;
  }
  return true;
}

async function run(msg: RunMessage): Promise<void> {
  // Only a failure of the runtime's own run says the session may be broken (INSTANCE_FAILED: the host replaces the
  // instance). Failures around it (parsing inputs, allocating, converting, printing outputs) fail this run alone.
  let inRuntime = false;
  try {
    const s = session ?? (loading ? await loading.catch(() => undefined) : undefined);
    if (!s) throw hearthError('INSTANCE_FAILED', 'run before a model was loaded in this worker');
    // Deferred inputs are parsed here, off the HTTP thread. A request whose part does not parse fails alone:
    // its rows stay zero and the batch runs for the others (rows of a batch do not affect each other).
    const t0 = performance.now();
    const { tensors: inputs, failed } = materializeInputs(msg.inputs);
    const inputMs = performance.now() - t0;
    if (failed.length > 0 && isSingleRequest(msg.inputs)) throw hearthError(failed[0].code, failed[0].message);
    // A short buffer (e.g. one the host had already transferred away) must fail only this run: inside the
    // runtime it can hang the run or abort the whole process.
    for (const t of inputs) {
      const want = elementCount(t.shape);
      if (t.data.length !== want)
        throw hearthError(
          'INVALID_TENSOR',
          `input "${shown(t.name)}": shape [${t.shape.join(',')}] needs ${want} elements, got ${t.data.length}`,
        );
    }
    const start = performance.now();
    inRuntime = true;
    const outputs = await s.run(inputs, msg.outputs);
    inRuntime = false;
    const computeMs = performance.now() - start;
    // Outputs past MAX_RESPONSE_BYTES fail here, before they are printed or sent: they are dropped on this thread.
    const maxBytes = msg.maxResponseBytes ?? Infinity;
    const tooMany = tooManyBytes(outputs, maxBytes, msg.requests ?? 1);
    if (tooMany) throw release(outputs, tooMany);
    // Outputs the client wants as JSON are printed here, off the HTTP thread; those wanted by every request
    // of the run need not travel back as tensors.
    const t1 = performance.now();
    const print = msg.print ? printOutputsWithin(outputs, msg.print, maxBytes) : undefined;
    if (print?.failed.length) {
      if (msg.print!.names.length === 1) throw release(outputs, hearthError(print.failed[0].code, print.failed[0].message));
      failed.push(...print.failed);
    }
    const printed = print?.printed;
    const everyone = msg.print ? printedByAll(msg.print.names) : undefined;
    const moved = transferTensors(everyone ? outputs.filter((t) => !everyone.has(t.name)) : outputs);
    const outputMs = performance.now() - t1;
    post(
      {
        type: 'result',
        id: msg.id,
        outputs: moved.tensors,
        computeMs,
        inputMs,
        outputMs,
        ...(failed.length > 0 ? { failed } : {}),
        ...(printed ? { printed } : {}),
      },
      moved.transfer,
    );
  } catch (e) {
    post({ type: 'error', id: msg.id, ...failure(e, inRuntime ? 'INSTANCE_FAILED' : 'INTERNAL') });
  }
}

/** RESPONSE_TOO_LARGE when the outputs of a run of `requests` requests take more than `maxBytes` each, as bytes. */
function tooManyBytes(outputs: readonly Tensor[], maxBytes: number, requests: number): HearthError | undefined {
  if (maxBytes === Infinity) return undefined;
  let total = 0;
  let largest: { t: Tensor; bytes: number } | undefined;
  for (const t of outputs) {
    const bytes = tensorBytes(t);
    total += bytes;
    if (!largest || bytes > largest.bytes) largest = { t, bytes };
  }
  if (total <= maxBytes * requests) return undefined;
  const { t, bytes } = largest!;
  const run = requests > 1 ? ` for a run of ${requests} requests (${maxBytes * requests} bytes)` : '';
  return hearthError(
    'RESPONSE_TOO_LARGE',
    `the outputs take ${total} bytes, more than MAX_RESPONSE_BYTES (${maxBytes} bytes)${run}; the largest is "${t.name}" ${t.datatype} [${t.shape.join(',')}] (${bytes} bytes): ask for less`,
  );
}

/**
 * Frees the outputs' memory now and answers `err`. Dropped references wait for this thread's next garbage collection,
 * and an idle instance may not collect for a long while (measured: 280 MB held for more than 12 s); a buffer
 * transferred into a closed channel is freed with the message, without a collection.
 */
function release(outputs: readonly Tensor[], err: HearthError): HearthError {
  const buffers = new Set<ArrayBuffer>();
  for (const t of outputs) if (!Array.isArray(t.data) && t.data.buffer instanceof ArrayBuffer) buffers.add(t.data.buffer);
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(null, [...buffers]);
  } catch {
    // A buffer that cannot be transferred is left to the collector.
  }
  port1.close();
  port2.close();
  return err;
}

async function dispose(): Promise<void> {
  const s = session ?? (loading ? await loading.catch(() => undefined) : undefined);
  session = undefined;
  try {
    await s?.dispose();
  } catch {
    // A session that fails to release is gone either way; the host may terminate the thread.
  }
  post({ type: 'disposed' });
}

port.on('message', (msg: HostToWorker) => {
  // Each handler catches its own errors and answers with a message; none rejects.
  switch (msg?.type) {
    case 'load':
      void load(msg);
      break;
    case 'run':
      void run(msg);
      break;
    case 'dispose':
      void dispose();
      break;
    default:
      post({ type: 'error', code: 'INTERNAL', message: `unknown message type ${JSON.stringify((msg as { type?: unknown })?.type)}` });
  }
});

try {
  await runtimes.preload(workerData.preload ?? []);
  post({ type: 'ready', bootMs: performance.now() });
} catch (e) {
  post({ type: 'error', ...failure(e, 'INTERNAL') });
  post({ type: 'ready', bootMs: performance.now() });
}
