// ledger: the cost ledger. Every billed millisecond, warm idle second and stored byte-month per model version and
// hour, priced from the configured sheet; fed by the executor's observer hooks (core/observer.ts) and persisted in
// Redis when it answers at start-up, else as a snapshot in the object store (openLedgerPersistence picks).
export {
  CostLedger,
  MONTH_MS,
  priceLine,
  type CostLedgerOptions,
  type CostLine,
  type CostReport,
  type ModelCostLine,
  type StoredModel,
} from './cost-ledger.ts';
export {
  MemoryLedgerPersistence,
  cloneTotals,
  emptyQuantities,
  mergeQuantities,
  mergeTotals,
  QUANTITY_KEYS,
  type LedgerPersistence,
  type LedgerQuantities,
  type LedgerTotals,
  type QuantityKey,
} from './ledger-quantities.ts';
export { openLedgerPersistence, type OpenLedgerOptions } from './ledger-open.ts';
export { RedisLedgerPersistence } from './ledger-redis.ts';
export { StoreLedgerPersistence, LEDGER_SNAPSHOT_KEY, type SnapshotStore } from './ledger-store.ts';
