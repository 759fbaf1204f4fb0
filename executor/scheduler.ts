// The Scheduler contract: a strategy orders one pool's waiting requests and decides where the head goes
// (a warm instance, a new instance, or wait). Strategies plug in the way piscina plugs in its TaskQueue.
import type { SchedulingStrategy } from '../core/index.ts';
import type { InstanceState } from './types.ts';

export interface QueuedRequest {
  readonly id: number;
  /** `${name}@${version}` */
  readonly poolKey: string;
  /** 0 (lowest, batch jobs) to 9. */
  readonly priority: number;
  /** Clock ms when the request arrived. */
  readonly arrivedAt: number;
  /** Clock ms after which it answers 503 OVERLOADED if still queued. */
  readonly deadline: number;
  /** Signature of the non-batch dimensions and datatypes; requests merge only with equal keys. '' = not batchable. */
  readonly batchKey: string;
  /** Size of this request's batch (first) dimension; 1 when the model is not batchable. */
  readonly items: number;
}

export interface InstanceView {
  readonly id: string;
  readonly state: InstanceState;
  /** Runs in progress on this instance. */
  readonly inflight: number;
  /** Most runs it may hold at once (the model's `concurrency`). */
  readonly concurrency: number;
  /** Clock ms of its last run's end (or start, while running); 0 when it never ran. */
  readonly lastUsedAt: number;
  readonly createdAt: number;
}

export interface PoolView {
  readonly key: string;
  readonly instances: readonly InstanceView[];
  readonly maxInstances: number;
  /** Measured cold-start time (moving average), or an estimate before the first one. */
  readonly coldStartMs: number;
  /** Measured run time (moving average). */
  readonly serviceMs: number;
  /** Recent arrival rate, requests per second. */
  readonly ratePerSec: number;
  /** Whether the node can give this pool one more instance now (memory budget). */
  readonly canGrow: boolean;
  /** Most request items merged into one run (batching.maxBatchSize when the model batches, else 1); absent = 1. */
  readonly maxBatchItems?: number;
}

export type Placement =
  | { kind: 'run'; instanceId: string }
  /** Start one more instance; the head waits for it (or for any instance that frees up first). */
  | { kind: 'cold-start' }
  /** Leave the head queued until an instance frees up. */
  | { kind: 'wait' };

export interface Scheduler {
  readonly strategy: SchedulingStrategy;
  readonly size: number;
  enqueue(req: QueuedRequest): void;
  /** Removes a request (deadline passed, client gone); false when it was not queued. */
  remove(req: QueuedRequest): boolean;
  /** The request that should be served next, without removing it. */
  peek(now: number): QueuedRequest | undefined;
  /** Removes and returns up to `maxItems` worth of requests that can run together with the head (same batchKey). */
  take(now: number, maxItems: number): QueuedRequest[];
  /** Where the head should go now. */
  place(pool: PoolView, now: number): Placement;
  /**
   * When CPU slots or memory are short, the node asks every pool with waiting work for a rank and serves the
   * highest first. Larger is more urgent. FIFO strategies rank by age; `event` by priority with aging, then rate.
   */
  rank(pool: PoolView, now: number): number;
}
