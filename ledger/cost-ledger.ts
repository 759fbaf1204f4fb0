// The cost ledger: every billed millisecond, every warm idle second and every stored byte-month, per model
// version and hour, priced from the configured sheet the way a cloud bill prices it. It listens to the
// executor's observer hooks, integrates idle and storage time on the injected clock, and flushes deltas to its
// persistence (Redis, else a snapshot in the object store) so totals survive a restart without counting twice.
import { ColdStartCounter, type Clock, type ExecutorObserver, type InstanceState, type Prices } from '../core/index.ts';
import {
  MemoryLedgerPersistence,
  cloneTotals,
  emptyQuantities,
  mergeQuantities,
  mergeTotals,
  type LedgerPersistence,
  type LedgerQuantities,
  type LedgerTotals,
} from './ledger-quantities.ts';

export * from './ledger-quantities.ts';

/** GB-month as AWS prices it: 730 hours. */
export const MONTH_MS = 730 * 3_600_000;
const GIB = 1024 ** 3;
/** No totals (a typed empty map, where a retry has none pending). */
const emptyTotals = (): LedgerTotals => new Map();

export interface StoredModel {
  name: string;
  version: number;
  sizeBytes: number;
}

export interface CostLedgerOptions {
  clock: Clock;
  prices: Readonly<Prices>;
  persistence?: LedgerPersistence;
  /** Sizes of every stored model version now (from the registry's manifests). */
  storage?: () => Promise<StoredModel[]> | StoredModel[];
  /** Width of a time bucket; `from`/`to` filters have this granularity. */
  bucketMs?: number;
  /** How often idle and storage time are integrated and deltas flushed. */
  flushMs?: number;
  /** Called when a flush fails (the delta is kept and retried). */
  onError?: (err: unknown) => void;
}

export interface CostLine {
  invocations: number;
  failures: number;
  billedMs: number;
  computeGbSeconds: number;
  computeCost: number;
  requestCost: number;
  idleGbSeconds: number;
  idleCost: number;
  coldStarts: number;
  coldStartMs: number;
  storageBytes: number;
  storageGbMonths: number;
  storageCost: number;
  totalCost: number;
  /** The same traffic with the model's peak instance memory provisioned for the whole period. */
  alwaysOn: { gbSeconds: number; cost: number; savings: number };
}

export interface ModelCostLine extends CostLine {
  name: string;
  version: number;
}

export interface CostReport {
  currency: 'USD';
  prices: Prices;
  from: string | null;
  to: string;
  bucketMs: number;
  persistence: LedgerPersistence['kind'];
  total: CostLine;
  models: ModelCostLine[];
}

interface InstanceTrack {
  model: string;
  state: InstanceState;
  since: number;
  memoryMb: number;
}

export class CostLedger {
  #clock: Clock;
  #prices: Readonly<Prices>;
  #persistence: LedgerPersistence;
  #storageFn: CostLedgerOptions['storage'];
  #bucketMs: number;
  #flushMs: number;
  #onError: (err: unknown) => void;
  /** Persisted totals as last loaded or written by this ledger. */
  #base: LedgerTotals = new Map();
  /** Recorded but not yet persisted. */
  #pending: LedgerTotals = new Map();
  /** A batch taken out of #pending whose write has not succeeded yet. */
  #retry: { delta: LedgerTotals; seq: number } | undefined;
  #seq = 0;
  #instances = new Map<string, InstanceTrack>();
  #storage = new Map<string, number>();
  #storageAt: number;
  #timer: unknown;
  #running = false;
  #flushing: Promise<void> | undefined;
  #coldStarts = new ColdStartCounter();
  /** Whether this node integrates storage: always, unless the persistence is shared and another node holds its lease. */
  #ownsStorage = true;
  readonly observer: ExecutorObserver;

  constructor(opts: CostLedgerOptions) {
    this.#clock = opts.clock;
    this.#prices = opts.prices;
    this.#persistence = opts.persistence ?? new MemoryLedgerPersistence();
    this.#storageFn = opts.storage;
    this.#bucketMs = opts.bucketMs ?? 3_600_000;
    this.#flushMs = opts.flushMs ?? 5_000;
    this.#onError = opts.onError ?? (() => {});
    this.#storageAt = this.#clock.now();
    this.observer = {
      onRequestDone: (e) => {
        const billed = e.ok || e.billedMs > 0;
        const coldMs = this.#coldStarts.newColdStart(e);
        this.#add(`${e.name}@${e.version}`, e.at, {
          invocations: billed ? 1 : 0,
          failures: e.ok ? 0 : 1,
          billedMs: billed ? Math.ceil(e.billedMs) : 0,
          billedMbMs: billed ? Math.ceil(e.billedMs) * e.memoryMb : 0,
          coldStarts: coldMs !== undefined ? 1 : 0,
          coldStartMs: coldMs ?? 0,
        });
      },
      onInstanceState: (e) => this.#instanceState(e),
    };
  }

  get persistenceKind(): LedgerPersistence['kind'] {
    return this.#persistence.kind;
  }

  get bucketMs(): number {
    return this.#bucketMs;
  }

  /** Loads persisted totals and the stored sizes, then integrates and flushes every flushMs. */
  async start(): Promise<void> {
    this.#base = await this.#persistence.load();
    await this.#renewStorageLease();
    await this.refreshStorage();
    this.#running = true;
    const loop = () => {
      if (!this.#running) return;
      void this.flush()
        .then(() => this.refreshStorage())
        .catch(this.#onError)
        .finally(() => {
          if (this.#running) this.#timer = this.#clock.setTimeout(loop, this.#flushMs);
        });
    };
    this.#timer = this.#clock.setTimeout(loop, this.#flushMs);
  }

  /** Re-reads the stored sizes (after integrating storage time at the old sizes up to now). */
  async refreshStorage(): Promise<void> {
    if (!this.#storageFn) return;
    const list = await this.#storageFn();
    this.accrue();
    this.#storage.clear();
    for (const m of list) this.#storage.set(`${m.name}@${m.version}`, m.sizeBytes);
  }

  /** Sets one version's stored size now (upload, delete) without waiting for the next refresh. */
  setStorage(name: string, version: number, sizeBytes: number): void {
    this.accrue();
    if (sizeBytes > 0) this.#storage.set(`${name}@${version}`, sizeBytes);
    else this.#storage.delete(`${name}@${version}`);
  }

  /** Integrates warm idle time and storage up to now. */
  accrue(now = this.#clock.now()): void {
    for (const t of this.#instances.values()) {
      if (t.state === 'idle' && now > t.since) this.#spread(t.model, t.since, now, (ms) => ({ idleMbMs: ms * t.memoryMb }));
      t.since = Math.max(t.since, now);
    }
    if (now > this.#storageAt) {
      if (this.#ownsStorage) {
        for (const [model, bytes] of this.#storage)
          this.#spread(model, this.#storageAt, now, (ms) => ({ storageGbMonths: ((bytes / GIB) * ms) / MONTH_MS }));
      }
      this.#storageAt = now;
    }
    const live = new Map<string, number>();
    for (const t of this.#instances.values()) live.set(t.model, (live.get(t.model) ?? 0) + t.memoryMb);
    for (const [model, mb] of live) this.#add(model, now, { peakMemoryMb: mb });
  }

  /** Persists everything recorded so far; on failure the delta is kept and retried, with its sequence, first. */
  async flush(): Promise<void> {
    await this.#exclusive(() => this.#flushOnce());
  }

  /**
   * Runs `fn` while no flush runs. A load must not overlap a flush: it could see the flushed delta in the store
   * while #retry still holds it (counted twice), or miss it after #retry was cleared (lost from #base).
   */
  async #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#flushing) await this.#flushing;
    const run = fn();
    this.#flushing = run.then(
      () => {},
      () => {},
    );
    try {
      return await run;
    } finally {
      this.#flushing = undefined;
    }
  }

  async #flushOnce(): Promise<void> {
    this.accrue();
    await this.#renewStorageLease();
    if (!this.#retry) {
      if (this.#pending.size === 0) return;
      this.#retry = { delta: this.#pending, seq: ++this.#seq };
      this.#pending = new Map();
    }
    // A failed batch is retried alone under its own sequence: if it did land (reply lost), the persistence skips it.
    const r = this.#retry;
    await this.#persistence.apply(r.delta, r.seq);
    mergeTotals(this.#base, r.delta);
    this.#retry = undefined;
  }

  /** Decides whether storage from now until the next flush is this node's to count; unchanged when the lease cannot be read. */
  async #renewStorageLease(): Promise<void> {
    if (!this.#persistence.storageLease) return;
    this.#ownsStorage = await this.#persistence.storageLease(3 * this.#flushMs).catch(() => this.#ownsStorage);
  }

  /** Flushes what it can and stops the timer. */
  async close(): Promise<void> {
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    try {
      await this.flush();
      // Events recorded while the first flush ran.
      if (this.#pending.size) await this.flush();
    } catch (err) {
      this.#onError(err);
    }
    await this.#persistence.close();
  }

  /** Totals per model version known to this ledger (persisted as last seen plus unflushed), all time. Synchronous, for /metrics. */
  totals(): ModelCostLine[] {
    this.accrue();
    const t = mergeTotals(mergeTotals(cloneTotals(this.#base), this.#retry?.delta ?? emptyTotals()), this.#pending);
    return this.#lines(t, undefined, this.#clock.now()).models;
  }

  /**
   * The bill for [from, to) (clock ms; whole hour buckets that overlap the range), optionally for one model name.
   * With Redis this re-reads every node's persisted totals.
   */
  async report(q: { from?: number; to?: number; model?: string } = {}): Promise<CostReport> {
    // Uploads and deletes since the last refresh show up in storageBytes at once.
    await this.refreshStorage().catch(this.#onError);
    this.accrue();
    let persisted: LedgerTotals;
    try {
      persisted = await this.#exclusive(() => this.#persistence.load());
      this.#base = cloneTotals(persisted);
    } catch (err) {
      this.#onError(err);
      persisted = cloneTotals(this.#base);
    }
    const t = mergeTotals(mergeTotals(persisted, this.#retry?.delta ?? emptyTotals()), this.#pending);
    const now = this.#clock.now();
    const to = q.to ?? now;
    const { models, total } = this.#lines(t, { from: q.from, to: q.to ?? Infinity, model: q.model }, now);
    return {
      currency: 'USD',
      prices: { ...this.#prices },
      from: q.from === undefined ? null : new Date(q.from).toISOString(),
      to: new Date(to).toISOString(),
      bucketMs: this.#bucketMs,
      persistence: this.#persistence.kind,
      total,
      models,
    };
  }

  #lines(
    t: LedgerTotals,
    f: { from?: number; to: number; model?: string } | undefined,
    now: number,
  ): { models: ModelCostLine[]; total: CostLine } {
    const p = this.#prices;
    const models: ModelCostLine[] = [];
    const keys = new Set([...t.keys(), ...this.#storage.keys()]);
    for (const model of [...keys].sort()) {
      const at = model.lastIndexOf('@');
      const name = model.slice(0, at);
      const version = Number(model.slice(at + 1));
      if (f?.model !== undefined && f.model !== name) continue;
      const q = emptyQuantities();
      let first = Infinity;
      for (const [b, bq] of t.get(model) ?? []) {
        if (f && ((f.from !== undefined && b + this.#bucketMs <= f.from) || b >= f.to)) continue;
        mergeQuantities(q, bq);
        first = Math.min(first, b);
      }
      const storageBytes = this.#storage.get(model) ?? 0;
      if (!Number.isFinite(first) && storageBytes === 0) continue;
      const line = priceLine(q, storageBytes, p);
      // Always-on: the model's peak instance memory (at least what it ran with) provisioned over the whole period.
      const periodStart = Math.max(f?.from ?? -Infinity, Number.isFinite(first) ? first : now);
      const periodEnd = Math.min(f?.to ?? now, now);
      const periodSec = Math.max(0, periodEnd - periodStart) / 1000;
      const gbSeconds = (q.peakMemoryMb / 1024) * periodSec;
      const alwaysOnCost = gbSeconds * p.idlePerGbSecond + line.computeCost + line.requestCost + line.storageCost;
      line.alwaysOn = { gbSeconds, cost: alwaysOnCost, savings: alwaysOnCost - line.totalCost };
      models.push({ name, version, ...line });
    }
    const total = priceLine(emptyQuantities(), 0, p);
    for (const m of models) {
      for (const k of Object.keys(total) as (keyof CostLine)[]) {
        if (k === 'alwaysOn') continue;
        total[k] += m[k];
      }
      total.alwaysOn.gbSeconds += m.alwaysOn.gbSeconds;
      total.alwaysOn.cost += m.alwaysOn.cost;
      total.alwaysOn.savings += m.alwaysOn.savings;
    }
    return { models, total };
  }

  #instanceState(e: Parameters<NonNullable<ExecutorObserver['onInstanceState']>>[0]): void {
    const model = `${e.name}@${e.version}`;
    const t = this.#instances.get(e.instanceId);
    if (t && t.state === 'idle' && e.at > t.since) this.#spread(t.model, t.since, e.at, (ms) => ({ idleMbMs: ms * t.memoryMb }));
    if (e.to === 'gone') {
      this.#instances.delete(e.instanceId);
    } else {
      this.#instances.set(e.instanceId, { model, state: e.to, since: Math.max(e.at, t?.since ?? e.at), memoryMb: e.memoryMb });
    }
    let live = 0;
    for (const x of this.#instances.values()) if (x.model === model) live += x.memoryMb;
    this.#add(model, e.at, { peakMemoryMb: live });
  }

  /** Splits [from, to) over the buckets it crosses. */
  #spread(model: string, from: number, to: number, q: (ms: number) => Partial<LedgerQuantities>): void {
    let a = from;
    while (a < to) {
      const b = Math.min(to, (Math.floor(a / this.#bucketMs) + 1) * this.#bucketMs);
      this.#add(model, a, q(b - a));
      a = b;
    }
  }

  #add(model: string, at: number, q: Partial<LedgerQuantities>): void {
    const bucket = Math.floor(at / this.#bucketMs) * this.#bucketMs;
    let m = this.#pending.get(model);
    if (!m) this.#pending.set(model, (m = new Map<number, LedgerQuantities>()));
    let b = m.get(bucket);
    if (!b) m.set(bucket, (b = emptyQuantities()));
    mergeQuantities(b, q);
  }
}

/** Prices one set of quantities: every cost is quantity x price, and the total is their sum. */
export function priceLine(q: LedgerQuantities, storageBytes: number, p: Readonly<Prices>): CostLine {
  const computeGbSeconds = q.billedMbMs / 1000 / 1024;
  const idleGbSeconds = q.idleMbMs / 1000 / 1024;
  const computeCost = computeGbSeconds * p.computePerGbSecond;
  const requestCost = q.invocations * p.perRequest;
  const idleCost = idleGbSeconds * p.idlePerGbSecond;
  const storageCost = q.storageGbMonths * p.storagePerGbMonth;
  return {
    invocations: q.invocations,
    failures: q.failures,
    billedMs: q.billedMs,
    computeGbSeconds,
    computeCost,
    requestCost,
    idleGbSeconds,
    idleCost,
    coldStarts: q.coldStarts,
    coldStartMs: q.coldStartMs,
    storageBytes,
    storageGbMonths: q.storageGbMonths,
    storageCost,
    totalCost: computeCost + requestCost + idleCost + storageCost,
    alwaysOn: { gbSeconds: 0, cost: 0, savings: 0 },
  };
}
