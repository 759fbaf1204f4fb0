// Hearth tensors as the runtimes' own tensors and back: onnxruntime tensors and TF.js tensors. Runtime modules are
// passed in, never imported here. The Open Inference Protocol's JSON and binary forms are protocol/'s business.
import type * as OrtModule from 'onnxruntime-node';
import type * as TfModule from '@tensorflow/tfjs';
import { datatypeFromOnnx, datatypeInfo, hearthError, type Datatype, type Tensor, type TensorData } from '../core/index.ts';
import { halfBitsToFloat } from '../protocol/index.ts';

const utf8Decoder = new TextDecoder('utf-8');

function bad(what: string, msg: string): never {
  throw hearthError('INVALID_TENSOR', `${what}: ${msg}`);
}

// ---------------------------------------------------------------------------------------------
// onnxruntime <-> Tensor.

type OrtTensor = OrtModule.Tensor;

/** A Hearth tensor as an onnxruntime tensor (no copy for numeric data). */
export function toOrtTensor(ort: typeof OrtModule, t: Tensor): OrtTensor {
  const type = datatypeInfo(t.datatype).onnx as OrtModule.Tensor.Type;
  // The ort typings have one overload per element type; the datatype table guarantees the pairing.
  return new ort.Tensor(type, t.data, t.shape);
}

/** An onnxruntime tensor as a Hearth tensor. Throws INTERNAL for an element type V2 has no name for. */
export function fromOrtTensor(name: string, ot: OrtTensor): Tensor {
  const datatype = datatypeFromOnnx(ot.type);
  if (!datatype) throw hearthError('INTERNAL', `output "${name}": onnxruntime type ${ot.type} has no V2 datatype`);
  let data = ot.data;
  if (datatype === 'FP16' && !(data instanceof Uint16Array)) {
    // Where Float16Array exists, ort hands it out; V2 FP16 is raw bits.
    const d = data as unknown as { buffer: ArrayBufferLike; byteOffset: number; length: number };
    data = new Uint16Array(d.buffer, d.byteOffset, d.length);
  }
  return { name, datatype, shape: ot.dims.map(Number), data };
}

// ---------------------------------------------------------------------------------------------
// TF.js <-> Tensor. TF.js holds float32, int32, bool and string only.

type TfDtype = 'float32' | 'int32' | 'bool' | 'string';

/**
 * A Hearth tensor as a TF.js tensor of `dtype` (the model input's dtype). Datatypes that fit losslessly
 * are widened (UINT8/INT8/INT16/UINT16 -> int32); INT64 -> int32 only when every value fits; FP64 ->
 * float32 and FP16 -> float32 (rounding, as TF.js cannot hold them). Anything else is INVALID_TENSOR.
 */
export function toTfTensor(tf: typeof TfModule, t: Tensor, dtype: TfDtype, what = `input "${t.name}"`): TfModule.Tensor {
  const dt = t.datatype;
  const refuse = (): never => bad(what, `datatype ${dt} cannot feed a TF.js ${dtype} input (TF.js holds float32, int32, bool and string)`);
  switch (dtype) {
    case 'string':
      if (dt !== 'BYTES') refuse();
      return tf.tensor(t.data as string[], t.shape, 'string');
    case 'bool':
      if (dt !== 'BOOL') refuse();
      return tf.tensor(t.data as Uint8Array, t.shape, 'bool');
    case 'float32': {
      if (dt === 'FP32') return tf.tensor(t.data as Float32Array, t.shape, 'float32');
      if (dt === 'FP64') return tf.tensor(Float32Array.from(t.data as Float64Array), t.shape, 'float32');
      if (dt === 'FP16') return tf.tensor(Float32Array.from(t.data as Uint16Array, halfBitsToFloat), t.shape, 'float32');
      return refuse();
    }
    case 'int32': {
      if (dt === 'INT32') return tf.tensor(t.data as Int32Array, t.shape, 'int32');
      if (dt === 'UINT8' || dt === 'INT8' || dt === 'INT16' || dt === 'UINT16') {
        return tf.tensor(Int32Array.from(t.data as Uint8Array), t.shape, 'int32');
      }
      if (dt === 'INT64') {
        const src = t.data as BigInt64Array;
        const out = new Int32Array(src.length);
        for (let i = 0; i < src.length; i++) {
          const v = src[i];
          if (v < -2147483648n || v > 2147483647n) bad(what, `INT64 element ${i} (${v}) does not fit the model's int32 input`);
          out[i] = Number(v);
        }
        return tf.tensor(out, t.shape, 'int32');
      }
      return refuse();
    }
    default:
      return bad(what, `the model declares TF.js dtype ${String(dtype)}, which Hearth cannot feed`);
  }
}

/** The V2 datatype of a TF.js dtype; undefined for complex64. */
export function datatypeFromTfjs(dtype: string): Datatype | undefined {
  switch (dtype) {
    case 'float32':
      return 'FP32';
    case 'int32':
      return 'INT32';
    case 'bool':
      return 'BOOL';
    case 'string':
      return 'BYTES';
    default:
      return undefined;
  }
}

/** A TF.js tensor as a Hearth tensor; the data is copied out of the backend. */
export async function fromTfTensor(name: string, tt: TfModule.Tensor): Promise<Tensor> {
  const datatype = datatypeFromTfjs(tt.dtype);
  if (!datatype) throw hearthError('INTERNAL', `output "${name}": TF.js dtype ${tt.dtype} has no V2 datatype`);
  const raw = await tt.data();
  let data: TensorData;
  if (datatype === 'BYTES') {
    // TF.js gives string tensors' elements as strings, or as UTF-8 bytes on some backends.
    data = Array.from(raw as unknown as ArrayLike<string | Uint8Array>, (v) => (typeof v === 'string' ? v : utf8Decoder.decode(v)));
  } else if (datatype === 'BOOL') {
    data = raw instanceof Uint8Array ? raw : Uint8Array.from(raw as ArrayLike<number>);
  } else {
    data = raw as Float32Array | Int32Array;
  }
  return { name, datatype, shape: [...tt.shape], data };
}
