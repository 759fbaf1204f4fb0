// Typed sinks for the leaves of a `data` array: each datatype's values written straight into its typed array,
// checked for range and kind, with fast paths for flat float arrays.
import { datatypeInfo, hearthError, shown, type Datatype, type TensorData } from '../core/index.ts';
import { floatToHalfBits } from './fp16.ts';
import {
  APPROX_EPS,
  INT64_MAX,
  INT64_MIN,
  INT_RANGE,
  LeafError,
  type NumberInfo,
  POW10,
  Scanner,
  TWO32,
  UINT64_MAX,
  describeByte,
  isWs,
  matchWord,
  nonFiniteFromString,
  numberText,
  preview,
  readNumber,
  tooDeep,
} from './json-scanner.ts';
import { MAX_JSON_DEPTH } from './types.ts';

/** A growable output for the leaves of one `data` array, typed by datatype. */
interface LeafSink {
  count: number;
  put(s: Scanner): void;
  finish(): TensorData;
}

function floatSink(dt: 'FP16' | 'FP32' | 'FP64', capacity: number): LeafSink {
  const Ctor = dt === 'FP64' ? Float64Array : Float32Array;
  let arr: Float32Array | Float64Array = new Ctor(capacity);
  const num: NumberInfo = { bigText: null, integral: true, approx: false, start: 0 };
  // Float32 (and half) targets accept the approximate path when rounding cannot tell: if both ends of the
  // error interval round to the same float32, so does the exact value, and so would JSON.parse + fround.
  const approxOk = dt !== 'FP64';
  const sink: LeafSink = {
    count: 0,
    put(s) {
      const c = s.b[s.pos];
      let v: number;
      if (c === 0x22) {
        const text = s.readString();
        const nf = nonFiniteFromString(text);
        if (nf === undefined) throw new LeafError(`element ${sink.count} is the string ${preview(text)}, expected a number`);
        v = nf;
      } else if ((c >= 0x30 && c <= 0x39) || c === 0x2d) {
        v = readNumber(s, num, approxOk);
        if (num.approx && Math.fround(v * (1 + APPROX_EPS)) !== Math.fround(v * (1 - APPROX_EPS))) {
          v = Number(numberText(s.b, num.start, s.pos));
        }
      } else {
        throw new LeafError(`element ${sink.count} is ${describeByte(c)}, expected a number`);
      }
      if (sink.count === arr.length) arr = grow(arr);
      arr[sink.count++] = v;
    },
    finish() {
      const out = sink.count === arr.length ? arr : arr.slice(0, sink.count);
      if (dt !== 'FP16') return out;
      const half = new Uint16Array(out.length);
      for (let i = 0; i < out.length; i++) half[i] = floatToHalfBits(out[i]);
      return half;
    },
  };
  return sink;
}

function grow<T extends Float32Array | Float64Array | Uint8Array | Uint16Array | Uint32Array | Int8Array | Int16Array | Int32Array>(
  a: T,
): T {
  const bigger = new (a.constructor as new (n: number) => T)(Math.max(16, a.length * 2));
  bigger.set(a);
  return bigger;
}

function smallIntSink(dt: Datatype, capacity: number): LeafSink {
  const info = datatypeInfo(dt);
  const [lo, hi] = INT_RANGE[dt]!;
  let arr = new info.array!(capacity) as Uint8Array | Uint16Array | Uint32Array | Int8Array | Int16Array | Int32Array;
  const num: NumberInfo = { bigText: null, integral: true, approx: false, start: 0 };
  const isBool = dt === 'BOOL';
  const sink: LeafSink = {
    count: 0,
    put(s) {
      const c = s.b[s.pos];
      let v: number;
      if ((c >= 0x30 && c <= 0x39) || c === 0x2d) {
        v = readNumber(s, num);
        if (!Number.isInteger(v))
          throw new LeafError(`element ${sink.count} is ${v}, expected ${isBool ? 'true, false, 0 or 1' : 'an integer'}`);
      } else if (isBool && c === 0x74 && matchWord(s, 'true')) {
        v = 1;
      } else if (isBool && c === 0x66 && matchWord(s, 'false')) {
        v = 0;
      } else {
        throw new LeafError(`element ${sink.count} is ${describeByte(c)}, expected ${isBool ? 'true or false' : 'an integer'}`);
      }
      if (v < lo || v > hi) throw new LeafError(`element ${sink.count} is ${v}, outside the ${dt} range [${lo}, ${hi}]`);
      if (sink.count === arr.length) arr = grow(arr);
      arr[sink.count++] = v;
    },
    finish() {
      return sink.count === arr.length ? arr : arr.slice(0, sink.count);
    },
  };
  return sink;
}

/** INT64/UINT64: safe integers are written as two 32-bit halves (no BigInt per element); larger ones via BigInt. */
function int64Sink(dt: 'INT64' | 'UINT64', capacity: number): LeafSink {
  const unsigned = dt === 'UINT64';
  let buf = new ArrayBuffer(capacity * 8);
  let u32 = new Uint32Array(buf);
  let i32 = new Int32Array(buf);
  const num: NumberInfo = { bigText: null, integral: true, approx: false, start: 0 };
  const sink: LeafSink = {
    count: 0,
    put(s) {
      const c = s.b[s.pos];
      let v: number;
      let big: bigint | null = null;
      if ((c >= 0x30 && c <= 0x39) || c === 0x2d) {
        v = readNumber(s, num);
        if (num.bigText !== null) big = BigInt(num.bigText);
        else if (!Number.isInteger(v)) throw new LeafError(`element ${sink.count} is ${v}, expected an integer`);
        else if (!Number.isSafeInteger(v)) big = BigInt(v);
      } else if (c === 0x22) {
        // Clients whose JSON cannot carry 64-bit integers may send them as decimal strings.
        const text = s.readString();
        if (!/^-?\d+$/.test(text)) throw new LeafError(`element ${sink.count} is the string ${preview(text)}, expected an integer`);
        big = BigInt(text);
        v = 0;
      } else {
        throw new LeafError(`element ${sink.count} is ${describeByte(c)}, expected an integer`);
      }
      if (sink.count * 2 === u32.length) {
        const bigger = new ArrayBuffer(Math.max(128, buf.byteLength * 2));
        new Uint8Array(bigger).set(new Uint8Array(buf));
        buf = bigger;
        u32 = new Uint32Array(buf);
        i32 = new Int32Array(buf);
      }
      const k = sink.count * 2;
      if (big !== null) {
        if (unsigned ? big < 0n || big > UINT64_MAX : big < INT64_MIN || big > INT64_MAX) {
          throw new LeafError(`element ${sink.count} is ${big}, outside the ${dt} range`);
        }
        const u = BigInt.asUintN(64, big);
        u32[k] = Number(u & 0xffffffffn);
        u32[k + 1] = Number(u >> 32n);
      } else {
        if (unsigned && v < 0) throw new LeafError(`element ${sink.count} is ${v}, outside the UINT64 range`);
        const hi = Math.floor(v / TWO32);
        u32[k] = v - hi * TWO32;
        i32[k + 1] = hi;
      }
      sink.count++;
    },
    finish() {
      const used = buf.byteLength === sink.count * 8 ? buf : buf.slice(0, sink.count * 8);
      return unsigned ? new BigUint64Array(used) : new BigInt64Array(used);
    },
  };
  return sink;
}

function bytesSink(): LeafSink {
  const arr: string[] = [];
  const sink: LeafSink = {
    count: 0,
    put(s) {
      if (s.b[s.pos] !== 0x22) throw new LeafError(`element ${sink.count} is ${describeByte(s.b[s.pos])}, expected a string`);
      arr.push(s.readString());
      sink.count++;
    },
    finish: () => arr,
  };
  return sink;
}

function sinkFor(dt: Datatype, capacity: number): LeafSink {
  switch (dt) {
    case 'FP16':
    case 'FP32':
    case 'FP64':
      return floatSink(dt, capacity);
    case 'INT64':
    case 'UINT64':
      return int64Sink(dt, capacity);
    case 'BYTES':
      return bytesSink();
    default:
      return smallIntSink(dt, capacity);
  }
}

/**
 * Reads a flat or nested `data` array at s.pos into a typed array of `dt`, in row-major order.
 * `expected` (the shape's element count) only sizes the first allocation; the caller checks the count.
 */
export function readDataArray(s: Scanner, dt: Datatype, expected: number, inputName: string): TensorData {
  s.ws();
  // Never trust a shape to size memory beyond what the body can hold: each element takes at least two bytes.
  const capacity = Math.max(0, Math.min(expected, Math.floor((s.end - s.pos) / 2) + 1));
  if ((dt === 'FP32' || dt === 'FP64') && s.b[s.pos] === 0x5b) {
    const fast = flatFloats(s, dt, capacity);
    if (fast) return fast;
  }
  const sink = sinkFor(dt, capacity);
  const b = s.b;
  const end = s.end;
  if (b[s.pos] !== 0x5b) {
    // A scalar `data` (some clients send one for shape []): read it as a single element.
    putLeaf(s, sink, inputName);
    return sink.finish();
  }
  let depth = 0;
  // After '[' or ',' a value (or, after '[', a ']') must come; after a value a ',' or ']'.
  let wantValue = true;
  let justOpened = false;
  while (s.pos < end) {
    const c = b[s.pos];
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      s.pos++;
      continue;
    }
    if (c === 0x5b) {
      if (!wantValue) s.fail("expected ',' or ']' before '['");
      if (++depth > MAX_JSON_DEPTH) tooDeep(`input "${shown(inputName)}": data`, 'INVALID_TENSOR');
      s.pos++;
      justOpened = true;
      continue;
    }
    if (c === 0x5d) {
      if (wantValue && !justOpened) s.fail("expected a value before ']'");
      depth--;
      s.pos++;
      wantValue = false;
      justOpened = false;
      if (depth === 0) return sink.finish();
      continue;
    }
    if (c === 0x2c) {
      if (wantValue) s.fail("unexpected ','");
      s.pos++;
      wantValue = true;
      justOpened = false;
      continue;
    }
    if (!wantValue) s.fail(`expected ',' or ']', found ${describeByte(c)}`);
    putLeaf(s, sink, inputName);
    wantValue = false;
    justOpened = false;
  }
  return s.fail('unterminated data array');
}

/**
 * The common case of readDataArray in one tight loop: a flat array of plain decimal numbers into FP32/FP64,
 * with no per-element calls. Same arithmetic as readNumber + floatSink (Clinger's fast path; for FP32 up to 19
 * digits when the float32 rounding cannot tell). Anything else (nesting, strings, long or huge numbers, more
 * elements than `capacity`, bad syntax) returns undefined with s.pos untouched, and the general path, which
 * also reports errors, reads the array instead.
 */
function flatFloats(s: Scanner, dt: 'FP32' | 'FP64', capacity: number): Float32Array | Float64Array | undefined {
  const b = s.b;
  const end = s.end;
  const out = dt === 'FP32' ? new Float32Array(capacity) : new Float64Array(capacity);
  const maxDigits = dt === 'FP32' ? 19 : 15;
  let p = s.pos + 1;
  while (p < end && isWs(b[p])) p++;
  if (p < end && b[p] === 0x5d) {
    s.pos = p + 1;
    return out.length === 0 ? out : out.slice(0, 0);
  }
  let n = 0;
  for (;;) {
    if (n === out.length || p >= end) return undefined;
    let c = b[p];
    let neg = false;
    if (c === 0x2d) {
      neg = true;
      p++;
      c = b[p];
    }
    if (p >= end || c < 0x30 || c > 0x39) return undefined;
    let mant = 0;
    let digits = 0;
    while (p < end && (c = b[p]) >= 0x30 && c <= 0x39) {
      mant = mant * 10 + (c - 0x30);
      if (mant !== 0) digits++;
      p++;
    }
    let frac = 0;
    if (p < end && c === 0x2e) {
      p++;
      const f0 = p;
      while (p < end && (c = b[p]) >= 0x30 && c <= 0x39) {
        mant = mant * 10 + (c - 0x30);
        if (mant !== 0) digits++;
        p++;
      }
      frac = p - f0;
      if (frac === 0) return undefined;
    }
    let exp = 0;
    if (p < end && (c === 0x65 || c === 0x45)) {
      p++;
      let eneg = false;
      if (b[p] === 0x2d) {
        eneg = true;
        p++;
      } else if (b[p] === 0x2b) p++;
      const e0 = p;
      while (p < end && (c = b[p]) >= 0x30 && c <= 0x39) {
        exp = exp * 10 + (c - 0x30);
        p++;
      }
      if (p === e0) return undefined;
      if (eneg) exp = -exp;
    }
    if (digits > maxDigits) return undefined;
    const e10 = exp - frac;
    let v: number;
    if (e10 === 0) v = mant;
    else if (e10 > 0 && e10 <= 22) v = mant * POW10[e10];
    else if (e10 < 0 && e10 >= -22) v = mant / POW10[-e10];
    else return undefined;
    if (digits > 15 && Math.fround(v * (1 + APPROX_EPS)) !== Math.fround(v * (1 - APPROX_EPS))) return undefined;
    out[n++] = neg ? -v : v;
    while (p < end && isWs(b[p])) p++;
    if (p >= end) return undefined;
    c = b[p];
    if (c === 0x2c) {
      p++;
      while (p < end && isWs(b[p])) p++;
      continue;
    }
    if (c !== 0x5d) return undefined;
    s.pos = p + 1;
    return n === out.length ? out : out.slice(0, n);
  }
}

function putLeaf(s: Scanner, sink: LeafSink, inputName: string): void {
  try {
    sink.put(s);
  } catch (e) {
    if (e instanceof LeafError) throw hearthError('INVALID_TENSOR', `input "${shown(inputName)}": data ${e.message}`);
    throw e;
  }
}
