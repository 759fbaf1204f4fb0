// The one check of inference inputs against a model's signature, before any work is queued or run. The gateway
// and the job workers call validateInputs with the version's manifest; the executor calls checkTensorData on
// every request it admits; the runtimes inside an instance call validateInputs with their session's signature.
import {
  datatypeInfo,
  elementCount,
  hearthError,
  isDeferred,
  shown,
  type InputTensor,
  type Manifest,
  type TensorSpec,
} from '../core/index.ts';
import { fmtShape } from './tensor-object.ts';

/** What inputs are checked against: a manifest, or a loaded session's signature. */
export interface Signature {
  inputs: readonly TensorSpec[];
  outputs: readonly TensorSpec[];
  /** How messages name the model, e.g. `model "ocr" version 3`. */
  label?: string;
}

/** A version's manifest as a Signature whose messages name the model and version. */
export function manifestSignature(m: Pick<Manifest, 'name' | 'version' | 'inputs' | 'outputs'>): Signature {
  return { inputs: m.inputs, outputs: m.outputs, label: `model "${m.name}" version ${m.version}` };
}

/** True when a concrete shape fits a spec shape (same rank; -1 matches any size). */
export function shapeFits(spec: readonly number[], shape: readonly number[]): boolean {
  return spec.length === shape.length && spec.every((d, i) => d === -1 || d === shape[i]);
}

function names(list: readonly { name: string }[]): string {
  return list.map((t) => `"${t.name}"`).join(', ') || 'none';
}

/**
 * Throws INVALID_TENSOR naming the input and what was expected when an input is unknown, given twice or missing;
 * its datatype differs; its shape does not fit (-1 matches any size); or its data does not hold its shape's
 * elements (checkTensorData). Throws INVALID_REQUEST when a requested output is unknown or requested twice.
 */
export function validateInputs(sig: Signature, tensors: readonly InputTensor[], requestedOutputs?: readonly string[]): void {
  const model = sig.label ?? 'the model';
  const specs = new Map(sig.inputs.map((s) => [s.name, s]));
  const seen = new Set<string>();
  for (const t of tensors) {
    const spec = specs.get(t.name);
    if (!spec) throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": not an input of ${model}; expected ${names(sig.inputs)}`);
    if (seen.has(t.name)) throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": given more than once`);
    seen.add(t.name);
    if (t.datatype !== spec.datatype) {
      throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": expected datatype ${spec.datatype}, got ${t.datatype}`);
    }
    if (!shapeFits(spec.shape, t.shape)) {
      throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": expected shape ${fmtShape(spec.shape)}, got ${fmtShape(t.shape)}`);
    }
    checkTensorData(t);
  }
  for (const spec of sig.inputs) {
    if (!seen.has(spec.name)) {
      throw hearthError('INVALID_TENSOR', `input "${spec.name}": missing; ${model} expects ${spec.datatype} ${fmtShape(spec.shape)}`);
    }
  }
  if (requestedOutputs) checkOutputNames(sig, requestedOutputs);
}

/** Throws INVALID_REQUEST for an unknown or twice-requested output; returns the names to fetch (all when none). */
export function checkOutputNames(sig: Signature, requested: readonly string[] | undefined): string[] {
  if (requested === undefined || requested.length === 0) return sig.outputs.map((s) => s.name);
  const known = new Set(sig.outputs.map((o) => o.name));
  const seen = new Set<string>();
  for (const name of requested) {
    if (!known.has(name))
      throw hearthError(
        'INVALID_REQUEST',
        `output "${shown(name)}": not an output of ${sig.label ?? 'the model'}; expected ${names(sig.outputs)}`,
      );
    if (seen.has(name)) throw hearthError('INVALID_REQUEST', `output "${shown(name)}": requested more than once`);
    seen.add(name);
  }
  return [...requested];
}

/**
 * Throws INVALID_TENSOR unless the tensor's data can be what its datatype and shape say: a known datatype, a shape
 * of non-negative integers, data of the datatype's array class holding exactly the shape's elements. This also
 * catches a buffer already transferred by an earlier infer() (detached, it reads as length 0), which would
 * otherwise hang a run or abort the process inside a runtime. Deferred JSON is counted where it is parsed, on the
 * instance thread; here it is bounded by its text in O(1) (n numbers and their brackets take at least 2n + 1 bytes), so that no
 * caller can make an instance allocate from a shape alone.
 */
export function checkTensorData(t: InputTensor): void {
  const what = `input "${shown(t.name)}"`;
  const info = datatypeInfo(t.datatype);
  if (!info) throw hearthError('INVALID_TENSOR', `${what}: unknown datatype ${JSON.stringify(t.datatype)}`);
  if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw hearthError('INVALID_TENSOR', `${what}: shape must be a list of non-negative integers, got ${JSON.stringify(t.shape)}`);
  }
  if (isDeferred(t)) {
    for (const p of t.data.parts) {
      if (p.json && !(p.count <= (p.json.length - 1) / 2)) {
        throw hearthError(
          'INVALID_TENSOR',
          `${what}: shape ${fmtShape(p.shape)} needs ${p.count} elements, but its data array of ${p.json.length} bytes cannot hold them`,
        );
      }
    }
    return;
  }
  if (t.datatype === 'BYTES') {
    if (!Array.isArray(t.data)) throw hearthError('INVALID_TENSOR', `${what}: BYTES data must be an array of strings`);
  } else if (!(t.data instanceof info.array!)) {
    throw hearthError(
      'INVALID_TENSOR',
      `${what}: ${t.datatype} data must be a ${info.array!.name}, got ${(t.data as object | undefined)?.constructor?.name ?? typeof t.data}`,
    );
  }
  const want = elementCount(t.shape);
  if (t.data.length === want) return;
  const detached = !Array.isArray(t.data) && t.data.buffer.byteLength === 0 && want > 0;
  throw hearthError(
    'INVALID_TENSOR',
    detached
      ? `${what}: its data buffer is detached (already sent to an earlier infer(), which takes ownership of input buffers); pass a copy`
      : `${what}: shape ${fmtShape(t.shape)} needs ${want} elements, got ${t.data.length}`,
  );
}
