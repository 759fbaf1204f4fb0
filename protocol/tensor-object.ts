// One tensor object of a V2 body ({name, datatype, shape, data | parameters}) and the checks of its fields, shared by
// requests (inputs) and responses (outputs).
import { elementCount, hearthError, isDatatype, shown, type Datatype } from '../core/index.ts';
import { type NumberInfo, Scanner, preview, readNumber } from './json-scanner.ts';
import { readDataArray } from './tensor-sinks.ts';
import { MAX_TENSOR_RANK, type RawInput, type RequestedOutput, type V2Parameters } from './types.ts';

/** `where` names the owner in a refusal; a function, so the hot path builds no message. */
export function checkParameters(v: unknown, where: () => string): V2Parameters {
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw hearthError('INVALID_REQUEST', `${where()}: "parameters" must be an object`);
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') {
      throw hearthError('INVALID_REQUEST', `${where()}: parameter "${shown(k)}" must be a string, number or boolean`);
    }
  }
  return v as V2Parameters;
}

export function checkShape(v: unknown, name: string): number[] {
  if (!Array.isArray(v) || v.length > MAX_TENSOR_RANK || !v.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw hearthError(
      'INVALID_TENSOR',
      `input "${shown(name)}": "shape" must be an array of at most ${MAX_TENSOR_RANK} non-negative integers, got ${preview(v)}`,
    );
  }
  return v as number[];
}

/**
 * The element count of a checked shape. It must be a safe integer: past 2^53 a product of dimensions is rounded
 * and no longer says how much data the tensor holds (a shape of [1e10, 1e10] is a 400, not an allocation).
 */
export function countOf(shape: readonly number[], name: string, kind: 'input' | 'output' = 'input'): number {
  const n = elementCount(shape);
  if (!Number.isSafeInteger(n)) {
    throw hearthError(
      'INVALID_TENSOR',
      `${kind} "${shown(name)}": shape ${fmtShape(shape)} has more elements than ${Number.MAX_SAFE_INTEGER} (2^53 - 1)`,
    );
  }
  return n;
}

export function checkDatatype(v: unknown, name: string): Datatype {
  if (!isDatatype(v))
    throw hearthError(
      'INVALID_TENSOR',
      `input "${shown(name)}": datatype ${preview(v)} is not a V2 datatype (BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BYTES)`,
    );
  return v;
}

function readStringOrAny(s: Scanner): unknown {
  s.ws();
  return s.b[s.pos] === 0x22 ? s.readString() : s.readAny();
}

/** A flat array of plain integers (a shape), else whatever JSON value is there (checked by the caller). */
function readIntArrayOrAny(s: Scanner): unknown {
  s.ws();
  const start = s.pos;
  if (s.b[start] !== 0x5b) return s.readAny();
  const out: number[] = [];
  const num: NumberInfo = { bigText: null, integral: true, approx: false, start: 0 };
  let plain = true;
  s.readArray(() => {
    s.ws();
    const c = s.b[s.pos];
    if (plain && ((c >= 0x30 && c <= 0x39) || c === 0x2d)) {
      const v = readNumber(s, num);
      plain = num.integral && num.bigText === null;
      if (plain) out.push(v);
      // Either way the number is consumed; a shape that is not plain is read again below with readAny.
      return;
    }
    plain = false;
    s.skipValue();
  });
  if (plain) return out;
  s.pos = start;
  return s.readAny();
}

/**
 * For ScanOptions.deferAbove: the end (exclusive) of the flat array starting at s.pos when it holds no nested
 * array and no string and spans at least `minBytes`; else -1. Native byte searches, no per-byte JS loop.
 */
function flatArrayEnd(s: Scanner, minBytes: number): number {
  const b = s.b;
  const open = s.pos;
  if (b[open] !== 0x5b) return -1;
  const close = b.indexOf(0x5d, open + 1);
  if (close < 0 || close >= s.end || close + 1 - open < minBytes) return -1;
  const nested = b.indexOf(0x5b, open + 1);
  if (nested >= 0 && nested < close) return -1;
  const quote = b.indexOf(0x22, open + 1);
  if (quote >= 0 && quote < close) return -1;
  return close + 1;
}

/**
 * The members of a tensor object and of the request, as bits: each may be given once. JSON leaves duplicate names
 * to the reader, and last-wins read wrongly here: a second "datatype" after "data" relabelled data already decoded
 * as another type, and a second "inputs" array was added to the first. Duplicates are refused, naming the member.
 */
const TENSOR_MEMBERS: Readonly<Record<string, number>> = Object.assign(Object.create(null) as Record<string, number>, {
  name: 1,
  shape: 2,
  datatype: 4,
  parameters: 8,
  data: 16,
});

/** `seen` with `key`'s bit set; refuses a member already seen. Members Hearth does not read are not tracked. */
export function once(members: Readonly<Record<string, number>>, seen: number, key: string, index: number): number {
  const bit = members[key] ?? 0;
  if (seen & bit)
    throw hearthError('INVALID_REQUEST', `${index < 0 ? 'the request' : `inputs[${index}]`}: "${key}" is given more than once`);
  return seen | bit;
}

/**
 * A "parameters" object, refusing a name given twice (JSON.parse would keep the last, silently): its members are
 * counted in a scan and the object is parsed once; fewer keys than members means a duplicate, found and named then.
 * Anything else is returned as read, for checkParameters to refuse.
 */
export function readParameters(s: Scanner, where: () => string): unknown {
  s.ws();
  if (s.b[s.pos] !== 0x7b) return s.readAny();
  const start = s.pos;
  let members = 0;
  s.readObject(() => {
    members++;
    s.skipValue();
  });
  const end = s.pos;
  s.pos = start;
  const params = s.readAny() as Record<string, unknown>;
  if (Object.keys(params).length !== members) {
    const names = new Set<string>();
    s.pos = start;
    s.readObject((key) => {
      if (names.has(key)) throw hearthError('INVALID_REQUEST', `${where()}: parameter "${shown(key)}" is given more than once`);
      names.add(key);
      s.skipValue();
    });
  }
  s.pos = end;
  return params;
}

export function readInput(s: Scanner, index: number, deferAbove?: number): RawInput {
  const raw: RawInput = { hasData: false };
  let seen = 0;
  s.readObject((key) => {
    seen = once(TENSOR_MEMBERS, seen, key, index);
    switch (key) {
      // name, datatype and shape are read without JSON.parse: a small request has a dozen of them.
      case 'name':
        raw.name = readStringOrAny(s);
        break;
      case 'shape':
        raw.shape = readIntArrayOrAny(s);
        break;
      case 'datatype':
        raw.datatype = readStringOrAny(s);
        break;
      case 'parameters':
        raw.parameters = readParameters(s, () => `inputs[${index}]`);
        break;
      case 'data': {
        raw.hasData = true;
        const name = typeof raw.name === 'string' ? raw.name : `#${index}`;
        if (isDatatype(raw.datatype) && Array.isArray(raw.shape)) {
          if (deferAbove !== undefined && raw.datatype !== 'BYTES') {
            s.ws();
            const end = flatArrayEnd(s, deferAbove);
            if (end > 0) {
              // A copy in a plain Uint8Array of its own (Buffer#slice would be a view into the body's pool).
              raw.deferred = { json: new Uint8Array(s.b.subarray(s.pos, end)), at: s.pos };
              s.pos = end;
              break;
            }
          }
          // The usual order (tritonclient, KServe): one pass straight into the typed array.
          raw.data = readDataArray(s, raw.datatype, countOf(checkShape(raw.shape, name), name), name);
        } else {
          raw.dataAt = s.skipValue();
        }
        break;
      }
      default:
        s.skipValue();
    }
  });
  return raw;
}

export function checkOutputs(v: unknown): RequestedOutput[] {
  if (!Array.isArray(v)) throw hearthError('INVALID_REQUEST', '"outputs" must be an array');
  return v.map((o, i) => {
    if (o === null || typeof o !== 'object' || typeof (o as { name?: unknown }).name !== 'string') {
      throw hearthError('INVALID_REQUEST', `outputs[${i}] needs a "name" string`);
    }
    const { name, parameters } = o as { name: string; parameters?: unknown };
    const out: RequestedOutput = { name };
    if (parameters !== undefined) out.parameters = checkParameters(parameters, () => `output "${shown(name)}"`);
    return out;
  });
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
