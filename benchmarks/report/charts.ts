// Charts without a browser: a vega-lite spec is compiled to vega, rendered to SVG by a headless View,
// and rasterised to PNG by resvg with a system font, so the labels show on a machine with no display.
import fs from 'node:fs';
import { compile, type TopLevelSpec } from 'vega-lite';
import { parse, View } from 'vega';
import { Resvg } from '@resvg/resvg-js';
import type { ColdWarmRow, StrategyRow, ThroughputRow } from './report.ts';
import type { KeepAliveRow } from '../suites/keep-alive.ts';

/** Fonts tried in order; the first that exists is the chart's font. DejaVu ships with Debian's fontconfig. */
const FONT_CANDIDATES = [
  ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', 'DejaVu Sans'],
  ['/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf', 'Liberation Sans'],
  ['/usr/share/fonts/truetype/freefont/FreeSans.ttf', 'FreeSans'],
] as const;

function chartFont(): { family: string; files: string[] } {
  for (const [file, family] of FONT_CANDIDATES) {
    if (fs.existsSync(file)) return { family, files: [file] };
  }
  // No known font file: resvg falls back to whatever loadSystemFonts finds (text may not render; the PNG is still valid).
  return { family: 'sans-serif', files: [] };
}

/** Renders a vega-lite spec to a PNG buffer. Font and background are set here so every chart looks the same. */
export async function renderPng(spec: TopLevelSpec, opts: { scale?: number } = {}): Promise<Buffer> {
  const font = chartFont();
  const withConfig = {
    background: 'white',
    ...spec,
    config: { font: font.family, ...(spec as { config?: object }).config },
  } as TopLevelSpec;
  const vgSpec = compile(withConfig).spec;
  const view = new View(parse(vgSpec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    const resvg = new Resvg(svg, {
      fitTo: { mode: 'zoom', value: opts.scale ?? 2 },
      font: { fontFiles: font.files, loadSystemFonts: font.files.length === 0, defaultFontFamily: font.family },
      background: 'white',
    });
    return resvg.render().asPng();
  } finally {
    view.finalize();
  }
}

/** Writes a chart and returns the file's path. */
export async function writeChart(file: string, spec: TopLevelSpec): Promise<string> {
  const png = await renderPng(spec);
  await fs.promises.writeFile(file, png);
  return file;
}

/** True when the buffer starts with the PNG signature and holds an IHDR chunk with a non-zero size. */
export function isPng(buf: Buffer): boolean {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (buf.length < 24 || sig.some((b, i) => buf[i] !== b)) return false;
  if (buf.toString('ascii', 12, 16) !== 'IHDR') return false;
  return buf.readUInt32BE(16) > 0 && buf.readUInt32BE(20) > 0;
}

// One spec builder per suite. Each takes the report rows and returns a vega-lite spec.

/**
 * Latency bars on a log scale, grouped along x by `group` with one bar per `series` value in each group.
 * Rows without a finite positive `ms` are left out (a log scale has no place for them).
 */
function groupedLogBars<G extends string, S extends string>(
  title: string,
  group: G,
  series: S,
  seriesTitle: string,
  rows: Array<Record<G | S, string> & { ms: number }>,
): TopLevelSpec {
  const values = rows.filter((v) => Number.isFinite(v.ms) && v.ms > 0);
  // Bars on a log scale need a floor other than 0; a tenth of the smallest value keeps every bar visible.
  const floor = Math.max(0.01, Math.min(...values.map((v) => v.ms), 1) / 10);
  return {
    title,
    data: { values: values.map((v) => ({ ...v, floor })) },
    width: { step: 36 },
    height: 300,
    mark: 'bar',
    encoding: {
      x: { field: group, type: 'nominal', title: null, axis: { labelAngle: 0 } },
      xOffset: { field: series, type: 'nominal' },
      y: { field: 'ms', type: 'quantitative', scale: { type: 'log', domainMin: floor }, title: 'latency (ms)' },
      y2: { field: 'floor' },
      color: { field: series, type: 'nominal', title: seriesTitle },
    },
  };
}

export function coldWarmChart(rows: ColdWarmRow[]): TopLevelSpec {
  return groupedLogBars(
    'Cold against warm latency over HTTP (log scale)',
    'model',
    'kind',
    'call',
    rows.flatMap((r) => [
      { model: r.model, kind: '1 cold from store', ms: r.coldFromStoreMs },
      { model: r.model, kind: '2 cold from cache', ms: r.coldFromCacheMs },
      { model: r.model, kind: '3 warm p50', ms: r.warmP50Ms },
      { model: r.model, kind: '4 warm p99', ms: r.warmP99Ms },
    ]),
  );
}

export function coldBreakdownChart(rows: ColdWarmRow[]): TopLevelSpec {
  const parts = ['queueMs', 'acquireMs', 'fetchMs', 'loadMs', 'firstRunMs', 'otherMs'] as const;
  const values = rows.flatMap((r) =>
    (['store', 'cache'] as const).flatMap((kind) =>
      parts.map((p, i) => ({
        call: `${r.model} (${kind})`,
        part: `${i + 1} ${p.replace('Ms', '')}`,
        index: i,
        ms: Math.max(0, r.breakdown[kind][p] || 0),
      })),
    ),
  );
  return {
    title: 'Where a cold start goes (median ms)',
    data: { values },
    width: 520,
    height: { step: 22 },
    mark: 'bar',
    encoding: {
      y: { field: 'call', type: 'nominal', title: null, sort: null },
      x: { field: 'ms', type: 'quantitative', stack: 'zero', title: 'ms' },
      color: { field: 'part', type: 'nominal', title: 'part' },
      order: { field: 'index', type: 'quantitative' },
    },
  };
}

/** One panel per model; one line per server and protocol, raw (no HTTP) drawn in each as the ceiling. */
function throughputSpec(rows: ThroughputRow[], title: string, y: Record<string, unknown>): TopLevelSpec {
  const values = rows.map((r) => ({ ...r, series: r.server === 'raw' ? 'raw (session.run)' : `${r.server} ${r.protocol}` }));
  return {
    title,
    data: { values },
    facet: { field: 'model', type: 'nominal', title: null },
    columns: 2,
    spec: {
      width: 300,
      height: 220,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'concurrency', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'concurrency' },
        y,
        color: { field: 'series', type: 'nominal', title: 'server' },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

export function throughputChart(rows: ThroughputRow[]): TopLevelSpec {
  return throughputSpec(rows, 'Throughput against concurrency (servers taking turns)', {
    field: 'inferPerSec',
    type: 'quantitative',
    title: 'inferences / s',
  });
}

export function throughputLatencyChart(rows: ThroughputRow[]): TopLevelSpec {
  return throughputSpec(rows, 'p99 latency against concurrency', {
    field: 'p99Ms',
    type: 'quantitative',
    scale: { type: 'log' },
    title: 'p99 ms',
  });
}

export function strategiesChart(rows: StrategyRow[]): TopLevelSpec {
  return groupedLogBars(
    'Scheduling strategies on a mixed workload: latency per priority class (log scale)',
    'strategy',
    'metric',
    'class',
    rows.flatMap((r) => [
      { strategy: r.strategy, metric: 'high p50', ms: r.high.p50Ms },
      { strategy: r.strategy, metric: 'high p99', ms: r.high.p99Ms },
      { strategy: r.strategy, metric: 'low p50', ms: r.low.p50Ms },
      { strategy: r.strategy, metric: 'low p99', ms: r.low.p99Ms },
    ]),
  );
}

export function keepAliveChart(rows: KeepAliveRow[]): TopLevelSpec {
  const values = rows.map((r) => ({
    policy: r.policy,
    kind: r.policy.startsWith('fixed') ? 'fixed' : 'learned',
    coldStartPct: r.coldStartRate * 100,
    idleGbSeconds: r.idleGbSeconds,
    order: r.policy.startsWith('fixed-') ? Number(r.policy.slice(6, -1)) : 0,
  }));
  return {
    title: 'Keep-alive trade-off: cold starts against idle memory',
    data: { values },
    width: 460,
    height: 300,
    layer: [
      {
        transform: [{ filter: "datum.kind === 'fixed'" }],
        mark: { type: 'line', strokeDash: [4, 3], color: '#888' },
        encoding: {
          x: { field: 'coldStartPct', type: 'quantitative' },
          y: { field: 'idleGbSeconds', type: 'quantitative' },
          order: { field: 'order', type: 'quantitative' },
        },
      },
      {
        mark: { type: 'point', filled: true, size: 120 },
        encoding: {
          x: { field: 'coldStartPct', type: 'quantitative', title: 'calls that start cold (%)', scale: { zero: true } },
          y: { field: 'idleGbSeconds', type: 'quantitative', title: 'idle GB-s', scale: { zero: true } },
          color: { field: 'policy', type: 'nominal' },
          shape: { field: 'kind', type: 'nominal' },
        },
      },
      {
        mark: { type: 'text', dx: 8, dy: -8, align: 'left' },
        encoding: {
          x: { field: 'coldStartPct', type: 'quantitative' },
          y: { field: 'idleGbSeconds', type: 'quantitative' },
          text: { field: 'policy' },
        },
      },
    ],
  };
}
