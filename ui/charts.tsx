// Charts at fixed sizes (no layout jump while figures update): uPlot for series over time, plain SVG for the
// keep-alive histogram and the cost bars (a handful of rectangles each).
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

/** A series colour that reads on both themes. */
const COLORS = ['#2f7de1', '#e8590c', '#2b8a3e', '#ae3ec9'];

export interface SparkSeries {
  label: string;
  values: (number | null)[];
}

/** A tiny line chart: x is time in seconds, no axes; the last value of each series is printed beside it. */
export function Sparkline(props: { xs: number[]; series: SparkSeries[]; width?: number; height?: number; label: string }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const width = props.width ?? 140;
  const height = props.height ?? 36;
  const data = [props.xs, ...props.series.map((s) => s.values)] as uPlot.AlignedData;
  useEffect(() => {
    if (!el.current) return;
    plot.current = new uPlot(
      {
        width,
        height,
        legend: { show: false },
        cursor: { show: false },
        select: { show: false, left: 0, top: 0, width: 0, height: 0 },
        axes: [{ show: false }, { show: false }],
        scales: { x: { time: false } },
        series: [
          {},
          ...props.series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false } })),
        ],
      },
      data,
      el.current,
    );
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
    // The plot is made once per mount; data updates below.
  }, [props.series.length]);
  useEffect(() => {
    plot.current?.setData(data);
  });
  // Until two points exist there is no line: say so, in the same box.
  return (
    <div class="spark" style={{ width: `${width}px`, height: `${height}px` }} role="img" aria-label={props.label}>
      <div ref={el} />
      {props.xs.length < 2 && <span class="spark-empty">history every 10 s</span>}
    </div>
  );
}

/** Cold and warm requests of one model: latency (ms) against time, one dot per request. */
export function ColdWarmChart(props: { points: { at: number; ms: number; cold: boolean }[]; width: number }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const height = 220;
  const pts = [...props.points].sort((a, b) => a.at - b.at);
  const data: uPlot.AlignedData = [
    pts.map((p) => p.at / 1000),
    pts.map((p) => (p.cold ? p.ms : null)),
    pts.map((p) => (p.cold ? null : p.ms)),
  ];
  useEffect(() => {
    if (!el.current) return;
    const dots = (color: string, label: string): uPlot.Series => ({
      label,
      stroke: color,
      fill: color,
      paths: () => null,
      points: { show: true, size: 7, stroke: color, fill: color },
    });
    plot.current = new uPlot(
      {
        width: props.width,
        height,
        legend: { show: true },
        scales: { y: { distr: 3 } },
        axes: [
          { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' } },
          { stroke: 'currentColor', label: 'ms (log)', grid: { stroke: 'rgba(128,128,128,0.2)' } },
        ],
        series: [{}, dots('#e8590c', 'cold'), dots('#2f7de1', 'warm')],
      },
      data,
      el.current,
    );
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [props.width]);
  useEffect(() => {
    plot.current?.setData(data);
  });
  return (
    <div
      class="coldwarm"
      ref={el}
      style={{ width: `${props.width}px`, minHeight: `${height + 40}px` }}
      role="img"
      aria-label="cold and warm request latencies"
    />
  );
}

const fmtMs = (ms: number) =>
  ms >= 60_000 ? `${+(ms / 60_000).toFixed(1)} min` : ms >= 1000 ? `${+(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;

/**
 * The keep-alive picture: the idle-time histogram (bars, one per bin) with the pre-warm window (nothing kept warm
 * from the end of the last request to prewarmMs) and the keep-alive window (warm from prewarmMs to warmUntilMs)
 * drawn over it: the idle times that fall inside the shaded band find a warm instance.
 */
export function KeepAliveHistogram(props: {
  bins: number[];
  binMs: number;
  rangeMs: number;
  prewarmMs: number;
  warmUntilMs: number;
  idleForMs?: number;
  width: number;
}) {
  const { bins, binMs, rangeMs, width } = props;
  const height = 200;
  const pad = { l: 36, r: 8, t: 10, b: 28 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  // Show up to the last bin with a count or the window's end, whichever is further (at least 10 bins).
  let last = 0;
  bins.forEach((c, i) => c > 0 && (last = i));
  const shownMs = Math.min(rangeMs, Math.max((last + 2) * binMs, props.warmUntilMs * 1.1, binMs * 10));
  const nBins = Math.max(1, Math.ceil(shownMs / binMs));
  const max = Math.max(1, ...bins.slice(0, nBins));
  const x = (ms: number) => pad.l + (Math.min(ms, shownMs) / shownMs) * w;
  const bw = Math.max(1, w / nBins - 1);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * shownMs);
  return (
    <svg
      class="hist"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label="idle-time histogram with the keep-alive windows"
    >
      <rect
        class="window-keep"
        data-testid="keep-window"
        x={x(props.prewarmMs)}
        y={pad.t}
        width={Math.max(1, x(props.warmUntilMs) - x(props.prewarmMs))}
        height={h}
      />
      {props.prewarmMs > 0 && (
        <rect class="window-prewarm" data-testid="prewarm-window" x={pad.l} y={pad.t} width={x(props.prewarmMs) - pad.l} height={h} />
      )}
      {bins.slice(0, nBins).map((c, i) =>
        c > 0 ? (
          <rect
            class="bar"
            data-testid="bin"
            data-count={c}
            x={pad.l + i * (w / nBins)}
            y={pad.t + h - (c / max) * h}
            width={bw}
            height={(c / max) * h}
          >
            <title>{`${fmtMs(i * binMs)}–${fmtMs((i + 1) * binMs)}: ${c}`}</title>
          </rect>
        ) : null,
      )}
      {props.idleForMs !== undefined && props.idleForMs > 0 && props.idleForMs < shownMs && (
        <line class="now" x1={x(props.idleForMs)} x2={x(props.idleForMs)} y1={pad.t} y2={pad.t + h} />
      )}
      <line class="axis" x1={pad.l} x2={pad.l + w} y1={pad.t + h} y2={pad.t + h} />
      {ticks.map((t) => (
        <text class="tick" x={x(t)} y={height - 8} text-anchor="middle">
          {fmtMs(t)}
        </text>
      ))}
      <text class="tick" x={4} y={pad.t + 10}>
        {max}
      </text>
    </svg>
  );
}

export interface BarPart {
  label: string;
  value: number;
}

/** One horizontal stacked bar per row, on a shared scale, with a marker for each row's comparison value. */
export function StackedBars(props: { rows: { label: string; parts: BarPart[]; marker?: number }[]; width: number }) {
  const rowH = 26;
  const pad = { l: 110, r: 12, t: 6 };
  const height = pad.t + props.rows.length * rowH + 24;
  const w = props.width - pad.l - pad.r;
  const max = Math.max(
    1e-12,
    ...props.rows.map((r) =>
      Math.max(
        r.marker ?? 0,
        r.parts.reduce((a, p) => a + p.value, 0),
      ),
    ),
  );
  const names = props.rows[0]?.parts.map((p) => p.label) ?? [];
  return (
    <svg
      class="bars"
      width={props.width}
      height={height}
      viewBox={`0 0 ${props.width} ${height}`}
      role="img"
      aria-label="cost per model, stacked by kind"
    >
      {props.rows.map((r, i) => {
        let x0 = pad.l;
        const y = pad.t + i * rowH;
        return (
          <g>
            <text class="tick" x={pad.l - 6} y={y + 15} text-anchor="end">
              {r.label.length > 16 ? `${r.label.slice(0, 15)}…` : r.label}
            </text>
            {r.parts.map((p, j) => {
              const bw = (p.value / max) * w;
              const rect = (
                <rect class={`part part-${j}`} data-testid="bar-part" x={x0} y={y + 3} width={Math.max(0, bw)} height={rowH - 8}>
                  <title>{`${p.label}: $${p.value.toPrecision(3)}`}</title>
                </rect>
              );
              x0 += bw;
              return rect;
            })}
            {r.marker !== undefined && (
              <line class="marker" x1={pad.l + (r.marker / max) * w} x2={pad.l + (r.marker / max) * w} y1={y} y2={y + rowH - 2} />
            )}
          </g>
        );
      })}
      <g>
        {names.map((n, j) => (
          <g>
            <rect class={`part part-${j}`} x={pad.l + j * 90} y={height - 16} width={10} height={10} />
            <text class="tick" x={pad.l + j * 90 + 14} y={height - 7}>
              {n}
            </text>
          </g>
        ))}
        <line class="marker" x1={pad.l + names.length * 90} x2={pad.l + names.length * 90} y1={height - 18} y2={height - 4} />
        <text class="tick" x={pad.l + names.length * 90 + 5} y={height - 7}>
          always on
        </text>
      </g>
    </svg>
  );
}
