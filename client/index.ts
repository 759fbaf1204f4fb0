// hearth/client: the TypeScript SDK for Hearth (docs/api/sdk.md). fetch-based, no Node-only imports: Node-only
// helpers that read files and folders from disk are in hearth/client/node.
export {
  HearthClient,
  ModelsApi,
  DatasetsApi,
  JobsApi,
  KeysApi,
  BINARY_AUTO_BYTES,
  type ModelSource,
  type UploadEvent,
  type UploadOptions,
  type InferOptions,
  type InferResult,
  type InferTiming,
  type JobEvent,
  type WatchOptions,
  type DatasetUploadEvent,
  type CostsQuery,
} from './hearth-client.ts';
export { HearthError, isHearthError } from './errors.ts';
export { type ClientOptions } from './http.ts';
export { type InferInputs, type InputTensor, type InputData } from './tensors.ts';
export { type BodySource, type UploadFile, jsonLines, readJsonLines } from './bodies.ts';
export * from './types.ts';
export type { Datatype, Tensor, TensorData } from '../core/index.ts';
export { floatToHalfBits, halfBitsToFloat } from '../protocol/index.ts';
