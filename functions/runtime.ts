// The contract every runtime meets (onnx on onnxruntime-node, tfjs on tfjs-node or tfjs + wasm).
import type { ModelFormat, Tensor, TensorSpec } from '../core/index.ts';

export interface LoadOptions {
  /** Folder holding the model's files as listed in its manifest. */
  dir: string;
  format: ModelFormat;
  /** onnxruntime: threads per op (default 1) and graph optimisation (default 'all'). */
  intraOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * TEST ONLY. 'fault' replaces the real runtime with the fault runtime (see functions/protocol.ts);
   * a worker accepts it only when its workerData.allowTestRuntimes is true.
   */
  runtime?: 'fault';
  /**
   * TEST ONLY, fault runtime: how loading behaves (default 'ok'), a delay before it finishes, and memory the session
   * holds (MB, written so that it is resident) to stand for a model's footprint.
   */
  fault?: { load?: 'ok' | 'throw' | 'hang' | 'exit'; loadDelayMs?: number; loadAllocMb?: number };
}

export interface Session {
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];
  /** Runs the model. `outputNames` selects outputs; all when omitted. */
  run(feeds: Tensor[], outputNames?: string[]): Promise<Tensor[]>;
  dispose(): Promise<void>;
}

export interface Runtime {
  readonly name: string;
  load(opts: LoadOptions): Promise<Session>;
}
