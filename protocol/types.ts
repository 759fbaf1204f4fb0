// The Open Inference Protocol's request and response shapes as Hearth decodes and encodes them, and the bounds on
// what a body may nest.
import { type InputTensor, type PrintedTensor, type Tensor, type TensorData } from '../core/index.ts';

/** V2 parameter values are strings, numbers or booleans. */
export type V2Parameters = Record<string, string | number | boolean>;

export interface RequestedOutput {
  name: string;
  parameters?: V2Parameters;
}

export interface DecodedInferRequest {
  /** Echoed in the response. */
  id?: string;
  parameters?: V2Parameters;
  inputs: Tensor[];
  /** Per-input parameters (binary_data_size removed), by input name, only where present. */
  inputParameters?: Record<string, V2Parameters>;
  /** The outputs the client selected, in request order; undefined means all. */
  outputs?: RequestedOutput[];
}

export interface DecodeOptions {
  /** Value of the Inference-Header-Content-Length header: the JSON part's length; binary tensors follow it. */
  headerLength?: number;
}

export interface ScanOptions extends DecodeOptions {
  /**
   * A flat numeric `data` array of at least this many bytes is not parsed: the input comes back as a
   * DeferredTensor holding the array's text, and the instance thread parses it (functions/materialize.ts).
   */
  deferAbove: number;
}

/** decodeInferRequest's result where large numeric inputs may still be JSON text. */
export interface ScannedInferRequest extends Omit<DecodedInferRequest, 'inputs'> {
  inputs: InputTensor[];
}

export interface EncodeResponseInput {
  modelName: string;
  modelVersion: number | string;
  id?: string;
  parameters?: V2Parameters;
  /** Tensors, or outputs whose JSON `data` text was printed already (only for outputs that travel as JSON). */
  outputs: (Tensor | PrintedTensor)[];
}

export interface EncodedResponse {
  body: Buffer;
  /** 'application/json', or 'application/octet-stream' when any output travels as binary. */
  contentType: string;
  /** Set when any output is binary: the value of Inference-Header-Content-Length. */
  headerLength?: number;
}

/**
 * Deepest nesting of arrays and objects accepted in a request: envelope values (read with JSON.parse, then shown
 * in error messages) and `data` arrays alike. A shape nested 100k deep used to reach JSON.stringify in an error
 * message and answer 500 "Maximum call stack size exceeded"; no tensor has a rank near this.
 */
export const MAX_JSON_DEPTH = 64;

/** Most dimensions of a tensor's shape (a shape of a million dimensions would be echoed in error messages). */
export const MAX_TENSOR_RANK = 64;

/** Everything read about one request input before its data is turned into a Tensor. */
export interface RawInput {
  name?: unknown;
  shape?: unknown;
  datatype?: unknown;
  parameters?: unknown;
  /** Decoded already, when datatype and shape came before data. */
  data?: TensorData;
  /** Start of a `data` value that came before datatype or shape; parsed in a second pass. */
  dataAt?: number;
  /** A large flat numeric `data` array left as text (ScanOptions.deferAbove), with its offset in the body. */
  deferred?: { json: Uint8Array; at: number };
  hasData: boolean;
}
