// Shortest round-trip JSON text for FP32 tensor data: the V2 JSON encoder's hot loop. Every value it prints
// reads back (JSON number -> double -> float32, as numpy and Math.fround do) as exactly the same float32.
import { Buffer } from 'node:buffer';

/** 10^i as doubles; exact for i <= 22, correctly rounded above (scales reach 10^47 for subnormals). */
const POW10 = Float64Array.from({ length: 50 }, (_, i) => Number(`1e${i}`));
/** Scales within ±EXACT_SCALE use exact powers of ten, so one correctly rounded operation gives the parser's double. */
const EXACT_SCALE = 22;
/** Float32 spacing (ulp) per biased exponent; the subnormals (0) share exponent 1's. */
const ULP = Float64Array.from({ length: 256 }, (_, e) => 2 ** (Math.max(e, 1) - 150));
/**
 * Per biased exponent (+256 for an exact power of two, whose interval below is half as wide): the decimal scale k
 * of the coarsest grid 10^-k that can still hold a round-tripping decimal. Its step exceeds the width of the
 * float's rounding interval, so that grid holds at most one; the next finer grid holds at least one.
 */
const START_SCALE = new Int8Array(512);
for (let e = 0; e < 255; e++) {
  for (const pow2 of [0, 1]) {
    const width = pow2 && e > 1 ? ULP[e] * 0.75 : ULP[e];
    // The 1e-9 slack keeps a width that is within rounding of 10^j on the coarse side: starting one grid too
    // coarse costs one more try, starting one too fine could miss the shortest decimal.
    let j = Math.floor(Math.log10(width)) - 2;
    while (10 ** j <= width * (1 + 1e-9)) j++;
    START_SCALE[pow2 * 256 + e] = -j;
  }
}
/** Grids tried before the fallback. A check of every finite float32 never needed more than two; the rest is margin. */
const MAX_TRIES = 4;

/**
 * JSON text of a Float32Array's values as an array, e.g. "[0.3,1,-2.5e-7]"; every finite value reads back
 * (JSON number -> double -> Math.fround) as exactly the same float32, printed with the fewest significant digits
 * that do so (at most 9). Plain notation for 1e-6 <= |v| < 1e21, exponent form ("1e-7", "3.4028235e38") otherwise,
 * as JavaScript does. Returns undefined if any value is NaN or ±Infinity (the caller has a slow path for those).
 * -0 prints as "-0".
 */
export function float32ArrayJson(f: Float32Array): string | undefined {
  const bitsOf = new Uint32Array(f.buffer, f.byteOffset, f.length);
  let cap = f.length * 12 + 64;
  let out = Buffer.allocUnsafe(cap);
  let pos = 0;
  out[pos++] = 0x5b; // [
  for (let i = 0; i < f.length; i++) {
    const bits = bitsOf[i];
    const e8 = (bits >>> 23) & 0xff;
    if (e8 === 0xff) return undefined;
    // The longest element is the String() fallback, under 26 bytes with its comma.
    if (pos + 32 > cap) {
      cap *= 2;
      const grown = Buffer.allocUnsafe(cap);
      out.copy(grown, 0, 0, pos);
      out = grown;
    }
    if (i > 0) out[pos++] = 0x2c; // ,
    if (bits >>> 31) out[pos++] = 0x2d; // -
    const v = f[i];
    const a = v < 0 ? -v : v;
    const small = a | 0;
    // Integers below 2^24 are exact and their neighbours a whole step away: their digits are the shortest text.
    if (small === a && small < 16777216) {
      pos = writeDecimal(out, pos, small, digitCount(small), 0);
      continue;
    }
    const pow2 = (bits & 0x7fffff) === 0 ? 256 : 0;
    let k = START_SCALE[pow2 + e8];
    let n = gridPoint(a, k, e8, pow2 !== 0);
    for (let tries = 1; n < 0 && tries < MAX_TRIES; tries++) n = gridPoint(a, ++k, e8, pow2 !== 0);
    if (n < 0) {
      pos = writeFallback(out, pos, a);
      continue;
    }
    // Trailing zeros mean a coarser grid point: fewer significant digits, same value.
    if (n < 2147483648) {
      while (n % 10 === 0) {
        n = (n / 10) | 0;
        k--;
      }
    } else {
      while (n % 10 === 0) {
        n /= 10;
        k--;
      }
    }
    const nd = digitCount(n);
    const e10 = nd - 1 - k; // decimal exponent of the leading digit
    if (e10 < -6 || e10 > 20) {
      pos = writeDecimal(out, pos, n, nd, nd - 1);
      out[pos++] = 0x65; // e
      let ee = e10;
      if (ee < 0) {
        out[pos++] = 0x2d;
        ee = -ee;
      }
      if (ee >= 10) {
        out[pos++] = 0x30 + ((ee / 10) | 0);
        ee %= 10;
      }
      out[pos++] = 0x30 + ee;
    } else if (k <= 0) {
      pos = writeDecimal(out, pos, n, nd, 0);
      for (let z = k; z < 0; z++) out[pos++] = 0x30;
    } else if (e10 >= 0) {
      pos = writeDecimal(out, pos, n, nd, k);
    } else {
      out[pos++] = 0x30; // 0
      out[pos++] = 0x2e; // .
      for (let z = e10 + 1; z < 0; z++) out[pos++] = 0x30;
      pos = writeDecimal(out, pos, n, nd, 0);
    }
  }
  out[pos++] = 0x5d; // ]
  return out.toString('latin1', 0, pos);
}

/** The decimal n * 10^-k on grid k that reads back as a (a positive integer n), or -1. */
function gridPoint(a: number, k: number, e8: number, pow2: boolean): number {
  return k <= EXACT_SCALE && k >= -EXACT_SCALE ? exactGridPoint(a, k, pow2) : inexactGridPoint(a, k, e8, pow2);
}

/**
 * The grid point n * 10^-k (|k| <= 22) that reads back as a, or -1. Only the two grid points around a can: the
 * decimals that read back as a form an interval around it. With an exact 10^|k| the division or product below is
 * the one correctly rounded operation a JSON parser performs for that decimal, so the check is exact, double
 * rounding and ties included. The far neighbour can only win where the nearest failed if the interval is lopsided
 * (a power of two) or both sit about half a step away; elsewhere its check is skipped.
 */
function exactGridPoint(a: number, k: number, pow2: boolean): number {
  const p = POW10[k >= 0 ? k : -k];
  const t = k >= 0 ? a * p : a / p;
  const n = Math.round(t);
  if (Math.fround(k >= 0 ? n / p : n * p) === a) return n;
  if (!pow2 && n - t < 0.499 && t - n < 0.499) return -1;
  const m = n > t ? n - 1 : n + 1;
  return Math.fround(k >= 0 ? m / p : m * p) === a ? m : -1;
}

/** exactGridPoint for the scales without an exact power of ten: tiny (< ~1e-14) and huge (> ~1e30) magnitudes. */
function inexactGridPoint(a: number, k: number, e8: number, pow2: boolean): number {
  const t = k >= 0 ? a * POW10[k] : a / POW10[-k];
  const n = Math.round(t);
  if (readsBack(n, k, a, e8, pow2)) return n;
  const m = n > t ? n - 1 : n + 1;
  return readsBack(m, k, a, e8, pow2) ? m : -1;
}

/**
 * Whether the decimal n * 10^-k reads back as a. The double x below is within 3e-16 (relative) of the decimal, as
 * is the parser's double, so a decimal clearly inside or outside a's rounding interval is decided by x; only one
 * within 1e-15 of an edge, where a parser's rounding decides, goes through the parser itself.
 */
function readsBack(n: number, k: number, a: number, e8: number, pow2: boolean): boolean {
  if (n <= 0) return false;
  const x = k >= 0 ? n / POW10[k] : n * POW10[-k];
  const ulp = ULP[e8];
  const lo = a - (pow2 && e8 > 1 ? ulp / 4 : ulp / 2);
  const hi = a + ulp / 2;
  const slack = x * 1e-15;
  if (x > lo + slack && x < hi - slack) return true;
  if (x < lo - slack || x > hi + slack) return false;
  return Math.fround(Number(`${n}e${-k}`)) === a;
}

/** Reached by no finite float32 (checked exhaustively); kept so an unforeseen case prints a longer, still exact, number. */
function writeFallback(out: Buffer, pos: number, a: number): number {
  const s = String(a);
  for (let c = 0; c < s.length; c++) out[pos++] = s.charCodeAt(c);
  return pos;
}

function digitCount(n: number): number {
  if (n < 100000) return n < 100 ? (n < 10 ? 1 : 2) : n < 1000 ? 3 : n < 10000 ? 4 : 5;
  if (n < 1e9) return n < 1e7 ? (n < 1e6 ? 6 : 7) : n < 1e8 ? 8 : 9;
  let d = 10;
  while (n >= POW10[d]) d++;
  return d;
}

/** "00".."99" as ASCII byte pairs, so digits are written two per division. */
const DIGIT_PAIRS = Uint8Array.from({ length: 200 }, (_, i) => 0x30 + (i & 1 ? (i >> 1) % 10 : ((i >> 1) / 10) | 0));

/** Writes the nd digits of n at pos, with a '.' before the last `frac` of them (none if 0); returns the new end. */
function writeDecimal(out: Buffer, pos: number, n: number, nd: number, frac: number): number {
  if (n >= 2147483648) return writeDecimalSlow(out, pos, n, nd, frac);
  if (frac === 0) {
    writeFixed(out, pos + nd, n, nd);
    return pos + nd;
  }
  // n < 2^31, so the quotient's rounding error stays below 1/p and cannot carry it to the next integer.
  const p = POW10[frac];
  const whole = (n / p) | 0;
  writeFixed(out, pos + nd - frac, whole, nd - frac);
  out[pos + nd - frac] = 0x2e;
  writeFixed(out, pos + nd + 1, n - whole * p, frac);
  return pos + nd + 1;
}

/** Writes m (< 2^31) as exactly `count` digits, zero-padded on the left, ending just before `end`. */
function writeFixed(out: Buffer, end: number, m: number, count: number): void {
  let p = end;
  const start = end - count;
  while (m >= 100) {
    const q = (m / 100) | 0;
    const r = (m - q * 100) << 1;
    out[--p] = DIGIT_PAIRS[r + 1];
    out[--p] = DIGIT_PAIRS[r];
    m = q;
  }
  if (m >= 10) {
    out[--p] = DIGIT_PAIRS[(m << 1) + 1];
    out[--p] = DIGIT_PAIRS[m << 1];
  } else if (m > 0 || p === end) {
    out[--p] = 0x30 + m;
  }
  while (p > start) out[--p] = 0x30;
}

function writeDecimalSlow(out: Buffer, pos: number, n: number, nd: number, frac: number): number {
  const end = pos + nd + (frac > 0 ? 1 : 0);
  let p = end;
  let left = frac;
  let m = n;
  do {
    const q = Math.floor(m / 10);
    out[--p] = 0x30 + (m - q * 10);
    m = q;
    if (--left === 0) out[--p] = 0x2e;
  } while (m !== 0);
  return end;
}
