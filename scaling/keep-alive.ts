// Keep-alive policies: how long an idle pool stays warm, and when a cold pool is warmed again ahead of traffic.
// `fixed` is Lambda's rule (keep an instance for idleMs after its last request). `histogram` is the hybrid
// histogram policy of Shahrad et al., "Serverless in the Wild" (USENIX ATC'20): learn each model's idle times.
import { DEFAULT_HISTOGRAM, type KeepAlivePolicy } from '../core/index.ts';

type HistogramPolicy = Extract<KeepAlivePolicy, { kind: 'histogram' }>;

/** Below this coefficient of variation of the bin counts the histogram is too flat to predict (paper: "representative"). */
export const HISTOGRAM_MIN_CV = 2;
/** At or above this share of idle times beyond rangeMs the histogram is not representative. */
export const HISTOGRAM_MAX_OUT_OF_RANGE = 0.5;

export interface KeepAliveDecision {
  /** Which rule decided: the fixed window, the learned histogram, or the fixed fallback while it is not representative. */
  policy: 'fixed' | 'histogram' | 'histogram-fallback';
  /**
   * Time after the pool's last request ended at which it is warmed again (paper: pre-warming window).
   * 0 means the instance simply stays warm from the end of the last request.
   */
  prewarmMs: number;
  /** How long the pool stays warm from prewarmMs on (paper: keep-alive window). */
  keepAliveMs: number;
  /** Idle-time samples inside the histogram range (histogram policy only). */
  samples?: number;
  /** Idle times longer than rangeMs. */
  outOfRange?: number;
  /** Coefficient of variation of the bin counts. */
  cv?: number;
  /** Why the fallback decided, when it did. */
  reason?: string;
}

/** A pool's idle-time histogram as GET /v1/models/{name}/keep-alive shows it. */
export interface IdleHistogramView {
  binMs: number;
  rangeMs: number;
  /** Counts per bin, from 0 to rangeMs. */
  bins: number[];
  samples: number;
  outOfRange: number;
}

/** A range-limited histogram of idle times: fixed-width bins over [0, rangeMs), plus a count of longer ones. */
export class IdleTimeHistogram {
  readonly binMs: number;
  readonly rangeMs: number;
  #bins: number[];
  #inRange = 0;
  #outOfRange = 0;

  constructor(binMs: number, rangeMs: number) {
    if (!(binMs > 0) || !(rangeMs >= binMs)) throw new RangeError(`binMs ${binMs} and rangeMs ${rangeMs}: need 0 < binMs <= rangeMs`);
    this.binMs = binMs;
    this.rangeMs = rangeMs;
    this.#bins = new Array<number>(Math.max(1, Math.round(rangeMs / binMs))).fill(0);
  }

  add(idleMs: number): void {
    const i = Math.floor(Math.max(0, idleMs) / this.binMs);
    if (i >= this.#bins.length) {
      this.#outOfRange++;
      return;
    }
    this.#bins[i]++;
    this.#inRange++;
  }

  get samples(): number {
    return this.#inRange;
  }

  get outOfRange(): number {
    return this.#outOfRange;
  }

  /** A copy of the bin counts: bin i counts idle times in [i × binMs, (i + 1) × binMs). */
  counts(): number[] {
    return [...this.#bins];
  }

  /** Index of the first bin at which the cumulative share reaches `pct` percent of in-range samples. */
  percentileBin(pct: number): number {
    if (this.#inRange === 0) return 0;
    const want = pct / 100;
    let prefix = 0;
    for (let i = 0; i < this.#bins.length; i++) {
      prefix += this.#bins[i];
      if (prefix / this.#inRange >= want) return i;
    }
    return this.#bins.length - 1;
  }

  /** Coefficient of variation of the bin counts: high when idle times cluster, near 0 when they spread evenly. */
  cv(): number {
    const n = this.#bins.length;
    if (n < 2 || this.#inRange === 0) return 0;
    const mean = this.#inRange / n;
    let sq = 0;
    for (const c of this.#bins) sq += (c - mean) ** 2;
    return Math.sqrt(sq / (n - 1)) / mean;
  }
}

/**
 * One pool's keep-alive state: its policy and, for `histogram`, the idle times seen so far.
 * An idle time is the gap between the end of the pool's previous request and the arrival of the next.
 */
export class KeepAliveTracker {
  #policy: KeepAlivePolicy;
  #hist: IdleTimeHistogram;
  #decision: KeepAliveDecision | undefined;

  constructor(policy: KeepAlivePolicy) {
    this.#policy = policy;
    const bins = policy.kind === 'histogram' ? policy : DEFAULT_HISTOGRAM;
    this.#hist = new IdleTimeHistogram(bins.binMs, bins.rangeMs);
  }

  get policy(): KeepAlivePolicy {
    return this.#policy;
  }

  /** Switches policy; the learned histogram survives when its bins are unchanged. */
  setPolicy(policy: KeepAlivePolicy): void {
    if (policy === this.#policy) return;
    this.#policy = policy;
    this.#decision = undefined;
    if (policy.kind !== 'histogram') return;
    if (this.#hist.binMs !== policy.binMs || this.#hist.rangeMs !== policy.rangeMs) {
      this.#hist = new IdleTimeHistogram(policy.binMs, policy.rangeMs);
    }
  }

  /** The idle times learned so far (kept under every policy), for the dashboard's picture of the decision. */
  histogram(): IdleHistogramView {
    const h = this.#hist;
    return { binMs: h.binMs, rangeMs: h.rangeMs, bins: h.counts(), samples: h.samples, outOfRange: h.outOfRange };
  }

  /** Learns one idle time. Kept even under `fixed`, so switching to `histogram` starts informed. */
  recordIdle(idleMs: number): void {
    this.#hist.add(idleMs);
    this.#decision = undefined;
  }

  /** The current decision; recomputed only after a new idle time or a policy change (the autoscaler asks every tick). */
  decide(): KeepAliveDecision {
    if (this.#decision) return this.#decision;
    const p = this.#policy;
    this.#decision = p.kind === 'fixed' ? { policy: 'fixed', prewarmMs: 0, keepAliveMs: p.idleMs } : decideHistogram(p, this.#hist);
    return this.#decision;
  }

  /** Whether the pool should hold a warm instance `idleForMs` after its last request ended. */
  shouldBeWarm(idleForMs: number): boolean {
    const d = this.decide();
    return idleForMs >= d.prewarmMs && idleForMs < d.prewarmMs + d.keepAliveMs;
  }
}

/**
 * The paper's rule: pre-warm at the head percentile's bin start less the margin, keep alive to the end of the
 * tail percentile's bin plus the margin. Not representative (too few samples, too many beyond the range, or a
 * flat histogram) means a fixed keep-alive of fallbackIdleMs with no pre-warm. The paper forecasts
 * out-of-range idle times with ARIMA; Hearth falls back instead.
 */
export function decideHistogram(p: HistogramPolicy, h: IdleTimeHistogram): KeepAliveDecision {
  const samples = h.samples;
  const outOfRange = h.outOfRange;
  const cv = h.cv();
  const stats = { samples, outOfRange, cv: Math.round(cv * 1000) / 1000 };
  const fallback = (reason: string): KeepAliveDecision => ({
    policy: 'histogram-fallback',
    prewarmMs: 0,
    keepAliveMs: p.fallbackIdleMs,
    ...stats,
    reason,
  });
  if (samples + outOfRange < p.minSamples)
    return fallback(`${samples + outOfRange} idle-time samples, fewer than minSamples ${p.minSamples}`);
  if (outOfRange / (samples + outOfRange) >= HISTOGRAM_MAX_OUT_OF_RANGE) {
    return fallback(`${outOfRange} of ${samples + outOfRange} idle times exceed rangeMs ${p.rangeMs}`);
  }
  if (cv < HISTOGRAM_MIN_CV) return fallback(`bin counts too even (cv ${stats.cv} < ${HISTOGRAM_MIN_CV})`);
  const m = p.marginPct / 100;
  const head = h.percentileBin(p.prewarmPercentile);
  const tail = h.percentileBin(p.keepAlivePercentile);
  const prewarmMs = Math.floor(head * p.binMs * (1 - m));
  const keepUntilMs = Math.ceil((tail + 1) * p.binMs * (1 + m));
  return { policy: 'histogram', prewarmMs, keepAliveMs: Math.max(0, keepUntilMs - prewarmMs), ...stats };
}
