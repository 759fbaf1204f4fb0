// The cost of inspecting an upload in a child process instead of a worker thread: silero VAD inspected both ways in
// one process, alternating round by round so drifting machine load hits both alike (medians of the rounds). The
// thread variant is what inspectModel did before it forked: spawn the instance worker, post 'load', await 'loaded'.
// Run: npx tsx benchmarks/lab/inspect-process.ts [--rounds 5]
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { inspectModel, resolveWorkerEntry, spawnInstanceWorker, type WorkerToHost } from '../../functions/index.ts';
import { SILERO_VAD_FILE } from '../../test/fixtures/golden.ts';
import { median } from '../lib/percentiles.ts';

const argv = process.argv.slice(2);
const at = argv.indexOf('--rounds');
const rounds = at >= 0 ? Number(argv[at + 1]) : 5;

/** The former thread inspection: total wall time and the load inside the thread. */
async function inspectInThread(dir: string): Promise<{ totalMs: number; loadMs: number }> {
  const t0 = performance.now();
  const worker = spawnInstanceWorker(await resolveWorkerEntry(), { workerData: {} });
  try {
    const loadMs = await new Promise<number>((resolve, reject) => {
      worker.on('message', (m: WorkerToHost) => {
        if (m.type === 'ready') worker.postMessage({ type: 'load', dir, format: 'onnx' });
        else if (m.type === 'loaded') resolve(m.loadMs);
        else if (m.type === 'error') reject(new Error(m.message));
      });
      worker.on('error', reject);
    });
    return { totalMs: performance.now() - t0, loadMs };
  } finally {
    await worker.terminate();
  }
}

async function inspectInProcess(dir: string): Promise<{ totalMs: number; loadMs: number }> {
  const t0 = performance.now();
  const sig = await inspectModel(dir, 'onnx');
  return { totalMs: performance.now() - t0, loadMs: sig.loadMs };
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-inspect-bench-'));
await fs.copyFile(SILERO_VAD_FILE, path.join(dir, 'model.onnx'));
await resolveWorkerEntry(); // the bundle is built before the first round
await inspectInThread(dir); // warm the file cache and the module caches alike
await inspectInProcess(dir);
const thread: { totalMs: number; loadMs: number }[] = [];
const child: { totalMs: number; loadMs: number }[] = [];
for (let i = 0; i < rounds; i++) {
  thread.push(await inspectInThread(dir));
  child.push(await inspectInProcess(dir));
}
await fs.rm(dir, { recursive: true, force: true });
const show = (name: string, xs: { totalMs: number; loadMs: number }[]) =>
  `${name}: total ${median(xs.map((x) => x.totalMs)).toFixed(0)} ms (load ${median(xs.map((x) => x.loadMs)).toFixed(0)} ms) ` +
  `[${xs.map((x) => x.totalMs.toFixed(0)).join(', ')}]`;
console.log(`silero VAD inspection, medians of ${rounds} alternating rounds`);
console.log(show('worker thread (before)', thread));
console.log(show('child process (now)   ', child));
console.log(
  `child start cost: ${(median(child.map((x) => x.totalMs)) - median(thread.map((x) => x.totalMs))).toFixed(0)} ms a model upload`,
);
