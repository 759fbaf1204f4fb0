// The executor's public contract: what the gateway, the job workers and the benchmarks call.
import type { ConfigClamp, InputTensor, Manifest, ModelConfig, PrintedTensor, Tensor } from '../core/index.ts';

export interface InferRequest {
  /** The resolved model version; the caller looks it up in the registry. */
  manifest: Manifest;
  /**
   * Inputs checked against the manifest (see validateInputs). Large JSON inputs may still be text
   * (DeferredTensor, from scanInferRequest): the instance parses them, and a bad one fails only its request.
   */
  inputs: InputTensor[];
  /** Output names to return; all when omitted. */
  outputs?: string[];
  /**
   * Outputs to return printed as V2 JSON `data` text (InferResult.printed) instead of as tensors: the instance
   * thread formats them, not the caller's. The HTTP route asks for its JSON outputs this way.
   */
  printOutputs?: string[];
  /** 0 (lowest, batch jobs) to 9; default 5. */
  priority?: number;
  /** Absolute time (clock ms) after which a still-queued request answers 503 OVERLOADED. */
  deadline?: number;
  /** Aborting removes a queued request (client disconnect). An AbortSignal, or anything with its few members. */
  signal?: CancelSignal;
  /** 'batch' for job workers; counts separately in stats. */
  source?: 'online' | 'batch';
}

/**
 * The part of AbortSignal the executor uses. The HTTP route passes a one-listener object of its own
 * (gateway/client-gone.ts): an AbortController per request cost about 6 µs on the HTTP thread, measured.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface ColdStartBreakdown {
  /** Waiting for a pre-spawned worker or spawning one. */
  acquireMs: number;
  /** Bringing the artifact to local disk. */
  fetchMs: number;
  fetchSource: 'store' | 'cache';
  /** Creating the runtime session. */
  loadMs: number;
  /** The first run on the new instance. */
  firstRunMs: number;
}

export interface InferResult {
  /** The outputs asked for, less those in `printed`. */
  outputs: Tensor[];
  /** The outputs named in InferRequest.printOutputs, as JSON text. */
  printed?: PrintedTensor[];
  coldStart: boolean;
  /** Present when coldStart: from the start of the instance to the end of its first run. */
  coldStartMs?: number;
  breakdown?: ColdStartBreakdown;
  /** Time from arrival to the start of the run. */
  queueMs: number;
  /** Duration of the run that served this request (a batch run's full duration). */
  computeMs: number;
  /** Requests merged into the run that served this one. */
  batchSize: number;
}

/** Cumulative counters per model version, in the spirit of Triton's statistics extension. */
export interface ModelStats {
  name: string;
  version: number;
  lastInference: number;
  /** Requests that completed (successfully). */
  inferenceCount: number;
  /** Runs of the model; inferenceCount / executionCount is the mean batch size. */
  executionCount: number;
  success: { count: number; ns: number };
  fail: { count: number; ns: number };
  queue: { count: number; ns: number };
  computeInfer: { count: number; ns: number };
  /** Per request, its run's time parsing inputs and printing outputs on the instance thread (Triton's compute_input / compute_output). */
  computeInput: { count: number; ns: number };
  computeOutput: { count: number; ns: number };
  coldStarts: number;
  coldStartNs: number;
  /** Successful requests by InferRequest.source (job workers send 'batch'). */
  bySource?: { online: number; batch: number };
}

// The observer hooks live in core (core/observer.ts): the ledger, which may use only core, subscribes to them too.
export type { ExecutorObserver, InstanceState, RequestDoneEvent } from '../core/index.ts';

/**
 * A worker thread stuck inside onnxruntime: its instance ended (a run past its timeout, or a load given up) but the
 * native call it was in did not return within a grace. It cannot be interrupted; it keeps a CPU slot and its memory
 * until it returns, and its model version is refused on this node meanwhile.
 */
export interface StuckRun {
  model: string;
  version: number;
  instanceId: string;
  /** What was running: a run of a request, or the load of the model. */
  kind: 'run' | 'load';
  /** When its instance gave up on it (the run's timeout), ISO 8601. */
  since: string;
}

export interface Executor {
  infer(req: InferRequest): Promise<InferResult>;
  /** Warms one instance now (V2 repository load). */
  load(manifest: Manifest): Promise<void>;
  /** Retires every instance of the model, or of one version; its pools go with them (unless requests wait in them). */
  unload(name: string, version?: number): Promise<void>;
  /**
   * The model, or one version, was deleted: its pools go, requests waiting in them fail with MODEL_NOT_FOUND or
   * VERSION_NOT_FOUND, and requests that still carry its manifest are refused from now on instead of starting it.
   */
  remove(name: string, version?: number): Promise<void>;
  /** True when at least one instance of the version is idle or busy. */
  isLoaded(name: string, version: number): boolean;
  stats(filter?: { name?: string; version?: number }): ModelStats[];
  /** Applies a model's serving config to its running pools without a restart (clamped to the node, see fitConfig). */
  setConfig(name: string, config: ModelConfig): void;
  /** The config as this node applies it to the model version's pool: clamped to its cores, slots and memory. */
  fitConfig(manifest: Manifest, config: ModelConfig): { config: ModelConfig; clamped: ConfigClamp[] };
  /** INVALID_CONFIG when no instance of the config could ever start on this node (memoryMb past EXECUTOR_MEMORY_MB). */
  checkConfig(config: ModelConfig): void;
  /** Worker threads inside a native call that cannot be interrupted: a process exit would wait for them. */
  busyNativeThreads(): number;
  close(): Promise<void>;
}

/** Where the executor's warnings go: a pino logger fits (the gateway passes a child of its own). */
export interface ExecutorLog {
  warn(obj: object, msg: string): void;
}
