// model-store: object-store backends (fs, s3), the model registry and the upload pipeline. Others import only this file.
import type { Config } from '../core/index.ts';
import { FsObjectStore } from './fs-object-store.ts';
import type { ObjectStore } from './object-store.ts';
import { S3ObjectStore } from './s3-object-store.ts';

export * from './object-store.ts';
export { FsObjectStore } from './fs-object-store.ts';
export { S3ObjectStore, type S3StoreOptions } from './s3-object-store.ts';
export {
  ModelRegistry,
  checkModelName,
  parseVersion,
  unknownModel,
  unknownVersion,
  MAX_EXPLICIT_VERSION,
  MAX_VERSION,
  type ModelSummary,
  type VersionReservation,
  type RegistryOptions,
} from './registry.ts';
export { artifactId, checkManifest, MAX_PATH_BYTES, MAX_PATH_DEPTH, MAX_SEGMENT_BYTES } from './manifest-check.ts';
export {
  ArtifactCache,
  type ArtifactSource,
  type EnsuredArtifact,
  type OpenArtifactFile,
  type ArtifactCacheOptions,
} from './artifact-cache.ts';
export { ModelUploader, type ModelInspector, type UploadBody, type UploaderOptions } from './upload.ts';

/** The backend the config names; call init() on it before use. `timeoutMs`: STORE_TIMEOUT_MS (S3 calls). */
export function createObjectStore(store: Config['store'], opts: { timeoutMs?: number } = {}): ObjectStore {
  if (store.kind === 'fs') return new FsObjectStore({ root: store.root });
  return new S3ObjectStore({ ...store, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
}
