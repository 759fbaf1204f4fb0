// The answers of Hearth's routes as the SDK returns them (docs/api/*.md describes each field).
import type { Datatype } from '../core/index.ts';

export interface TensorSpec {
  name: string;
  datatype: Datatype;
  shape: number[];
}

export interface ModelSummary {
  name: string;
  /** Versions, ascending. */
  versions: number[];
  latest: number;
}

export interface Manifest {
  name: string;
  version: number;
  format: 'onnx' | 'tfjs-layers' | 'tfjs-graph';
  files: { path: string; sizeBytes: number; sha256: string }[];
  /** The artifact's id: the file's sha256 for one file, else the sha256 of "path sha256\n" lines sorted by path. */
  sha256: string;
  sizeBytes: number;
  createdAt: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** A serving config (docs/reference/serving-config.md): nested objects of numbers and strings. */
export type ServingConfig = Record<string, unknown>;

export interface ConfigAnswer {
  /** The config as this node applies it to the latest version. */
  config: ServingConfig;
  /** What the node clamped and why (the hearth-config-clamped header): `field requested -> applied (because)`, `; `-separated. */
  clamped?: string;
}

export interface DatasetUpload {
  key: string;
  rows: number;
  bytes: number;
  invalidLines: number;
  invalidLineNumbers: number[];
}

export interface DatasetInfo {
  name: string;
  owner?: string;
  key: string;
  bytes: number;
  lastModified: string;
}

export type JobState = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export const TERMINAL_JOB_STATES: readonly JobState[] = ['completed', 'failed', 'cancelled'];

export interface JobStatus {
  id: string;
  model: string;
  version: number;
  state: JobState;
  input: string;
  progress: { totalRows: number; doneRows: number; failedRows: number };
  chunks: { total: number; done: number; size: number };
  priority: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  cost: { billedMs: number; requests: number; memoryMb: number; usd: number };
  error?: string;
}

export interface JobSubmit {
  model: string;
  version?: number;
  /** A dataset name (or key, datasets/<name>.jsonl) uploaded before. */
  dataset?: string;
  /** Rows inline instead of a dataset: V2 request bodies. */
  rows?: unknown[];
  chunkSize?: number;
  priority?: number;
  callbackUrl?: string;
}

/** One line of a job's results: the row's outputs, or its error. */
export interface JobResultLine {
  row?: number;
  id?: string;
  outputs?: { name: string; datatype: Datatype; shape: number[]; data: unknown[] }[];
  error?: string;
  code?: string;
  [k: string]: unknown;
}

export interface KeyRequest {
  name: string;
  scopes: string[];
  models?: string[];
  expiresAt?: string;
  [k: string]: unknown;
}

export interface KeyView {
  id: string;
  name: string;
  scopes: string[];
  models?: string[];
  createdAt: string | number;
  [k: string]: unknown;
}
