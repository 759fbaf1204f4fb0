// The shapes the dashboard reads (docs/api/*.md describe them).

export interface PoolStatus {
  name: string;
  version: number;
  instances: { starting: number; idle: number; busy: number };
  desiredInstances: number;
  queued: number;
  requests: number;
  failures: number;
  coldStarts: number;
  coldRequests: number;
  ratePerSec: number;
  latencyMs: { p50: number; p95: number; p99: number };
  keepAlive: KeepAliveDecision;
  strategy: string;
  minInstances: number;
  maxInstances: number;
}

export interface KeepAliveDecision {
  policy: 'fixed' | 'histogram' | 'histogram-fallback';
  prewarmMs: number;
  keepAliveMs: number;
  samples?: number;
  outOfRange?: number;
  cv?: number;
  reason?: string;
  idleForMs: number;
  warmFromMs: number;
  warmUntilMs: number;
}

export interface StatusBody {
  at: number;
  models: PoolStatus[];
  node: { slots: number; memoryMb: number; memoryUsedMb: number; stuckRuns: unknown[] };
}

export interface PoolSample {
  name: string;
  version: number;
  ratePerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  coldStarts: number;
}

export interface HistoryPoint {
  at: number;
  pools: PoolSample[];
}

export interface ModelSummary {
  name: string;
  versions: number[];
  latest: number;
}

export interface TensorSpec {
  name: string;
  datatype: string;
  shape: number[];
}

export interface Manifest {
  name: string;
  version: number;
  format: string;
  sizeBytes: number;
  createdAt: string;
  sha256: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export interface KeepAliveView {
  name: string;
  pools: {
    version: number;
    policy: { kind: string; [k: string]: unknown };
    decision: KeepAliveDecision;
    instances: { starting: number; idle: number; busy: number };
    histogram: { binMs: number; rangeMs: number; bins: number[]; samples: number; outOfRange: number };
  }[];
}

export interface RecentRequest {
  version: number;
  at: number;
  totalMs: number;
  queueMs: number;
  computeMs: number;
  coldStart: boolean;
  coldStartMs?: number;
  ok: boolean;
}

export interface CostLine {
  name: string;
  version: number;
  invocations: number;
  computeCost: number;
  requestCost: number;
  idleCost: number;
  storageCost: number;
  totalCost: number;
  coldStarts: number;
  alwaysOn: { gbSeconds: number; cost: number; savings: number };
}

export interface CostReport {
  currency: string;
  from: string;
  to: string;
  total: { totalCost: number; alwaysOn?: { cost: number; savings: number } } & Record<string, unknown>;
  models: CostLine[];
}

export interface JobStatus {
  id: string;
  model: string;
  version: number;
  state: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
  progress: { totalRows: number; doneRows: number; failedRows: number };
  createdAt: string;
  finishedAt: string | null;
  error?: string;
}
