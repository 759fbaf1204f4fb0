// `hearth bench cold-warm MODEL`: cold starts (unload, then one request) against warm requests of one model on a
// running Hearth: percentiles of each, the cold start's parts from the response headers, and a small chart.
import type { HearthClient, InferInputs, InferTiming } from '../client/index.ts';
import { fmtMs, table } from './output.ts';

export interface BenchResult {
  model: string;
  cold: { wallMs: number[]; coldStartMs: number[]; breakdown: Record<string, number>; coldSeen: number };
  warm: { wallMs: number[] };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export async function benchColdWarm(
  client: HearthClient,
  model: string,
  inputs: InferInputs,
  o: { cold: number; warm: number; onStep?: (what: string) => void },
): Promise<BenchResult> {
  const cold: BenchResult['cold'] = { wallMs: [], coldStartMs: [], breakdown: {}, coldSeen: 0 };
  const sums: Record<string, number> = {};
  const one = async (): Promise<{ ms: number; timing: InferTiming }> => {
    const t0 = performance.now();
    const r = await client.infer(model, inputs);
    return { ms: performance.now() - t0, timing: r.timing };
  };
  for (let i = 0; i < o.cold; i++) {
    await client.models.unload(model);
    const { ms, timing } = await one();
    cold.wallMs.push(ms);
    if (timing.coldStart) cold.coldSeen++;
    if (timing.coldStartMs !== undefined) cold.coldStartMs.push(timing.coldStartMs);
    for (const [k, v] of Object.entries(timing.breakdown ?? {})) if (typeof v === 'number') sums[k] = (sums[k] ?? 0) + v;
    o.onStep?.(`cold ${i + 1}/${o.cold}`);
  }
  for (const [k, v] of Object.entries(sums)) cold.breakdown[k] = v / Math.max(1, cold.coldSeen);
  await one(); // warm it up once more: the last cold run left an instance, but a config may retire it
  const warm: BenchResult['warm'] = { wallMs: [] };
  for (let i = 0; i < o.warm; i++) {
    warm.wallMs.push((await one()).ms);
    if ((i + 1) % 10 === 0) o.onStep?.(`warm ${i + 1}/${o.warm}`);
  }
  return { model, cold, warm };
}

const PS = [50, 90, 99] as const;

export function summary(r: BenchResult): Record<string, Record<string, number>> {
  const s = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return {
      n: xs.length,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      mean: xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length),
    };
  };
  return { cold: s(r.cold.wallMs), warm: s(r.warm.wallMs) };
}

/** Tables and a bar chart (log scale, so a 2 ms warm bar still shows beside a 300 ms cold one). */
export function benchText(r: BenchResult, bar: (s: string) => string = (s) => s): string {
  const s = summary(r);
  const out: string[] = [];
  out.push(
    `${r.model}: ${r.cold.wallMs.length} cold starts (${r.cold.coldSeen} reported cold by the server), ${r.warm.wallMs.length} warm requests`,
  );
  out.push('');
  out.push(
    table(
      ['', 'n', 'p50', 'p90', 'p99', 'mean'],
      ['cold', 'warm'].map((k) => [k, s[k].n, ...PS.map((p) => fmtMs(s[k][`p${p}`])), fmtMs(s[k].mean)]),
    ),
  );
  const parts = Object.entries(r.cold.breakdown);
  if (parts.length) {
    out.push('', 'cold start, mean of its parts (hearth-cold-start-breakdown):');
    out.push(
      table(
        ['part', 'ms'],
        parts.map(([k, v]) => [k, fmtMs(v)]),
      ),
    );
  }
  const rows = PS.flatMap((p) => (['cold', 'warm'] as const).map((k) => ({ label: `${k} p${p}`, v: s[k][`p${p}`] })));
  const max = Math.max(...rows.map((x) => x.v));
  const width = 40;
  const scale = (v: number) => (max <= 0 || !(v > 0) ? 0 : Math.max(1, Math.round((Math.log1p(v) / Math.log1p(max)) * width)));
  out.push('', 'latency (log scale):');
  for (const x of rows) out.push(`${x.label.padEnd(9)} ${bar('█'.repeat(scale(x.v))).padEnd(0)} ${fmtMs(x.v)}`);
  return out.join('\n');
}
