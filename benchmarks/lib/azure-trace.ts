// A seeded generator of function-invocation traces shaped like the Azure Functions 2019 trace as published
// (Shahrad et al., "Serverless in the Wild", ATC'20): daily invocation rates log-normal over many orders of
// magnitude (about 45% of functions invoked at most hourly, about 81% at most once a minute, a few very hot),
// a mix of timer-like periodic, Poisson and bursty arrivals, and memory log-normal with a median near 170 MB
// and a 90th percentile near 400 MB. The same seed always gives the same trace.

export type ArrivalPattern = 'periodic' | 'poisson' | 'bursty';

export interface TraceFunction {
  id: number;
  name: string;
  pattern: ArrivalPattern;
  /** Mean invocations per day, as drawn. */
  dailyRate: number;
  /** For periodic functions, the timer's period. */
  periodMs?: number;
  memoryMb: number;
  /** Index into the caller's list of executor cost models (which model this function serves). */
  modelIndex: number;
}

export interface Trace {
  seed: number;
  durationMs: number;
  functions: TraceFunction[];
  /** Arrival times (ms from 0), sorted, with `fn[i]` the function of `at[i]`. */
  at: Float64Array;
  fn: Uint16Array;
}

export interface TraceOptions {
  seed?: number;
  functions?: number;
  durationMs?: number;
  /** How many cost models functions are spread over. */
  models?: number;
  /** Upper clamp on a function's daily rate, to bound the event count (hot functions stay warm under every policy). */
  maxDailyRate?: number;
  /** Lower clamp: rarer than this never shows in a finite trace. */
  minDailyRate?: number;
}

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

/** Timer periods seen in cron-triggered functions. */
const TIMER_PERIODS_MS = [1, 2, 5, 10, 15, 30, 60, 120, 240, 360, 720, 1440].map((m) => m * MINUTE_MS);

/** sfc32: small, fast, good enough for workloads, and reproducible across platforms. */
export function seededRandom(seed: number): () => number {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88 ^ (seed * 31);
  let c = 0xb7e15162 ^ (seed * 17);
  let d = 1;
  const next = () => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

function normal(rand: () => number): number {
  let u = 0;
  while (u === 0) u = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

function exponential(rand: () => number, mean: number): number {
  let u = 0;
  while (u === 0) u = rand();
  return -Math.log(u) * mean;
}

/**
 * log10(daily rate) ~ Normal(1.6, 1.77): P(rate <= 24/day) = 0.45 and P(rate <= 1440/day) = 0.81, the
 * published shares of functions invoked at most hourly and at most once a minute.
 */
const LOG10_RATE_MEAN = 1.6;
const LOG10_RATE_SD = 1.77;

export function generateTrace(opts: TraceOptions = {}): Trace {
  const seed = opts.seed ?? 2019;
  const n = opts.functions ?? 200;
  const durationMs = opts.durationMs ?? DAY_MS;
  const models = Math.max(1, opts.models ?? 1);
  const maxRate = opts.maxDailyRate ?? 100_000;
  const minRate = opts.minDailyRate ?? 0.5;
  if (n < 1 || n > 65_535) throw new RangeError(`functions: expected 1..65535, got ${n}`);
  if (!(durationMs > 0)) throw new RangeError(`durationMs: expected > 0, got ${durationMs}`);
  const rand = seededRandom(seed);

  const functions: TraceFunction[] = [];
  const times: number[][] = [];
  for (let id = 0; id < n; id++) {
    const dailyRate = Math.min(maxRate, Math.max(minRate, 10 ** (LOG10_RATE_MEAN + LOG10_RATE_SD * normal(rand))));
    // Timers are common among rare functions and absent among the hottest (which are HTTP/queue driven).
    const u = rand();
    const pattern: ArrivalPattern = dailyRate <= 1440 && u < 0.35 ? 'periodic' : u < 0.8 ? 'poisson' : 'bursty';
    const memoryMb = Math.round(Math.min(1536, Math.max(128, 170 * Math.exp(0.668 * normal(rand)))));
    const fn: TraceFunction = { id, name: `fn-${String(id).padStart(3, '0')}`, pattern, dailyRate, memoryMb, modelIndex: id % models };
    const meanGapMs = DAY_MS / dailyRate;
    const ts: number[] = [];
    if (pattern === 'periodic') {
      // The cron period nearest the drawn rate (in log space), a random phase, and a little scheduling jitter.
      let period = TIMER_PERIODS_MS[0];
      for (const p of TIMER_PERIODS_MS) if (Math.abs(Math.log(p / meanGapMs)) < Math.abs(Math.log(period / meanGapMs))) period = p;
      fn.periodMs = period;
      fn.dailyRate = DAY_MS / period;
      for (let t = rand() * period; t < durationMs; t += period) ts.push(t + rand() * 500);
    } else if (pattern === 'poisson') {
      for (let t = exponential(rand, meanGapMs); t < durationMs; t += exponential(rand, meanGapMs)) ts.push(t);
    } else {
      // On/off: bursts of back-to-back calls separated by long gaps, same mean rate, inter-arrival CV well above 1.
      const burstMean = 8;
      const inBurstGapMs = Math.min(2_000, meanGapMs / 20);
      const burstGapMs = meanGapMs * burstMean;
      let t = exponential(rand, burstGapMs);
      while (t < durationMs) {
        const k = 1 + Math.floor(exponential(rand, burstMean - 1));
        for (let i = 0; i < k && t < durationMs; i++) {
          ts.push(t);
          t += exponential(rand, inBurstGapMs);
        }
        t += exponential(rand, burstGapMs);
      }
    }
    functions.push(fn);
    times.push(ts);
  }

  const total = times.reduce((s, t) => s + t.length, 0);
  const order: Array<[number, number]> = new Array(total);
  let k = 0;
  for (let f = 0; f < n; f++) for (const t of times[f]) order[k++] = [t, f];
  order.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const at = new Float64Array(total);
  const fnOf = new Uint16Array(total);
  for (let i = 0; i < total; i++) {
    at[i] = order[i][0];
    fnOf[i] = order[i][1];
  }
  return { seed, durationMs, functions, at, fn: fnOf };
}

/** Summary figures that show the trace has the published shape. */
export function describeTrace(trace: Trace): {
  functions: number;
  invocations: number;
  patterns: Record<ArrivalPattern, number>;
  shareAtMostHourly: number;
  shareAtMostPerMinute: number;
  rateOrdersOfMagnitude: number;
  top20PctShareOfInvocations: number;
} {
  const counts = new Array(trace.functions.length).fill(0);
  for (const f of trace.fn) counts[f]++;
  const rates = trace.functions.map((f) => f.dailyRate);
  const patterns = { periodic: 0, poisson: 0, bursty: 0 };
  for (const f of trace.functions) patterns[f.pattern]++;
  const sorted = [...counts].sort((a, b) => b - a);
  const top = sorted.slice(0, Math.ceil(sorted.length * 0.2)).reduce((a, b) => a + b, 0);
  const n = trace.functions.length;
  return {
    functions: n,
    invocations: trace.at.length,
    patterns,
    shareAtMostHourly: rates.filter((r) => r <= 24).length / n,
    shareAtMostPerMinute: rates.filter((r) => r <= 1440).length / n,
    rateOrdersOfMagnitude: Math.log10(Math.max(...rates) / Math.min(...rates)),
    top20PctShareOfInvocations: trace.at.length ? top / trace.at.length : 0,
  };
}
