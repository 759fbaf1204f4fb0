// Latency summaries: nearest-rank percentiles and the median used for cold-start repetitions.

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return percentileSorted(sorted, p);
}

/** Nearest-rank percentile of samples already sorted ascending (an array or a Float64Array). */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/**
 * The sorted sample at index ⌊q·n⌋ (q in 0..1; at 0.5 the upper median), the quantile the stand-alone scripts
 * print; NaN when there are none. Unlike percentile() it never interpolates or rounds the rank up.
 */
export function sampleAt(samples: readonly number[], q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export function median(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function mean(samples: readonly number[]): number {
  return samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length : NaN;
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanMs: number;
}

export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50Ms: round3(percentileSorted(sorted, 50)),
    p90Ms: round3(percentileSorted(sorted, 90)),
    p95Ms: round3(percentileSorted(sorted, 95)),
    p99Ms: round3(percentileSorted(sorted, 99)),
    meanMs: round3(mean(sorted)),
  };
}

/** Rounds to 3 decimals (µs for ms figures) so reports stay readable. */
export function round3(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1000) / 1000 : x;
}
