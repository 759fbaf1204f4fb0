// The binary tensor extension: tensors whose bytes follow the JSON header (Inference-Header-Content-Length), read
// into typed arrays and written from them, little-endian; BYTES as 4-byte length prefixes and UTF-8.
import {
  datatypeInfo,
  deferredJson,
  hearthError,
  shown,
  type Datatype,
  type InputTensor,
  type Tensor,
  type TensorData,
} from '../core/index.ts';
import { Scanner, bytesToText, preview } from './json-scanner.ts';
import { checkDatatype, checkParameters, checkShape, countOf, fmtShape } from './tensor-object.ts';
import { readDataArray } from './tensor-sinks.ts';
import { type RawInput, type V2Parameters } from './types.ts';

/** Reads BYTES elements from the binary extension: 4-byte little-endian length, then the bytes. */
function readBinaryBytes(b: Uint8Array, start: number, size: number, name: string): string[] {
  const out: string[] = [];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = start;
  const end = start + size;
  while (p < end) {
    if (p + 4 > end)
      throw hearthError(
        'INVALID_TENSOR',
        `input "${shown(name)}": binary BYTES element ${out.length} is cut short (needs a 4-byte length)`,
      );
    const len = view.getUint32(p, true);
    p += 4;
    if (p + len > end)
      throw hearthError(
        'INVALID_TENSOR',
        `input "${shown(name)}": binary BYTES element ${out.length} claims ${len} bytes but only ${end - p} remain`,
      );
    out.push(bytesToText(b, p, p + len));
    p += len;
  }
  return out;
}

/** Copies a binary tensor into its own, aligned ArrayBuffer so it can be transferred to a worker thread. */
function readBinaryFixed(b: Uint8Array, start: number, size: number, dt: Datatype): TensorData {
  const info = datatypeInfo(dt);
  const copy = new ArrayBuffer(size);
  new Uint8Array(copy).set(b.subarray(start, start + size));
  // The wire is little-endian; so are the typed arrays on every platform Hearth runs on (x86-64, arm64).
  return new info.array!(copy);
}

function sizeParam(params: V2Parameters | undefined, name: string): number | undefined {
  const v = params?.binary_data_size;
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw hearthError('INVALID_REQUEST', `input "${shown(name)}": binary_data_size must be a non-negative integer, got ${preview(v)}`);
  }
  return v;
}

/**
 * Turns the raw tensors of a request (inputs) or response (outputs) into Tensors: checks name, shape and
 * datatype, takes binary tensors from the part after the JSON header in order, and checks data lengths.
 */
export function finishTensors(
  raws: RawInput[],
  b: Uint8Array,
  headerLength: number,
  hasBinaryPart: boolean,
  kind: 'input' | 'output',
): { tensors: InputTensor[]; parameters?: Record<string, V2Parameters> } {
  const tensors: InputTensor[] = [];
  let parameters: Record<string, V2Parameters> | undefined;
  let cursor = headerLength;
  const seen = new Set<string>();
  for (let i = 0; i < raws.length; i++) {
    const raw = raws[i];
    if (typeof raw.name !== 'string' || raw.name === '') throw hearthError('INVALID_REQUEST', `${kind}s[${i}] needs a "name" string`);
    const name = raw.name;
    if (seen.has(name)) throw hearthError('INVALID_TENSOR', `${kind} "${shown(name)}": given more than once`);
    seen.add(name);
    if (raw.shape === undefined) throw hearthError('INVALID_REQUEST', `${kind} "${shown(name)}": missing "shape"`);
    if (raw.datatype === undefined) throw hearthError('INVALID_REQUEST', `${kind} "${shown(name)}": missing "datatype"`);
    const shape = checkShape(raw.shape, name);
    const datatype = checkDatatype(raw.datatype, name);
    const params = raw.parameters === undefined ? undefined : checkParameters(raw.parameters, () => `${kind} "${shown(name)}"`);
    const count = countOf(shape, name, kind);
    const binarySize = sizeParam(params, name);
    let data: TensorData;
    if (binarySize !== undefined) {
      if (raw.hasData) throw hearthError('INVALID_REQUEST', `${kind} "${shown(name)}": has both "data" and binary_data_size`);
      if (!hasBinaryPart) {
        throw hearthError(
          'INVALID_REQUEST',
          `${kind} "${shown(name)}": binary_data_size is set but there is no Inference-Header-Content-Length header`,
        );
      }
      if (cursor + binarySize > b.length) {
        throw hearthError(
          'INVALID_REQUEST',
          `${kind} "${shown(name)}": binary_data_size ${binarySize} runs past the end of the body (${b.length - cursor} bytes left)`,
        );
      }
      if (datatype === 'BYTES') {
        data = readBinaryBytes(b, cursor, binarySize, name);
      } else {
        const want = count * datatypeInfo(datatype).byteSize;
        if (binarySize !== want) {
          throw hearthError(
            'INVALID_TENSOR',
            `${kind} "${shown(name)}": binary_data_size ${binarySize} does not fit shape ${fmtShape(shape)} of ${datatype} (${want} bytes)`,
          );
        }
        data = readBinaryFixed(b, cursor, binarySize, datatype);
      }
      cursor += binarySize;
    } else if (raw.deferred !== undefined) {
      // Its exact element count is checked where it is parsed, on the instance thread. Here, in O(1), the text must
      // at least be able to hold that many: n numbers take 2n + 1 bytes with the brackets. Without this, a 16 KB body
      // declaring [1, 1e12] made the instance allocate from the shape and die of the RangeError.
      const most = Math.floor((raw.deferred.json.length - 1) / 2);
      if (count > most) {
        throw hearthError(
          'INVALID_TENSOR',
          `${kind} "${shown(name)}": shape ${fmtShape(shape)} needs ${count} elements, but its data array of ${raw.deferred.json.length} bytes holds at most ${most}`,
        );
      }
      tensors.push(deferredJson(name, datatype, shape, raw.deferred.json, count, raw.deferred.at));
      if (params) {
        const { binary_data_size: _ignored, ...rest } = params;
        if (Object.keys(rest).length > 0) (parameters ??= {})[name] = rest;
      }
      continue;
    } else if (raw.data !== undefined) {
      data = raw.data;
    } else if (raw.dataAt !== undefined) {
      data = readDataArray(new Scanner(b, raw.dataAt, headerLength), datatype, count, name);
    } else {
      throw hearthError('INVALID_REQUEST', `${kind} "${shown(name)}": missing "data" (or binary_data_size)`);
    }
    if (data.length !== count) {
      throw hearthError('INVALID_TENSOR', `${kind} "${shown(name)}": shape ${fmtShape(shape)} needs ${count} elements, got ${data.length}`);
    }
    tensors.push({ name, datatype, shape, data });
    if (params) {
      const { binary_data_size: _ignored, ...rest } = params;
      if (Object.keys(rest).length > 0) (parameters ??= {})[name] = rest;
    }
  }
  if (cursor !== b.length) {
    throw hearthError(
      'INVALID_REQUEST',
      `the body has ${b.length - cursor} bytes after the last binary ${kind}; binary_data_size values must add up to the binary part`,
    );
  }
  return parameters ? { tensors, parameters } : { tensors };
}

/** Bytes of one tensor in the binary extension's layout (little-endian, row-major; BYTES length-prefixed). */
export function binaryTensorBytes(t: Tensor): Buffer {
  if (t.datatype === 'BYTES') {
    const parts: Buffer[] = [];
    for (const s of t.data as string[]) {
      const bytes = Buffer.from(s, 'utf8');
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32LE(bytes.length, 0);
      parts.push(len, bytes);
    }
    return Buffer.concat(parts);
  }
  const d = t.data as Exclude<TensorData, string[]>;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}
