// The `stateless` strategy (request-driven): one FIFO per model; any instance with room takes the head;
// a cold start begins when none has room, the pool is below maxInstances and the queue outgrows the
// instances already starting. For a batchable model "outgrows" counts in batches (batchAbsorbs): the queue
// must overflow one run per slot of the instances it has, so the pool does not split its batches over more
// instances than the CPU needs. Across pools it ranks on the shared urgency scale (urgencyRank), where its
// requests keep their priority and age like everyone else's.
import type { InstanceView, Placement, PoolView, QueuedRequest, Scheduler } from '../scheduler.ts';
import { batchAbsorbs, DEFAULT_AGING_MS, urgencyRank } from './urgency.ts';

export class StatelessScheduler implements Scheduler {
  readonly strategy = 'stateless' as const;
  // A plain array with a moving head: O(1) dequeue without shifting on every take.
  #queue: (QueuedRequest | undefined)[] = [];
  #head = 0;
  #size = 0;
  /** Sum of the queued requests' items (their batch sizes). */
  #items = 0;

  get size(): number {
    return this.#size;
  }

  enqueue(req: QueuedRequest): void {
    this.#queue.push(req);
    this.#size++;
    this.#items += req.items;
  }

  remove(req: QueuedRequest): boolean {
    const i = this.#queue.indexOf(req, this.#head);
    if (i < 0) return false;
    this.#queue[i] = undefined;
    this.#size--;
    this.#items -= req.items;
    this.#compact();
    return true;
  }

  peek(_now?: number): QueuedRequest | undefined {
    this.#compact();
    return this.#queue[this.#head];
  }

  take(_now: number, maxItems: number): QueuedRequest[] {
    const head = this.peek();
    if (!head) return [];
    const out = [head];
    this.#queue[this.#head] = undefined;
    this.#size--;
    this.#items -= head.items;
    let items = head.items;
    if (head.batchKey !== '') {
      // Later requests with the same key join the head, in arrival order, up to maxItems.
      for (let i = this.#head + 1; i < this.#queue.length && items < maxItems; i++) {
        const r = this.#queue[i];
        if (!r || r.batchKey !== head.batchKey || items + r.items > maxItems) continue;
        out.push(r);
        items += r.items;
        this.#queue[i] = undefined;
        this.#size--;
        this.#items -= r.items;
      }
    }
    this.#compact();
    return out;
  }

  place(pool: PoolView, now = 0): Placement {
    const free = pickFree(pool.instances);
    if (free) return { kind: 'run', instanceId: free.id };
    let live = 0;
    let startingRoom = 0;
    for (const i of pool.instances) {
      if (i.state === 'retiring') continue;
      live++;
      if (i.state === 'starting') {
        startingRoom += i.concurrency;
      }
    }
    // Instances already starting will absorb that many queued requests; start another only for the rest.
    if (live < pool.maxInstances && pool.canGrow && startingRoom < this.#size && !batchAbsorbs(pool, this.#items, now))
      return { kind: 'cold-start' };
    return { kind: 'wait' };
  }

  rank(pool: PoolView, now: number): number {
    return urgencyRank(this.peek(), pool, now, DEFAULT_AGING_MS);
  }

  #compact(): void {
    while (this.#head < this.#queue.length && this.#queue[this.#head] === undefined) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (this.#size === 0) {
      this.#queue = [];
      this.#head = 0;
      this.#items = 0;
    }
  }
}

/**
 * An instance that can take one more run now: the fewest runs in flight (idle first), then the most recently
 * used. The tie-break packs work onto one warm thread instead of alternating between idle ones, which on a
 * small node measured faster (its caches stay hot, fewer threads wake) and lets the others idle out.
 */
function pickFree(instances: readonly InstanceView[]): InstanceView | undefined {
  let best: InstanceView | undefined;
  for (const i of instances) {
    if ((i.state !== 'idle' && i.state !== 'busy') || i.inflight >= i.concurrency) continue;
    if (!best || i.inflight < best.inflight || (i.inflight === best.inflight && i.lastUsedAt > best.lastUsedAt)) best = i;
  }
  return best;
}
