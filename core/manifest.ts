// What the registry records for each immutable model version.
import type { TensorSpec } from './tensor.ts';

export const MODEL_FORMATS = ['onnx', 'tfjs-layers', 'tfjs-graph'] as const;
export type ModelFormat = (typeof MODEL_FORMATS)[number];

export const MODEL_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export interface ManifestFile {
  /** Path relative to the version folder, e.g. "model.onnx" or "group1-shard1of1.bin". */
  path: string;
  sizeBytes: number;
  sha256: string;
}

export interface Manifest {
  name: string;
  /** Integer, immutable once written. */
  version: number;
  format: ModelFormat;
  files: ManifestFile[];
  /** Identity of the artifact: the file's sha256 for one file, else the sha256 of "path sha256\n" lines sorted by path. */
  sha256: string;
  sizeBytes: number;
  createdAt: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /**
   * Where the files sit in the store: 'files' = under models/{name}/{version}/files/, apart from Hearth's own
   * objects. Absent in versions written before that layout, whose files sit beside manifest.json.
   */
  layout?: 'files';
}

/** The Open Inference Protocol platform name of a format. */
export function platformOf(format: ModelFormat): 'onnxruntime_onnx' | 'tensorflow_js' {
  return format === 'onnx' ? 'onnxruntime_onnx' : 'tensorflow_js';
}
