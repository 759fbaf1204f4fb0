// The quantities the cost ledger records per model version and time bucket, and how two records merge.

export interface LedgerQuantities {
  /** Requests billed (successful, or failed after they ran). */
  invocations: number;
  failures: number;
  /** Sum of per-request billed time, each rounded up to 1 ms. */
  billedMs: number;
  /** Sum of billedMs x memoryMb: integer in practice, so compute GB-s stays exact. */
  billedMbMs: number;
  /** Warm instances not running, memory x time. */
  idleMbMs: number;
  coldStarts: number;
  coldStartMs: number;
  storageGbMonths: number;
  /** Largest memory held by the model's live instances at any moment in the bucket (merges by max). */
  peakMemoryMb: number;
}

export const QUANTITY_KEYS = [
  'invocations',
  'failures',
  'billedMs',
  'billedMbMs',
  'idleMbMs',
  'coldStarts',
  'coldStartMs',
  'storageGbMonths',
  'peakMemoryMb',
] as const;
export type QuantityKey = (typeof QUANTITY_KEYS)[number];
/** Quantities that merge by maximum rather than by sum. */
export const MAX_KEYS: ReadonlySet<QuantityKey> = new Set<QuantityKey>(['peakMemoryMb']);

export function emptyQuantities(): LedgerQuantities {
  return {
    invocations: 0,
    failures: 0,
    billedMs: 0,
    billedMbMs: 0,
    idleMbMs: 0,
    coldStarts: 0,
    coldStartMs: 0,
    storageGbMonths: 0,
    peakMemoryMb: 0,
  };
}

export function mergeQuantities(into: LedgerQuantities, add: Partial<LedgerQuantities>): LedgerQuantities {
  for (const k of QUANTITY_KEYS) {
    const v = add[k];
    if (v === undefined || !Number.isFinite(v)) continue;
    into[k] = MAX_KEYS.has(k) ? Math.max(into[k], v) : into[k] + v;
  }
  return into;
}

/** modelKey ("name@version") -> bucket start (ms) -> quantities. */
export type LedgerTotals = Map<string, Map<number, LedgerQuantities>>;

export function mergeTotals(into: LedgerTotals, add: LedgerTotals): LedgerTotals {
  for (const [model, buckets] of add) {
    let m = into.get(model);
    if (!m) into.set(model, (m = new Map<number, LedgerQuantities>()));
    for (const [b, q] of buckets) {
      let t = m.get(b);
      if (!t) m.set(b, (t = emptyQuantities()));
      mergeQuantities(t, q);
    }
  }
  return into;
}

export function cloneTotals(t: LedgerTotals): LedgerTotals {
  return mergeTotals(new Map(), t);
}

/** Where the ledger keeps its totals between restarts. */
export interface LedgerPersistence {
  readonly kind: 'redis' | 'store' | 'memory';
  /** Every persisted total (for Redis: of every node). */
  load(): Promise<LedgerTotals>;
  /**
   * Adds `delta` once. `seq` increases with every call of one ledger; a retry of the same seq must not add twice.
   */
  apply(delta: LedgerTotals, seq: number): Promise<void>;
  /**
   * For a ledger shared by several nodes: whether this writer holds the lease to integrate storage (every node
   * sees the same stored bytes, so only one may count them). Renewed on each call; lapses after `ttlMs`.
   * Absent means this writer always counts storage.
   */
  storageLease?(ttlMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Keeps totals in memory only: a restart loses them (tests, and a node with neither Redis nor a store). */
export class MemoryLedgerPersistence implements LedgerPersistence {
  readonly kind = 'memory' as const;
  #totals: LedgerTotals = new Map();
  #seq = 0;
  load(): Promise<LedgerTotals> {
    return Promise.resolve(cloneTotals(this.#totals));
  }
  apply(delta: LedgerTotals, seq: number): Promise<void> {
    if (seq <= this.#seq) return Promise.resolve();
    mergeTotals(this.#totals, delta);
    this.#seq = seq;
    return Promise.resolve();
  }
  async close(): Promise<void> {}
}
