// How one dataset row (the text of an Open Inference Protocol request body) becomes executor inputs, and how
// outputs become the text of a result line. Decoding works on the raw text so INT64 values stay exact.
import type { Manifest, Tensor } from '../core/index.ts';
import { decodeInferRequest, jsonDataText, manifestSignature, validateInputs } from '../protocol/index.ts';

export interface DecodedRow {
  /** The request's "id", echoed in its result line. */
  id?: string;
  inputs: Tensor[];
  /** Output names the row asked for; all when undefined. */
  outputs?: string[];
}

export interface RowCodec {
  /** Decodes one row and checks it against the model; throws a HearthError (INVALID_REQUEST, INVALID_TENSOR) for a bad row. */
  decode(text: string, manifest: Manifest): DecodedRow;
  /** One output tensor as the JSON text of a V2 response output. */
  encodeOutput(t: Tensor): string;
}

/** Checks decoded inputs against a model's declared inputs (protocol's validateInputs). */
export type InputValidator = (manifest: Manifest, inputs: readonly Tensor[], requestedOutputs?: readonly string[]) => void;

/** The online path's decoder and checks, so a row fails exactly when the same online request would. */
export function v2RowCodec(
  validate: InputValidator = (m, inputs, outputs) => validateInputs(manifestSignature(m), inputs, outputs),
): RowCodec {
  return {
    decode(text, manifest) {
      // The decoder bounds nesting itself (MAX_JSON_DEPTH), so a row nested thousands deep fails as its own row.
      const req = decodeInferRequest(text);
      const row: DecodedRow = { inputs: req.inputs };
      if (req.id !== undefined) row.id = req.id;
      if (req.outputs) row.outputs = req.outputs.map((o) => o.name);
      validate(manifest, req.inputs, row.outputs);
      return row;
    },
    encodeOutput: encodeOutputText,
  };
}

export function encodeOutputText(t: Tensor): string {
  return `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}],"data":${jsonDataText(t)}}`;
}
