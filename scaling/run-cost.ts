// What one item costs an instance, learned from the runs it has done: the service time in the autoscaler's
// Little's-law sizing. Runs are weighted by age (time constant decayMs), so the estimate follows a model whose
// cost drifts, and every run counts once, whatever its size.
//
// For a pool that batches, the cost per item falls as batches grow: a run costs about a + b·n (a fixed part
// for the thread hop, the session call and the message, b per item). The busy time per item that a pool shows at
// light load therefore overstates what its instances can take, since more load makes their batches larger. So
// the estimate fits a and b over the recent runs (least squares on (n, ms)) and answers with the cost per item
// of a run as large as the pool's maxBatchSize, extrapolated no further than twice the batches actually seen.
// With no spread in batch size to fit, or a fit whose slope is not positive, it answers with the plain busy time
// per item, which never understates the cost.

export interface RunCostOptions {
  /** Time constant of the age weighting, in clock ms. */
  decayMs?: number;
}

/** Below this variance in batch size (items², i.e. a spread under half an item) there is no slope to fit. */
const MIN_SIZE_VARIANCE = 0.25;

export class RunCost {
  readonly decayMs: number;
  // Age-weighted sums over runs of 1, n, n², t and n·t (t: run time in ms).
  #s0 = 0;
  #sn = 0;
  #snn = 0;
  #st = 0;
  #snt = 0;
  #lastAt: number | undefined;

  constructor(opts: RunCostOptions = {}) {
    this.decayMs = opts.decayMs ?? 6_000;
    if (!(this.decayMs > 0)) throw new RangeError(`decayMs: expected a positive number, got ${this.decayMs}`);
  }

  /** Records one run of `items` items that took `ms`, ending at clock time `at`. */
  record(items: number, ms: number, at: number): void {
    if (!(items >= 1) || !Number.isFinite(ms) || ms < 0 || !Number.isFinite(at)) return;
    if (this.#lastAt !== undefined && at > this.#lastAt) {
      const w = Math.exp(-(at - this.#lastAt) / this.decayMs);
      this.#s0 *= w;
      this.#sn *= w;
      this.#snn *= w;
      this.#st *= w;
      this.#snt *= w;
    }
    if (this.#lastAt === undefined || at > this.#lastAt) this.#lastAt = at;
    this.#s0 += 1;
    this.#sn += items;
    this.#snn += items * items;
    this.#st += ms;
    this.#snt += items * ms;
  }

  /** Busy time per item over the recent runs (total run time / total items); undefined before the first run. */
  get perItemMs(): number | undefined {
    return this.#sn > 0 ? this.#st / this.#sn : undefined;
  }

  /** Mean items per run over the recent runs. */
  get meanBatch(): number | undefined {
    return this.#s0 > 0 ? this.#sn / this.#s0 : undefined;
  }

  /**
   * Cost per item of a run of up to `maxBatch` items, from the fitted a + b·n; the busy time per item when the
   * runs give nothing to fit. Never more than perItemMs.
   */
  perItemAtMs(maxBatch: number): number | undefined {
    const plain = this.perItemMs;
    if (plain === undefined || !(maxBatch > 1)) return plain;
    const meanN = this.#sn / this.#s0;
    const meanT = this.#st / this.#s0;
    const varN = this.#snn / this.#s0 - meanN * meanN;
    if (!(varN >= MIN_SIZE_VARIANCE)) return plain;
    const b = (this.#snt / this.#s0 - meanN * meanT) / varN;
    if (!(b > 0)) return plain;
    const a = Math.max(0, meanT - b * meanN);
    const n = Math.min(maxBatch, 2 * Math.ceil(meanN + 2 * Math.sqrt(varN)));
    return Math.min(plain, (a + b * n) / n);
  }
}
