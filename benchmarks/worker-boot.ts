// Instance worker start-up: the esbuild bundle (functions/worker-bundle.ts) against the tsx bootstrap
// (functions/worker-entry.mjs), taking turns in the same run. Spawn-to-ready wall time and the process CPU
// each boot costs (boots run one at a time, so the process CPU delta is that boot's), then silero cold starts
// through the executor: with no pre-spawned worker (every cold start pays a boot in its acquire step), and with
// one (the refill boot that follows each acquire competes with the session load).
//   tsx benchmarks/worker-boot.ts [--boots 12] [--cold 5]
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { defaultModelConfig, loadConfig, systemClock } from '../core/index.ts';
import { createExecutor, WorkerPool } from '../executor/index.ts';
import { buildWorkerBundle, TSX_WORKER_ENTRY_URL, workerExecArgv } from '../functions/worker-bundle.ts';
import type { WorkerData } from '../functions/protocol.ts';
import { ArtifactCache } from '../model-store/index.ts';
import { arg } from './args.ts';
import { SILERO_FILE as modelPath, sileroFileManifest, sileroQuietFrame } from './bench-models.ts';
import { sampleAt } from './percentiles.ts';

const boots = Number(arg('boots', '12'));
const colds = Number(arg('cold', '5'));
const median = (a: number[]) => sampleAt(a, 0.5);

const t0 = performance.now();
const bundle = await buildWorkerBundle();
console.log(`bundle ${bundle.hash} ${bundle.built ? 'built' : 'reused'} in ${(performance.now() - t0).toFixed(1)} ms`);
const entries = { tsx: TSX_WORKER_ENTRY_URL, bundle: bundle.url } as const;
// 'before': the tsx bootstrap with the parent's execArgv, as pools spawned before the bundle (under `tsx main.ts`
// that re-runs tsx's preload in each thread). 'tsx': today's fallback. 'bundle': today's default.
const variants = {
  before: { entry: TSX_WORKER_ENTRY_URL, execArgv: process.execArgv },
  tsx: { entry: TSX_WORKER_ENTRY_URL, execArgv: workerExecArgv(TSX_WORKER_ENTRY_URL) ?? process.execArgv },
  bundle: { entry: bundle.url, execArgv: workerExecArgv(bundle.url) ?? process.execArgv },
};
type Variant = keyof typeof variants;
console.log(`parent execArgv ${JSON.stringify(process.execArgv)}`);

async function bootOnce(v: Variant, workerData: WorkerData): Promise<{ wallMs: number; cpuMs: number }> {
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const w = new Worker(variants[v].entry, { workerData, execArgv: variants[v].execArgv });
  await new Promise<void>((resolve, reject) => {
    w.on('message', (m: { type: string }) => m.type === 'ready' && resolve());
    w.once('error', reject);
    w.once('exit', (c) => reject(new Error(`exit ${c}`)));
  });
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  await w.terminate();
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

for (const [label, data] of [['no preload', {}], ["preload ['onnx'] (as the executor)", { preload: ['onnx'] }]] as const) {
  const names = Object.keys(variants) as Variant[];
  const res = Object.fromEntries(names.map((k) => [k, { wall: [] as number[], cpu: [] as number[] }]));
  for (const k of names) await bootOnce(k, data as WorkerData); // unmeasured
  for (let i = 0; i < boots; i++) {
    for (let j = 0; j < names.length; j++) {
      const k = names[(i + j) % names.length]!; // rotate the order, so drift hits every variant
      const r = await bootOnce(k, data as WorkerData);
      res[k]!.wall.push(r.wallMs);
      res[k]!.cpu.push(r.cpuMs);
    }
  }
  const line = names.map((k) => `${k} ${median(res[k]!.wall).toFixed(1)} ms (cpu ${median(res[k]!.cpu).toFixed(1)})`).join(' | ');
  const ratio = (a: Variant) => `${a}/bundle ${(median(res[a]!.wall) / median(res.bundle!.wall)).toFixed(2)}x wall, ${(median(res[a]!.cpu) / median(res.bundle!.cpu)).toFixed(2)}x cpu`;
  console.log(`spawn-to-ready, ${label}, median of ${boots}: ${line} | ${ratio('before')} | ${ratio('tsx')}`);
}

// Silero cold starts through the executor, EXECUTOR_PREWARM_WORKERS=0: acquire is a full boot.
const manifest = await sileroFileManifest();
const inputs = sileroQuietFrame;
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-worker-boot-'));
for (const prewarm of ['0', '1']) {
const config = loadConfig({ DATA_DIR: tmp, EXECUTOR_PREWARM_WORKERS: prewarm });
const cache = new ArtifactCache({ dir: config.cacheDir, maxBytes: config.cacheMaxBytes, openFile: async () => createReadStream(modelPath) });
const executors = Object.fromEntries(Object.entries(entries).map(([k, url]) => {
  // workerEntry is the engine's test override of the pool's entry (not part of CreateExecutorOptions).
  const opts = { config, clock: systemClock, artifacts: cache, getConfig: async () => defaultModelConfig(), workerEntry: url };
  return [k, createExecutor(opts)];
}));
const cold: Record<string, { total: number[]; acquire: number[]; fetch: number[]; load: number[]; firstRun: number[] }> = {};
for (let i = 0; i <= colds; i++) {
  for (const k of i % 2 ? ['bundle', 'tsx'] : ['tsx', 'bundle']) {
    await executors[k]!.prewarmed();
    const r = await executors[k]!.infer({ manifest, inputs: inputs() });
    await executors[k]!.unload('silero');
    await executors[k]!.prewarmed(); // the refill boot must not overlap the other variant's cold start
    if (i === 0) continue; // the first round fills the artifact cache and warms the disk
    const c = (cold[k] ??= { total: [], acquire: [], fetch: [], load: [], firstRun: [] });
    const b = (r.breakdown ?? {}) as Record<string, number>;
    c.total.push(r.coldStartMs ?? NaN);
    c.acquire.push(b.acquireMs ?? NaN);
    c.fetch.push(b.fetchMs ?? NaN);
    c.load.push(b.loadMs ?? NaN);
    c.firstRun.push(b.firstRunMs ?? NaN);
  }
}
for (const [k, c] of Object.entries(cold)) {
  console.log(`silero cold start (cache), EXECUTOR_PREWARM_WORKERS=${prewarm}, ${k}, median of ${colds}: total ${median(c.total).toFixed(1)} ms = acquire ${median(c.acquire).toFixed(1)} | fetch ${median(c.fetch).toFixed(1)} | load ${median(c.load).toFixed(1)} | firstRun ${median(c.firstRun).toFixed(1)}`);
}
console.log(`ratio tsx/bundle cold start: ${(median(cold.tsx!.total) / median(cold.bundle!.total)).toFixed(2)}x`);
await Promise.all(Object.values(executors).map((e) => e.close()));
}
// The pool alone: a pre-spawned worker loads silero while its replacement boots at once (refillDelayMaxMs 0,
// the old behaviour) or after its first run (the default).
const modelDir = path.join(tmp, 'silero-dir');
await fs.mkdir(modelDir, { recursive: true });
await fs.copyFile(modelPath, path.join(modelDir, 'model.onnx'));
const pools = {
  immediate: new WorkerPool({ size: 1, workerData: { preload: ['onnx'] }, clock: systemClock, entry: bundle.url, refillDelayMaxMs: 0 }),
  afterLoad: new WorkerPool({ size: 1, workerData: { preload: ['onnx'] }, clock: systemClock, entry: bundle.url }),
};
const loads: Record<string, number[]> = { immediate: [], afterLoad: [] };
for (let i = 0; i <= colds * 2; i++) {
  for (const k of (i % 2 ? ['afterLoad', 'immediate'] : ['immediate', 'afterLoad']) as (keyof typeof pools)[]) {
    await pools[k].fill();
    const { worker } = await pools[k].acquire();
    const t = performance.now();
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m: { type: string; message?: string }) => (m.type === 'loaded' ? resolve() : m.type === 'error' && reject(new Error(m.message))));
      worker.postMessage({ type: 'load', dir: modelDir, format: 'onnx' });
    });
    if (i > 0) loads[k]!.push(performance.now() - t);
    await pools[k].terminate(worker);
    await pools[k].fill();
  }
}
console.log(`silero load in a pre-spawned worker, median of ${colds * 2}: replacement booted at once ${median(loads.immediate!).toFixed(1)} ms | after the first run ${median(loads.afterLoad!).toFixed(1)} ms`);
await Promise.all(Object.values(pools).map((p) => p.close()));
console.log(`load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
await fs.rm(tmp, { recursive: true, force: true });
