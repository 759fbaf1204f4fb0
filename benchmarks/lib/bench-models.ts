// The models the benchmarks call: silero VAD, the upscaler TF.js layers model, a generated ~50 MB ONNX,
// the CNN fixture with a dynamic batch, and any model the user names with --model. For each: how to upload it,
// one request's inputs, and (ONNX) the file for a direct onnxruntime session.
// Fixture paths come from test/fixtures/golden.ts and silero's tensors from test/helpers/model-bodies.ts, so the
// tests and the benchmarks name the same files and build silero requests one way.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import type { Datatype, Manifest, Tensor, TensorData, TensorSpec } from '../../core/index.ts';
import { SILERO_VAD_FILE, UPSCALER_DIR, onnxFixtureDir } from '../../test/fixtures/golden.ts';
import { writeLargeOnnx } from '../../test/fixtures/make-large-onnx.ts';
import { sileroFeed, sileroManifest, tarGz } from '../../test/helpers/model-bodies.ts';
import { httpCall } from './child-server.ts';

export const SILERO_FILE = SILERO_VAD_FILE;
export const UPSCALER_JSON = path.join(UPSCALER_DIR, 'model.json');
export const CNN_FILE = path.join(onnxFixtureDir('cnn-dynamic'), 'model.onnx');

export interface BenchModel {
  /** Name in the report. */
  label: string;
  /** Name on the Hearth server (lower case, MODEL_NAME_PATTERN). */
  name: string;
  format: 'onnx' | 'tfjs';
  /** The .onnx file, for raw runs and the minimal server. */
  onnxFile?: string;
  sizeBytes: number;
  upload(): Promise<{ body: Buffer; contentType: string }>;
  /** One request's inputs; `specs` are the manifest's inputs, known after upload. */
  inputs(specs: readonly TensorSpec[]): Tensor[];
}

/** Deterministic values in [-0.5, 0.5), so runs are comparable and outputs finite. */
function filler(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function makeData(datatype: Datatype, n: number, seed: number): TensorData {
  const next = filler(seed);
  switch (datatype) {
    case 'FP32':
      return Float32Array.from({ length: n }, next);
    case 'FP64':
      return Float64Array.from({ length: n }, next);
    case 'INT64':
      return BigInt64Array.from({ length: n }, () => 1n);
    case 'UINT64':
      return BigUint64Array.from({ length: n }, () => 1n);
    case 'INT32':
      return new Int32Array(n).fill(1);
    case 'INT16':
      return new Int16Array(n).fill(1);
    case 'INT8':
      return new Int8Array(n).fill(1);
    case 'UINT32':
      return new Uint32Array(n).fill(1);
    case 'UINT16':
      return new Uint16Array(n).fill(1);
    case 'UINT8':
    case 'BOOL':
      return new Uint8Array(n).fill(1);
    case 'FP16':
      return new Uint16Array(n).fill(0x3c00);
    case 'BYTES':
      return Array.from({ length: n }, () => 'x');
  }
}

/** Inputs from the manifest: the first dynamic dimension is the batch (1), other dynamic ones get `dynamic`. */
export function genericInputs(specs: readonly TensorSpec[], dynamic = 8, batch = 1): Tensor[] {
  return specs.map((s, i) => {
    const shape = s.shape.map((d, j) => (d >= 0 ? d : j === 0 ? batch : dynamic));
    const n = shape.reduce((a, b) => a * b, 1);
    return { name: s.name, datatype: s.datatype, shape, data: makeData(s.datatype, n, 17 + i) };
  });
}

/** A 512-sample frame, sample rate and the recurrent state, as a streaming VAD client sends them. */
export function sileroInputs(seed = 1): Tensor[] {
  return sileroFeed(
    1,
    (i) => Math.sin(i * 0.02 * (seed + 1)) * 0.2 + Math.cos(i * 0.37) * 0.05,
    (k, i) => Math.tanh(Math.sin(i * 0.1 + seed + k)) * 0.3,
  );
}

/** The executor-only benchmarks' frame: a sine of `seed`'s pitch, both states 0.1. */
export function sileroFrame(seed: number): Tensor[] {
  return sileroFeed(
    1,
    (i) => Math.sin(i * 0.02 * (seed + 1)) * 0.3,
    () => 0.1,
  );
}

/** Silero for an executor fed from a folder (artifacts.ensure): one model.onnx entry, a hash unique to the name. */
export function sileroFolderManifest(name: string): Manifest {
  return sileroManifest({ name, files: [{ path: 'model.onnx', sizeBytes: 0, sha256: 'x' }], sha256: `sha-${name}` });
}

/** Silero as the store would describe it: one model.onnx with the real file's size and sha256. */
export async function sileroFileManifest(name = 'silero'): Promise<Manifest> {
  const bytes = await fs.readFile(SILERO_FILE);
  const sha = createHash('sha256').update(bytes).digest('hex');
  return sileroManifest({
    name,
    files: [{ path: 'model.onnx', sizeBytes: bytes.length, sha256: sha }],
    sha256: sha,
    sizeBytes: bytes.length,
    createdAt: new Date().toISOString(),
  });
}

/** The executor benchmarks' quiet frame: a slow sine, both states zero. */
export function sileroQuietFrame(): Tensor[] {
  return sileroFeed(
    1,
    (i) => Math.sin(i / 9) * 0.3,
    () => 0,
  );
}

/** The files of `dir` (not its subfolders), sorted by name, as a .tar.gz. */
async function tarGzOf(dir: string): Promise<Buffer> {
  const entries: { name: string; data: Buffer }[] = [];
  for (const name of (await fs.readdir(dir)).sort()) {
    const st = await fs.stat(path.join(dir, name));
    if (st.isFile()) entries.push({ name, data: await fs.readFile(path.join(dir, name)) });
  }
  return tarGz(entries);
}

async function sizeOf(file: string): Promise<number> {
  const st = await fs.stat(file);
  if (st.isFile()) return st.size;
  let n = 0;
  for (const f of await fs.readdir(file)) n += (await fs.stat(path.join(file, f))).size;
  return n;
}

function onnxModel(label: string, name: string, file: string, sizeBytes: number, inputs?: BenchModel['inputs']): BenchModel {
  return {
    label,
    name,
    format: 'onnx',
    onnxFile: file,
    sizeBytes,
    upload: async () => ({ body: await fs.readFile(file), contentType: 'application/octet-stream' }),
    inputs: inputs ?? ((specs) => genericInputs(specs)),
  };
}

function tfjsModel(label: string, name: string, modelJson: string, sizeBytes: number, inputs?: BenchModel['inputs']): BenchModel {
  return {
    label,
    name,
    format: 'tfjs',
    sizeBytes,
    upload: async () => ({ body: await tarGzOf(path.dirname(modelJson)), contentType: 'application/gzip' }),
    inputs: inputs ?? ((specs) => genericInputs(specs)),
  };
}

export async function sileroModel(): Promise<BenchModel> {
  return onnxModel('silero-vad', 'silero-vad', SILERO_FILE, await sizeOf(SILERO_FILE), () => sileroInputs());
}

export async function cnnModel(): Promise<BenchModel> {
  return onnxModel('cnn-dynamic', 'cnn-dynamic', CNN_FILE, await sizeOf(CNN_FILE));
}

export async function upscalerModel(): Promise<BenchModel> {
  // A 16x16 RGB tile: the output (64x64x3) stays small enough that JSON encoding does not hide the model.
  return tfjsModel('upscaler-tfjs', 'upscaler-tfjs', UPSCALER_JSON, await sizeOf(path.dirname(UPSCALER_JSON)), (specs) =>
    genericInputs(specs, 16),
  );
}

/** Generates the ~50 MB ONNX once per run in a temp folder (B's fixture writer). */
export async function largeOnnxModel(targetMb = 50): Promise<BenchModel & { cleanup(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-bench-large-'));
  const made = await writeLargeOnnx(path.join(dir, 'large.onnx'), targetMb);
  return {
    ...onnxModel(`large-onnx-${targetMb}mb`, `large-onnx-${targetMb}mb`, made.file, made.bytes),
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

/** A model the user named with --model: an .onnx file, or a TF.js model.json (its folder is uploaded). */
export async function userModel(file: string, index: number): Promise<BenchModel> {
  const base = path.basename(file).toLowerCase();
  const stem = (base === 'model.json' ? path.basename(path.dirname(file)) : base.replace(/\.[^.]+$/, ''))
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-');
  const name = `user-${index}-${stem}`.slice(0, 63).replace(/[^a-z0-9]+$/, '');
  if (base.endsWith('.onnx')) return onnxModel(`user:${path.basename(file)}`, name, file, await sizeOf(file));
  if (base.endsWith('.json'))
    return tfjsModel(`user:${path.basename(path.dirname(file))}/${path.basename(file)}`, name, file, await sizeOf(path.dirname(file)));
  throw new Error(`--model ${file}: expected an .onnx file or a TF.js model.json`);
}

/** Uploads `model` to the Hearth at `base` as `name` (POST /v1/models/<name>) and returns the stored manifest. */
export async function uploadModel(base: string, model: BenchModel, name = model.name): Promise<Manifest> {
  const up = await model.upload();
  return JSON.parse((await httpCall(`${base}/v1/models/${name}`, 'POST', up.body, up.contentType)).text) as Manifest;
}

/** ORT feeds from Hearth tensors (the numeric datatypes the benchmark models use). */
export function toOrtFeeds(inputs: readonly Tensor[]): Record<string, ort.Tensor> {
  const types: Partial<Record<Datatype, ort.Tensor.Type>> = {
    FP32: 'float32',
    FP64: 'float64',
    INT64: 'int64',
    INT32: 'int32',
    INT16: 'int16',
    INT8: 'int8',
    UINT64: 'uint64',
    UINT32: 'uint32',
    UINT16: 'uint16',
    UINT8: 'uint8',
    BOOL: 'bool',
    FP16: 'float16',
    BYTES: 'string',
  };
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of inputs) {
    const type = types[t.datatype];
    if (!type) throw new Error(`input "${t.name}": datatype ${t.datatype} has no onnxruntime type here`);
    feeds[t.name] = new ort.Tensor(type, t.data, t.shape);
  }
  return feeds;
}
