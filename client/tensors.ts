// Inference inputs as the SDK takes them (typed arrays or plain arrays, with a shape) turned into protocol Tensors,
// and the datatype a typed array implies. The wire encoding itself is protocol/client.ts's, not repeated here.
import type { Datatype, Tensor, TensorData } from '../core/index.ts';
import { HearthError } from './errors.ts';

/** Element data: a typed array (FP16 as raw half bits in a Uint16Array, BOOL as 0/1 in a Uint8Array), strings for BYTES, or plain numbers/bigints/booleans. */
export type InputData = TensorData | readonly number[] | readonly bigint[] | readonly boolean[] | readonly string[];

export interface InputTensor {
  data: InputData;
  shape: readonly number[];
  /** Implied by a typed array (Float32Array: FP32, BigInt64Array: INT64, ...; plain numbers: FP32, strings: BYTES); required for FP16 and BOOL. */
  datatype?: Datatype;
}

/** Inputs by name, or a list of named tensors. */
export type InferInputs = Record<string, InputTensor> | readonly (InputTensor & { name: string })[];

const TYPED: [new (...a: never[]) => unknown, Datatype][] = [
  [Float32Array, 'FP32'],
  [Float64Array, 'FP64'],
  [Int8Array, 'INT8'],
  [Int16Array, 'INT16'],
  [Int32Array, 'INT32'],
  [BigInt64Array, 'INT64'],
  [Uint8Array, 'UINT8'],
  [Uint16Array, 'UINT16'],
  [Uint32Array, 'UINT32'],
  [BigUint64Array, 'UINT64'],
];

/** The typed array each datatype is held in (protocol's representation). */
const ARRAY_OF: Record<Exclude<Datatype, 'BYTES'>, { from(a: ArrayLike<number | bigint>): TensorData }> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

function impliedDatatype(name: string, data: InputData): Datatype {
  for (const [ctor, dt] of TYPED) if (data instanceof ctor) return dt;
  if (Array.isArray(data)) {
    const first: unknown = data[0];
    if (typeof first === 'string') return 'BYTES';
    if (typeof first === 'bigint') return 'INT64';
    if (typeof first === 'boolean') return 'BOOL';
    return 'FP32';
  }
  throw new HearthError(0, 'INVALID_INPUT', `input "${name}": data must be a typed array or an array`);
}

function toData(name: string, datatype: Datatype, data: InputData): TensorData {
  if (datatype === 'BYTES') {
    if (!Array.isArray(data) || data.some((s) => typeof s !== 'string'))
      throw new HearthError(0, 'INVALID_INPUT', `input "${name}": BYTES data must be an array of strings`);
    return data;
  }
  const want = ARRAY_OF[datatype];
  if (!Array.isArray(data)) {
    // A typed array of the right kind is used as it is (no copy).
    if (
      impliedDatatype(name, data) === datatype ||
      (datatype === 'BOOL' && data instanceof Uint8Array) ||
      (datatype === 'FP16' && data instanceof Uint16Array)
    )
      return data as TensorData;
  }
  const big = datatype === 'INT64' || datatype === 'UINT64';
  if (datatype === 'FP16') throw new HearthError(0, 'INVALID_INPUT', `input "${name}": FP16 data must be a Uint16Array of half-float bits`);
  const values = Array.from(data as ArrayLike<number | bigint | boolean>, (v) => (big ? BigInt(v) : Number(v)));
  return want.from(values);
}

/** Named inputs as protocol Tensors, checked for a shape that fits the data. */
export function toTensors(inputs: InferInputs): Tensor[] {
  const list = Array.isArray(inputs)
    ? (inputs as readonly (InputTensor & { name: string })[])
    : Object.entries(inputs as Record<string, InputTensor>).map(([name, t]) => ({ ...t, name }));
  return list.map((t) => {
    const datatype = t.datatype ?? impliedDatatype(t.name, t.data);
    const data = toData(t.name, datatype, t.data);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== data.length)
      throw new HearthError(
        0,
        'INVALID_INPUT',
        `input "${t.name}": shape [${t.shape.join(',')}] needs ${count} elements, got ${data.length}`,
      );
    return { name: t.name, datatype, shape: [...t.shape], data };
  });
}

/** Bytes a tensor takes in the binary extension (BYTES: its UTF-16 length as an estimate). */
export function tensorBytes(t: Tensor): number {
  if (t.datatype === 'BYTES') return (t.data as string[]).reduce((n, s) => n + 4 + s.length, 0);
  return (t.data as Exclude<TensorData, string[]>).byteLength;
}
