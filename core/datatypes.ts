// The Open Inference Protocol datatype table: one row per V2 datatype, with the
// element size, the typed array that holds it in memory, and its names in each runtime.

export const DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
] as const;

export type Datatype = (typeof DATATYPES)[number];

/** In-memory representation of a tensor's elements, by datatype.
 *  BOOL is one byte per element (0/1) in a Uint8Array; FP16 is raw half-float bits in a Uint16Array;
 *  INT64/UINT64 are BigInt arrays so no precision is lost; BYTES is an array of strings. */
export type TensorData =
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Float32Array
  | Float64Array
  | string[];

export interface DatatypeInfo {
  readonly name: Datatype;
  /** Bytes per element in the binary tensor extension; 0 for BYTES (variable length). */
  readonly byteSize: number;
  /** Typed array constructor; undefined for BYTES. */
  readonly array?: {
    new (length: number): Exclude<TensorData, string[]>;
    new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): Exclude<TensorData, string[]>;
  };
  /** onnxruntime-common tensor type. */
  readonly onnx: string;
  /** TF.js dtype when TF.js can hold it natively, else undefined. */
  readonly tfjs?: 'float32' | 'int32' | 'bool' | 'string';
  /** True when elements are BigInt (INT64, UINT64). */
  readonly bigint: boolean;
}

const table: Record<Datatype, DatatypeInfo> = {
  BOOL: { name: 'BOOL', byteSize: 1, array: Uint8Array, onnx: 'bool', tfjs: 'bool', bigint: false },
  UINT8: { name: 'UINT8', byteSize: 1, array: Uint8Array, onnx: 'uint8', tfjs: 'int32', bigint: false },
  UINT16: { name: 'UINT16', byteSize: 2, array: Uint16Array, onnx: 'uint16', tfjs: 'int32', bigint: false },
  UINT32: { name: 'UINT32', byteSize: 4, array: Uint32Array, onnx: 'uint32', bigint: false },
  UINT64: { name: 'UINT64', byteSize: 8, array: BigUint64Array, onnx: 'uint64', bigint: true },
  INT8: { name: 'INT8', byteSize: 1, array: Int8Array, onnx: 'int8', tfjs: 'int32', bigint: false },
  INT16: { name: 'INT16', byteSize: 2, array: Int16Array, onnx: 'int16', tfjs: 'int32', bigint: false },
  INT32: { name: 'INT32', byteSize: 4, array: Int32Array, onnx: 'int32', tfjs: 'int32', bigint: false },
  INT64: { name: 'INT64', byteSize: 8, array: BigInt64Array, onnx: 'int64', tfjs: 'int32', bigint: true },
  FP16: { name: 'FP16', byteSize: 2, array: Uint16Array, onnx: 'float16', bigint: false },
  FP32: { name: 'FP32', byteSize: 4, array: Float32Array, onnx: 'float32', tfjs: 'float32', bigint: false },
  FP64: { name: 'FP64', byteSize: 8, array: Float64Array, onnx: 'float64', tfjs: 'float32', bigint: false },
  BYTES: { name: 'BYTES', byteSize: 0, onnx: 'string', tfjs: 'string', bigint: false },
};

export function datatypeInfo(dt: Datatype): DatatypeInfo {
  return table[dt];
}

export function isDatatype(v: unknown): v is Datatype {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(table, v);
}

const fromOnnx = new Map(Object.values(table).map((d) => [d.onnx, d.name]));
/** Maps an onnxruntime type string ('float32', 'int64', ...) to its V2 datatype. */
export function datatypeFromOnnx(onnxType: string): Datatype | undefined {
  return fromOnnx.get(onnxType);
}

/** Number of elements in a fully specified shape ([] is a scalar: one element). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
