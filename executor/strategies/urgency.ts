// What the strategies share: how urgent a waiting request is (priority with aging, then the pool's request
// rate, then age) and which free instance slot takes a run. Pure functions of their arguments.
import type { InstanceView, PoolView, QueuedRequest } from '../scheduler.ts';

/** Waiting this long raises a request's effective priority by one level (event strategy default). */
export const DEFAULT_AGING_MS = 1000;

/** 0–9; anything else (a bad caller) counts as the default 5 rather than throwing inside the queue. */
export function priorityLevel(priority: number): number {
  if (!Number.isFinite(priority)) return 5;
  return Math.min(9, Math.max(0, Math.round(priority)));
}

/**
 * The request's priority plus one level per `agingMs` waited. Not capped at 9: an old enough low-priority
 * request outranks any fresh one, which is what keeps it from starving.
 */
export function effectivePriority(req: QueuedRequest, now: number, agingMs: number): number {
  const waited = Math.max(0, now - req.arrivedAt);
  return priorityLevel(req.priority) + (agingMs > 0 && Number.isFinite(agingMs) ? Math.floor(waited / agingMs) : 0);
}

/**
 * A node-level rank for the pool whose head is `head`, larger = more urgent, ordered lexicographically by
 * (effective priority level, pool request rate, head age) and packed into one number:
 * level × 1e6 + rate score (0–999, saturating: 10 req/s scores 500) × 1e3 + age score (0–999).
 */
export function urgencyRank(head: QueuedRequest | undefined, pool: PoolView, now: number, agingMs: number): number {
  if (!head) return Number.NEGATIVE_INFINITY;
  const level = effectivePriority(head, now, agingMs);
  const rate = Math.max(0, pool.ratePerSec || 0);
  const rateScore = Math.min(999, Math.floor((rate / (rate + 10)) * 1000));
  const waited = Math.max(0, now - head.arrivedAt);
  const scale = agingMs > 0 && Number.isFinite(agingMs) ? agingMs : 1000;
  const ageScore = (waited / (waited + scale)) * 999;
  return level * 1e6 + rateScore * 1e3 + ageScore;
}

/** Instances that can take a run now: warm (idle or busy) with a free slot. */
export function freeInstances(pool: PoolView): InstanceView[] {
  return pool.instances.filter((i) => (i.state === 'idle' || i.state === 'busy') && i.inflight < i.concurrency);
}

/** Non-retiring instances (warm or starting): what counts against maxInstances. */
export function activeInstances(pool: PoolView): InstanceView[] {
  return pool.instances.filter((i) => i.state !== 'retiring');
}

/** Whether one more instance may start: room under maxInstances and in the node's memory budget. */
export function canStartAnother(pool: PoolView): boolean {
  return pool.canGrow && activeInstances(pool).length < pool.maxInstances;
}

/** Deterministic final tie-break. */
export function byId(a: InstanceView, b: InstanceView): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * The growth rule for batchable pools (all three strategies; `stateful` applies it while no unbatchable request
 * is queued, then its expectedWaitMs). When the model batches, each slot of the instances the pool already has (warm or starting)
 * takes up to maxBatchItems queued items in its next run. So no other instance is cold-started while the
 * queued items fit in one run per slot and the wait for that run (one serviceMs behind a busy instance, the
 * rest of its start for a starting one) is shorter than a cold start: a new instance would only split the
 * batches and add a thread competing for the same CPU slots. Past that, the strategy's own rule applies.
 */
export function batchAbsorbs(pool: PoolView, queuedItems: number, now: number): boolean {
  const perRun = pool.maxBatchItems ?? 1;
  if (perRun <= 1) return false;
  let slots = 0;
  let wait = Number.POSITIVE_INFINITY;
  for (const i of pool.instances) {
    if (i.state === 'idle' || i.state === 'busy') {
      slots += Math.max(1, i.concurrency);
      wait = Math.min(wait, i.inflight < i.concurrency ? 0 : pool.serviceMs);
    } else if (i.state === 'starting') {
      slots += Math.max(1, i.concurrency);
      wait = Math.min(wait, Math.max(0, i.createdAt + pool.coldStartMs - now));
    }
  }
  // `<=`: an instance that began starting this very tick is ready no later than one started now would be.
  return slots > 0 && queuedItems <= slots * perRun && wait <= pool.coldStartMs;
}
