// `npm run bench`: runs the benchmark suites and writes report.json, report.md and PNG charts to
// benchmarks/results/<timestamp>/ and a copy to benchmarks/results/latest/.
//   npm run bench                         all four suites at full size (well under 15 min on 2 cores)
//   npm run bench -- --quick              a reduced run (under 3 min)
//   npm run bench -- --suite cold-warm    one suite (repeat the flag or give a comma list for several)
//   npm run bench -- --model my.onnx      adds a model of yours to cold-warm (repeatable; ONNX file or TF.js model.json)
//   npm run bench -- --out DIR            results under DIR/<timestamp>/ and DIR/latest/
//   --smoke                               the smallest run that still exercises every suite (CI smoke test)
//   --seed N                              the keep-alive trace's seed (default 2019)
// Two suites print their figures instead of writing a report, and take their own flags (listed at the top of each file):
//   npm run bench -- --suite hearth-vs-minimal [--rounds 8 ...]   Hearth against a hand-rolled server, same run
//   npm run bench -- --suite jobs-fairness [--rows 30000 ...]     a batch job beside online traffic
// Each runs in a process of its own, as it did when it was started directly.
// One-off scripts kept for the record are in benchmarks/lab/ (npx tsx benchmarks/lab/<name>.ts).
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import type { TopLevelSpec } from 'vega-lite';
import {
  coldBreakdownChart,
  coldWarmChart,
  keepAliveChart,
  strategiesChart,
  throughputChart,
  throughputLatencyChart,
  writeChart,
} from './report/charts.ts';
import { describeMachine } from './lib/machine.ts';
import { Progress, type SuitePlan } from './lib/progress.ts';
import { emptyReport, evaluateGoals, renderMarkdown, SUITES, type BenchMode, type BenchReport, type SuiteName } from './report/report.ts';
import { runColdWarmSuite } from './suites/cold-warm.ts';
import { runKeepAliveSuite, type ExecutorCostModel } from './suites/keep-alive.ts';
import { runStrategiesSuite } from './suites/strategies.ts';
import { runThroughputSuite } from './suites/throughput.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface BenchArgs {
  mode: BenchMode;
  suites: SuiteName[];
  models: string[];
  outRoot: string;
  seed: number;
}

const USAGE = `usage: npm run bench -- [--quick | --smoke] [--suite cold-warm|throughput|strategies|keep-alive]... [--model PATH]... [--out DIR] [--seed N]
       npm run bench -- --suite hearth-vs-minimal|jobs-fairness [that suite's flags]`;

/** Suites that print their own figures (no report) and read their own flags. */
export const SCRIPT_SUITES = ['hearth-vs-minimal', 'jobs-fairness'] as const;
export type ScriptSuiteName = (typeof SCRIPT_SUITES)[number];

/** When argv selects a script suite: its name and the flags to hand it (all but the --suite selecting it). */
export function scriptSuiteOf(argv: string[]): { suite: ScriptSuiteName; args: string[] } | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const inline = a.startsWith('--suite=') ? a.slice('--suite='.length) : undefined;
    const value = inline ?? (a === '--suite' ? argv[i + 1] : undefined);
    if (value === undefined) continue;
    const names = value.split(',').map((x) => x.trim());
    const script = names.find((n): n is ScriptSuiteName => (SCRIPT_SUITES as readonly string[]).includes(n));
    if (!script) continue;
    if (names.length > 1)
      throw new Error(`--suite ${script} runs alone, not with ${names.filter((n) => n !== script).join(', ')}\n${USAGE}`);
    return { suite: script, args: [...argv.slice(0, i), ...argv.slice(i + (inline === undefined ? 2 : 1))] };
  }
  return undefined;
}

/** Runs a script suite in a process of its own with its flags, its output on ours; resolves to its exit code. */
export function runScriptSuite(suite: ScriptSuiteName, args: string[]): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'suites', `${suite}.ts`), ...args], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

export function parseArgs(argv: string[]): BenchArgs {
  const out: BenchArgs = { mode: 'full', suites: [], models: [], outRoot: path.join(here, 'results'), seed: 2019 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] =
      a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${flag}: expected a value\n${USAGE}`);
      return v;
    };
    switch (flag) {
      case '--quick':
        out.mode = 'quick';
        break;
      case '--smoke':
        out.mode = 'smoke';
        break;
      case '--suite':
        for (const s of value()
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)) {
          if (!(SUITES as readonly string[]).includes(s))
            throw new Error(`--suite: unknown suite "${s}"; expected one of ${[...SUITES, ...SCRIPT_SUITES].join(', ')}`);
          if (!out.suites.includes(s as SuiteName)) out.suites.push(s as SuiteName);
        }
        break;
      case '--model':
        out.models.push(path.resolve(value()));
        break;
      case '--out':
        out.outRoot = path.resolve(value());
        break;
      case '--seed': {
        const n = Number(value());
        if (!Number.isInteger(n)) throw new Error(`--seed: expected an integer`);
        out.seed = n;
        break;
      }
      case '--help':
      case '-h':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument "${a}"\n${USAGE}`);
    }
  }
  if (out.suites.length === 0) out.suites = [...SUITES];
  // Keep the canonical order: cold-warm feeds keep-alive its cost model.
  out.suites = SUITES.filter((s) => out.suites.includes(s));
  return out;
}

/** Planned durations per suite and mode, for the ETA before a suite has a pace of its own. */
const PLAN_MS: Record<BenchMode, Record<SuiteName, number>> = {
  full: { 'cold-warm': 150_000, throughput: 330_000, strategies: 90_000, 'keep-alive': 150_000 },
  quick: { 'cold-warm': 45_000, throughput: 60_000, strategies: 30_000, 'keep-alive': 30_000 },
  smoke: { 'cold-warm': 25_000, throughput: 15_000, strategies: 12_000, 'keep-alive': 5_000 },
};

function timestamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

export async function runBench(args: BenchArgs): Promise<{ report: BenchReport; dir: string; latest: string; failed: SuiteName[] }> {
  const report = emptyReport(args.mode, process.argv.slice(2), describeMachine(), args.suites);
  const started = performance.now();
  const plans: SuitePlan[] = args.suites.map((s) => ({ name: s, estimateMs: PLAN_MS[args.mode][s] }));
  const progress = new Progress(plans);
  const dir = path.join(args.outRoot, timestamp());
  await fs.mkdir(dir, { recursive: true });
  const failed: SuiteName[] = [];
  const charts: Array<{ suite: SuiteName; file: string; title: string; spec: TopLevelSpec }> = [];
  let costModels: ExecutorCostModel[] | undefined;

  for (const suite of args.suites) {
    try {
      if (suite === 'cold-warm') {
        const r = await runColdWarmSuite({ mode: args.mode, extraModels: args.models, progress, notes: report.notes });
        report.coldWarm = r.rows;
        costModels = r.costModels;
        charts.push({ suite, file: 'cold-warm.png', title: 'Cold against warm latency', spec: coldWarmChart(r.rows) });
        charts.push({ suite, file: 'cold-start-breakdown.png', title: 'Cold-start breakdown', spec: coldBreakdownChart(r.rows) });
      } else if (suite === 'throughput') {
        const r = await runThroughputSuite({ mode: args.mode, progress, notes: report.notes });
        report.throughput = r.rows;
        report.throughputDetails = r.details;
        charts.push({ suite, file: 'throughput.png', title: 'Throughput against concurrency', spec: throughputChart(r.rows) });
        charts.push({ suite, file: 'throughput-p99.png', title: 'p99 latency against concurrency', spec: throughputLatencyChart(r.rows) });
      } else if (suite === 'strategies') {
        const r = await runStrategiesSuite({ mode: args.mode, progress, notes: report.notes });
        report.strategies = r.rows;
        report.strategiesDetails = r.details;
        charts.push({ suite, file: 'strategies.png', title: 'Strategies: latency per priority class', spec: strategiesChart(r.rows) });
      } else if (suite === 'keep-alive') {
        // The autoscaler ticks once a second on a node (AUTOSCALER_TICK_MS); the reduced runs tick less often in
        // simulated time, which costs them keep-alive resolution finer than the tick (windows are minutes).
        const sizes = { full: { hours: 24, tickMs: 1000 }, quick: { hours: 6, tickMs: 2000 }, smoke: { hours: 1, tickMs: 5000 } }[
          args.mode
        ];
        progress.beginSuite('keep-alive', 4);
        const r = runKeepAliveSuite({
          seed: args.seed,
          durationMs: sizes.hours * 3_600_000,
          tickMs: sizes.tickMs,
          costModels,
          onStep: (label) => progress.step(label),
        });
        progress.endSuite();
        const { rows, ...details } = r;
        report.keepAlive = rows;
        report.keepAliveDetails = details;
        charts.push({
          suite,
          file: 'keep-alive.png',
          title: 'Keep-alive trade-off: cold starts against idle GB-s',
          spec: keepAliveChart(rows),
        });
      }
    } catch (e) {
      failed.push(suite);
      report.notes.push(`suite ${suite} failed: ${(e as Error).stack ?? inspect(e)}`);
      progress.note(`suite ${suite} failed: ${(e as Error).message}`);
    }
  }

  for (const c of charts) {
    try {
      await writeChart(path.join(dir, c.file), c.spec);
      report.charts.push({ suite: c.suite, file: c.file, title: c.title });
    } catch (e) {
      report.notes.push(`chart ${c.file} could not be rendered: ${(e as Error).message}`);
    }
  }
  report.goals = evaluateGoals(report);
  report.finishedAt = new Date().toISOString();
  report.durationSec = Math.round((performance.now() - started) / 100) / 10;
  await fs.writeFile(path.join(dir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  await fs.writeFile(path.join(dir, 'report.md'), renderMarkdown(report));
  const latest = path.join(args.outRoot, 'latest');
  await fs.rm(latest, { recursive: true, force: true });
  await fs.cp(dir, latest, { recursive: true });
  return { report, dir, latest, failed };
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  let script: ReturnType<typeof scriptSuiteOf>;
  try {
    script = scriptSuiteOf(process.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
  if (script) process.exit(await runScriptSuite(script.suite, script.args));
  let args: BenchArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
  const { report, dir, latest, failed } = await runBench(args);
  process.stderr.write(
    `\nwrote ${path.relative(process.cwd(), dir)}/ (copy in ${path.relative(process.cwd(), latest)}/) in ${report.durationSec} s\n`,
  );
  for (const g of report.goals)
    process.stderr.write(
      `  goal ${g.id}: ${g.met === null ? 'n/a' : g.met ? 'met' : 'MISSED'} — ${g.measured}${g.gap ? ` (${g.gap})` : ''}\n`,
    );
  if (failed.length) {
    process.stderr.write(`suites that failed: ${failed.join(', ')} (see Notes in report.md)\n`);
    process.exitCode = 1;
  }
  // Child servers and worker threads are closed by the suites; this is a backstop for handles left by libraries.
  setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref();
}
