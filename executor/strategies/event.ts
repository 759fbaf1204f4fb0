// The `event` strategy: requests carry a priority 0–9 (batch jobs 0). The head is the request with the
// highest effective priority, where waiting raises it one level per agingMs so low priority cannot starve.
// Across pools, rank() orders by that level, then the pool's request rate, then age.
import type { InstanceView, Placement, PoolView, QueuedRequest, Scheduler } from '../scheduler.ts';
import {
  activeInstances,
  batchAbsorbs,
  byId,
  canStartAnother,
  DEFAULT_AGING_MS,
  effectivePriority,
  freeInstances,
  priorityLevel,
  urgencyRank,
} from './urgency.ts';
import { ChurnMap } from '../churn-map.ts';

export interface EventSchedulerOptions {
  /** Waiting this long raises a request's effective priority by one level. */
  agingMs?: number;
}

export class EventScheduler implements Scheduler {
  readonly strategy = 'event' as const;
  // One FIFO per priority level; within a level the oldest is first, so its head has the level's highest
  // effective priority and peek() only compares ten heads.
  #levels: ChurnMap<number, QueuedRequest>[] = Array.from({ length: 10 }, () => new ChurnMap());
  #size = 0;
  /** Sum of the queued requests' items (their batch sizes). */
  #items = 0;
  #agingMs: number;

  constructor(opts: EventSchedulerOptions = {}) {
    this.#agingMs = opts.agingMs ?? DEFAULT_AGING_MS;
  }

  get size(): number {
    return this.#size;
  }

  enqueue(req: QueuedRequest): void {
    const level = this.#levels[priorityLevel(req.priority)];
    if (!level.has(req.id)) {
      this.#size++;
      this.#items += req.items;
    }
    level.set(req.id, req);
  }

  remove(req: QueuedRequest): boolean {
    const removed = this.#levels[priorityLevel(req.priority)].delete(req.id);
    if (removed) {
      this.#size--;
      this.#items -= req.items;
    }
    return removed;
  }

  /** Highest effective priority; among equals the oldest, then the lowest id. */
  peek(now: number): QueuedRequest | undefined {
    let best: QueuedRequest | undefined;
    let bestLevel = -1;
    for (let p = 9; p >= 0; p--) {
      const head = first(this.#levels[p]);
      if (!head) continue;
      const level = effectivePriority(head, now, this.#agingMs);
      if (
        !best ||
        level > bestLevel ||
        (level === bestLevel && (head.arrivedAt < best.arrivedAt || (head.arrivedAt === best.arrivedAt && head.id < best.id)))
      ) {
        best = head;
        bestLevel = level;
      }
    }
    return best;
  }

  /** The head, then batch mates with its key from the highest priority level down, oldest first. */
  take(now: number, maxItems: number): QueuedRequest[] {
    const head = this.peek(now);
    if (!head) return [];
    this.remove(head);
    const batch = [head];
    if (head.batchKey === '') return batch;
    let items = head.items;
    for (let p = 9; p >= 0 && items < maxItems; p--) {
      for (const req of this.#levels[p].values()) {
        if (items >= maxItems) break;
        if (req.batchKey !== head.batchKey || items + req.items > maxItems) continue;
        batch.push(req);
        items += req.items;
      }
    }
    for (let i = 1; i < batch.length; i++) this.remove(batch[i]);
    return batch;
  }

  /**
   * Within the pool, placement is request-driven like `stateless`: any free slot takes the head (fewest runs
   * in flight, then most recently used, then id); otherwise a cold start while fewer slots are starting than
   * requests are waiting (for a batchable model: unless batchAbsorbs says the queue fits the runs the pool's
   * instances will make anyway), else wait.
   */
  place(pool: PoolView, now: number): Placement {
    const free = freeInstances(pool);
    if (free.length > 0) {
      free.sort((a, b) => a.inflight - b.inflight || b.lastUsedAt - a.lastUsedAt || byId(a, b));
      return { kind: 'run', instanceId: free[0].id };
    }
    if (!canStartAnother(pool) || batchAbsorbs(pool, this.#items, now)) return { kind: 'wait' };
    const startingSlots = activeInstances(pool)
      .filter((i: InstanceView) => i.state === 'starting')
      .reduce((n, i) => n + Math.max(1, i.concurrency), 0);
    return startingSlots < this.#size ? { kind: 'cold-start' } : { kind: 'wait' };
  }

  rank(pool: PoolView, now: number): number {
    return urgencyRank(this.peek(now), pool, now, this.#agingMs);
  }
}

function first(level: ChurnMap<number, QueuedRequest>): QueuedRequest | undefined {
  for (const req of level.values()) return req;
  return undefined;
}
