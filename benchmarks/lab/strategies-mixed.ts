// Lab, kept for the record: the executor-only mixed run behind the `event` default (docs/performance/decisions.md, 2026-11-26).
// Mixed traffic through the executor, one strategy at a time: a few online clients (priority 9) share silero
// VAD with many batch-job clients (priority 0, source 'batch'), closed loop. Reports online latency and both
// throughputs per strategy, so the default strategy can be chosen by measurement. Strategies take turns.
//   tsx benchmarks/lab/strategies-mixed.ts [--duration 4000] [--rounds 2] [--online 4] [--batch 48] [--max-batch 16]
import os from 'node:os';
import { defaultModelConfig, type ModelConfig, type SchedulingStrategy } from '../../core/index.ts';
import { arg } from '../lib/args.ts';
import { sileroFolderExecutor } from '../lib/folder-executor.ts';
import { percentileSorted, sampleAt } from '../lib/percentiles.ts';
import { sileroFolderManifest as manifest, sileroFrame as frame } from '../lib/bench-models.ts';

const durationMs = Number(arg('duration', '4000'));
const rounds = Number(arg('rounds', '2'));
const onlineClients = Number(arg('online', '4'));
const batchClients = Number(arg('batch', '48'));
const maxBatch = Number(arg('max-batch', '16'));
const strategies: SchedulingStrategy[] = ['stateless', 'stateful', 'event'];

const pct = percentileSorted;

const configs = new Map<string, ModelConfig>(
  strategies.map((s) => {
    const c = defaultModelConfig();
    c.batching.maxBatchSize = maxBatch;
    c.scheduling.strategy = s;
    c.maxQueueSize = 4096;
    return [`vad-${s}`, c];
  }),
);
const bench = await sileroFolderExecutor('hearth-mixed-', configs);
const { executor } = bench;
const frames = Array.from({ length: 8 }, (_, i) => frame(i));
// The executor transfers input buffers to its worker threads, so every call gets fresh copies.
const fresh = (i: number) => frames[i % 8].map((t) => ({ ...t, data: t.data.slice() }));

console.log(
  `silero VAD, executor only: ${onlineClients} online clients (priority 9) + ${batchClients} batch clients (priority 0), maxBatchSize ${maxBatch}, ` +
    `${durationMs} ms each; load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
);
const summary = new Map<string, { online: number[]; p50: number[]; p99: number[]; batch: number[] }>(
  strategies.map((s) => [s, { online: [], p50: [], p99: [], batch: [] }]),
);
try {
  for (const s of strategies) await executor.load(manifest(`vad-${s}`));
  // Round 0 only warms every pool up (cold starts, pool growth); it is not reported.
  for (let r = -1; r < rounds; r++) {
    for (const s of strategies) {
      const m = manifest(`vad-${s}`);
      const end = performance.now() + (r < 0 ? 1500 : durationMs);
      const online: number[] = [];
      let batchDone = 0;
      let errors = 0;
      let n = 0;
      const loop = async (priority: number, source: 'online' | 'batch') => {
        while (performance.now() < end) {
          const t0 = performance.now();
          try {
            await executor.infer({ manifest: m, inputs: fresh(n++), priority, source });
            if (source === 'online') online.push(performance.now() - t0);
            else batchDone++;
          } catch {
            errors++;
          }
        }
      };
      const t0 = performance.now();
      await Promise.all([
        ...Array.from({ length: onlineClients }, () => loop(9, 'online')),
        ...Array.from({ length: batchClients }, () => loop(0, 'batch')),
      ]);
      const secs = (performance.now() - t0) / 1000;
      if (r < 0) continue;
      online.sort((a, b) => a - b);
      const row = summary.get(s)!;
      row.online.push(online.length / secs);
      row.p50.push(pct(online, 50));
      row.p99.push(pct(online, 99));
      row.batch.push(batchDone / secs);
      console.log(
        `round ${r + 1}  ${s.padEnd(10)} online ${(online.length / secs).toFixed(0).padStart(5)} inf/s  p50 ${pct(online, 50).toFixed(2)}  p99 ${pct(online, 99).toFixed(2)} ms` +
          `   batch ${(batchDone / secs).toFixed(0).padStart(5)} inf/s   errors ${errors}`,
      );
    }
  }
  const med = (xs: number[]) => sampleAt(xs, 0.5);
  console.log('\nmedian over rounds');
  for (const [s, row] of summary) {
    console.log(
      `${s.padEnd(10)} online ${med(row.online).toFixed(0).padStart(5)} inf/s  p50 ${med(row.p50).toFixed(2)}  p99 ${med(row.p99).toFixed(2)} ms   batch ${med(row.batch).toFixed(0).padStart(5)} inf/s`,
    );
  }
} finally {
  await bench.close();
}
