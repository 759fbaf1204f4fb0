// Lab, kept for the record: the measurement behind running onnxruntime without its CPU arena (docs/performance/decisions.md, 2026-12-03).
// onnxruntime's CPU arena (enableCpuMemArena), on and off: the process RSS after one large run (the tile fixture,
// 4 KB in and `--mb` MB allocated inside onnxruntime; each variant in a fresh process, since RSS is per process),
// and silero VAD's warm session.run time at batch 1 and 16 (both sessions in one process, alternating round by
// round so drifting machine load hits both alike; medians of the rounds).
// Run: npx tsx benchmarks/lab/onnx-arena.ts [--mb 1024] [--rounds 15]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { SILERO_VAD_FILE } from '../../test/fixtures/golden.ts';
import { writeTileOnnx } from '../../test/fixtures/make-tile-onnx.ts';
import { median } from '../lib/percentiles.ts';

const argv = process.argv.slice(2);
const arg = (name: string, def: number) => {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? Number(argv[at + 1]) : def;
};
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const options = (arena: boolean): ort.InferenceSession.SessionOptions => ({
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  executionProviders: ['cpu'],
  enableCpuMemArena: arena,
});

/** Child mode: one session, one large run, RSS before, right after, and after a few small runs. */
async function rssChild(file: string, arena: boolean, mb: number): Promise<void> {
  const s = await ort.InferenceSession.create(file, options(arena));
  const x = new ort.Tensor('float32', new Float32Array(1024).fill(1), [1, 1024]);
  const reps = (n: number) => new ort.Tensor('int64', BigInt64Array.of(BigInt(n), 1n), [2]);
  await s.run({ x, reps: reps(2) });
  const before = rssMb();
  await s.run({ x, reps: reps(mb * 256) });
  const after = rssMb();
  for (let i = 0; i < 5; i++) await s.run({ x, reps: reps(2) });
  await new Promise((r) => setTimeout(r, 500));
  console.log(JSON.stringify({ before, after, settled: rssMb() }));
}

async function sileroRunUs(rounds: number): Promise<void> {
  const sessions = {
    arena: await ort.InferenceSession.create(SILERO_VAD_FILE, options(true)),
    noArena: await ort.InferenceSession.create(SILERO_VAD_FILE, options(false)),
  };
  for (const batch of [1, 16]) {
    const wave = new Float32Array(batch * 512).map((_, i) => Math.sin(i / 9) * 0.1);
    const feeds = {
      input: new ort.Tensor('float32', wave, [batch, 512]),
      sr: new ort.Tensor('int64', BigInt64Array.of(16000n), []),
      h: new ort.Tensor('float32', new Float32Array(128 * batch), [2, batch, 64]),
      c: new ort.Tensor('float32', new Float32Array(128 * batch), [2, batch, 64]),
    };
    const runs = batch === 1 ? 500 : 100;
    const samples: Record<keyof typeof sessions, number[]> = { arena: [], noArena: [] };
    // Process CPU time per run too: less sensitive than wall time to other work on a shared machine.
    const cpu: Record<keyof typeof sessions, number[]> = { arena: [], noArena: [] };
    for (const s of Object.values(sessions)) for (let i = 0; i < 200; i++) await s.run(feeds);
    const order = Object.entries(sessions) as [keyof typeof sessions, ort.InferenceSession][];
    for (let r = 0; r < rounds; r++) {
      // ABBA: neither variant always runs first.
      for (const [name, s] of r % 2 ? [...order].reverse() : order) {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        for (let i = 0; i < runs; i++) await s.run(feeds);
        const c = process.cpuUsage(c0);
        samples[name].push(((performance.now() - t0) * 1000) / runs);
        cpu[name].push((c.user + c.system) / runs);
      }
    }
    const a = median(samples.arena);
    const n = median(samples.noArena);
    const ac = median(cpu.arena);
    const nc = median(cpu.noArena);
    console.log(
      `silero batch ${String(batch).padStart(2)}: wall arena ${a.toFixed(1)} / no arena ${n.toFixed(1)} us/run (ratio ${(n / a).toFixed(3)}); ` +
        `CPU arena ${ac.toFixed(1)} / no arena ${nc.toFixed(1)} us/run (ratio ${(nc / ac).toFixed(3)}); medians of ${rounds} rounds of ${runs}`,
    );
  }
}

if (argv[0] === '--child') {
  await rssChild(argv[1], argv[2] === 'true', Number(argv[3]));
} else {
  const mb = arg('mb', 1024);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-arena-'));
  const file = path.join(dir, 'model.onnx');
  await writeTileOnnx(file);
  const self = fileURLToPath(import.meta.url);
  for (const arena of [true, false]) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--child', file, String(arena), String(mb)], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as { before: number; after: number; settled: number };
    console.log(
      `${arena ? 'arena   ' : 'no arena'}: RSS ${r.before.toFixed(0)} MB before a ${mb} MB run, ${r.after.toFixed(0)} MB right after, ${r.settled.toFixed(0)} MB after five small runs`,
    );
  }
  fs.rmSync(dir, { recursive: true, force: true });
  await sileroRunUs(arg('rounds', 15));
}
