// The client side: encoding an infer request and decoding an infer response, the inverse of the server side. Used by
// tests, benchmarks and the SDK.
import { type Tensor } from '../core/index.ts';
import { binaryTensorBytes, finishTensors } from './binary-extension.ts';
import { Scanner, toBytes } from './json-scanner.ts';
import { jsonDataText } from './response-encode.ts';
import { checkParameters, readInput } from './tensor-object.ts';
import { type EncodedResponse, type RawInput, type RequestedOutput, type V2Parameters } from './types.ts';

/**
 * Encodes a V2 infer request (the client side): used by tests, benchmarks and job tooling.
 * With `binaryInputs`, every input travels as raw bytes and `headerLength` must go in Inference-Header-Content-Length.
 */
export function encodeInferRequest(
  req: { id?: string; parameters?: V2Parameters; inputs: Tensor[]; outputs?: RequestedOutput[] },
  opts: { binaryInputs?: boolean } = {},
): EncodedResponse {
  const head: string[] = ['{'];
  if (req.id !== undefined) head.push(`"id":${JSON.stringify(req.id)},`);
  if (req.parameters) head.push(`"parameters":${JSON.stringify(req.parameters)},`);
  if (req.outputs) head.push(`"outputs":${JSON.stringify(req.outputs)},`);
  head.push('"inputs":[');
  const tails: Buffer[] = [];
  req.inputs.forEach((t, i) => {
    if (i > 0) head.push(',');
    head.push(`{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}]`);
    if (opts.binaryInputs) {
      const bytes = binaryTensorBytes(t);
      tails.push(bytes);
      head.push(`,"parameters":{"binary_data_size":${bytes.length}}}`);
    } else {
      head.push(`,"data":${jsonDataText(t)}}`);
    }
  });
  head.push(']}');
  const json = Buffer.from(head.join(''), 'utf8');
  if (!opts.binaryInputs) return { body: json, contentType: 'application/json' };
  return { body: Buffer.concat([json, ...tails]), contentType: 'application/octet-stream', headerLength: json.length };
}

/** Decodes a V2 infer response (the client side), JSON or binary: the inverse of encodeInferResponse. */
export function decodeInferResponse(
  body: Uint8Array | string,
  headerLength?: number,
): { model_name?: string; model_version?: string; id?: string; parameters?: V2Parameters; outputs: Tensor[] } {
  const b = toBytes(body);
  const hl = headerLength ?? b.length;
  const s = new Scanner(b, 0, hl);
  const head: { model_name?: string; model_version?: string; id?: string; parameters?: V2Parameters } = {};
  const raws: RawInput[] = [];
  s.readObject((key) => {
    if (key === 'outputs') s.readArray((i) => raws.push(readInput(s, i)));
    else if (key === 'model_name' || key === 'model_version' || key === 'id') head[key] = s.readAny() as string;
    else if (key === 'parameters') head.parameters = checkParameters(s.readAny(), () => 'response');
    else s.skipValue();
  });
  s.atEnd();
  // Outputs are never deferred (readInput without deferAbove): all plain Tensors.
  return { ...head, outputs: finishTensors(raws, b, hl, headerLength !== undefined, 'output').tensors as Tensor[] };
}
