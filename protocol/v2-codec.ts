// Open Inference Protocol (KServe V2 / Triton REST) bodies <-> core Tensors, both in JSON and in the
// binary tensor extension. Shared by the gateway (infer requests) and the job workers (JSON Lines rows).
//
// Why a hand-written scanner instead of JSON.parse: JSON.parse turns every INT64 above 2^53 into a rounded
// double, and for a large `data` array it first builds a JS array of boxed values that we then copy again
// into a typed array. The scanner reads the request envelope with JSON.parse on small slices, but writes
// the leaves of each `data` array straight into the typed array of the input's datatype, exactly.
import {
  datatypeInfo,
  deferredJson,
  elementCount,
  hearthError,
  isDatatype,
  shown,
  type Datatype,
  type InputTensor,
  type PrintedTensor,
  type Tensor,
  type TensorData,
} from '../core/index.ts';
import { float32ArrayJson } from './float-text.ts';

/** V2 parameter values are strings, numbers or booleans. */
export type V2Parameters = Record<string, string | number | boolean>;

export interface RequestedOutput {
  name: string;
  parameters?: V2Parameters;
}

export interface DecodedInferRequest {
  /** Echoed in the response. */
  id?: string;
  parameters?: V2Parameters;
  inputs: Tensor[];
  /** Per-input parameters (binary_data_size removed), by input name, only where present. */
  inputParameters?: Record<string, V2Parameters>;
  /** The outputs the client selected, in request order; undefined means all. */
  outputs?: RequestedOutput[];
}

export interface DecodeOptions {
  /** Value of the Inference-Header-Content-Length header: the JSON part's length; binary tensors follow it. */
  headerLength?: number;
}

export interface ScanOptions extends DecodeOptions {
  /**
   * A flat numeric `data` array of at least this many bytes is not parsed: the input comes back as a
   * DeferredTensor holding the array's text, and the instance thread parses it (functions/materialize.ts).
   */
  deferAbove: number;
}

/** decodeInferRequest's result where large numeric inputs may still be JSON text. */
export interface ScannedInferRequest extends Omit<DecodedInferRequest, 'inputs'> {
  inputs: InputTensor[];
}

export interface EncodeResponseInput {
  modelName: string;
  modelVersion: number | string;
  id?: string;
  parameters?: V2Parameters;
  /** Tensors, or outputs whose JSON `data` text was printed already (only for outputs that travel as JSON). */
  outputs: (Tensor | PrintedTensor)[];
}

export interface EncodedResponse {
  body: Buffer;
  /** 'application/json', or 'application/octet-stream' when any output travels as binary. */
  contentType: string;
  /** Set when any output is binary: the value of Inference-Header-Content-Length. */
  headerLength?: number;
}

// ---------------------------------------------------------------------------------------------------
// Decoding

/**
 * Deepest nesting of arrays and objects accepted in a request: envelope values (read with JSON.parse, then shown
 * in error messages) and `data` arrays alike. A shape nested 100k deep used to reach JSON.stringify in an error
 * message and answer 500 "Maximum call stack size exceeded"; no tensor has a rank near this.
 */
export const MAX_JSON_DEPTH = 64;
/** Most dimensions of a tensor's shape (a shape of a million dimensions would be echoed in error messages). */
export const MAX_TENSOR_RANK = 64;

/** A client's value for an error message: its JSON, cut to 80 characters. */
function preview(v: unknown): string {
  return shown(typeof v === 'string' ? JSON.stringify(v) : v, 80);
}

const textDecoder = new TextDecoder('utf-8', { fatal: false });

function bytesToText(b: Uint8Array, start: number, end: number): string {
  if (Buffer.isBuffer(b)) return b.toString('utf8', start, end);
  return textDecoder.decode(b.subarray(start, end));
}

function toBytes(body: Uint8Array | string): Uint8Array {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

function describeByte(c: number | undefined): string {
  if (c === undefined) return 'end of input';
  if (c >= 0x20 && c < 0x7f) return `'${String.fromCharCode(c)}'`;
  return `byte 0x${c.toString(16).padStart(2, '0')}`;
}

const POW10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];
const TWO32 = 4294967296;

/** Integer ranges of the non-BigInt integer datatypes. */
const INT_RANGE: Partial<Record<Datatype, [number, number]>> = {
  UINT8: [0, 255], UINT16: [0, 65535], UINT32: [0, 4294967295],
  INT8: [-128, 127], INT16: [-32768, 32767], INT32: [-2147483648, 2147483647],
  BOOL: [0, 1],
};
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** A byte cursor over a JSON text. Errors name the byte offset; the caller adds which tensor it was reading. */
class Scanner {
  readonly b: Uint8Array;
  pos: number;
  readonly end: number;
  /** Where b[0] sits in the body, for error messages (a deferred data array is scanned from its own copy). */
  readonly base: number;
  constructor(b: Uint8Array, start: number, end: number, base = 0) {
    this.b = b;
    this.pos = start;
    this.end = end;
    this.base = base;
  }

  fail(what: string): never {
    throw hearthError('INVALID_REQUEST', `body is not valid JSON: ${what} at byte ${this.pos + this.base}`);
  }

  ws(): void {
    const b = this.b;
    let p = this.pos;
    while (p < this.end) {
      const c = b[p];
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      p++;
    }
    this.pos = p;
  }

  peek(): number | undefined {
    return this.pos < this.end ? this.b[this.pos] : undefined;
  }

  expect(c: number): void {
    this.ws();
    if (this.b[this.pos] !== c || this.pos >= this.end) this.fail(`expected '${String.fromCharCode(c)}', found ${describeByte(this.peek())}`);
    this.pos++;
  }

  /** Index just past the closing quote of the string starting at pos; `escaped` tells whether it had backslashes. */
  stringEnd(): { end: number; escaped: boolean } {
    const b = this.b;
    let p = this.pos + 1;
    let escaped = false;
    while (p < this.end) {
      const c = b[p];
      if (c === 0x22) return { end: p + 1, escaped };
      if (c === 0x5c) {
        escaped = true;
        p += 2;
        continue;
      }
      if (c < 0x20) this.fail('control character in string');
      p++;
    }
    this.pos = this.end;
    return this.fail('unterminated string');
  }

  readString(): string {
    this.ws();
    if (this.b[this.pos] !== 0x22) this.fail(`expected a string, found ${describeByte(this.peek())}`);
    const start = this.pos;
    const { end, escaped } = this.stringEnd();
    this.pos = end;
    if (!escaped) return bytesToText(this.b, start + 1, end - 1);
    try {
      return JSON.parse(bytesToText(this.b, start, end)) as string;
    } catch {
      this.pos = start;
      return this.fail('bad escape in string');
    }
  }

  /** Skips one JSON value (any type) and returns where it started. Nesting is tracked, strings are respected. */
  skipValue(): number {
    this.ws();
    const start = this.pos;
    const b = this.b;
    const c0 = b[this.pos];
    if (this.pos >= this.end) this.fail('expected a value, found end of input');
    if (c0 === 0x22) {
      this.pos = this.stringEnd().end;
      return start;
    }
    if (c0 === 0x5b || c0 === 0x7b) {
      let depth = 0;
      while (this.pos < this.end) {
        const c = b[this.pos];
        if (c === 0x22) {
          this.pos = this.stringEnd().end;
          continue;
        }
        this.pos++;
        if (c === 0x5b || c === 0x7b) {
          if (++depth > MAX_JSON_DEPTH) tooDeep(`the JSON value at byte ${start + this.base}`);
        } else if ((c === 0x5d || c === 0x7d) && --depth === 0) return start;
      }
      return this.fail('unterminated array or object');
    }
    while (this.pos < this.end) {
      const c = b[this.pos];
      if (c === 0x2c || c === 0x7d || c === 0x5d || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) break;
      this.pos++;
    }
    if (this.pos === start) this.fail(`expected a value, found ${describeByte(c0)}`);
    return start;
  }

  /** Parses any JSON value with JSON.parse on its slice: used for small envelope fields. */
  readAny(): unknown {
    const start = this.skipValue();
    const text = bytesToText(this.b, start, this.pos);
    try {
      return JSON.parse(text);
    } catch {
      this.pos = start;
      return this.fail(`bad value ${JSON.stringify(text.slice(0, 40))}`);
    }
  }

  /** Walks the members of an object, calling onMember with the scanner positioned at each value. */
  readObject(onMember: (key: string) => void): void {
    this.expect(0x7b);
    this.ws();
    if (this.b[this.pos] === 0x7d) {
      this.pos++;
      return;
    }
    for (;;) {
      const key = this.readString();
      this.expect(0x3a);
      onMember(key);
      if (this.#closes(0x7d)) return;
    }
  }

  readArray(onItem: (index: number) => void): void {
    this.expect(0x5b);
    this.ws();
    if (this.b[this.pos] === 0x5d) {
      this.pos++;
      return;
    }
    for (let i = 0; ; i++) {
      onItem(i);
      if (this.#closes(0x5d)) return;
    }
  }

  /** After a member or item: consumes ',' (false) or the closing byte `close` (true); anything else is an error. */
  #closes(close: number): boolean {
    this.ws();
    const c = this.b[this.pos];
    if (this.pos < this.end && c === 0x2c) {
      this.pos++;
      return false;
    }
    if (this.pos < this.end && c === close) {
      this.pos++;
      return true;
    }
    return this.fail(`expected ',' or '${String.fromCharCode(close)}', found ${describeByte(this.peek())}`);
  }

  atEnd(): void {
    this.ws();
    if (this.pos < this.end) this.fail(`unexpected ${describeByte(this.peek())} after the JSON value`);
  }
}

function tooDeep(what: string, code: 'INVALID_REQUEST' | 'INVALID_TENSOR' = 'INVALID_REQUEST'): never {
  throw hearthError(code, `${what} is nested deeper than ${MAX_JSON_DEPTH} levels (the limit of arrays and objects within each other)`);
}

/** Reason a leaf could not be stored; the caller turns it into an INVALID_TENSOR naming the input. */
class LeafError extends Error {}

/**
 * Reads a JSON number starting at s.pos. Returns a double; for integers beyond 2^53 `bigText` receives the
 * exact digits so INT64/UINT64 keep every bit.
 */
interface NumberInfo {
  /** Exact digits of an integer beyond the fast path (for INT64/UINT64). */
  bigText: string | null;
  integral: boolean;
  /** Set only when the caller allowed it: the value is within APPROX_EPS (relative) of the exact double. */
  approx: boolean;
  start: number;
}

/** Bound on the relative error of the approximate path (19 digits accumulated, one scaling): generous. */
const APPROX_EPS = 64 * 2 ** -53;

function numberText(b: Uint8Array, start: number, end: number): string {
  if (Buffer.isBuffer(b)) return b.toString('latin1', start, end);
  let text = '';
  for (let i = start; i < end; i++) text += String.fromCharCode(b[i]);
  return text;
}

function readNumber(s: Scanner, out: NumberInfo, approxOk = false): number {
  const b = s.b;
  let p = s.pos;
  const start = p;
  const end = s.end;
  let neg = false;
  if (b[p] === 0x2d) {
    neg = true;
    p++;
  }
  let mant = 0;
  let digits = 0;
  let fracDigits = 0;
  let c = b[p];
  if (p >= end || c < 0x30 || c > 0x39) {
    s.pos = start;
    s.fail(`expected a number, found ${describeByte(b[start])}`);
  }
  // `digits` counts significant digits only: leading zeros (as in 0.000123) cost no precision.
  while (p < end && (c = b[p]) >= 0x30 && c <= 0x39) {
    mant = mant * 10 + (c - 0x30);
    if (mant !== 0) digits++;
    p++;
  }
  let integral = true;
  let exp = 0;
  if (p < end && b[p] === 0x2e) {
    integral = false;
    p++;
    const f0 = p;
    while (p < end && (c = b[p]) >= 0x30 && c <= 0x39) {
      mant = mant * 10 + (c - 0x30);
      if (mant !== 0) digits++;
      p++;
    }
    fracDigits = p - f0;
    if (fracDigits === 0) {
      s.pos = p;
      s.fail('expected digits after the decimal point');
    }
  }
  if (p < end && (b[p] === 0x65 || b[p] === 0x45)) {
    integral = false;
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
    if (p === e0) {
      s.pos = p;
      s.fail('expected digits in the exponent');
    }
    if (eneg) exp = -exp;
  }
  s.pos = p;
  out.integral = integral;
  out.bigText = null;
  out.approx = false;
  out.start = start;
  // Clinger's fast path: a mantissa below 2^53 times an exact power of ten rounds correctly in one step.
  // Up to 19 digits the same arithmetic is within APPROX_EPS, which is enough for FP32 (see floatSink).
  if (digits <= 15 || (approxOk && digits <= 19)) {
    const e10 = exp - fracDigits;
    let v: number | undefined;
    if (e10 === 0) v = mant;
    else if (e10 > 0 && e10 <= 22) v = mant * POW10[e10];
    else if (e10 < 0 && e10 >= -22) v = mant / POW10[-e10];
    if (v !== undefined) {
      out.approx = digits > 15;
      return neg ? -v : v;
    }
  }
  const text = numberText(b, start, p);
  if (integral) out.bigText = text;
  return Number(text);
}

/** JSON has no NaN or Infinity; Hearth writes them as these strings and reads them back. */
function nonFiniteFromString(text: string): number | undefined {
  if (text === 'NaN') return NaN;
  if (text === 'Infinity' || text === '+Infinity') return Infinity;
  if (text === '-Infinity') return -Infinity;
  return undefined;
}

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

function grow<T extends Float32Array | Float64Array | Uint8Array | Uint16Array | Uint32Array | Int8Array | Int16Array | Int32Array>(a: T): T {
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
        if (!Number.isInteger(v)) throw new LeafError(`element ${sink.count} is ${v}, expected ${isBool ? 'true, false, 0 or 1' : 'an integer'}`);
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

function matchWord(s: Scanner, word: string): boolean {
  for (let i = 0; i < word.length; i++) if (s.b[s.pos + i] !== word.charCodeAt(i)) return false;
  s.pos += word.length;
  return true;
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
function readDataArray(s: Scanner, dt: Datatype, expected: number, inputName: string): TensorData {
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

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
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

/** Everything read about one request input before its data is turned into a Tensor. */
interface RawInput {
  name?: unknown;
  shape?: unknown;
  datatype?: unknown;
  parameters?: unknown;
  /** Decoded already, when datatype and shape came before data. */
  data?: TensorData;
  /** Start of a `data` value that came before datatype or shape; parsed in a second pass. */
  dataAt?: number;
  /** A large flat numeric `data` array left as text (ScanOptions.deferAbove), with its offset in the body. */
  deferred?: { json: Uint8Array; at: number };
  hasData: boolean;
}

/** `where` names the owner in a refusal; a function, so the hot path builds no message. */
function checkParameters(v: unknown, where: () => string): V2Parameters {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw hearthError('INVALID_REQUEST', `${where()}: "parameters" must be an object`);
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') {
      throw hearthError('INVALID_REQUEST', `${where()}: parameter "${shown(k)}" must be a string, number or boolean`);
    }
  }
  return v as V2Parameters;
}

function checkShape(v: unknown, name: string): number[] {
  if (!Array.isArray(v) || v.length > MAX_TENSOR_RANK || !v.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw hearthError('INVALID_TENSOR', `input "${shown(name)}": "shape" must be an array of at most ${MAX_TENSOR_RANK} non-negative integers, got ${preview(v)}`);
  }
  return v as number[];
}

/**
 * The element count of a checked shape. It must be a safe integer: past 2^53 a product of dimensions is rounded
 * and no longer says how much data the tensor holds (a shape of [1e10, 1e10] is a 400, not an allocation).
 */
function countOf(shape: readonly number[], name: string, kind: 'input' | 'output' = 'input'): number {
  const n = elementCount(shape);
  if (!Number.isSafeInteger(n)) {
    throw hearthError('INVALID_TENSOR', `${kind} "${shown(name)}": shape ${fmtShape(shape)} has more elements than ${Number.MAX_SAFE_INTEGER} (2^53 - 1)`);
  }
  return n;
}

function checkDatatype(v: unknown, name: string): Datatype {
  if (!isDatatype(v)) throw hearthError('INVALID_TENSOR', `input "${shown(name)}": datatype ${preview(v)} is not a V2 datatype (BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BYTES)`);
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
const TENSOR_MEMBERS: Readonly<Record<string, number>> = Object.assign(Object.create(null) as Record<string, number>, { name: 1, shape: 2, datatype: 4, parameters: 8, data: 16 });
const REQUEST_MEMBERS: Readonly<Record<string, number>> = Object.assign(Object.create(null) as Record<string, number>, { inputs: 1, id: 2, parameters: 4, outputs: 8 });

/** `seen` with `key`'s bit set; refuses a member already seen. Members Hearth does not read are not tracked. */
function once(members: Readonly<Record<string, number>>, seen: number, key: string, index: number): number {
  const bit = members[key] ?? 0;
  if (seen & bit) throw hearthError('INVALID_REQUEST', `${index < 0 ? 'the request' : `inputs[${index}]`}: "${key}" is given more than once`);
  return seen | bit;
}

/**
 * A "parameters" object, refusing a name given twice (JSON.parse would keep the last, silently): its members are
 * counted in a scan and the object is parsed once; fewer keys than members means a duplicate, found and named then.
 * Anything else is returned as read, for checkParameters to refuse.
 */
function readParameters(s: Scanner, where: () => string): unknown {
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

function readInput(s: Scanner, index: number, deferAbove?: number): RawInput {
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

/** Reads BYTES elements from the binary extension: 4-byte little-endian length, then the bytes. */
function readBinaryBytes(b: Uint8Array, start: number, size: number, name: string): string[] {
  const out: string[] = [];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = start;
  const end = start + size;
  while (p < end) {
    if (p + 4 > end) throw hearthError('INVALID_TENSOR', `input "${shown(name)}": binary BYTES element ${out.length} is cut short (needs a 4-byte length)`);
    const len = view.getUint32(p, true);
    p += 4;
    if (p + len > end) throw hearthError('INVALID_TENSOR', `input "${shown(name)}": binary BYTES element ${out.length} claims ${len} bytes but only ${end - p} remain`);
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
function finishTensors(
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
        throw hearthError('INVALID_REQUEST', `${kind} "${shown(name)}": binary_data_size is set but there is no Inference-Header-Content-Length header`);
      }
      if (cursor + binarySize > b.length) {
        throw hearthError('INVALID_REQUEST', `${kind} "${shown(name)}": binary_data_size ${binarySize} runs past the end of the body (${b.length - cursor} bytes left)`);
      }
      if (datatype === 'BYTES') {
        data = readBinaryBytes(b, cursor, binarySize, name);
      } else {
        const want = count * datatypeInfo(datatype).byteSize;
        if (binarySize !== want) {
          throw hearthError('INVALID_TENSOR', `${kind} "${shown(name)}": binary_data_size ${binarySize} does not fit shape ${fmtShape(shape)} of ${datatype} (${want} bytes)`);
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
        throw hearthError('INVALID_TENSOR', `${kind} "${shown(name)}": shape ${fmtShape(shape)} needs ${count} elements, but its data array of ${raw.deferred.json.length} bytes holds at most ${most}`);
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
    throw hearthError('INVALID_REQUEST', `the body has ${b.length - cursor} bytes after the last binary ${kind}; binary_data_size values must add up to the binary part`);
  }
  return parameters ? { tensors, parameters } : { tensors };
}

/**
 * Decodes a V2 infer request body: JSON, or (with `headerLength`) the binary tensor extension's JSON header
 * followed by raw tensors in input order. Throws INVALID_REQUEST for malformed bodies and INVALID_TENSOR for
 * an input whose datatype, shape or data cannot be read. Checking against a model is validateInputs' job,
 * except that each input's data length must match its own shape.
 */
export function decodeInferRequest(body: Uint8Array | string, opts: DecodeOptions = {}): DecodedInferRequest {
  // Without deferAbove every input is decoded: the inputs are all Tensors.
  return scan(body, opts, undefined) as DecodedInferRequest;
}

/**
 * decodeInferRequest for the infer route: flat numeric `data` arrays of at least `deferAbove` bytes stay JSON
 * text (DeferredTensor), parsed later on the instance thread. Everything else is read and checked as
 * decodeInferRequest does, except those inputs' element counts and leaf values, which the instance checks
 * per request (a bad one fails only its own request).
 */
export function scanInferRequest(body: Uint8Array | string, opts: ScanOptions): ScannedInferRequest {
  return scan(body, opts, opts.deferAbove);
}

/** The decoded values of one deferred `data` array, checked against the element count its shape needs. */
export function decodeDeferredJson(json: Uint8Array, at: number, datatype: Datatype, shape: readonly number[], name: string): TensorData {
  const count = countOf(shape, name);
  const data = readDataArray(new Scanner(json, 0, json.length, at), datatype, count, name);
  // The same message as an eagerly decoded input's (finishTensors).
  if (data.length !== count) throw hearthError('INVALID_TENSOR', `input "${shown(name)}": shape ${fmtShape(shape)} needs ${count} elements, got ${data.length}`);
  return data;
}

function scan(body: Uint8Array | string, opts: DecodeOptions, deferAbove: number | undefined): ScannedInferRequest {
  const b = toBytes(body);
  const headerLength = opts.headerLength ?? b.length;
  if (!Number.isSafeInteger(headerLength) || headerLength < 0 || headerLength > b.length) {
    throw hearthError('INVALID_REQUEST', `Inference-Header-Content-Length ${opts.headerLength} does not fit a body of ${b.length} bytes`);
  }
  const s = new Scanner(b, 0, headerLength);
  s.ws();
  if (s.pos >= s.end) throw hearthError('INVALID_REQUEST', 'body is empty; expected a JSON inference request');
  if (s.b[s.pos] !== 0x7b) s.fail(`expected '{', found ${describeByte(s.peek())}`);

  const req: ScannedInferRequest = { inputs: [] };
  const raws: RawInput[] = [];
  let sawInputs = false;
  let outputs: unknown;
  let seen = 0;
  s.readObject((key) => {
    seen = once(REQUEST_MEMBERS, seen, key, -1);
    switch (key) {
      case 'inputs':
        sawInputs = true;
        s.ws();
        if (s.b[s.pos] !== 0x5b) throw hearthError('INVALID_REQUEST', '"inputs" must be an array');
        s.readArray((i) => {
          s.ws();
          if (s.b[s.pos] !== 0x7b) throw hearthError('INVALID_REQUEST', `inputs[${i}] must be an object`);
          raws.push(readInput(s, i, deferAbove));
        });
        break;
      case 'id': {
        const id = s.readAny();
        if (typeof id !== 'string') throw hearthError('INVALID_REQUEST', `"id" must be a string, got ${preview(id)}`);
        req.id = id;
        break;
      }
      case 'parameters':
        req.parameters = checkParameters(readParameters(s, () => 'the request'), () => 'request');
        break;
      case 'outputs':
        outputs = s.readAny();
        break;
      default:
        s.skipValue();
    }
  });
  s.atEnd();
  if (!sawInputs) throw hearthError('INVALID_REQUEST', 'the request has no "inputs" array');

  const done = finishTensors(raws, b, headerLength, opts.headerLength !== undefined, 'input');
  req.inputs = done.tensors;
  if (done.parameters) req.inputParameters = done.parameters;
  if (outputs !== undefined) req.outputs = checkOutputs(outputs);
  return req;
}

function checkOutputs(v: unknown): RequestedOutput[] {
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

/**
 * Builds a Tensor from an already parsed V2 input object (`{name, shape, datatype, data}`), e.g. one row of a
 * JSON Lines file read with JSON.parse. INT64/UINT64 beyond 2^53 must arrive as strings or BigInts here;
 * prefer decodeInferRequest on the raw text, which keeps them exact.
 */
export function tensorFromJson(input: unknown, index = 0): Tensor {
  if (input === null || typeof input !== 'object') throw hearthError('INVALID_REQUEST', `inputs[${index}] must be an object`);
  const o = input as { name?: unknown; shape?: unknown; datatype?: unknown; data?: unknown };
  if (typeof o.name !== 'string' || o.name === '') throw hearthError('INVALID_REQUEST', `inputs[${index}] needs a "name" string`);
  const name = o.name;
  const shape = checkShape(o.shape, name);
  const datatype = checkDatatype(o.datatype, name);
  const count = countOf(shape, name);
  if (o.data === undefined) throw hearthError('INVALID_REQUEST', `input "${shown(name)}": missing "data"`);
  // Re-serialise only the data and read it with the exact scanner: one code path for every datatype.
  let text: string;
  try {
    text = JSON.stringify(o.data, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v));
  } catch (e) {
    // JSON.stringify recurses: data nested tens of thousands deep overflows the stack (a RangeError, as is a string too long).
    throw hearthError('INVALID_TENSOR', `input "${shown(name)}": "data" cannot be read: ${(e as Error).message}`);
  }
  const s = new Scanner(Buffer.from(text, 'utf8'), 0, Buffer.byteLength(text));
  const data = readDataArray(s, datatype, count, name);
  if (data.length !== count) {
    throw hearthError('INVALID_TENSOR', `input "${shown(name)}": shape ${fmtShape(shape)} needs ${count} elements, got ${data.length}`);
  }
  return { name, datatype, shape, data };
}

// ---------------------------------------------------------------------------------------------------
// Encoding

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

// ---------------------------------------------------------------------------------------------------
// FP16: JSON carries numbers; memory and the binary extension carry IEEE 754 half bits.

function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Rounds a double to the nearest half float (ties to even) and returns its 16 bits. */
export function floatToHalfBits(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  // 65520 is halfway between the largest half (65504) and 2^16; ties to even round it to infinity.
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // subnormal; 1024 carries into the exponent
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let frac = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (frac === 1024) {
    frac = 0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | frac;
}

export function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}
