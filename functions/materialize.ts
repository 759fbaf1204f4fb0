// Turns deferred inputs (core/tensor.ts DeferredData: JSON text of large `data` arrays, or merged batches of
// such parts) into the typed arrays a runtime takes. Runs on the instance thread, next to the model, so the
// numbers are parsed off the HTTP thread. A part that does not parse, or holds the wrong number of elements,
// fails only the request it came from: its rows stay zero, the batch runs for the others, and the host
// answers that request with the error.
import {
  datatypeInfo,
  elementCount,
  hearthError,
  isDeferred,
  isHearthError,
  shown,
  type DeferredPart,
  type ErrorCode,
  type InputTensor,
  type Tensor,
  type TensorData,
} from '../core/index.ts';
import { decodeDeferredJson } from '../protocol/index.ts';

export interface RequestFailure {
  /** Index of the request in its batch. */
  request: number;
  code: ErrorCode;
  message: string;
}

type Numeric = Exclude<TensorData, string[]>;

function place(out: Numeric, src: Numeric, part: DeferredPart): void {
  const { count, rows, stride, dstAt } = part;
  if (rows <= 0 || count % rows !== 0 || dstAt + (count / rows - 1) * stride + rows > out.length) {
    throw hearthError(
      'INTERNAL',
      `deferred part of ${count} elements (rows ${rows}, stride ${stride}, at ${dstAt}) does not fit a tensor of ${out.length}`,
    );
  }
  if (rows === count) {
    (out as Uint8Array).set(src as Uint8Array, dstAt);
    return;
  }
  for (let at = 0, o = 0; at < count; at += rows, o++)
    (out as Uint8Array).set((src as Uint8Array).subarray(at, at + rows), dstAt + o * stride);
}

/** The inputs with every deferred one decoded, and the requests whose parts failed. Plain tensors pass through. */
export function materializeInputs(inputs: readonly InputTensor[]): { tensors: Tensor[]; failed: RequestFailure[] } {
  const failed = new Map<number, RequestFailure>();
  const tensors = inputs.map((t): Tensor => {
    if (!isDeferred(t)) return t;
    const Ctor = datatypeInfo(t.datatype).array;
    if (!Ctor) throw hearthError('INTERNAL', `input "${shown(t.name)}": ${t.datatype} data cannot be deferred`);
    const count = elementCount(t.shape);
    let out: Numeric;
    try {
      out = new Ctor(count);
    } catch (e) {
      // The HTTP thread bounds each deferred count by its text, so this is a last line: a tensor that cannot be
      // allocated fails the run, not the instance.
      throw hearthError(
        'INVALID_TENSOR',
        `input "${shown(t.name)}": shape [${t.shape.join(',')}] (${count} elements of ${t.datatype}) cannot be allocated: ${(e as Error).message}`,
      );
    }
    for (const part of t.data.parts) {
      if (failed.has(part.request)) continue;
      try {
        const src = part.json ? decodeDeferredJson(part.json, part.jsonAt ?? 0, t.datatype, part.shape, t.name) : part.data;
        if (!src || Array.isArray(src) || src.length !== part.count) {
          throw hearthError(
            'INVALID_TENSOR',
            `input "${shown(t.name)}": shape [${part.shape.join(',')}] needs ${part.count} elements, got ${src?.length ?? 0}`,
          );
        }
        place(out, src, part);
      } catch (e) {
        if (isHearthError(e) && e.code === 'INTERNAL') throw e;
        failed.set(part.request, {
          request: part.request,
          code: isHearthError(e) ? e.code : 'INVALID_TENSOR',
          message: e instanceof Error ? e.message : String(e),
        });
      }
    }
    return { name: t.name, datatype: t.datatype, shape: t.shape, data: out };
  });
  return { tensors, failed: [...failed.values()] };
}
