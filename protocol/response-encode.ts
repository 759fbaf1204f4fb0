// The server side of a response: outputs encoded as V2 JSON (printed floats in their shortest form) or as binary
// tensors, per output as the request asked.
import { hearthError, type Tensor } from '../core/index.ts';
import { float32ArrayJson } from './float-text.ts';
import { binaryTensorBytes } from './binary-extension.ts';
import { halfBitsToFloat } from './fp16.ts';
import { type DecodedInferRequest, type EncodeResponseInput, type EncodedResponse, type V2Parameters } from './types.ts';

/**
 * Which outputs go back as binary: `binary_data` on a requested output wins, else the request's
 * `binary_data_output`, else JSON.
 */
export function binaryOutputSelector(req: Pick<DecodedInferRequest, 'parameters' | 'outputs'>): (name: string) => boolean {
  const all = req.parameters?.binary_data_output === true;
  const per = new Map<string, boolean>();
  for (const o of req.outputs ?? []) {
    const v = o.parameters?.binary_data;
    if (typeof v === 'boolean') per.set(o.name, v);
  }
  return (name) => per.get(name) ?? all;
}

/** Serialises one tensor's elements as a JSON array text. Typed arrays go through the native join. */
export function jsonDataText(t: Tensor): string {
  const d = t.data;
  switch (t.datatype) {
    case 'BYTES':
      return JSON.stringify(d);
    case 'BOOL': {
      const u = d as Uint8Array;
      const parts = new Array<string>(u.length);
      for (let i = 0; i < u.length; i++) parts[i] = u[i] ? 'true' : 'false';
      return `[${parts.join(',')}]`;
    }
    case 'FP16': {
      const h = d as Uint16Array;
      const f = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) f[i] = halfBitsToFloat(h[i]);
      return floatArrayText(f);
    }
    case 'FP32':
    case 'FP64':
      return floatArrayText(d as Float32Array | Float64Array);
    default:
      // Integers (BigInt arrays included) print exactly; join adds no 'n' suffix.
      return `[${(d as Int32Array).join(',')}]`;
  }
}

function floatArrayText(f: Float32Array | Float64Array): string {
  // FP32 (and FP16, widened to float32): the shortest text that reads back as the same float32, about 2-3x
  // faster than JSON.stringify and 40% shorter (benchmarks/float-text.ts). Undefined when NaN/Infinity occur.
  if (f instanceof Float32Array) {
    const text = float32ArrayJson(f);
    if (text !== undefined) return text;
  }
  // NaN and ±Infinity have no JSON number, and JSON.stringify writes -0 as 0: those take the slow path.
  let finite = true;
  for (let i = 0; i < f.length; i++) {
    const v = f[i];
    if (v - v !== 0 || (v === 0 && 1 / v < 0)) {
      finite = false;
      break;
    }
  }
  // JSON.stringify of a plain array beats TypedArray.prototype.join by ~1.5x here (V8's number-to-string fast path).
  if (finite) return JSON.stringify(Array.from(f));
  const parts = new Array<string>(f.length);
  for (let i = 0; i < f.length; i++) {
    const v = f[i];
    parts[i] = Number.isFinite(v) ? (v === 0 && 1 / v < 0 ? '-0' : String(v)) : `"${v}"`;
  }
  return `[${parts.join(',')}]`;
}

function paramsText(p: V2Parameters | undefined): string {
  return p && Object.keys(p).length > 0 ? `,"parameters":${JSON.stringify(p)}` : '';
}

/**
 * Encodes a V2 infer response. `binary` picks the outputs that travel as raw bytes after the JSON header
 * (see binaryOutputSelector); with none, the body is plain JSON.
 */
export function encodeInferResponse(res: EncodeResponseInput, binary: (name: string) => boolean = () => false): EncodedResponse {
  const head: string[] = [`{"model_name":${JSON.stringify(res.modelName)},"model_version":${JSON.stringify(String(res.modelVersion))}`];
  if (res.id !== undefined) head.push(`,"id":${JSON.stringify(res.id)}`);
  head.push(paramsText(res.parameters), ',"outputs":[');
  const tails: Buffer[] = [];
  res.outputs.forEach((t, i) => {
    if (i > 0) head.push(',');
    head.push(`{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}]`);
    if ('json' in t) {
      if (binary(t.name)) throw hearthError('INTERNAL', `output "${t.name}" was printed as JSON but is asked for as binary`);
      head.push(`,"data":${t.json}}`);
    } else if (binary(t.name)) {
      const bytes = binaryTensorBytes(t);
      tails.push(bytes);
      head.push(`,"parameters":{"binary_data_size":${bytes.length}}}`);
    } else {
      head.push(`,"data":${jsonDataText(t)}}`);
    }
  });
  head.push(']}');
  const json = Buffer.from(head.join(''), 'utf8');
  if (tails.length === 0) return { body: json, contentType: 'application/json' };
  return { body: Buffer.concat([json, ...tails]), contentType: 'application/octet-stream', headerLength: json.length };
}
