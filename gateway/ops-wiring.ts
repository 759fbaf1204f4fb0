// Builds the operations side of one Hearth node around its executor: the cost ledger (Redis when it answers,
// else a snapshot in the object store), the autoscaler on the injected clock, and the per-app metrics,
// all fed by one fan-out of the executor's observer hooks. createHearth calls startOps once the executor exists.
import { fanOutObserver, type Clock, type Config, type ExecutorObserver } from '../core/index.ts';
import { CostLedger, openLedgerPersistence, type StoredModel } from '../ledger/index.ts';
import { Autoscaler, autoscalerOptions, type PoolControl } from '../scaling/index.ts';
import type { ObjectStore } from '../model-store/index.ts';
import { HearthMetrics } from './ops-metrics.ts';

export interface Ops {
  autoscaler: Autoscaler;
  ledger: CostLedger;
  metrics: HearthMetrics;
  /** Where the ledger persists, and why. */
  ledgerPersistence: string;
  close(): Promise<void>;
}

export interface StartOpsOptions {
  config: Readonly<Config>;
  clock: Clock;
  /** The executor's control surface and observer slot. */
  executor: { readonly control: PoolControl; setObserver(o: ExecutorObserver): void };
  store?: ObjectStore;
  /** Other observers that must keep receiving the executor's events. */
  observers?: ExecutorObserver[];
  /** Overrides config.redisUrl for the ledger ('' = no Redis). */
  redisUrl?: string;
  /** Key prefix in Redis; default config.jobs.prefix. */
  prefix?: string;
  onError?: (err: unknown) => void;
}

export async function startOps(o: StartOpsOptions): Promise<Ops> {
  const { persistence, why } = await openLedgerPersistence({
    redisUrl: o.redisUrl ?? o.config.redisUrl,
    prefix: o.prefix ?? o.config.jobs.prefix,
    store: o.store,
  });
  const ledger = new CostLedger({
    clock: o.clock,
    prices: o.config.prices,
    persistence,
    storage: o.store ? () => storedModels(o.store!) : undefined,
    onError: o.onError,
  });
  const autoscaler = new Autoscaler({ clock: o.clock, control: o.executor.control, ...autoscalerOptions(o.config), onError: o.onError });
  const metrics = new HearthMetrics({ control: o.executor.control, ledger });
  o.executor.setObserver(fanOutObserver(autoscaler.observer, ledger.observer, metrics.observer, ...(o.observers ?? [])));
  try {
    await ledger.start();
  } catch (err) {
    // A broken snapshot or a Redis that died after the ping must not stop the node; the ledger starts empty.
    o.onError?.(err);
  }
  autoscaler.start();
  return {
    autoscaler,
    ledger,
    metrics,
    ledgerPersistence: why,
    close: async () => {
      autoscaler.stop();
      await ledger.close();
    },
  };
}

/** Bytes stored per visible model version: every object under its folder, counted once the manifest exists. */
export async function storedModels(store: ObjectStore): Promise<StoredModel[]> {
  const sizes = new Map<string, { name: string; version: number; sizeBytes: number; visible: boolean }>();
  for (const obj of await store.list('models/')) {
    const m = /^models\/([^/]+)\/([0-9]+)\/(.+)$/.exec(obj.key);
    if (!m) continue;
    const k = `${m[1]}@${m[2]}`;
    const e = sizes.get(k) ?? { name: m[1], version: Number(m[2]), sizeBytes: 0, visible: false };
    e.sizeBytes += obj.sizeBytes;
    if (m[3] === 'manifest.json') e.visible = true;
    sizes.set(k, e);
  }
  return [...sizes.values()].filter((e) => e.visible).map(({ name, version, sizeBytes }) => ({ name, version, sizeBytes }));
}
