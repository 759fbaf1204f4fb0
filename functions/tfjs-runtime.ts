// The tfjs runtime: TF.js layers and graph models. It uses @tensorflow/tfjs-node when that optional
// dependency imports, else @tensorflow/tfjs on the wasm backend. Models load from the version folder
// (model.json plus its weight shards) through tf.io.fromMemory, so no file:// or http handler is involved.
import fs from 'node:fs/promises';
import path from 'node:path';
import type * as TfModule from '@tensorflow/tfjs';
import { hearthError, isHearthError, type ModelFormat, type Tensor, type TensorSpec } from '../core/index.ts';
import type { LoadOptions, Runtime, Session } from './runtime.ts';
import { checkOutputNames, validateInputs } from '../protocol/index.ts';
import { datatypeFromTfjs, fromTfTensor, toTfTensor } from './runtime-tensors.ts';
import { specDimension } from './spec-shape.ts';

type Tf = typeof TfModule;
type TfDtype = 'float32' | 'int32' | 'bool' | 'string';

export type TfjsBackend = 'tfjs-node' | 'tfjs-wasm';

/** Imports TF.js once: tfjs-node when it is installed, else tfjs with the wasm backend. */
async function importTf(): Promise<{ tf: Tf; backend: TfjsBackend }> {
  // A variable specifier keeps TypeScript (and bundlers) from resolving the optional package.
  const nodePackage = '@tensorflow/tfjs-node';
  try {
    const tf = (await import(nodePackage)) as Tf;
    return { tf, backend: 'tfjs-node' };
  } catch {
    // Not installed, or its native binding failed to load: fall back to wasm.
  }
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  const ok = await tf.setBackend('wasm');
  if (!ok) throw hearthError('INTERNAL', 'TF.js wasm backend failed to initialise');
  await tf.ready();
  return { tf, backend: 'tfjs-wasm' };
}

interface WeightGroup {
  paths: string[];
  weights: TfModule.io.WeightsManifestEntry[];
}
interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
  modelTopology?: unknown;
  weightsManifest?: WeightGroup[];
  signature?: unknown;
  userDefinedMetadata?: Record<string, unknown>;
  modelInitializer?: unknown;
  trainingConfig?: unknown;
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

/** Bytes the weight specs need, or undefined when a string weight makes it variable. */
function expectedWeightBytes(specs: TfModule.io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const dtype = s.quantization?.dtype ?? s.dtype;
    const size = DTYPE_BYTES[dtype];
    if (size === undefined) return undefined;
    total += n * size;
  }
  return total;
}

/** Reads model.json and every shard it lists, checking that the folder holds a complete TF.js model. */
async function readArtifacts(dir: string, format: ModelFormat): Promise<TfModule.io.ModelArtifacts> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    throw hearthError('MODEL_INVALID', `model folder ${dir} cannot be read: ${(e as Error).message}`);
  }
  if (!names.includes('model.json')) {
    if (names.includes('saved_model.pb')) {
      throw hearthError(
        'MODEL_INVALID',
        'this is a TensorFlow SavedModel (saved_model.pb), which needs @tensorflow/tfjs-node and that is not installed here. ' +
          'Convert it to a TF.js graph model and upload the model.json with its .bin shards: ' +
          'tensorflowjs_converter --input_format=tf_saved_model --output_format=tfjs_graph_model <saved_model_dir> <out_dir>',
      );
    }
    if (names.some((n) => n.endsWith('.h5') || n.endsWith('.keras'))) {
      throw hearthError(
        'MODEL_INVALID',
        'this is a Keras file, not a TF.js model. Convert it: tensorflowjs_converter --input_format=keras <model.h5> <out_dir>',
      );
    }
    throw hearthError('MODEL_INVALID', `no model.json in the model folder (found: ${names.join(', ') || 'nothing'})`);
  }
  let json: ModelJson;
  try {
    json = JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8')) as ModelJson;
  } catch (e) {
    throw hearthError('MODEL_INVALID', `model.json is not valid JSON: ${(e as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || typeof json.modelTopology !== 'object' || json.modelTopology === null) {
    throw hearthError('MODEL_INVALID', 'model.json has no modelTopology object, so it is not a TF.js model');
  }
  const want = format === 'tfjs-layers' ? 'layers-model' : 'graph-model';
  if (json.format !== undefined && json.format !== want) {
    throw hearthError('MODEL_INVALID', `model.json says format "${json.format}" but the model was declared ${format} (expected "${want}")`);
  }
  const groups = json.weightsManifest ?? [];
  if (!Array.isArray(groups)) throw hearthError('MODEL_INVALID', 'model.json weightsManifest is not a list');
  const weightSpecs: TfModule.io.WeightsManifestEntry[] = [];
  const shards: Buffer[] = [];
  const root = path.resolve(dir);
  for (const g of groups) {
    if (!g || !Array.isArray(g.paths) || !Array.isArray(g.weights)) {
      throw hearthError('MODEL_INVALID', 'model.json weightsManifest group lacks paths or weights');
    }
    weightSpecs.push(...g.weights);
    for (const p of g.paths) {
      const file = path.resolve(root, decodeURIComponent(String(p)));
      if (!file.startsWith(root + path.sep)) {
        throw hearthError('MODEL_INVALID', `weight shard "${p}" in model.json points outside the model folder`);
      }
      try {
        shards.push(await fs.readFile(file));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw hearthError(
          'MODEL_INVALID',
          code === 'ENOENT'
            ? `weight shard "${p}" listed in model.json is missing from the upload`
            : `weight shard "${p}" cannot be read: ${(e as Error).message}`,
        );
      }
    }
  }
  const total = shards.reduce((n, b) => n + b.byteLength, 0);
  const expected = expectedWeightBytes(weightSpecs);
  if (expected !== undefined && expected !== total) {
    throw hearthError(
      'MODEL_INVALID',
      `the weight shards hold ${total} bytes but model.json's weightsManifest needs ${expected} (a shard is truncated or from another model)`,
    );
  }
  const weightData = new Uint8Array(total);
  let at = 0;
  for (const b of shards) {
    weightData.set(b, at);
    at += b.byteLength;
  }
  return {
    modelTopology: json.modelTopology as TfModule.io.ModelArtifacts['modelTopology'],
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    weightSpecs,
    weightData: weightData.buffer,
    signature: json.signature as TfModule.io.ModelArtifacts['signature'],
    userDefinedMetadata: json.userDefinedMetadata as TfModule.io.ModelArtifacts['userDefinedMetadata'],
    modelInitializer: json.modelInitializer as TfModule.io.ModelArtifacts['modelInitializer'],
    trainingConfig: json.trainingConfig as TfModule.io.ModelArtifacts['trainingConfig'],
  };
}

function specOf(
  kind: 'input' | 'output',
  name: string,
  dtype: string | undefined,
  shape: readonly (number | null)[] | undefined,
): TensorSpec {
  const datatype = datatypeFromTfjs(dtype ?? 'float32');
  if (!datatype) throw hearthError('MODEL_INVALID', `${kind} "${name}" has TF.js dtype ${dtype}, which has no V2 datatype`);
  // TF.js marks unknown sizes with null (layers) or -1 (graph). An unknown rank has no V2 spelling; [-1] is the closest.
  if (shape !== undefined && !Array.isArray(shape)) throw hearthError('MODEL_INVALID', `${kind} "${name}" has a shape that is not a list`);
  const dims = shape === undefined ? [-1] : shape.map((d) => specDimension(kind, name, d));
  return { name, datatype, shape: dims };
}

abstract class TfSession implements Session {
  abstract readonly inputs: TensorSpec[];
  abstract readonly outputs: TensorSpec[];
  protected readonly tf: Tf;
  constructor(tf: Tf) {
    this.tf = tf;
  }

  async run(feeds: Tensor[], outputNames?: string[]): Promise<Tensor[]> {
    validateInputs(this, feeds);
    const fetches = checkOutputNames(this, outputNames);
    const byName = new Map(feeds.map((t) => [t.name, t]));
    const inputs = this.inputs.map((s) => toTfTensor(this.tf, byName.get(s.name)!, tfDtypeOf(s)));
    let outputs: TfModule.Tensor[] = [];
    try {
      outputs = await this.execute(inputs, fetches);
      return await Promise.all(fetches.map((n, i) => fromTfTensor(n, outputs[i])));
    } catch (e) {
      if (isHearthError(e)) throw e;
      throw hearthError('INSTANCE_FAILED', `TF.js: ${(e as Error).message ?? String(e)}`, { cause: e });
    } finally {
      this.tf.dispose(inputs);
      this.tf.dispose(outputs);
    }
  }

  /** Runs the model on inputs in spec order; returns the tensors named by `fetches`, in that order. */
  protected abstract execute(inputs: TfModule.Tensor[], fetches: string[]): Promise<TfModule.Tensor[]>;
  abstract dispose(): Promise<void>;
}

const TF_DTYPES: Record<string, string> = { DT_FLOAT: 'float32', DT_INT32: 'int32', DT_BOOL: 'bool', DT_STRING: 'string' };

/** Node name -> dtype and shape, from a graph model's signature (inputs and outputs, names like "y:0"). */
function signatureShapes(signature: unknown): Map<string, { dtype?: string; shape?: number[] }> {
  const out = new Map<string, { dtype?: string; shape?: number[] }>();
  type Entry = { name?: string; dtype?: string; tensorShape?: { dim?: { size?: string | number }[]; unknownRank?: boolean } };
  const sig = signature as { inputs?: Record<string, Entry>; outputs?: Record<string, Entry> } | undefined;
  for (const group of [sig?.inputs, sig?.outputs]) {
    for (const e of Object.values(group ?? {})) {
      if (!e || typeof e.name !== 'string') continue;
      const node = e.name.replace(/:\d+$/, '');
      const ts = e.tensorShape;
      // Sizes are int64 text in the converter's JSON; one past 2^53 or not a number reaches specOf as NaN or unsafe.
      const shape = !ts || ts.unknownRank ? undefined : (ts.dim ?? []).map((d) => Number(d?.size ?? -1));
      out.set(node, { dtype: e.dtype ? TF_DTYPES[e.dtype] : undefined, shape });
    }
  }
  return out;
}

function tfDtypeOf(s: TensorSpec): TfDtype {
  switch (s.datatype) {
    case 'INT32':
      return 'int32';
    case 'BOOL':
      return 'bool';
    case 'BYTES':
      return 'string';
    default:
      return 'float32';
  }
}

class LayersSession extends TfSession {
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];
  #model: TfModule.LayersModel;

  constructor(tf: Tf, model: TfModule.LayersModel) {
    super(tf);
    this.#model = model;
    this.inputs = model.inputs.map((t, i) => specOf('input', model.inputNames[i], t.dtype, t.shape));
    this.outputs = model.outputs.map((t, i) => specOf('output', model.outputNames[i], t.dtype, t.shape));
  }

  protected async execute(inputs: TfModule.Tensor[], fetches: string[]): Promise<TfModule.Tensor[]> {
    const out = this.#model.predict(inputs.length === 1 ? inputs[0] : inputs);
    const all = Array.isArray(out) ? out : [out];
    const names = this.#model.outputNames;
    const picked = fetches.map((n) => all[names.indexOf(n)]);
    this.tf.dispose(all.filter((t) => !picked.includes(t)));
    return picked;
  }

  async dispose(): Promise<void> {
    this.#model.dispose();
  }
}

class GraphSession extends TfSession {
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];
  #model: TfModule.GraphModel;

  constructor(tf: Tf, model: TfModule.GraphModel, signature: unknown) {
    super(tf);
    this.#model = model;
    // TF.js knows placeholder shapes but not output shapes; the converter's signature has both.
    const fromSignature = signatureShapes(signature);
    const spec = (kind: 'input' | 'output', t: TfModule.ModelTensorInfo): TensorSpec => {
      const sig = fromSignature.get(t.name);
      return specOf(kind, t.name, t.dtype ?? sig?.dtype, t.shape ?? sig?.shape);
    };
    this.inputs = model.inputs.map((t) => spec('input', t));
    this.outputs = model.outputs.map((t) => spec('output', t));
  }

  protected async execute(inputs: TfModule.Tensor[], fetches: string[]): Promise<TfModule.Tensor[]> {
    const named: Record<string, TfModule.Tensor> = {};
    this.inputs.forEach((s, i) => (named[s.name] = inputs[i]));
    // executeAsync also runs graphs with control flow, which execute() refuses.
    const out = await this.#model.executeAsync(named, fetches);
    return Array.isArray(out) ? out : [out];
  }

  async dispose(): Promise<void> {
    this.#model.dispose();
  }
}

export class TfjsRuntime implements Runtime {
  #tf?: Promise<{ tf: Tf; backend: TfjsBackend }>;
  #backend?: TfjsBackend;

  /** 'tfjs-node' or 'tfjs-wasm' once TF.js is imported; 'tfjs' before. */
  get name(): string {
    return this.#backend ?? 'tfjs';
  }

  /** Imports TF.js and picks the backend now (a pre-spawned worker does this before its first load). */
  async init(): Promise<TfjsBackend> {
    this.#tf ??= importTf();
    const { backend } = await this.#tf;
    this.#backend = backend;
    return backend;
  }

  async load(opts: LoadOptions): Promise<Session> {
    if (opts.format !== 'tfjs-layers' && opts.format !== 'tfjs-graph') {
      throw hearthError('MODEL_INVALID', `the tfjs runtime cannot load format ${opts.format}`);
    }
    const artifacts = await readArtifacts(opts.dir, opts.format);
    await this.init();
    const { tf } = await this.#tf!;
    try {
      if (opts.format === 'tfjs-layers') return new LayersSession(tf, await tf.loadLayersModel(tf.io.fromMemory(artifacts)));
      return new GraphSession(tf, await tf.loadGraphModel(tf.io.fromMemory(artifacts)), artifacts.signature);
    } catch (e) {
      if (isHearthError(e)) throw e;
      throw hearthError(
        'MODEL_INVALID',
        `model.json could not be loaded as a TF.js ${opts.format === 'tfjs-layers' ? 'layers' : 'graph'} model: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }
}
