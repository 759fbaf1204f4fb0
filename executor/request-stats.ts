// What a request's end adds to its pool's counters (ModelStats, Triton's statistics extension) and the event the
// observers hear (onRequestDone), built here once for the three ways a request ends: refused or dropped before it
// ran, failed in or after its run, answered.
import type { Manifest, RequestDoneEvent } from '../core/index.ts';
import type { ModelStats } from './types.ts';

const ns = (ms: number) => Math.round(ms * 1e6);

/** A request that ran: its run's size and time, and whether it waited for the instance's cold start. */
export interface RunShare {
  /** Time from arrival to the start of its run. */
  queueMs: number;
  /** The run's time (a failed run: how long it ran). */
  computeMs: number;
  batchSize: number;
  memoryMb: number;
  coldStart: boolean;
}

/** This request's share of its run, rounded up to 1 ms; a request that never ran is billed nothing. */
function billed(ok: boolean, computeMs: number, batchSize: number): number {
  // Time an instance spent on the request is billed even when it failed (Lambda bills timeouts).
  return ok || computeMs > 0 ? Math.max(1, Math.ceil(computeMs / batchSize)) : 0;
}

/** A request that never ran (refused, expired, cancelled, dropped with its pool): counted as failed. */
export function neverRan(
  stats: ModelStats,
  m: Manifest,
  o: { arrivedAt: number; now: number; reason: 'REJECTED' | 'CANCELED' | 'OTHER'; code?: string; memoryMb: number },
): RequestDoneEvent {
  stats.fail.count++;
  stats.fail.ns += ns(o.now - o.arrivedAt);
  return {
    name: m.name,
    version: m.version,
    ok: false,
    reason: o.reason,
    ...(o.code !== undefined ? { code: o.code } : {}),
    queueMs: o.now - o.arrivedAt,
    computeMs: 0,
    billedMs: 0,
    memoryMb: o.memoryMb,
    batchSize: 0,
    coldStart: false,
    at: o.now,
  };
}

/** A request whose run failed, or whose share of a run could not be answered (split, size): counted as failed. */
export function runFailed(
  stats: ModelStats,
  m: Manifest,
  o: RunShare & { arrivedAt: number; now: number; code: string },
): RequestDoneEvent {
  stats.fail.count++;
  stats.fail.ns += ns(o.now - o.arrivedAt);
  return {
    name: m.name,
    version: m.version,
    ok: false,
    reason: o.code === 'INSTANCE_FAILED' || o.code === 'TIMEOUT' ? 'BACKEND' : 'OTHER',
    code: o.code,
    queueMs: o.queueMs,
    computeMs: o.computeMs,
    billedMs: billed(false, o.computeMs, o.batchSize),
    memoryMb: o.memoryMb,
    batchSize: o.batchSize,
    coldStart: o.coldStart,
    at: o.now,
  };
}

/** An answered request: success, queue and the run's three parts (input, infer, output) counted. */
export function answered(
  stats: ModelStats,
  m: Manifest,
  o: RunShare & { arrivedAt: number; now: number; inputMs: number; outputMs: number; source: 'online' | 'batch'; coldStartMs?: number },
): RequestDoneEvent {
  stats.inferenceCount++;
  stats.lastInference = Date.now();
  stats.success.count++;
  stats.success.ns += ns(o.now - o.arrivedAt);
  stats.queue.count++;
  stats.queue.ns += ns(o.queueMs);
  stats.computeInfer.count++;
  // The three parts add up to the run as the host saw it (thread hop counted in compute_infer).
  stats.computeInfer.ns += ns(Math.max(0, o.computeMs - o.inputMs - o.outputMs));
  stats.computeInput.count++;
  stats.computeInput.ns += ns(o.inputMs);
  stats.computeOutput.count++;
  stats.computeOutput.ns += ns(o.outputMs);
  stats.bySource![o.source]++;
  return {
    name: m.name,
    version: m.version,
    ok: true,
    queueMs: o.queueMs,
    computeMs: o.computeMs,
    billedMs: billed(true, o.computeMs, o.batchSize),
    memoryMb: o.memoryMb,
    batchSize: o.batchSize,
    coldStart: o.coldStart,
    ...(o.coldStart && o.coldStartMs !== undefined ? { coldStartMs: o.coldStartMs } : {}),
    at: o.now,
  };
}

/** A run's cold start, once per instance: counted when a request of its first run waited for it. */
export function coldStarted(stats: ModelStats, coldStartMs: number): void {
  stats.coldStarts++;
  stats.coldStartNs += ns(coldStartMs);
}
