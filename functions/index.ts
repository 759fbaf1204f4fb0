// functions: what runs inside an instance. The host imports this front door; the worker body
// (the compiled worker.js) is loaded by path through WORKER_ENTRY_URL and never imported.
export type { Runtime, Session, LoadOptions } from './runtime.ts';
export type * from './protocol.ts';
export {
  inspectModel,
  InspectionQueue,
  DEFAULT_INSPECT_TIMEOUT_MS,
  DEFAULT_INSPECT_MAX_RSS_MB,
  type InspectOptions,
  type InspectionQueueOptions,
  type ModelSignature,
} from './inspect-model.ts';
export { WORKER_ENTRY_URL, resolveWorkerEntry, workerExecArgv, spawnInstanceWorker, forkInstanceProcess } from './worker-entry.ts';
export { transferTensors, tensorBytes } from './tensor-transfer.ts';
