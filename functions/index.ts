// functions: what runs inside an instance. The host imports this front door; the worker body
// (worker-entry.mjs -> worker.ts) is loaded by path through WORKER_ENTRY_URL and never imported.
export type { Runtime, Session, LoadOptions } from './runtime.ts';
export type * from './protocol.ts';
export { inspectModel, InspectionQueue, WORKER_ENTRY_URL, DEFAULT_INSPECT_TIMEOUT_MS, DEFAULT_INSPECT_MAX_RSS_MB, type InspectOptions, type InspectionQueueOptions, type ModelSignature } from './inspect-model.ts';
export { resolveWorkerEntry, buildWorkerBundle, hashWorkerSources, workerExecArgv, spawnInstanceWorker, forkInstanceProcess, type WorkerBundle, type WorkerBundleOptions } from './worker-bundle.ts';
export { transferTensors } from './tensor-transfer.ts';
export { checkFeeds, checkOutputNames, shapeFits } from './feed-check.ts';
export {
  tensorDataFromJson, tensorDataToJson, tensorDataFromBytes, tensorDataToBytes, flattenJsonData,
  checkTensorData, floatToHalfBits, halfBitsToFloat,
} from './tensor-convert.ts';
