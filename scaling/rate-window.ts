// Arrival counts over a stable and a panic window: the arrival rate of the autoscaler's Little's-law sizing
// (Knative KPA averages over 60 s and 6 s the same way). The service time comes from RunCost (run-cost.ts).

export interface RateWindowOptions {
  /** Long averaging window (KPA stable-window: 60 s). */
  stableWindowMs?: number;
  /** Short window that reacts to bursts (KPA: 10% of the stable window, 6 s). */
  panicWindowMs?: number;
  /** Width of one counting bucket; windows are whole numbers of buckets. */
  bucketMs?: number;
}

/**
 * Counts arrivals into fixed buckets keyed by `floor(at / bucketMs)`, so memory stays bounded by the stable window
 * however high the rate is. Times are clock milliseconds passed in by the caller: the window never reads a clock.
 */
export class RateWindow {
  readonly stableWindowMs: number;
  readonly panicWindowMs: number;
  readonly bucketMs: number;
  #buckets = new Map<number, number>();
  #lastArrivalAt: number | undefined;
  #total = 0;

  constructor(opts: RateWindowOptions = {}) {
    this.stableWindowMs = opts.stableWindowMs ?? 60_000;
    this.panicWindowMs = opts.panicWindowMs ?? 6_000;
    this.bucketMs = opts.bucketMs ?? 1_000;
    for (const [k, v] of [
      ['stableWindowMs', this.stableWindowMs],
      ['panicWindowMs', this.panicWindowMs],
      ['bucketMs', this.bucketMs],
    ] as const) {
      if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${k}: expected a positive number, got ${v}`);
    }
    if (this.panicWindowMs > this.stableWindowMs)
      throw new RangeError(`panicWindowMs: ${this.panicWindowMs} exceeds stableWindowMs ${this.stableWindowMs}`);
  }

  /** Records `count` arrivals at clock time `at`. */
  recordArrival(at: number, count = 1): void {
    const b = Math.floor(at / this.bucketMs);
    this.#buckets.set(b, (this.#buckets.get(b) ?? 0) + count);
    this.#total += count;
    if (this.#lastArrivalAt === undefined || at > this.#lastArrivalAt) this.#lastArrivalAt = at;
    this.#prune(at);
  }

  /** Arrivals in the whole buckets that make up the `windowMs` ending at `now` (the current, partial one included). */
  countIn(now: number, windowMs: number): number {
    const last = Math.floor(now / this.bucketMs);
    const first = last - this.#bucketsIn(windowMs) + 1;
    let n = 0;
    for (const [b, c] of this.#buckets) if (b >= first && b <= last) n += c;
    return n;
  }

  /**
   * Requests per second over the window ending at `now`. The count covers whole buckets up to the current,
   * partial one, so it is divided by the time those buckets actually span: a bucket boundary does not dent the rate.
   */
  rateIn(now: number, windowMs: number): number {
    // Quiet pools are the common case in a large trace: answer without walking the buckets.
    if (this.#lastArrivalAt === undefined || now - this.#lastArrivalAt >= windowMs + this.bucketMs) return 0;
    const n = this.#bucketsIn(windowMs);
    const spanMs = (n - 1) * this.bucketMs + (now - Math.floor(now / this.bucketMs) * this.bucketMs);
    return this.countIn(now, windowMs) / (Math.max(spanMs, this.bucketMs) / 1000);
  }

  /** Requests per second averaged over the stable window. */
  stableRate(now: number): number {
    return this.rateIn(now, this.stableWindowMs);
  }

  /** Requests per second averaged over the panic window. */
  panicRate(now: number): number {
    return this.rateIn(now, this.panicWindowMs);
  }

  #bucketsIn(windowMs: number): number {
    return Math.max(1, Math.round(windowMs / this.bucketMs));
  }

  get lastArrivalAt(): number | undefined {
    return this.#lastArrivalAt;
  }

  /** Every arrival ever recorded. */
  get total(): number {
    return this.#total;
  }

  #prune(now: number): void {
    const keepFrom = Math.floor(now / this.bucketMs) - Math.ceil(this.stableWindowMs / this.bucketMs);
    if (this.#buckets.size <= Math.ceil(this.stableWindowMs / this.bucketMs) + 2) return;
    for (const b of this.#buckets.keys()) if (b < keepFrom) this.#buckets.delete(b);
  }
}
