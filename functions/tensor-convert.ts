// Tensor conversion for every V2 datatype, both ways: V2 JSON values, the binary tensor extension's
// little-endian bytes, onnxruntime tensors and TF.js tensors. Runtime modules are passed in, never
// imported here, so the gateway can use the JSON and binary halves without loading a runtime.
import type * as OrtModule from 'onnxruntime-node';
import type * as TfModule from '@tensorflow/tfjs';
import { datatypeFromOnnx, datatypeInfo, elementCount, hearthError, type Datatype, type Tensor, type TensorData } from '../core/index.ts';

type NumericData = Exclude<TensorData, string[]>;

// ---------------------------------------------------------------------------------------------
// FP16 <-> number. FP16 travels as raw half bits (Uint16Array); JSON carries the float value.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Rounds a number to the nearest half-float (ties to even) and returns its 16 bits. */
export function floatToHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // Inf or NaN (stay NaN)
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow to Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow to signed zero
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) half++; // may carry into the exponent: still correct
  return sign | half;
}

/** The number a half-float's 16 bits stand for. */
export function halfBitsToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

// ---------------------------------------------------------------------------------------------
// V2 JSON values <-> TensorData.

type JsonValue = number | string | boolean | bigint | null | JsonValue[];

/** Flattens a nested row-major array (V2 allows flat or nested `data`). */
export function flattenJsonData(data: unknown): unknown[] {
  if (!Array.isArray(data)) return [data];
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else out.push(v);
  };
  walk(data);
  return out;
}

const INT_RANGE: Partial<Record<Datatype, [number, number]>> = {
  UINT8: [0, 0xff], UINT16: [0, 0xffff], UINT32: [0, 0xffffffff],
  INT8: [-0x80, 0x7f], INT16: [-0x8000, 0x7fff], INT32: [-0x80000000, 0x7fffffff],
};
const BIG_RANGE: Partial<Record<Datatype, [bigint, bigint]>> = {
  INT64: [-(2n ** 63n), 2n ** 63n - 1n],
  UINT64: [0n, 2n ** 64n - 1n],
};

function bad(what: string, msg: string): never {
  throw hearthError('INVALID_TENSOR', `${what}: ${msg}`);
}

/**
 * Converts V2 JSON `data` (flat or nested) to typed data for `datatype`. `what` names the tensor in
 * errors, e.g. 'input "x"'. INT64/UINT64 accept integers as numbers, decimal strings or bigints, so a
 * caller that parsed JSON with big-integer support loses no precision.
 */
export function tensorDataFromJson(datatype: Datatype, data: unknown, what = 'tensor'): TensorData {
  const flat = flattenJsonData(data);
  const n = flat.length;
  const info = datatypeInfo(datatype);
  if (datatype === 'BYTES') {
    return flat.map((v, i) => (typeof v === 'string' ? v : bad(what, `element ${i} must be a string for BYTES, got ${typeof v}`)));
  }
  if (datatype === 'BOOL') {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = flat[i];
      if (v === true || v === 1) out[i] = 1;
      else if (v === false || v === 0) out[i] = 0;
      else bad(what, `element ${i} must be true or false for BOOL, got ${JSON.stringify(v)}`);
    }
    return out;
  }
  if (info.bigint) {
    const out = datatype === 'INT64' ? new BigInt64Array(n) : new BigUint64Array(n);
    const [lo, hi] = BIG_RANGE[datatype]!;
    for (let i = 0; i < n; i++) {
      const v = flat[i];
      let b: bigint;
      if (typeof v === 'bigint') b = v;
      else if (typeof v === 'number' && Number.isInteger(v)) b = BigInt(v);
      else if (typeof v === 'string' && /^-?\d+$/.test(v)) b = BigInt(v);
      else bad(what, `element ${i} must be an integer for ${datatype}, got ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)}`);
      if (b < lo || b > hi) bad(what, `element ${i} (${b}) is out of range for ${datatype}`);
      out[i] = b;
    }
    return out;
  }
  if (datatype === 'FP16') {
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = floatToHalfBits(toFloat(flat[i], i, what, datatype));
    return out;
  }
  if (datatype === 'FP32' || datatype === 'FP64') {
    const out = datatype === 'FP32' ? new Float32Array(n) : new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = toFloat(flat[i], i, what, datatype);
    return out;
  }
  const [lo, hi] = INT_RANGE[datatype]!;
  const out = new info.array!(n) as Exclude<NumericData, BigInt64Array | BigUint64Array>;
  for (let i = 0; i < n; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !Number.isInteger(v)) bad(what, `element ${i} must be an integer for ${datatype}, got ${JSON.stringify(v)}`);
    if (v < lo || v > hi) bad(what, `element ${i} (${v}) is out of range for ${datatype}`);
    out[i] = v;
  }
  return out;
}

function toFloat(v: unknown, i: number, what: string, dt: Datatype): number {
  if (typeof v === 'number') return v;
  // JSON has no NaN/Infinity literals; accept the strings Triton clients send for them.
  if (v === 'NaN' || v === 'nan') return NaN;
  if (v === 'Infinity' || v === 'inf') return Infinity;
  if (v === '-Infinity' || v === '-inf') return -Infinity;
  return bad(what, `element ${i} must be a number for ${dt}, got ${JSON.stringify(v)}`);
}

/**
 * Typed data to V2 JSON values (a flat array). BOOL -> booleans, FP16 -> floats. INT64/UINT64 become
 * numbers when they are safe integers, else bigints: the caller's JSON writer must print bigints as
 * bare integer literals (JSON.stringify cannot) or choose strings.
 */
export function tensorDataToJson(datatype: Datatype, data: TensorData): JsonValue[] {
  if (datatype === 'BYTES') return [...(data as string[])];
  if (datatype === 'BOOL') return Array.from(data as Uint8Array, (v) => v !== 0);
  if (datatype === 'FP16') return Array.from(data as Uint16Array, halfBitsToFloat);
  if (datatype === 'INT64' || datatype === 'UINT64') {
    return Array.from(data as BigInt64Array | BigUint64Array, (b: bigint) =>
      b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b);
  }
  return Array.from(data as Exclude<NumericData, BigInt64Array | BigUint64Array>);
}

// ---------------------------------------------------------------------------------------------
// Binary tensor extension bytes <-> TensorData (little-endian; BYTES as 4-byte length + UTF-8 bytes).

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

/** Decodes one tensor's raw bytes. `count` is the element count the shape implies. */
export function tensorDataFromBytes(datatype: Datatype, bytes: Uint8Array, count: number, what = 'tensor'): TensorData {
  if (datatype === 'BYTES') {
    const out: string[] = [];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    while (at < bytes.byteLength) {
      if (at + 4 > bytes.byteLength) bad(what, `BYTES element ${out.length} has a truncated 4-byte length prefix`);
      const len = view.getUint32(at, true);
      at += 4;
      if (at + len > bytes.byteLength) bad(what, `BYTES element ${out.length} declares ${len} bytes but only ${bytes.byteLength - at} remain`);
      out.push(utf8Decoder.decode(bytes.subarray(at, at + len)));
      at += len;
    }
    if (out.length !== count) bad(what, `binary data holds ${out.length} BYTES elements, the shape needs ${count}`);
    return out;
  }
  const info = datatypeInfo(datatype);
  const expected = count * info.byteSize;
  if (bytes.byteLength !== expected) {
    bad(what, `binary data is ${bytes.byteLength} bytes, ${datatype} with ${count} elements needs ${expected}`);
  }
  // Copy into a fresh, aligned buffer that the tensor owns (and can be transferred).
  const own = new Uint8Array(expected);
  own.set(bytes);
  return new info.array!(own.buffer, 0, count);
}

/** Encodes one tensor's data as the binary tensor extension's raw bytes. */
export function tensorDataToBytes(datatype: Datatype, data: TensorData): Uint8Array {
  if (datatype === 'BYTES') {
    const parts = (data as string[]).map((s) => utf8.encode(s));
    const total = parts.reduce((n, p) => n + 4 + p.byteLength, 0);
    const out = new Uint8Array(total);
    const view = new DataView(out.buffer);
    let at = 0;
    for (const p of parts) {
      view.setUint32(at, p.byteLength, true);
      out.set(p, at + 4);
      at += 4 + p.byteLength;
    }
    return out;
  }
  const d = data as NumericData;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

// ---------------------------------------------------------------------------------------------
// Checks shared by the runtimes.

/** Throws INVALID_TENSOR unless the tensor's data is of the right kind and length for its datatype and shape. */
export function checkTensorData(t: Tensor, what = `tensor "${t.name}"`): void {
  const info = datatypeInfo(t.datatype);
  if (!info) bad(what, `unknown datatype ${JSON.stringify(t.datatype)}`);
  if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isInteger(d) || d < 0)) {
    bad(what, `shape must be a list of non-negative integers, got ${JSON.stringify(t.shape)}`);
  }
  const count = elementCount(t.shape);
  if (t.datatype === 'BYTES') {
    if (!Array.isArray(t.data)) bad(what, 'BYTES data must be an array of strings');
  } else if (!(t.data instanceof info.array!)) {
    bad(what, `${t.datatype} data must be a ${info.array!.name}, got ${t.data?.constructor?.name ?? typeof t.data}`);
  }
  if (t.data.length !== count) bad(what, `shape ${JSON.stringify(t.shape)} needs ${count} elements, data has ${t.data.length}`);
}

// ---------------------------------------------------------------------------------------------
// onnxruntime <-> Tensor.

type OrtTensor = OrtModule.Tensor;

/** A Hearth tensor as an onnxruntime tensor (no copy for numeric data). */
export function toOrtTensor(ort: typeof OrtModule, t: Tensor): OrtTensor {
  const type = datatypeInfo(t.datatype).onnx as OrtModule.Tensor.Type;
  // The ort typings have one overload per element type; the datatype table guarantees the pairing.
  return new ort.Tensor(type, t.data as never, t.shape);
}

/** An onnxruntime tensor as a Hearth tensor. Throws INTERNAL for an element type V2 has no name for. */
export function fromOrtTensor(name: string, ot: OrtTensor): Tensor {
  const datatype = datatypeFromOnnx(ot.type);
  if (!datatype) throw hearthError('INTERNAL', `output "${name}": onnxruntime type ${ot.type} has no V2 datatype`);
  let data = ot.data as TensorData;
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
  const refuse = (): never =>
    bad(what, `datatype ${dt} cannot feed a TF.js ${dtype} input (TF.js holds float32, int32, bool and string)`);
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
    case 'float32': return 'FP32';
    case 'int32': return 'INT32';
    case 'bool': return 'BOOL';
    case 'string': return 'BYTES';
    default: return undefined;
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
