// float32ArrayJson: every finite float32 reads back (JSON number -> double -> float32) as itself, in valid JSON, with
// no more significant digits than a brute-force shortest search; NaN and ±Infinity are left to the caller.
import { describe, expect, it } from 'vitest';
import { float32ArrayJson } from '../../protocol/index.ts';

const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/** The printed elements of a float32ArrayJson text (the values never contain a comma). */
function elementsOf(f: Float32Array): string[] {
  const text = float32ArrayJson(f);
  if (text === undefined) throw new Error('unexpected undefined');
  expect(text.startsWith('[') && text.endsWith(']')).toBe(true);
  return f.length === 0 ? [] : text.slice(1, -1).split(',');
}

/** The fewest-digits decimal that reads back as v, found slowly: toPrecision(1..9), printed as JavaScript would. */
function bruteForceShortest(v: number): string {
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  for (let d = 1; d <= 9; d++) {
    const s = v.toPrecision(d);
    if (Math.fround(Number(s)) === v) return String(Number(s)).replace('e+', 'e');
  }
  throw new Error(`no 9-digit form for ${v}`);
}

function significantDigits(text: string): number {
  const mantissa = text.replace(/^-/, '').replace(/e.*$/i, '').replace('.', '');
  return mantissa.replace(/^0+/, '').replace(/0+$/, '').length || 1;
}

function expectReadsBack(text: string, v: number): void {
  if (!JSON_NUMBER.test(text)) throw new Error(`${text} (for ${v}) is not a JSON number`);
  if (!Object.is(Math.fround(Number(text)), v)) throw new Error(`${text} reads back as ${Math.fround(Number(text))}, not ${v}`);
}

/** The float32 with these bits. */
function fromBits(bits: number): number {
  return new Float32Array(Uint32Array.of(bits).buffer)[0];
}

function bitsOf(v: number): number {
  return new Uint32Array(Float32Array.of(v).buffer)[0];
}

/** mulberry32: a small seeded generator so a failing sweep reproduces. */
function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

describe('float32ArrayJson', () => {
  it('prints the edge cases as their shortest decimals', () => {
    const cases: Array<[number, string]> = [
      [0, '0'],
      [-0, '-0'],
      [1, '1'],
      [-1, '-1'],
      [0.1, '0.1'],
      [0.3, '0.3'],
      [0.5, '0.5'],
      [-2.5e-7, '-2.5e-7'],
      [1 / 3, '0.33333334'],
      [2 ** 24, '16777216'],
      [2 ** 24 + 2, '16777218'],
      [-(2 ** 24 - 1), '-16777215'],
      [2 ** 31, '2147483600'],
      [3.4028234663852886e38, '3.4028235e38'],
      [-3.4028234663852886e38, '-3.4028235e38'],
      [1.1754943508222875e-38, '1.1754944e-38'],
      [2 ** -149, '1e-45'],
      [-(2 ** -149), '-1e-45'],
      [2 ** -148, '3e-45'],
      [1e-6, '0.000001'],
      [1e-7, '1e-7'],
      [1e20, '100000000000000000000'],
      [1e21, '1e21'],
      [123456.789, '123456.79'],
      [0.000123, '0.000123'],
      // Powers of two whose shortest decimal lies on the far side, in the wider half of their interval.
      [2 ** -96, '1.2621775e-29'],
      [2 ** 87, '1.5474251e26'],
      [2 ** 90, '1.2379401e27'],
    ];
    const f = Float32Array.from(cases.map(([v]) => v));
    const texts = elementsOf(f);
    cases.forEach(([, want], i) => {
      expect(texts[i], `value ${f[i]}`).toBe(want);
      expectReadsBack(texts[i], f[i]);
    });
  });

  it('prints an empty array and reads a view at a byte offset', () => {
    expect(float32ArrayJson(new Float32Array(0))).toBe('[]');
    const backing = Float32Array.of(7, 0.25, -1.5, 9);
    expect(float32ArrayJson(backing.subarray(1, 3))).toBe('[0.25,-1.5]');
  });

  it('returns undefined for NaN and ±Infinity anywhere in the array', () => {
    for (const bad of [NaN, Infinity, -Infinity, fromBits(0x7fc00001), fromBits(0xff800001)]) {
      expect(float32ArrayJson(Float32Array.of(bad))).toBeUndefined();
      expect(float32ArrayJson(Float32Array.of(1, 2, bad))).toBeUndefined();
    }
  });

  it('prints powers of ten from 1e-45 to 1e38 with one digit, plain between 1e-6 and 1e20', () => {
    const exponents = Array.from({ length: 84 }, (_, i) => i - 45);
    const f = Float32Array.from(exponents.map((e) => Number(`1e${e}`)));
    const texts = elementsOf(f);
    exponents.forEach((e, i) => {
      const want = e >= -6 && e <= 20 ? String(Number(`1e${e}`)) : `1e${e}`;
      expect(texts[i]).toBe(want);
      expectReadsBack(texts[i], f[i]);
    });
  });

  it('switches notation at 1e-6 and 1e21 like JavaScript, for the neighbours of those thresholds', () => {
    const values: number[] = [];
    for (const t of [1e-6, 1e-7, 1e21, 1e20, 1e-5, 1]) {
      const b = bitsOf(Math.fround(t));
      for (let d = -3; d <= 3; d++) values.push(fromBits(b + d), -fromBits(b + d));
    }
    const f = Float32Array.from(values);
    elementsOf(f).forEach((text, i) => {
      expectReadsBack(text, f[i]);
      expect(text).toBe(bruteForceShortest(f[i]));
      const abs = Math.abs(Number(text));
      expect(/e/.test(text), text).toBe(abs < 1e-6 || abs >= 1e21);
    });
  });

  it('is never longer than the brute-force shortest, powers of two (uneven intervals) included', () => {
    const values: number[] = [];
    for (let e = -149; e <= 127; e++) values.push(2 ** e, Math.fround(2 ** e * 1.5), Math.fround(2 ** e * 1.0000001));
    for (let i = 1; i <= 1000; i++) values.push(Math.fround(i / 7), Math.fround(i * 0.001), Math.fround(Math.tanh(i / 300 - 1.7) * 0.3));
    const f = Float32Array.from(values);
    let shorter = 0;
    elementsOf(f).forEach((text, i) => {
      expectReadsBack(text, f[i]);
      const reference = bruteForceShortest(f[i]);
      expect(significantDigits(text), `${text} vs ${reference}`).toBeLessThanOrEqual(significantDigits(reference));
      expect(text.length, `${text} vs ${reference}`).toBeLessThanOrEqual(reference.length);
      if (text !== reference) shorter++;
    });
    // A power of two's interval is narrower below it, so a shortest decimal can lie on the far side where
    // toPrecision (nearest only) does not look; those are the only places the two may differ.
    expect(shorter).toBeLessThan(values.length / 20);
  });

  it('round-trips a seeded sweep of 1,000,000 finite float32 bit patterns', () => {
    const next = seededRandom(0x5eed);
    const n = 1_000_000;
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      let b = next();
      while (((b >>> 23) & 0xff) === 0xff) b = next();
      bits[i] = b;
    }
    const f = new Float32Array(bits.buffer);
    const texts = elementsOf(f);
    expect(texts.length).toBe(n);
    for (let i = 0; i < n; i++) expectReadsBack(texts[i], f[i]);
    // The whole text is one JSON array of those numbers.
    const parsed = JSON.parse(float32ArrayJson(f.subarray(0, 10_000))!) as number[];
    expect(parsed.every((x, i) => Object.is(Math.fround(x), f[i]))).toBe(true);
    for (let i = 0; i < n; i += 25) {
      const reference = bruteForceShortest(f[i]);
      if (texts[i].length > reference.length || significantDigits(texts[i]) > significantDigits(reference)) {
        throw new Error(`${texts[i]} is longer than ${reference} for bits 0x${bits[i].toString(16)}`);
      }
    }
  });

  it('round-trips typical model outputs: small magnitudes, probabilities, logits', () => {
    const next = seededRandom(7);
    const values: number[] = [];
    for (let i = 0; i < 200_000; i++) {
      const u = next() / 2 ** 32;
      values.push(u * 2 - 1, u * 1e-3, (u - 0.5) * 40, Math.exp(-u * 60), Math.round(u * 1000) / 1000);
    }
    const f = Float32Array.from(values);
    const texts = elementsOf(f);
    for (let i = 0; i < f.length; i++) expectReadsBack(texts[i], f[i]);
    for (let i = 0; i < f.length; i += 50) expect(texts[i].length).toBeLessThanOrEqual(bruteForceShortest(f[i]).length);
    // Values that were decimals with three places print as those decimals.
    for (let i = 4; i < 5000; i += 5) expect(Number(texts[i])).toBe(Math.round(Number(texts[i]) * 1000) / 1000);
  });
});
