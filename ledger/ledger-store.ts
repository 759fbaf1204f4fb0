// Ledger persistence in the object store, for a node without Redis: the full totals are rewritten to
// `ledger/snapshot.json` on each flush. A put is whole-or-nothing, and the file holds totals (not deltas),
// so a restart resumes from the last snapshot and can only lose the unflushed tail, never count twice.
import type { Readable } from 'node:stream';
import {
  QUANTITY_KEYS,
  cloneTotals,
  emptyQuantities,
  mergeTotals,
  type LedgerPersistence,
  type LedgerTotals,
  type QuantityKey,
} from './ledger-quantities.ts';

export const LEDGER_SNAPSHOT_KEY = 'ledger/snapshot.json';

/**
 * The three calls the snapshot makes on the object store. Declared here rather than imported from model-store:
 * the ledger may use only core, and any ObjectStore fits.
 */
export interface SnapshotStore {
  put(key: string, body: Buffer): Promise<unknown>;
  get(key: string): Promise<Readable>;
  stat(key: string): Promise<unknown>;
}

interface SnapshotFile {
  format: 'hearth-ledger/1';
  seq: number;
  savedAt: string;
  models: Record<string, Record<string, Partial<Record<QuantityKey, number>>>>;
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

export class StoreLedgerPersistence implements LedgerPersistence {
  readonly kind = 'store' as const;
  #store: SnapshotStore;
  #key: string;
  #totals: LedgerTotals | undefined;
  #seq = 0;
  #fileSeq = 0;

  constructor(store: SnapshotStore, opts: { key?: string } = {}) {
    this.#store = store;
    this.#key = opts.key ?? LEDGER_SNAPSHOT_KEY;
  }

  async load(): Promise<LedgerTotals> {
    if (!this.#totals) this.#totals = await this.#read();
    return cloneTotals(this.#totals);
  }

  async apply(delta: LedgerTotals, seq: number): Promise<void> {
    if (seq <= this.#seq) return;
    const base = this.#totals ?? (await this.#read());
    const next = mergeTotals(cloneTotals(base), delta);
    const file: SnapshotFile = { format: 'hearth-ledger/1', seq: this.#fileSeq + 1, savedAt: new Date().toISOString(), models: {} };
    for (const [model, buckets] of next) {
      const m: SnapshotFile['models'][string] = (file.models[model] = {});
      for (const [b, q] of buckets) {
        const out: Partial<Record<QuantityKey, number>> = {};
        for (const k of QUANTITY_KEYS) if (q[k]) out[k] = q[k];
        m[String(b)] = out;
      }
    }
    await this.#store.put(this.#key, Buffer.from(JSON.stringify(file)));
    this.#totals = next;
    this.#seq = seq;
    this.#fileSeq = file.seq;
  }

  async close(): Promise<void> {}

  async #read(): Promise<LedgerTotals> {
    const out: LedgerTotals = new Map();
    if (!(await this.#store.stat(this.#key))) return out;
    const raw = JSON.parse((await readAll(await this.#store.get(this.#key))).toString('utf8')) as SnapshotFile;
    if (raw.format !== 'hearth-ledger/1') throw new Error(`${this.#key}: unknown ledger snapshot format ${JSON.stringify(raw.format)}`);
    this.#fileSeq = raw.seq ?? 0;
    for (const [model, buckets] of Object.entries(raw.models ?? {})) {
      const m = new Map<number, ReturnType<typeof emptyQuantities>>();
      for (const [b, q] of Object.entries(buckets)) m.set(Number(b), { ...emptyQuantities(), ...q });
      out.set(model, m);
    }
    return out;
  }
}
