// The executor's observer hooks: what happens to requests, runs and instances, as the autoscaler, the cost ledger
// and the metrics hear it. In core because the ledger (which may use only core) subscribes as well as scaling.

export type InstanceState = 'starting' | 'idle' | 'busy' | 'retiring';

/** A request's end, answered or not. */
export interface RequestDoneEvent {
  name: string;
  version: number;
  ok: boolean;
  /** Failure reason in Triton's vocabulary: REJECTED, CANCELED, BACKEND, OTHER. */
  reason?: 'REJECTED' | 'CANCELED' | 'BACKEND' | 'OTHER';
  code?: string;
  queueMs: number;
  computeMs: number;
  /** This request's share of its run, rounded up to 1 ms. */
  billedMs: number;
  memoryMb: number;
  batchSize: number;
  coldStart: boolean;
  coldStartMs?: number;
  at: number;
}

/** Hooks the executor calls as things happen; the cost ledger, metrics and autoscaler subscribe. */
export interface ExecutorObserver {
  onRequestQueued?(e: { name: string; version: number; at: number }): void;
  onRequestDone?(e: RequestDoneEvent): void;
  /** One run. `firstRun`: the instance's first, which includes the runtime's one-time warm-up. */
  onRun?(e: { name: string; version: number; batchSize: number; computeMs: number; at: number; firstRun?: boolean }): void;
  onInstanceState?(e: {
    name: string;
    version: number;
    instanceId: string;
    from: InstanceState | 'none';
    to: InstanceState | 'gone';
    memoryMb: number;
    at: number;
  }): void;
}

/** Sends every event to each observer in turn. */
export function fanOutObserver(...observers: ExecutorObserver[]): ExecutorObserver {
  return {
    onRequestQueued: (e) => observers.forEach((o) => o.onRequestQueued?.(e)),
    onRequestDone: (e) => observers.forEach((o) => o.onRequestDone?.(e)),
    onRun: (e) => observers.forEach((o) => o.onRun?.(e)),
    onInstanceState: (e) => observers.forEach((o) => o.onInstanceState?.(e)),
  };
}
