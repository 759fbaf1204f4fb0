// The onnx runtime: onnxruntime-node on the CPU, one op thread and full graph optimisation by default.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { datatypeFromOnnx, hearthError, isHearthError, type Tensor, type TensorSpec } from '../core/index.ts';
import type { LoadOptions, Runtime, Session } from './runtime.ts';
import { checkOutputNames, validateInputs } from '../protocol/index.ts';
import { fromOrtTensor, toOrtTensor } from './runtime-tensors.ts';
import { describeNotOnnx } from './onnx-sniff.ts';
import { ortMessage } from './ort-message.ts';
import { specDimension } from './spec-shape.ts';

/** Finds the model file in a version folder: model.onnx, else the only *.onnx file. */
export async function findOnnxFile(dir: string): Promise<string> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    throw hearthError('MODEL_INVALID', `model folder ${dir} cannot be read: ${(e as Error).message}`);
  }
  if (names.includes('model.onnx')) return path.join(dir, 'model.onnx');
  const onnx = names.filter((n) => n.toLowerCase().endsWith('.onnx'));
  if (onnx.length === 1) return path.join(dir, onnx[0]);
  if (onnx.length === 0) throw hearthError('MODEL_INVALID', `no .onnx file in the model folder (found: ${names.join(', ') || 'nothing'})`);
  throw hearthError('MODEL_INVALID', `several .onnx files and none named model.onnx: ${onnx.join(', ')}`);
}

function specsOf(meta: readonly ort.InferenceSession.ValueMetadata[], kind: 'input' | 'output'): TensorSpec[] {
  return meta.map((m) => {
    if (!m.isTensor) throw hearthError('MODEL_INVALID', `${kind} "${m.name}" is not a tensor (sequence and map values are not supported)`);
    const datatype = datatypeFromOnnx(m.type);
    if (!datatype) throw hearthError('MODEL_INVALID', `${kind} "${m.name}" has element type ${m.type}, which has no V2 datatype`);
    // Symbolic dimensions arrive as strings ("batch"), unknown ones (negative in the file too) as "": all become -1.
    // Sizes past 2^53 arrive rounded and are refused.
    const shape = (m.shape ?? []).map((d) => specDimension(kind, m.name, d));
    return { name: m.name, datatype, shape };
  });
}

// onnxruntime's messages for inputs that do not fit (the binding's own checks name Tensor.dims, .data or .type).
const BAD_INPUT = /invalid dimensions|invalid rank|unexpected input data type|input.*type|shape|Tensor\.(dims|data|type)\b/i;
// A kernel that failed on these inputs (an output past 4 GB, an allocation refused, an index out of range): the
// session stays usable, so the run fails alone. Anything else onnxruntime throws may mean a broken session.
const KERNEL_FAILED = /Non-zero status code returned while running|Failed to allocate|bad_alloc/i;

class OnnxSession implements Session {
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];
  #session: ort.InferenceSession;

  constructor(session: ort.InferenceSession) {
    this.#session = session;
    this.inputs = specsOf(session.inputMetadata, 'input');
    this.outputs = specsOf(session.outputMetadata, 'output');
  }

  async run(feeds: Tensor[], outputNames?: string[]): Promise<Tensor[]> {
    validateInputs(this, feeds);
    const fetches = checkOutputNames(this, outputNames);
    const ortFeeds: Record<string, ort.Tensor> = {};
    try {
      for (const t of feeds) ortFeeds[t.name] = toOrtTensor(ort, t);
    } catch (e) {
      // A conversion that cannot allocate fails this run; the session has not been touched.
      throw isHearthError(e) ? e : hearthError('INTERNAL', `input conversion: ${(e as Error).message}`, { cause: e });
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await this.#session.run(ortFeeds, fetches);
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      const code = BAD_INPUT.test(msg) ? 'INVALID_TENSOR' : KERNEL_FAILED.test(msg) ? 'INTERNAL' : 'INSTANCE_FAILED';
      throw hearthError(code, `onnxruntime: ${ortMessage(msg)}`, { cause: e });
    }
    return fetches.map((n) => fromOrtTensor(n, results[n]));
  }

  async dispose(): Promise<void> {
    await this.#session.release();
  }
}

export class OnnxRuntime implements Runtime {
  readonly name = 'onnxruntime-node';

  async load(opts: LoadOptions): Promise<Session> {
    const file = await findOnnxFile(opts.dir);
    const intraOpNumThreads = opts.intraOpNumThreads ?? 1;
    if (!Number.isInteger(intraOpNumThreads) || intraOpNumThreads < 1) {
      throw hearthError('INVALID_CONFIG', `intraOpNumThreads: expected a whole number >= 1, got ${intraOpNumThreads}`);
    }
    const options: ort.InferenceSession.SessionOptions = {
      // Never more op threads than the machine has cores, whatever a stored config says.
      intraOpNumThreads: Math.min(intraOpNumThreads, os.availableParallelism()),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
      executionProviders: ['cpu'],
      // No CPU arena: with it, a run that allocated 1 GB kept that gigabyte for the session's life (RSS 110 MB ->
      // 1.2 GB, staying); without it the memory goes back when the run ends. Silero's warm run costs the same at
      // batch 1 and about 2% more CPU at batch 16 (benchmarks/onnx-arena.ts).
      enableCpuMemArena: false,
    };
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(file, options);
    } catch (e) {
      if (isHearthError(e)) throw e;
      const why = (await describeNotOnnx(file)) ?? ortMessage((e as Error).message);
      throw hearthError('MODEL_INVALID', `${path.basename(file)} is not a loadable ONNX model: ${why}`, { cause: e });
    }
    try {
      return new OnnxSession(session);
    } catch (e) {
      await session.release().catch(() => {});
      throw e;
    }
  }
}
