// A JSON byte scanner for V2 bodies. JSON.parse would turn every INT64 above 2^53 into a rounded double and build
// boxed arrays for large `data`; the scanner walks the bytes, parses small envelope slices and hands each `data`
// leaf to a typed sink (tensor-sinks.ts), exactly.
import { hearthError, shown, type Datatype } from '../core/index.ts';
import { MAX_JSON_DEPTH } from './types.ts';

/** A client's value for an error message: its JSON, cut to 80 characters. */
export function preview(v: unknown): string {
  return shown(typeof v === 'string' ? JSON.stringify(v) : v, 80);
}

const textDecoder = new TextDecoder('utf-8', { fatal: false });

export function bytesToText(b: Uint8Array, start: number, end: number): string {
  if (Buffer.isBuffer(b)) return b.toString('utf8', start, end);
  return textDecoder.decode(b.subarray(start, end));
}

export function toBytes(body: Uint8Array | string): Uint8Array {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

export function describeByte(c: number | undefined): string {
  if (c === undefined) return 'end of input';
  if (c >= 0x20 && c < 0x7f) return `'${String.fromCharCode(c)}'`;
  return `byte 0x${c.toString(16).padStart(2, '0')}`;
}

export const POW10 = [
  1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

export const TWO32 = 4294967296;

/** Integer ranges of the non-BigInt integer datatypes. */
export const INT_RANGE: Partial<Record<Datatype, [number, number]>> = {
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  BOOL: [0, 1],
};

export const INT64_MIN = -(2n ** 63n);

export const INT64_MAX = 2n ** 63n - 1n;

export const UINT64_MAX = 2n ** 64n - 1n;

/** A byte cursor over a JSON text. Errors name the byte offset; the caller adds which tensor it was reading. */
export class Scanner {
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
    if (this.b[this.pos] !== c || this.pos >= this.end)
      this.fail(`expected '${String.fromCharCode(c)}', found ${describeByte(this.peek())}`);
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

export function tooDeep(what: string, code: 'INVALID_REQUEST' | 'INVALID_TENSOR' = 'INVALID_REQUEST'): never {
  throw hearthError(code, `${what} is nested deeper than ${MAX_JSON_DEPTH} levels (the limit of arrays and objects within each other)`);
}

/** Reason a leaf could not be stored; the caller turns it into an INVALID_TENSOR naming the input. */
export class LeafError extends Error {}

/**
 * Reads a JSON number starting at s.pos. Returns a double; for integers beyond 2^53 `bigText` receives the
 * exact digits so INT64/UINT64 keep every bit.
 */
export interface NumberInfo {
  /** Exact digits of an integer beyond the fast path (for INT64/UINT64). */
  bigText: string | null;
  integral: boolean;
  /** Set only when the caller allowed it: the value is within APPROX_EPS (relative) of the exact double. */
  approx: boolean;
  start: number;
}

/** Bound on the relative error of the approximate path (19 digits accumulated, one scaling): generous. */
export const APPROX_EPS = 64 * 2 ** -53;

export function numberText(b: Uint8Array, start: number, end: number): string {
  if (Buffer.isBuffer(b)) return b.toString('latin1', start, end);
  let text = '';
  for (let i = start; i < end; i++) text += String.fromCharCode(b[i]);
  return text;
}

export function readNumber(s: Scanner, out: NumberInfo, approxOk = false): number {
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
export function nonFiniteFromString(text: string): number | undefined {
  if (text === 'NaN') return NaN;
  if (text === 'Infinity' || text === '+Infinity') return Infinity;
  if (text === '-Infinity') return -Infinity;
  return undefined;
}

export function matchWord(s: Scanner, word: string): boolean {
  for (let i = 0; i < word.length; i++) if (s.b[s.pos + i] !== word.charCodeAt(i)) return false;
  s.pos += word.length;
  return true;
}

export function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
