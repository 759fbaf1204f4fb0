// Tensors as Hearth moves them between gateway, executor and instances.
import type { Datatype, TensorData } from './datatypes.ts';

/** A tensor with a concrete shape. `data` is row-major; its length equals the product of `shape`. */
export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

/** An input or output as declared by a model: -1 marks a dynamic or symbolic dimension. */
export interface TensorSpec {
  name: string;
  datatype: Datatype;
  shape: number[];
}

/**
 * Input data not yet decoded: the gateway leaves a large JSON `data` array as its text, and the instance
 * thread that runs the model parses it (functions/materialize.ts), so the numbers are read on a core other
 * than the HTTP thread's. A merged batch input holds one part per request; a part is either JSON text or data
 * already decoded, and lands in the run's array at `dstAt`, `rows` elements at a time, `stride` apart (several
 * runs when the batch axis is not the first, as in silero VAD's [layers, batch, hidden] state).
 * It survives structured cloning (plain object, typed arrays), which is how it reaches the instance thread.
 */
export interface DeferredData {
  readonly deferred: true;
  readonly parts: DeferredPart[];
}

export interface DeferredPart {
  /** Index of the request in its batch (0 when unbatched): a part that fails to parse fails only that request. */
  request: number;
  /** The JSON array text, brackets included, in a buffer of its own (it is transferred to the instance). */
  json?: Uint8Array;
  /** Where that text started in the request body (error messages name body offsets). */
  jsonAt?: number;
  /** Or the request's data, already decoded. */
  data?: Exclude<TensorData, string[]>;
  /** The request's own shape of this input, and the elements that makes. */
  shape: number[];
  count: number;
  dstAt: number;
  rows: number;
  stride: number;
}

/** A request input whose data is deferred; only the executor's request path carries it. */
export interface DeferredTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: DeferredData;
}

/** What an inference request may carry as an input. */
export type InputTensor = Tensor | DeferredTensor;

export function isDeferred(t: InputTensor): t is DeferredTensor {
  return (t.data as Partial<DeferredData>).deferred === true;
}

/** A deferred input of one request: its JSON text fills the whole tensor. */
export function deferredJson(
  name: string,
  datatype: Datatype,
  shape: number[],
  json: Uint8Array,
  count: number,
  jsonAt = 0,
): DeferredTensor {
  return {
    name,
    datatype,
    shape,
    data: { deferred: true, parts: [{ request: 0, json, jsonAt, shape, count, dstAt: 0, rows: count, stride: count }] },
  };
}

/**
 * An output already printed as the text of its V2 JSON `data` array (protocol/response-encode.ts jsonDataText), by the
 * instance thread that ran the model, so the HTTP thread only splices it into the response.
 */
export interface PrintedTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  json: string;
}
