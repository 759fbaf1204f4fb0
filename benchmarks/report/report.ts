// The benchmark report: its JSON shape (report.json), the goals it is read against, and its Markdown rendering
// (report.md). Goals are reported, never asserted: a missed goal says by how much.
import type { MachineInfo } from '../lib/machine.ts';
import type { KeepAliveRow, KeepAliveSuiteResult } from '../suites/keep-alive.ts';

export const SUITES = ['cold-warm', 'throughput', 'strategies', 'keep-alive'] as const;
export type SuiteName = (typeof SUITES)[number];
export type BenchMode = 'full' | 'quick' | 'smoke';

export interface ColdStartBreakdownMs {
  /** Arrival to the start of the cold start (the request waits in its pool's queue). */
  queueMs: number;
  /** Waiting for a pre-spawned worker, or spawning one. */
  acquireMs: number;
  /** Bringing the artifact to local disk (store or cache). */
  fetchMs: number;
  /** Creating the runtime session. */
  loadMs: number;
  /** The first run on the new instance. */
  firstRunMs: number;
  /** Client-observed total minus the parts above: HTTP, decoding, thread hops. */
  otherMs: number;
}

export interface ColdWarmRow {
  model: string;
  format: string;
  sizeBytes: number;
  /** Median client-observed latency of a call that starts a new instance and fetches the artifact from the store. */
  coldFromStoreMs: number;
  /** Same, with the artifact already in the node cache. */
  coldFromCacheMs: number;
  warmP50Ms: number;
  warmP95Ms: number;
  warmP99Ms: number;
  /** Medians of the server's cold-start breakdown; `store` and `cache` for the two kinds of cold call. */
  breakdown: { store: ColdStartBreakdownMs; cache: ColdStartBreakdownMs };
  coldReps: number;
  warmCalls: number;
  /** Direct runtime figures measured in the same run (ONNX only): session create and session.run p50. */
  raw?: { sessionCreateMs: number; firstRunMs: number; runP50Ms: number; runP99Ms: number };
}

export interface ThroughputRow {
  server: 'raw' | 'minimal' | 'hearth';
  model: string;
  protocol: 'json' | 'binary' | 'none';
  concurrency: number;
  inferPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p95Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
  /** Hearth only: mean server-side queue and compute time per request (hearth-queue-ms / hearth-compute-ms). */
  serverQueueMs?: number;
  serverComputeMs?: number;
}

export interface StrategyClassRow {
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

export interface StrategyRow {
  strategy: string;
  /** Requests answered per second over the whole mixed run. */
  throughput: number;
  requests: number;
  errors: number;
  high: StrategyClassRow;
  low: StrategyClassRow;
  /** Instances started cold on the node during the run (its statistics). */
  coldStarts: number;
  /** Per model group: the hot model, the lukewarm ones, the cold arrivals; coldStartRequests counts the answers that
   *  said hearth-cold-start: true (several requests can wait for one new instance). */
  groups: Record<string, StrategyClassRow & { coldStartRequests?: number }>;
  durationMs: number;
}

export interface Goal {
  id: string;
  description: string;
  target: string;
  measured: string;
  /** null when the suite it needs did not run. */
  met: boolean | null;
  /** How far off, in words, when missed. */
  gap?: string;
}

export interface BenchReport {
  schema: 'hearth-bench/1';
  mode: BenchMode;
  startedAt: string;
  finishedAt: string;
  durationSec: number;
  args: string[];
  suites: SuiteName[];
  machine: MachineInfo;
  coldWarm: ColdWarmRow[];
  throughput: ThroughputRow[];
  strategies: StrategyRow[];
  keepAlive: KeepAliveRow[];
  keepAliveDetails?: Omit<KeepAliveSuiteResult, 'rows'>;
  strategiesDetails?: Record<string, unknown>;
  throughputDetails?: Record<string, unknown>;
  goals: Goal[];
  /** Chart files (PNG), relative to the report folder, by suite. */
  charts: Array<{ suite: SuiteName; file: string; title: string }>;
  /** What was skipped or could not be measured, and why. */
  notes: string[];
}

export function emptyReport(mode: BenchMode, args: string[], machine: MachineInfo, suites: SuiteName[]): BenchReport {
  const now = new Date().toISOString();
  return {
    schema: 'hearth-bench/1',
    mode,
    startedAt: now,
    finishedAt: now,
    durationSec: 0,
    args,
    suites,
    machine,
    coldWarm: [],
    throughput: [],
    strategies: [],
    keepAlive: [],
    goals: [],
    charts: [],
    notes: [],
  };
}

const fmt = (x: number | undefined, d = 2) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/** Hearth's throughput over a baseline's, at least `min` times; `short` describes the goal when either is missing. */
function throughputRatioGoal(
  id: string,
  description: string,
  short: string,
  min: number,
  hearth?: ThroughputRow,
  baseline?: ThroughputRow,
): Goal {
  const target = `≥ ${fmt(min)}×`;
  if (!hearth || !baseline) return { id, description: short, target, measured: 'not measured', met: null };
  const ratio = hearth.inferPerSec / baseline.inferPerSec;
  return {
    id,
    description,
    target,
    measured: `${fmt(hearth.inferPerSec, 0)} vs ${fmt(baseline.inferPerSec, 0)} infer/s = ${fmt(ratio)}×`,
    met: ratio >= min,
    gap: ratio >= min ? undefined : `${fmt(ratio, 3)}×, ${fmt((1 - ratio / min) * 100, 1)}% below target`,
  };
}

/** Every model's cold start (`total`) within `max` times its parts (`base`); the worst model decides. */
function coldStartGoal(id: string, description: string, max: number, rows: Array<{ model: string; total: number; base: number }>): Goal {
  const parts = rows.map((p) => ({ ...p, ratio: p.total / p.base }));
  const worst = parts.reduce((a, b) => (b.ratio > a.ratio ? b : a));
  return {
    id,
    description,
    target: `≤ ${fmt(max)}×`,
    measured: parts.map((p) => `${p.model} ${fmt(p.ratio)}× (${fmt(p.total, 1)} / ${fmt(p.base, 1)} ms)`).join('; '),
    met: worst.ratio <= max,
    gap: worst.ratio <= max ? undefined : `worst ${worst.model}: ${fmt(worst.ratio)}×, ${fmt(worst.total - max * worst.base, 1)} ms over`,
  };
}

/** The goals of issue #7, computed from whatever suites ran. */
export function evaluateGoals(r: BenchReport): Goal[] {
  const goals: Goal[] = [];
  const silero = r.coldWarm.find((c) => c.model === 'silero-vad');
  if (silero?.raw) {
    const diff = silero.warmP50Ms - silero.raw.runP50Ms;
    goals.push({
      id: 'warm-p50',
      description: 'Warm p50 over HTTP for silero within 0.5 ms of the raw session.run p50',
      target: '≤ +0.5 ms',
      measured: `${fmt(silero.warmP50Ms, 3)} ms vs raw ${fmt(silero.raw.runP50Ms, 3)} ms (+${fmt(diff, 3)} ms)`,
      met: diff <= 0.5,
      gap: diff <= 0.5 ? undefined : `${fmt(diff - 0.5, 3)} ms over`,
    });
  } else {
    goals.push({
      id: 'warm-p50',
      description: 'Warm p50 over HTTP for silero within 0.5 ms of raw',
      target: '≤ +0.5 ms',
      measured: 'not measured',
      met: null,
    });
  }

  const at16 = (server: string) =>
    r.throughput.find(
      (t) => t.server === server && t.model === 'silero-vad' && t.concurrency === 16 && (t.protocol === 'json' || t.protocol === 'none'),
    );
  const h16 = at16('hearth');
  const m16 = at16('minimal');
  const raw16 = r.throughput.find((t) => t.server === 'raw' && t.model === 'silero-vad' && t.concurrency === 16);
  goals.push(
    throughputRatioGoal(
      'throughput-vs-minimal',
      'Throughput at concurrency 16 (silero, JSON) at least 2× the hand-rolled minimal server',
      'Throughput at c=16 ≥ 2× minimal',
      2,
      h16,
      m16,
    ),
    throughputRatioGoal(
      'throughput-vs-raw',
      'Throughput at concurrency 16 (silero, JSON) at least half of raw session.run',
      'Throughput at c=16 ≥ 0.5× raw',
      0.5,
      h16,
      raw16,
    ),
  );

  const coldRows = r.coldWarm.filter((c) => Number.isFinite(c.coldFromCacheMs) && Number.isFinite(c.breakdown.cache.loadMs));
  if (coldRows.length) {
    goals.push(
      coldStartGoal(
        'cold-from-cache',
        'Cold start from the cache within 1.5× of (session create + first run)',
        1.5,
        coldRows.map((c) => ({ model: c.model, total: c.coldFromCacheMs, base: c.breakdown.cache.loadMs + c.breakdown.cache.firstRunMs })),
      ),
      coldStartGoal(
        'cold-from-store',
        'Cold start from the store within 1.2× of (fetch + session create + first run)',
        1.2,
        coldRows.map((c) => ({
          model: c.model,
          total: c.coldFromStoreMs,
          base: c.breakdown.store.fetchMs + c.breakdown.store.loadMs + c.breakdown.store.firstRunMs,
        })),
      ),
    );
  } else {
    goals.push({
      id: 'cold-from-cache',
      description: 'Cold from cache ≤ 1.5× (load + first run)',
      target: '≤ 1.50×',
      measured: 'not measured',
      met: null,
    });
    goals.push({
      id: 'cold-from-store',
      description: 'Cold from store ≤ 1.2× (fetch + load + first run)',
      target: '≤ 1.20×',
      measured: 'not measured',
      met: null,
    });
  }

  const h = r.keepAlive.find((k) => k.policy === 'histogram');
  const f10 = r.keepAlive.find((k) => k.policy === 'fixed-10m');
  if (h && f10) {
    const fewer = h.coldStarts < f10.coldStarts;
    const less = h.idleGbSeconds < f10.idleGbSeconds;
    const cs = f10.coldStarts ? (h.coldStarts / f10.coldStarts - 1) * 100 : NaN;
    const idle = f10.idleGbSeconds ? (h.idleGbSeconds / f10.idleGbSeconds - 1) * 100 : NaN;
    goals.push({
      id: 'histogram-vs-fixed-10m',
      description: 'histogram keep-alive: fewer cold starts AND less idle GB-s than fixed 10 minutes',
      target: 'both lower',
      measured: `cold starts ${h.coldStarts} vs ${f10.coldStarts} (${cs >= 0 ? '+' : ''}${fmt(cs, 1)}%), idle ${fmt(h.idleGbSeconds, 0)} vs ${fmt(f10.idleGbSeconds, 0)} GB-s (${idle >= 0 ? '+' : ''}${fmt(idle, 1)}%)`,
      met: fewer && less,
      gap:
        fewer && less
          ? undefined
          : [!fewer ? `cold starts ${fmt(cs, 1)}% higher` : '', !less ? `idle GB-s ${fmt(idle, 1)}% higher` : '']
              .filter(Boolean)
              .join(', '),
    });
  } else {
    goals.push({
      id: 'histogram-vs-fixed-10m',
      description: 'histogram beats fixed-10m on cold starts and idle GB-s',
      target: 'both lower',
      measured: 'not measured',
      met: null,
    });
  }
  return goals;
}

function table(headers: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function renderMarkdown(r: BenchReport): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`# Hearth benchmark report`);
  out.push('');
  out.push(`${r.mode} run of ${r.suites.join(', ')} on ${r.startedAt.slice(0, 19).replace('T', ' ')} UTC, ${fmt(r.durationSec, 0)} s.`);
  out.push('');
  out.push('## Machine');
  out.push('');
  out.push(
    table(
      ['CPU', 'cores', 'memory', 'Node', 'onnxruntime-node', 'tfjs', 'OS', 'date', 'load average at start'],
      [
        [
          m.cpuModel,
          m.cores,
          `${m.memoryGiB} GiB`,
          m.node,
          m.onnxruntime,
          m.tfjs,
          `${m.platform} ${m.osRelease}`,
          m.date,
          (m.loadAverage ?? []).join(' / '),
        ],
      ],
    ),
  );
  if ((m.loadAverage?.[0] ?? 0) > m.cores) {
    out.push(
      '',
      `Note: the load average (${m.loadAverage[0]}) exceeded the core count when the run started; other work on this machine slows every figure, Hearth's multi-process paths most.`,
    );
  }
  out.push('');

  out.push('## Goals (reported, not asserted)');
  out.push('');
  out.push(
    table(
      ['goal', 'target', 'measured', 'met', 'gap'],
      r.goals.map((g) => [g.description, g.target, g.measured, g.met === null ? 'n/a' : g.met ? 'yes' : '**no**', g.gap ?? '']),
    ),
  );
  out.push('');

  if (r.suites.includes('cold-warm')) {
    out.push('## cold-warm');
    out.push('');
    out.push(
      'Client-observed latency over HTTP (V2 JSON). Cold figures are medians of the repetitions; warm figures are percentiles over the calls.',
    );
    out.push('');
    out.push(
      table(
        ['model', 'size', 'cold from store ms', 'cold from cache ms', 'warm p50', 'warm p95', 'warm p99', 'raw run p50', 'reps / calls'],
        r.coldWarm.map((c) => [
          c.model,
          `${fmt(c.sizeBytes / 1024 / 1024, 1)} MB`,
          fmt(c.coldFromStoreMs, 1),
          fmt(c.coldFromCacheMs, 1),
          fmt(c.warmP50Ms, 3),
          fmt(c.warmP95Ms, 3),
          fmt(c.warmP99Ms, 3),
          c.raw ? fmt(c.raw.runP50Ms, 3) : '–',
          `${c.coldReps} / ${c.warmCalls}`,
        ]),
      ),
    );
    out.push('');
    out.push(
      'Cold-start breakdown (medians, ms): queue, worker acquire, artifact fetch, session create, first run, and the rest (HTTP, codec, thread hops).',
    );
    out.push('');
    const rows: Array<Array<string | number>> = [];
    for (const c of r.coldWarm) {
      for (const kind of ['store', 'cache'] as const) {
        const b = c.breakdown[kind];
        rows.push([c.model, kind, fmt(b.queueMs), fmt(b.acquireMs), fmt(b.fetchMs), fmt(b.loadMs), fmt(b.firstRunMs), fmt(b.otherMs)]);
      }
      if (c.raw) rows.push([c.model, 'raw runtime', '–', '–', '–', fmt(c.raw.sessionCreateMs), fmt(c.raw.firstRunMs), '–']);
    }
    out.push(table(['model', 'from', 'queue', 'acquire', 'fetch', 'load', 'first run', 'other'], rows));
    out.push('');
  }

  if (r.suites.includes('throughput')) {
    out.push('## throughput');
    out.push('');
    out.push('Closed-loop clients at each concurrency, servers taking turns in the same run (perf_analyzer style). Latency in ms.');
    out.push('');
    out.push(
      table(
        ['model', 'protocol', 'server', 'c', 'infer/s', 'p50', 'p90', 'p95', 'p99', 'errors', 'server queue / compute'],
        r.throughput.map((t) => [
          t.model,
          t.protocol,
          t.server,
          t.concurrency,
          fmt(t.inferPerSec, 0),
          fmt(t.p50Ms, 3),
          fmt(t.p90Ms, 3),
          fmt(t.p95Ms, 3),
          fmt(t.p99Ms, 3),
          t.errors,
          t.serverQueueMs !== undefined ? `${fmt(t.serverQueueMs, 3)} / ${fmt(t.serverComputeMs, 3)}` : '',
        ]),
      ),
    );
    out.push('');
    out.push('Ratios (infer/s): hearth / minimal and hearth / raw at each concurrency.');
    out.push('');
    const ratioRows: Array<Array<string | number>> = [];
    const keys = new Set(r.throughput.filter((t) => t.server === 'hearth').map((t) => `${t.model}|${t.protocol}|${t.concurrency}`));
    for (const k of keys) {
      const [model, protocol, c] = k.split('|');
      const h = r.throughput.find(
        (t) => t.server === 'hearth' && t.model === model && t.protocol === protocol && t.concurrency === Number(c),
      )!;
      const mm = r.throughput.find(
        (t) => t.server === 'minimal' && t.model === model && t.protocol === protocol && t.concurrency === Number(c),
      );
      const raw = r.throughput.find((t) => t.server === 'raw' && t.model === model && t.concurrency === Number(c));
      ratioRows.push([
        model,
        protocol,
        c,
        mm ? fmt(h.inferPerSec / mm.inferPerSec) : '–',
        raw ? fmt(h.inferPerSec / raw.inferPerSec) : '–',
      ]);
    }
    out.push(table(['model', 'protocol', 'c', 'hearth/minimal', 'hearth/raw'], ratioRows));
    out.push('');
  }

  if (r.suites.includes('strategies')) {
    out.push('## strategies');
    out.push('');
    const d = r.strategiesDetails as { workload?: string } | undefined;
    if (d?.workload) out.push(d.workload, '');
    out.push(
      table(
        ['strategy', 'throughput req/s', 'requests', 'errors', 'cold starts', 'high p50', 'high p99', 'low p50', 'low p99'],
        r.strategies.map((s) => [
          s.strategy,
          fmt(s.throughput, 0),
          s.requests,
          s.errors,
          s.coldStarts,
          fmt(s.high.p50Ms),
          fmt(s.high.p99Ms),
          fmt(s.low.p50Ms),
          fmt(s.low.p99Ms),
        ]),
      ),
    );
    out.push('');
    const gRows: Array<Array<string | number>> = [];
    for (const s of r.strategies)
      for (const [g, v] of Object.entries(s.groups))
        gRows.push([s.strategy, g, v.requests, v.errors, v.coldStartRequests ?? '–', fmt(v.p50Ms), fmt(v.p99Ms)]);
    out.push(table(['strategy', 'group', 'requests', 'errors', 'requests that waited for a cold start', 'p50', 'p99'], gRows));
    out.push('');
  }

  if (r.suites.includes('keep-alive')) {
    out.push('## keep-alive');
    out.push('');
    const d = r.keepAliveDetails;
    if (d) {
      out.push(
        `Trace: ${d.trace.functions} functions, ${d.trace.invocations} invocations over ${d.trace.durationHours} h (seed ${d.trace.seed}); ` +
          `${d.trace.patterns.periodic} periodic, ${d.trace.patterns.poisson} Poisson, ${d.trace.patterns.bursty} bursty; ` +
          `${pct(d.trace.shareAtMostHourly)} invoked at most hourly, ${pct(d.trace.shareAtMostPerMinute)} at most once a minute; ` +
          `rates span ${fmt(d.trace.rateOrdersOfMagnitude, 1)} orders of magnitude; the busiest 20% of functions make ${pct(d.trace.top20PctShareOfInvocations)} of calls.`,
      );
      out.push('');
      out.push(
        `Driver: ${d.driver}. Cost model (${d.costModelSource}): ${d.costModels.map((c) => `${c.model} cold ${fmt(c.coldFromCacheMs, 1)} ms, service ${fmt(c.serviceMs, 3)} ms`).join('; ')}.`,
      );
      out.push('');
    }
    out.push(
      table(
        [
          'policy',
          'cold-start rate',
          'cold starts',
          'idle GB-s',
          'total cost USD',
          'always-on cost USD',
          'mean per-function cold rate',
          'p75 per-function',
        ],
        r.keepAlive.map((k) => [
          k.policy,
          pct(k.coldStartRate),
          k.coldStarts,
          fmt(k.idleGbSeconds, 0),
          k.totalCost.toFixed(4),
          k.alwaysOnCost !== undefined ? k.alwaysOnCost.toFixed(4) : '–',
          pct(k.meanFunctionColdStartRate),
          pct(k.p75FunctionColdStartRate),
        ]),
      ),
    );
    out.push('');
    if (d?.histogramVsFixed10m) {
      const v = d.histogramVsFixed10m;
      out.push(
        `histogram vs fixed-10m: ${v.fewerColdStarts ? 'fewer' : 'not fewer'} cold starts (×${fmt(v.coldStartRatio)}), ${v.lessIdle ? 'less' : 'not less'} idle GB-s (×${fmt(v.idleRatio)}).`,
      );
      out.push('');
    }
    const h = r.keepAlive.find((k) => k.policy === 'histogram');
    if (h) {
      // Dominance: no worse on both axes and better on one. Tells whether the learned policy sits below the fixed curve.
      const dominated = r.keepAlive.filter(
        (k) =>
          k.policy.startsWith('fixed') &&
          h.coldStarts <= k.coldStarts &&
          h.idleGbSeconds <= k.idleGbSeconds &&
          (h.coldStarts < k.coldStarts || h.idleGbSeconds < k.idleGbSeconds),
      );
      out.push(
        dominated.length
          ? `histogram dominates ${dominated.map((k) => k.policy).join(', ')} (fewer or equal cold starts and idle GB-s).`
          : 'histogram dominates none of the fixed policies: it trades one axis for the other.',
      );
      out.push('');
    }
  }

  if (r.charts.length) {
    out.push('## Charts');
    out.push('');
    for (const c of r.charts) out.push(`![${c.title}](${c.file})`, '');
  }
  if (r.notes.length) {
    out.push('## Notes');
    out.push('');
    for (const n of r.notes) out.push(`- ${n}`);
    out.push('');
  }
  return out.join('\n');
}
