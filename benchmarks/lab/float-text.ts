// Lab, kept for the record: measured the shortest-float32 printer before it replaced JSON.stringify in the encoder (2026-11-26).
// float32ArrayJson (shortest round-trip float32 text) against the encoder's old path, JSON.stringify(Array.from(f)),
// measured in the same run on a silero VAD-sized response, a large random tensor and small integers.
// Run: npx tsx benchmarks/lab/float-text.ts [reps]
import { float32ArrayJson } from '../../protocol/index.ts';
import { median } from '../lib/percentiles.ts';

const reps = Math.max(5, Number(process.argv[2] ?? 9));

const baseline = (f: Float32Array): string => JSON.stringify(Array.from(f));

/**
 * Median ns/element of each printer. The two alternate rep by rep so drifting machine load hits both alike; each
 * rep repeats the call until it has printed about a million elements, so a 257-element tensor is timed too.
 */
function nsPerElement(f: Float32Array, printers: Array<(f: Float32Array) => unknown>): number[] {
  const calls = Math.max(1, Math.round(1_000_000 / f.length));
  const samples = printers.map(() => [] as number[]);
  for (let warm = 0; warm < 3; warm++) for (const p of printers) for (let c = 0; c < calls; c++) p(f);
  for (let r = 0; r < reps; r++) {
    printers.forEach((p, i) => {
      const t0 = performance.now();
      for (let c = 0; c < calls; c++) p(f);
      samples[i].push(((performance.now() - t0) * 1e6) / (calls * f.length));
    });
  }
  return samples.map(median);
}

function vadLike(): Float32Array {
  // Silero VAD returns a speech probability and its 2x1x128 state: small tanh-squashed values.
  const f = new Float32Array(257);
  let x = 0.37;
  for (let i = 0; i < f.length; i++) {
    x = (x * 9301 + 49297) % 233280;
    f[i] = (Math.tanh((x / 233280 - 0.5) * 0.7) * 0.3) / Math.tanh(0.35);
  }
  return f;
}

function randomValues(n: number): Float32Array {
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = Math.random() * 2 - 1;
  return f;
}

function smallIntegers(n: number): Float32Array {
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = ((i * 7919) % 2001) - 1000;
  return f;
}

const cases: Array<[string, Float32Array]> = [
  ['silero VAD response (257 values in [-0.3, 0.3])', vadLike()],
  ['100k random values in [-1, 1)', randomValues(100_000)],
  ['100k small integers in [-1000, 1000]', smallIntegers(100_000)],
];

console.log(`float32 JSON text, median ns/element over ${reps} reps (node ${process.version})`);
for (const [label, f] of cases) {
  const fast = float32ArrayJson(f)!;
  const slow = baseline(f);
  // A benchmark of a wrong printer is worthless: check the round trip once before timing.
  const back = JSON.parse(fast) as number[];
  if (back.length !== f.length || back.some((x, i) => Math.fround(x) !== f[i])) throw new Error(`${label}: round trip failed`);
  const [fastNs, slowNs] = nsPerElement(f, [float32ArrayJson, baseline]);
  console.log(`\n${label}`);
  console.log(
    `  float32ArrayJson              ${fastNs.toFixed(1).padStart(7)} ns/element  ${fast.length.toLocaleString().padStart(10)} chars`,
  );
  console.log(
    `  JSON.stringify(Array.from(f)) ${slowNs.toFixed(1).padStart(7)} ns/element  ${slow.length.toLocaleString().padStart(10)} chars`,
  );
  console.log(`  speed-up ${(slowNs / fastNs).toFixed(2)}x, text ${((fast.length / slow.length) * 100).toFixed(0)}% of the baseline's`);
}
