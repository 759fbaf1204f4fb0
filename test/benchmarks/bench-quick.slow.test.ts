// Smoke test of `npm run bench`: runs the smallest full pass (--smoke: every suite, fewer models and shorter
// measurements than --quick) into a temp folder and checks only that it completes and that the report is
// well formed — every suite present with its documented fields, and valid PNG charts. Never a speed.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPng } from '../../benchmarks/report/charts.ts';
import { parseArgs } from '../../benchmarks/run.ts';
import { SUITES, type BenchReport } from '../../benchmarks/report/report.ts';

const root = path.resolve(import.meta.dirname, '../..');
let outRoot: string;
let exitCode: number | null = null;
let stderr = '';

beforeAll(async () => {
  outRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-bench-smoke-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'benchmarks/run.ts', '--smoke', '--out', outRoot], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr.on('data', (d) => (stderr = (stderr + String(d)).slice(-20_000)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 420_000);
  exitCode = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  clearTimeout(killer);
}, 450_000);

afterAll(async () => {
  await fs.rm(outRoot, { recursive: true, force: true });
});

async function readReport(dir: string): Promise<BenchReport> {
  return JSON.parse(await fs.readFile(path.join(dir, 'report.json'), 'utf8')) as BenchReport;
}

describe('npm run bench -- --smoke', () => {
  it('completes with exit code 0 and writes a timestamped folder and latest/', async () => {
    expect(exitCode, stderr.slice(-4000)).toBe(0);
    const entries = await fs.readdir(outRoot);
    expect(entries).toContain('latest');
    expect(entries.filter((e) => /^\d{8}-\d{6}$/.test(e))).toHaveLength(1);
    for (const f of ['report.json', 'report.md']) await expect(fs.stat(path.join(outRoot, 'latest', f))).resolves.toBeTruthy();
  });

  it('reports every suite with the documented fields', async () => {
    const r = await readReport(path.join(outRoot, 'latest'));
    expect(r.schema).toBe('hearth-bench/1');
    expect(r.suites).toEqual([...SUITES]);
    expect(r.machine).toMatchObject({ cores: expect.any(Number), node: process.version, onnxruntime: expect.stringMatching(/^\d+\.\d+/) });
    expect(typeof r.machine.cpuModel).toBe('string');

    expect(r.coldWarm.length).toBeGreaterThan(0);
    for (const c of r.coldWarm) {
      for (const k of ['coldFromStoreMs', 'coldFromCacheMs', 'warmP50Ms', 'warmP95Ms', 'warmP99Ms'] as const)
        expect(c[k], `${c.model}.${k}`).toBeGreaterThan(0);
      expect(typeof c.model).toBe('string');
      for (const kind of ['store', 'cache'] as const) {
        expect(Object.keys(c.breakdown[kind]).sort()).toEqual(['acquireMs', 'fetchMs', 'firstRunMs', 'loadMs', 'otherMs', 'queueMs']);
      }
      expect(c.coldReps).toBeGreaterThanOrEqual(5);
      expect(c.warmCalls).toBeGreaterThanOrEqual(200);
    }

    const servers = new Set(r.throughput.map((t) => t.server));
    expect([...servers].sort()).toEqual(['hearth', 'minimal', 'raw']);
    for (const t of r.throughput) {
      expect(['json', 'binary', 'none']).toContain(t.protocol);
      expect(t.concurrency).toBeGreaterThanOrEqual(1);
      expect(t.inferPerSec).toBeGreaterThan(0);
      for (const k of ['p50Ms', 'p90Ms', 'p95Ms', 'p99Ms'] as const) expect(t[k]).toBeGreaterThan(0);
      expect(t.p50Ms).toBeLessThanOrEqual(t.p99Ms);
    }

    expect(r.strategies.map((s) => s.strategy).sort()).toEqual(['event', 'stateful', 'stateless']);
    for (const s of r.strategies) {
      expect(s.throughput).toBeGreaterThan(0);
      expect(s.coldStarts).toBeGreaterThanOrEqual(0);
      for (const cls of [s.high, s.low]) expect(cls.requests).toBeGreaterThan(0);
    }

    expect(r.keepAlive.map((k) => k.policy)).toEqual(['fixed-1m', 'fixed-10m', 'fixed-20m', 'histogram']);
    for (const k of r.keepAlive) {
      expect(k.coldStartRate).toBeGreaterThanOrEqual(0);
      expect(k.coldStartRate).toBeLessThanOrEqual(1);
      expect(k.idleGbSeconds).toBeGreaterThanOrEqual(0);
      expect(k.totalCost).toBeGreaterThan(0);
    }
    // A longer keep-alive can only keep instances longer: idle memory grows from 1 to 20 minutes.
    const idle = (p: string) => r.keepAlive.find((k) => k.policy === p)!.idleGbSeconds;
    expect(idle('fixed-1m')).toBeLessThan(idle('fixed-20m'));

    expect(r.goals.map((g) => g.id).sort()).toEqual([
      'cold-from-cache',
      'cold-from-store',
      'histogram-vs-fixed-10m',
      'throughput-vs-minimal',
      'throughput-vs-raw',
      'warm-p50',
    ]);
  });

  it('renders at least one valid PNG chart per suite', async () => {
    const dir = path.join(outRoot, 'latest');
    const r = await readReport(dir);
    for (const suite of SUITES) expect(r.charts.filter((c) => c.suite === suite).length, suite).toBeGreaterThan(0);
    for (const c of r.charts) expect(isPng(await fs.readFile(path.join(dir, c.file))), c.file).toBe(true);
    const md = await fs.readFile(path.join(dir, 'report.md'), 'utf8');
    for (const h of ['## Machine', '## Goals', '## cold-warm', '## throughput', '## strategies', '## keep-alive']) expect(md).toContain(h);
  });
});

describe('bench CLI arguments', () => {
  it('parses suites as repeated flags or comma lists, in canonical order', () => {
    expect(parseArgs(['--suite', 'keep-alive', '--suite', 'cold-warm']).suites).toEqual(['cold-warm', 'keep-alive']);
    expect(parseArgs(['--suite=throughput,strategies']).suites).toEqual(['throughput', 'strategies']);
    expect(parseArgs([]).suites).toEqual([...SUITES]);
    expect(parseArgs(['--quick']).mode).toBe('quick');
    expect(parseArgs(['--model', 'a.onnx', '--model', 'b/model.json']).models.map((m) => path.basename(m))).toEqual([
      'a.onnx',
      'model.json',
    ]);
  });

  it('rejects unknown suites and flags, naming them', () => {
    expect(() => parseArgs(['--suite', 'nope'])).toThrow(/unknown suite "nope"/);
    expect(() => parseArgs(['--fast'])).toThrow(/unknown argument "--fast"/);
    expect(() => parseArgs(['--out'])).toThrow(/--out: expected a value/);
  });
});
