// The `stateful` strategy: one FIFO per pool, placement decided from each instance's state. It keeps work on
// warm, recently used instances (so the rest idle out and retire), and starts a new instance only when
// waiting for a busy one is expected to take longer than a cold start.
import type { InstanceView, Placement, PoolView, QueuedRequest, Scheduler } from '../scheduler.ts';
import { activeInstances, batchAbsorbs, byId, canStartAnother, DEFAULT_AGING_MS, freeInstances, urgencyRank } from './urgency.ts';
import { ChurnMap } from '../churn-map.ts';

export interface StatefulSchedulerOptions {
  /** An instance that ran within this window counts as warm for affinity (caches, pages, JIT still hot). */
  warmWindowMs?: number;
  /** Aging used by rank() so FIFO pools stay comparable with `event` pools on the node. */
  agingMs?: number;
}

export const DEFAULT_WARM_WINDOW_MS = 60_000;

export class StatefulScheduler implements Scheduler {
  readonly strategy = 'stateful' as const;
  // Insertion-ordered, O(1) removal for deadlines and disconnects.
  #queue = new ChurnMap<number, QueuedRequest>();
  #soloRequests = 0;
  #batchableItems = 0;
  #warmWindowMs: number;
  #agingMs: number;

  constructor(opts: StatefulSchedulerOptions = {}) {
    this.#warmWindowMs = opts.warmWindowMs ?? DEFAULT_WARM_WINDOW_MS;
    this.#agingMs = opts.agingMs ?? DEFAULT_AGING_MS;
  }

  get size(): number {
    return this.#queue.size;
  }

  enqueue(req: QueuedRequest): void {
    if (this.#queue.has(req.id)) return;
    this.#queue.set(req.id, req);
    this.#count(req, 1);
  }

  remove(req: QueuedRequest): boolean {
    const queued = this.#queue.get(req.id);
    if (!queued) return false;
    this.#queue.delete(req.id);
    this.#count(queued, -1);
    return true;
  }

  /** Keeps the totals expectedWaitMs needs without walking the queue. */
  #count(req: QueuedRequest, sign: 1 | -1): void {
    if (req.batchKey === '') this.#soloRequests += sign;
    else this.#batchableItems += sign * req.items;
  }

  peek(_now: number): QueuedRequest | undefined {
    for (const req of this.#queue.values()) return req;
    return undefined;
  }

  take(now: number, maxItems: number): QueuedRequest[] {
    const head = this.peek(now);
    if (!head) return [];
    const batch = [head];
    if (head.batchKey !== '') {
      let items = head.items;
      let first = true;
      for (const req of this.#queue.values()) {
        if (first) {
          first = false;
          continue;
        }
        if (items >= maxItems) break;
        if (req.batchKey !== head.batchKey || items + req.items > maxItems) continue;
        batch.push(req);
        items += req.items;
      }
    }
    for (const req of batch) this.remove(req);
    return batch;
  }

  /**
   * A free slot on a warm instance wins, ordered by: ran within the warm window (affinity), fewest runs in
   * flight (least outstanding work), most recently used (packing), id. With no free slot, a cold start only
   * when the expected wait (expectedWaitMs) exceeds the pool's cold-start time.
   */
  place(pool: PoolView, now: number): Placement {
    const free = freeInstances(pool);
    if (free.length > 0) {
      const warm = (i: InstanceView) => (i.lastUsedAt > 0 && now - i.lastUsedAt <= this.#warmWindowMs ? 1 : 0);
      free.sort((a, b) => warm(b) - warm(a) || a.inflight - b.inflight || b.lastUsedAt - a.lastUsedAt || byId(a, b));
      return { kind: 'run', instanceId: free[0].id };
    }
    if (!canStartAnother(pool)) return { kind: 'wait' };
    const active = activeInstances(pool);
    if (active.length === 0) return { kind: 'cold-start' };
    // A burst that the instances already there (or starting) take in one batched run each: a second instance
    // started now would be ready no sooner and would only split the batch. Without this, each request of a
    // burst into an empty pool started one more instance, up to maxInstances (measured: 4 for a burst of 16),
    // because the starting instance's remaining start plus one run exceeded a cold start.
    if (this.#soloRequests === 0 && batchAbsorbs(pool, this.#batchableItems, now)) return { kind: 'wait' };
    return this.expectedWaitMs(pool, now) > pool.coldStartMs ? { kind: 'cold-start' } : { kind: 'wait' };
  }

  /**
   * Expected time until the last queued request starts on the instances the pool has or is starting:
   * the runs the queue needs (batchable items packed maxBatchItems to a run, the rest one run each) ×
   * serviceMs / slots. Starting instances count as slots, so repeated place() calls do not start one
   * instance per call; when only starting instances exist, the wait includes the rest of their start.
   */
  expectedWaitMs(pool: PoolView, now: number): number {
    let warmSlots = 0;
    let startingSlots = 0;
    let soonestReady = Number.POSITIVE_INFINITY;
    for (const i of pool.instances) {
      if (i.state === 'idle' || i.state === 'busy') warmSlots += Math.max(1, i.concurrency);
      else if (i.state === 'starting') {
        startingSlots += Math.max(1, i.concurrency);
        soonestReady = Math.min(soonestReady, Math.max(0, i.createdAt + pool.coldStartMs - now));
      }
    }
    const slots = warmSlots + startingSlots;
    if (slots === 0) return Number.POSITIVE_INFINITY;
    const perRun = Math.max(1, pool.maxBatchItems ?? 1);
    const runs = this.#soloRequests + Math.ceil(this.#batchableItems / perRun);
    const drain = (runs * pool.serviceMs) / slots;
    return warmSlots > 0 ? drain : soonestReady + drain;
  }

  rank(pool: PoolView, now: number): number {
    return urgencyRank(this.peek(now), pool, now, this.#agingMs);
  }
}
