// The dynamic batcher's pure half: which models can batch, which requests may share a run, and how
// their tensors are merged into one run and split back. The executor decides when; this file decides how.
//
// Triton's rule is the baseline: every input and output has a dynamic first dimension, and that is the
// batch axis. Recurrent models keep their state batch-second ([layers, batch, hidden], e.g. silero VAD's
// h/c) and take scalar settings (its sample rate `sr`), so the layout generalises the rule two ways:
//   - a tensor's batch axis is its first dynamic dimension, provided every static dimension before it is
//     larger than 1 (a leading static 1 means "batch fixed at 1", so such a model does not batch);
//   - a fully static input is shared: requests merge only when its values are equal (they join the key),
//     and the merged run gets it once.
// At least one input must be batch-first, every output needs a batch axis, and a request's batched inputs
// must agree on their batch size; anything else runs alone (batch key '').
import {
  hearthError,
  isDeferred,
  type DeferredPart,
  type InputTensor,
  type Manifest,
  type Tensor,
  type TensorData,
  type TensorSpec,
} from '../core/index.ts';

/** Where each tensor of a batchable model keeps its batch dimension. */
export interface BatchLayout {
  /** Input name -> batch axis, or null for a shared (fully static) input. */
  readonly inputs: ReadonlyMap<string, number | null>;
  /** Output name -> batch axis. */
  readonly outputs: ReadonlyMap<string, number>;
  /** True when every tensor is batch-first (Triton's rule), the fast path. */
  readonly batchFirst: boolean;
}

/** Shared inputs longer than this never merge (their values would make an unwieldy key). */
const MAX_SHARED_ELEMENTS = 64;

function batchAxisOf(spec: TensorSpec): number | null | undefined {
  const axis = spec.shape.indexOf(-1);
  if (axis < 0) return null;
  for (let d = 0; d < axis; d++) if (spec.shape[d] <= 1) return undefined;
  return axis;
}

/** The batch layout of a model, or undefined when its requests cannot be merged. */
export function batchLayoutOf(manifest: Manifest): BatchLayout | undefined {
  if (manifest.inputs.length === 0 || manifest.outputs.length === 0) return undefined;
  const inputs = new Map<string, number | null>();
  let anyBatchFirst = false;
  let batchFirst = true;
  for (const spec of manifest.inputs) {
    const axis = batchAxisOf(spec);
    if (axis === undefined) return undefined;
    if (axis === 0) anyBatchFirst = true;
    else batchFirst = false;
    inputs.set(spec.name, axis);
  }
  if (!anyBatchFirst) return undefined;
  const outputs = new Map<string, number>();
  for (const spec of manifest.outputs) {
    const axis = batchAxisOf(spec);
    if (axis === undefined || axis === null) return undefined;
    if (axis !== 0) batchFirst = false;
    outputs.set(spec.name, axis);
  }
  return { inputs, outputs, batchFirst };
}

/** Whether the model's requests can be merged into batched runs. */
export function isBatchable(manifest: Manifest): boolean {
  return batchLayoutOf(manifest) !== undefined;
}

function layoutFrom(model: Manifest | BatchLayout): BatchLayout | undefined {
  return 'inputs' in model && model.inputs instanceof Map ? (model as BatchLayout) : batchLayoutOf(model as Manifest);
}

/**
 * The merge signature of one request and its batch size. Requests merge only with equal keys: same input
 * names, datatypes and non-batch dimensions, same shared values. key '' (items 1) means: run it alone.
 * Inputs must already be validated against the manifest.
 */
export function batchSignature(model: Manifest | BatchLayout, tensors: readonly InputTensor[]): { key: string; items: number } {
  const alone = { key: '', items: 1 };
  const layout = layoutFrom(model);
  if (!layout || tensors.length !== layout.inputs.size) return alone;
  // Sorted by name so that the order in which a client lists its inputs does not split batches.
  const sorted = tensors.length > 1 ? [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) : tensors;
  let items = -1;
  let key = '';
  for (const t of sorted) {
    const axis = layout.inputs.get(t.name);
    if (axis === undefined) return alone;
    if (axis === null) {
      // A shared input's values join the key; one still in JSON text has none to compare yet.
      if (isDeferred(t) || t.data.length > MAX_SHARED_ELEMENTS) return alone;
      key += `${t.name}:${t.datatype}[${t.shape.join(',')}]=${Array.prototype.join.call(t.data, ',')};`;
      continue;
    }
    if (t.shape.length <= axis) return alone;
    const n = t.shape[axis];
    if (items === -1) items = n;
    else if (n !== items) return alone;
    let dims = '';
    for (let d = 0; d < t.shape.length; d++) dims += d === axis ? '*,' : `${t.shape[d]},`;
    key += `${t.name}:${t.datatype}[${dims}];`;
  }
  if (items < 1) return alone;
  return { key, items };
}

/** The merge signature alone; '' when the request cannot be merged. */
export function batchKeyOf(model: Manifest | BatchLayout, tensors: readonly InputTensor[]): string {
  return batchSignature(model, tensors).key;
}

type TypedData = Exclude<TensorData, string[]>;

function allocLike(data: TensorData, length: number): TensorData {
  if (Array.isArray(data)) return new Array<string>(length);
  return new (data.constructor as new (n: number) => TypedData)(length);
}

function product(shape: readonly number[], from: number, to: number): number {
  let n = 1;
  for (let d = from; d < to; d++) n *= shape[d];
  return n;
}

/** Copies `count` elements from src[srcAt] to dst[dstAt]: one memcpy for typed arrays. */
function copy(dst: TensorData, dstAt: number, src: TensorData, srcAt: number, count: number): void {
  if (Array.isArray(dst)) {
    const s = src as string[];
    for (let k = 0; k < count; k++) dst[dstAt + k] = s[srcAt + k];
    return;
  }
  const s = src as TypedData;
  // Same constructor is guaranteed by equal batch keys (equal datatypes); the cast only quiets the union.
  (dst as Uint8Array).set((s as Uint8Array).subarray(srcAt, srcAt + count), dstAt);
}

/**
 * A merged input where some requests' data is still JSON text: the merge becomes a plan, one part per request,
 * that the instance thread carries out while parsing (functions/materialize.ts).
 */
function concatDeferred(parts: readonly InputTensor[], axis: number, sizes: readonly number[], total: number): InputTensor {
  const first = parts[0];
  const shape = first.shape.slice();
  shape[axis] = total;
  const inner = product(shape, axis + 1, shape.length);
  const plan: DeferredPart[] = [];
  let offset = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    const rows = sizes[i] * inner;
    const count = product(p.shape, 0, p.shape.length);
    const place = { dstAt: offset * inner, rows, stride: total * inner };
    offset += sizes[i];
    if (isDeferred(p)) {
      if (p.data.parts.length !== 1) throw hearthError('INTERNAL', `mergeRequests: input "${p.name}" of request ${i} is already merged`);
      plan.push({ ...p.data.parts[0], request: i, ...place });
    } else {
      if (Array.isArray(p.data)) throw hearthError('INTERNAL', `mergeRequests: input "${p.name}" mixes BYTES with deferred data`);
      plan.push({ request: i, data: p.data, shape: p.shape, count, ...place });
    }
  }
  return { name: first.name, datatype: first.datatype, shape, data: { deferred: true, parts: plan } };
}

/** One merged tensor from one tensor per request, concatenated along `axis`. */
function concat(parts: readonly InputTensor[], axis: number, sizes: readonly number[], total: number): InputTensor {
  if (parts.some(isDeferred)) return concatDeferred(parts, axis, sizes, total);
  return concatTensors(parts as readonly Tensor[], axis, sizes, total);
}

function concatTensors(parts: readonly Tensor[], axis: number, sizes: readonly number[], total: number): Tensor {
  const first = parts[0];
  const shape = first.shape.slice();
  shape[axis] = total;
  const outer = product(shape, 0, axis);
  const inner = product(shape, axis + 1, shape.length);
  const data = allocLike(first.data, outer * total * inner);
  if (outer === 1 && !Array.isArray(data)) {
    let at = 0;
    for (const p of parts) {
      (data as Uint8Array).set(p.data as Uint8Array, at);
      at += p.data.length;
    }
  } else {
    for (let o = 0; o < outer; o++) {
      let at = o * total * inner;
      for (let i = 0; i < parts.length; i++) {
        const rows = sizes[i] * inner;
        copy(data, at, parts[i].data, o * rows, rows);
        at += rows;
      }
    }
  }
  return { name: first.name, datatype: first.datatype, shape, data };
}

export interface MergedBatch<T extends InputTensor = InputTensor> {
  /** One tensor per input, in the first request's input order (deferred where any request's was). */
  inputs: T[];
  /** offsets[i]..offsets[i+1] are request i's rows; the last entry is the merged batch size. */
  offsets: number[];
}

/**
 * Merges requests with equal batch keys into one run's inputs. `layout` defaults to batch-first for every
 * input (Triton's rule); pass batchLayoutOf(manifest) for models with batch-second state or shared inputs.
 */
export function mergeRequests<T extends InputTensor>(tensorLists: readonly (readonly T[])[], layout?: BatchLayout): MergedBatch<T> {
  if (tensorLists.length === 0) throw hearthError('INTERNAL', 'mergeRequests: tensorLists is empty');
  const first = tensorLists[0];
  // `null` (shared input) must survive, so no `??` here.
  const axisOf = (name: string): number | null => {
    const axis = layout?.inputs.get(name);
    return axis === undefined ? 0 : axis;
  };
  const sizes = new Array<number>(tensorLists.length);
  const offsets = new Array<number>(tensorLists.length + 1);
  offsets[0] = 0;
  const batched = first.find((t) => axisOf(t.name) !== null);
  if (!batched) throw hearthError('INTERNAL', 'mergeRequests: no input has a batch axis');
  const batchedAxis = axisOf(batched.name) as number;
  for (let i = 0; i < tensorLists.length; i++) {
    const t = tensorLists[i].find((x) => x.name === batched.name);
    if (!t) throw hearthError('INTERNAL', `mergeRequests: request ${i} lacks input "${batched.name}"`);
    sizes[i] = t.shape[batchedAxis];
    offsets[i + 1] = offsets[i] + sizes[i];
  }
  const total = offsets[tensorLists.length];
  if (tensorLists.length === 1) return { inputs: first.slice(), offsets };
  const inputs = first.map((t, k) => {
    const axis = axisOf(t.name);
    if (axis === null) return t;
    const parts = tensorLists.map((list, i) => {
      // Inputs usually arrive in the same order; fall back to a lookup by name when they do not.
      const p = list[k]?.name === t.name ? list[k] : list.find((x) => x.name === t.name);
      if (!p) throw hearthError('INTERNAL', `mergeRequests: request ${i} lacks input "${t.name}"`);
      if (p.datatype !== t.datatype)
        throw hearthError('INTERNAL', `mergeRequests: input "${t.name}" mixes ${t.datatype} and ${p.datatype}`);
      return p;
    });
    // Plain tensors in, plain tensors out: only a deferred part makes the merge deferred.
    return concat(parts, axis, sizes, total) as T;
  });
  return { inputs, offsets };
}

function sliceRows(t: Tensor, axis: number, start: number, end: number, total: number): Tensor {
  const shape = t.shape.slice();
  shape[axis] = end - start;
  const outer = product(t.shape, 0, axis);
  const inner = product(t.shape, axis + 1, t.shape.length);
  if (outer === 1) {
    // A copy, not a view: each request may transfer or keep its buffer independently of its batch mates.
    return { name: t.name, datatype: t.datatype, shape, data: t.data.slice(start * inner, end * inner) };
  }
  const rows = (end - start) * inner;
  const data = allocLike(t.data, outer * rows);
  for (let o = 0; o < outer; o++) copy(data, o * rows, t.data, (o * total + start) * inner, rows);
  return { name: t.name, datatype: t.datatype, shape, data };
}

/**
 * Splits a merged run's outputs back into one output list per request, using the offsets from
 * mergeRequests. Throws INTERNAL when an output's batch dimension does not match the merged batch size
 * (a model whose outputs are not per-row), so such a batch fails loudly instead of mixing rows.
 */
export function splitOutputs(outputs: readonly Tensor[], offsets: readonly number[], layout?: BatchLayout): Tensor[][] {
  const n = offsets.length - 1;
  const total = offsets[n];
  if (n === 1) return [outputs.slice()];
  const result: Tensor[][] = Array.from({ length: n }, () => new Array<Tensor>(outputs.length));
  for (let k = 0; k < outputs.length; k++) {
    const t = outputs[k];
    const axis = layout ? (layout.outputs.get(t.name) ?? 0) : 0;
    if (t.shape.length <= axis || t.shape[axis] !== total) {
      throw hearthError(
        'INTERNAL',
        `splitOutputs: output "${t.name}" has shape [${t.shape.join(',')}], expected ${total} rows on axis ${axis}`,
      );
    }
    for (let i = 0; i < n; i++) result[i][k] = sliceRows(t, axis, offsets[i], offsets[i + 1], total);
  }
  return result;
}
