// A model's serving settings (PUT /v1/models/{name}/config): the schema, its defaults and a strict validator.
import { hearthError } from './errors.ts';

export type KeepAlivePolicy =
  | { kind: 'fixed'; idleMs: number }
  | {
      kind: 'histogram';
      /** Width of one idle-time bin (paper: 1 minute). */
      binMs: number;
      /** Longest idle time the histogram tracks (paper: 4 hours). */
      rangeMs: number;
      /** Idle-time samples needed before the histogram decides. */
      minSamples: number;
      /** Percentile of idle time at which the pool is warmed again (paper: 5). */
      prewarmPercentile: number;
      /** Percentile of idle time to keep an instance alive to (paper: 99). */
      keepAlivePercentile: number;
      /** Safety margin on both windows, in percent (paper: about 10). */
      marginPct: number;
      /** Keep-alive used while the histogram is not representative. */
      fallbackIdleMs: number;
    };

export const SCHEDULING_STRATEGIES = ['stateless', 'stateful', 'event'] as const;
export type SchedulingStrategy = (typeof SCHEDULING_STRATEGIES)[number];

export interface ModelConfig {
  /** Memory reserved per instance; undefined means derived from the model's size. */
  memoryMb?: number;
  /** Longest a single inference may run before its instance is terminated. */
  timeoutMs: number;
  /** Instances kept warm with no traffic (provisioned concurrency). */
  minInstances: number;
  maxInstances: number;
  /** Requests one instance runs at once. */
  concurrency: number;
  keepAlive: KeepAlivePolicy;
  batching: { maxBatchSize: number; maxQueueDelayMs: number };
  scheduling: { strategy: SchedulingStrategy };
  /** Requests waiting for this model beyond which new ones get 429. */
  maxQueueSize: number;
  /** onnxruntime session options. */
  runtime: { intraOpNumThreads: number; graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all' };
}

export const DEFAULT_HISTOGRAM: Extract<KeepAlivePolicy, { kind: 'histogram' }> = Object.freeze({
  kind: 'histogram',
  binMs: 60_000,
  rangeMs: 14_400_000,
  minSamples: 10,
  prewarmPercentile: 5,
  keepAlivePercentile: 99,
  marginPct: 10,
  fallbackIdleMs: 600_000,
});

export function defaultModelConfig(keepAliveMs = 600_000): ModelConfig {
  return {
    timeoutMs: 30_000,
    minInstances: 0,
    maxInstances: 4,
    concurrency: 1,
    keepAlive: { kind: 'fixed', idleMs: keepAliveMs },
    batching: { maxBatchSize: 16, maxQueueDelayMs: 0 },
    // `event` measured best on the mixed workload of `npm run bench` (docs/performance/decisions.md).
    scheduling: { strategy: 'event' },
    maxQueueSize: 1024,
    runtime: { intraOpNumThreads: 1, graphOptimizationLevel: 'all' },
  };
}

type Rule = { int?: boolean; min: number; max: number };

/** A client's value for an error message: its JSON cut to 80 characters (JSON.stringify overflows on deep nesting). */
function preview(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = '(a value nested too deep to show)';
  }
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}

function checkNumber(path: string, v: unknown, r: Rule): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || (r.int && !Number.isInteger(v)) || v < r.min || v > r.max) {
    throw hearthError(
      'INVALID_CONFIG',
      `${path}: expected ${r.int ? 'an integer' : 'a number'} in [${r.min}, ${r.max}], got ${preview(v)}`,
    );
  }
  return v;
}

function checkObject(path: string, v: unknown, keys: readonly string[]): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw hearthError('INVALID_CONFIG', `${path}: expected an object`);
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) throw hearthError('INVALID_CONFIG', `${path ? path + '.' : ''}${k}: unknown key (allowed: ${keys.join(', ')})`);
  }
  return v as Record<string, unknown>;
}

const TOP_KEYS = [
  'memoryMb',
  'timeoutMs',
  'minInstances',
  'maxInstances',
  'concurrency',
  'keepAlive',
  'batching',
  'scheduling',
  'maxQueueSize',
  'runtime',
] as const;
const HIST_KEYS = [
  'kind',
  'binMs',
  'rangeMs',
  'minSamples',
  'prewarmPercentile',
  'keepAlivePercentile',
  'marginPct',
  'fallbackIdleMs',
] as const;
const DAY = 86_400_000;
export const MAX_HISTOGRAM_BINS = 100_000;

/**
 * Validates a (partial) config patch strictly and merges it over `base`.
 * Unknown keys and out-of-range values throw INVALID_CONFIG naming the field.
 */
export function mergeModelConfig(base: ModelConfig, patch: unknown): ModelConfig {
  const p = checkObject('', patch, TOP_KEYS);
  const out: ModelConfig = structuredClone(base);
  if ('memoryMb' in p)
    out.memoryMb = p.memoryMb === null ? undefined : checkNumber('memoryMb', p.memoryMb, { int: true, min: 16, max: 1_048_576 });
  if ('timeoutMs' in p) out.timeoutMs = checkNumber('timeoutMs', p.timeoutMs, { int: true, min: 1, max: 3_600_000 });
  if ('minInstances' in p) out.minInstances = checkNumber('minInstances', p.minInstances, { int: true, min: 0, max: 1024 });
  if ('maxInstances' in p) out.maxInstances = checkNumber('maxInstances', p.maxInstances, { int: true, min: 1, max: 1024 });
  if ('concurrency' in p) out.concurrency = checkNumber('concurrency', p.concurrency, { int: true, min: 1, max: 1024 });
  if ('maxQueueSize' in p) out.maxQueueSize = checkNumber('maxQueueSize', p.maxQueueSize, { int: true, min: 0, max: 1_000_000 });
  if ('keepAlive' in p) {
    const k = p.keepAlive as Record<string, unknown> | null;
    const kind = k && typeof k === 'object' ? k.kind : undefined;
    if (kind === 'fixed') {
      const f = checkObject('keepAlive', k, ['kind', 'idleMs']);
      out.keepAlive = { kind: 'fixed', idleMs: checkNumber('keepAlive.idleMs', f.idleMs, { int: true, min: 0, max: 7 * DAY }) };
    } else if (kind === 'histogram') {
      const h = checkObject('keepAlive', k, HIST_KEYS);
      const d = DEFAULT_HISTOGRAM;
      const get = (key: keyof typeof d, r: Rule) => (key in h ? checkNumber(`keepAlive.${key}`, h[key], r) : (d[key] as number));
      out.keepAlive = {
        kind: 'histogram',
        binMs: get('binMs', { int: true, min: 1, max: DAY }),
        rangeMs: get('rangeMs', { int: true, min: 1, max: 7 * DAY }),
        minSamples: get('minSamples', { int: true, min: 1, max: 1_000_000 }),
        prewarmPercentile: get('prewarmPercentile', { min: 0, max: 100 }),
        keepAlivePercentile: get('keepAlivePercentile', { min: 0, max: 100 }),
        marginPct: get('marginPct', { min: 0, max: 100 }),
        fallbackIdleMs: get('fallbackIdleMs', { int: true, min: 0, max: 7 * DAY }),
      };
      if (out.keepAlive.prewarmPercentile > out.keepAlive.keepAlivePercentile) {
        throw hearthError('INVALID_CONFIG', 'keepAlive.prewarmPercentile: must not exceed keepAlive.keepAlivePercentile');
      }
      if (out.keepAlive.binMs > out.keepAlive.rangeMs)
        throw hearthError('INVALID_CONFIG', 'keepAlive.binMs: must not exceed keepAlive.rangeMs');
      // The histogram holds one counter per bin for every pool (the paper uses 240).
      if (out.keepAlive.rangeMs / out.keepAlive.binMs > MAX_HISTOGRAM_BINS) {
        throw hearthError(
          'INVALID_CONFIG',
          `keepAlive.binMs: rangeMs / binMs must be at most ${MAX_HISTOGRAM_BINS} bins, got ${Math.round(out.keepAlive.rangeMs / out.keepAlive.binMs)}`,
        );
      }
    } else {
      throw hearthError('INVALID_CONFIG', `keepAlive.kind: expected "fixed" or "histogram", got ${preview(kind)}`);
    }
  }
  if ('batching' in p) {
    const b = checkObject('batching', p.batching, ['maxBatchSize', 'maxQueueDelayMs']);
    if ('maxBatchSize' in b)
      out.batching.maxBatchSize = checkNumber('batching.maxBatchSize', b.maxBatchSize, { int: true, min: 1, max: 4096 });
    if ('maxQueueDelayMs' in b)
      out.batching.maxQueueDelayMs = checkNumber('batching.maxQueueDelayMs', b.maxQueueDelayMs, { min: 0, max: 10_000 });
  }
  if ('scheduling' in p) {
    const s = checkObject('scheduling', p.scheduling, ['strategy']);
    if ('strategy' in s) {
      if (!SCHEDULING_STRATEGIES.includes(s.strategy as SchedulingStrategy)) {
        throw hearthError(
          'INVALID_CONFIG',
          `scheduling.strategy: expected one of ${SCHEDULING_STRATEGIES.join(', ')}, got ${preview(s.strategy)}`,
        );
      }
      out.scheduling.strategy = s.strategy as SchedulingStrategy;
    }
  }
  if ('runtime' in p) {
    const r = checkObject('runtime', p.runtime, ['intraOpNumThreads', 'graphOptimizationLevel']);
    if ('intraOpNumThreads' in r)
      out.runtime.intraOpNumThreads = checkNumber('runtime.intraOpNumThreads', r.intraOpNumThreads, { int: true, min: 1, max: 256 });
    if ('graphOptimizationLevel' in r) {
      const levels = ['disabled', 'basic', 'extended', 'all'] as const;
      if (!levels.includes(r.graphOptimizationLevel as (typeof levels)[number])) {
        throw hearthError('INVALID_CONFIG', `runtime.graphOptimizationLevel: expected one of ${levels.join(', ')}`);
      }
      out.runtime.graphOptimizationLevel = r.graphOptimizationLevel as (typeof levels)[number];
    }
  }
  if (out.minInstances > out.maxInstances)
    throw hearthError('INVALID_CONFIG', `minInstances: ${out.minInstances} exceeds maxInstances ${out.maxInstances}`);
  return out;
}

/** What one node can give a model's instances; a serving config is clamped to it (fitModelConfig). */
export interface NodeCapacity {
  /** CPU cores of the machine (os.availableParallelism()): the most op threads a session may use. */
  cores: number;
  /** Runs at once on the node (EXECUTOR_SLOTS). */
  slots: number;
  /** Memory budget of all instances (EXECUTOR_MEMORY_MB). */
  memoryMb: number;
}

/** One setting the node applies differently from the config, and why. */
export interface ConfigClamp {
  field: string;
  requested: number;
  applied: number;
  /** The node's limit that decided it, in words. */
  because: string;
}

/**
 * The config as this node applies it, and what it changed. `instanceMb` is what one instance reserves (the model's
 * measured or estimated footprint, or more if the config declares more). Op threads are capped by the cores;
 * concurrency by the slots; min/maxInstances by the instances the slots can run (ceil(slots / concurrency)) and
 * the memory budget can hold; memoryMb shows the reservation. Clamping, not refusing: configs live in the shared
 * store and nodes differ in size, so each node applies what it can hold.
 */
export function fitModelConfig(
  config: ModelConfig,
  node: NodeCapacity,
  instanceMb: number,
): { config: ModelConfig; clamped: ConfigClamp[] } {
  const out: ModelConfig = structuredClone(config);
  const clamped: ConfigClamp[] = [];
  const cap = (field: string, requested: number, limit: number, because: string): number => {
    if (requested <= limit) return requested;
    clamped.push({ field, requested, applied: limit, because });
    return limit;
  };
  const cores = Math.max(1, node.cores);
  const slots = Math.max(1, node.slots);
  out.runtime.intraOpNumThreads = cap('runtime.intraOpNumThreads', config.runtime.intraOpNumThreads, cores, `${cores} CPU cores`);
  out.concurrency = cap('concurrency', config.concurrency, slots, `${slots} CPU slots (EXECUTOR_SLOTS)`);
  const bySlots = Math.ceil(slots / out.concurrency);
  const byMemory = Math.max(1, Math.floor(node.memoryMb / instanceMb));
  const because =
    bySlots <= byMemory
      ? `${slots} CPU slots (EXECUTOR_SLOTS) at concurrency ${out.concurrency}`
      : `a ${node.memoryMb} MB budget (EXECUTOR_MEMORY_MB) at ${instanceMb} MB per instance`;
  out.maxInstances = cap('maxInstances', config.maxInstances, Math.min(bySlots, byMemory), because);
  out.minInstances = cap('minInstances', config.minInstances, out.maxInstances, because);
  if (config.memoryMb !== undefined && config.memoryMb < instanceMb) {
    clamped.push({
      field: 'memoryMb',
      requested: config.memoryMb,
      applied: instanceMb,
      because: "the model's footprint (measured at load, else estimated from its size)",
    });
  }
  out.memoryMb = instanceMb;
  return { config: out, clamped };
}

/** One line per clamp: `minInstances 1024 -> 2 (2 CPU slots ...)`, joined with '; '. */
export function describeClamps(clamped: readonly ConfigClamp[]): string {
  return clamped.map((c) => `${c.field} ${c.requested} -> ${c.applied} (${c.because})`).join('; ');
}
