// Lab, kept for the record: separated the engine's cost from the gateway's while batching and the strategies were tuned (2026-11-26).
// The executor alone, without HTTP or JSON: silero VAD through createExecutor() at concurrency 16, closed
// loop, batching on and off and each strategy, against session.run on the calling thread. Separates the
// engine's cost (queue, thread hop, merge/split) from the gateway's (HTTP, JSON codec).
//   tsx benchmarks/lab/executor-throughput.ts [--duration 3000] [--concurrency 16] [--rounds 1] [--variants batch-on,batch-off,stateful,event] [--no-direct]
import os from 'node:os';
import ort from 'onnxruntime-node';
import { defaultModelConfig, type ModelConfig, type SchedulingStrategy } from '../../core/index.ts';
import { arg, flag } from '../lib/args.ts';
import { sileroFolderExecutor } from '../lib/folder-executor.ts';
import { sampleAt } from '../lib/percentiles.ts';
import { SILERO_FILE as modelPath, sileroFolderManifest as manifest, sileroFrame as inputs, toOrtFeeds } from '../lib/bench-models.ts';

const durationMs = Number(arg('duration', '3000'));
const concurrency = Number(arg('concurrency', '16'));
const rounds = Number(arg('rounds', '1'));

async function closedLoop(call: (i: number) => Promise<unknown>): Promise<{ perSec: number; p50: number; p99: number }> {
  const lat: number[] = [];
  const end = performance.now() + durationMs;
  let n = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        await call(n++);
        lat.push(performance.now() - s);
      }
    }),
  );
  return { perSec: lat.length / ((performance.now() - t0) / 1000), p50: sampleAt(lat, 0.5), p99: sampleAt(lat, 0.99) };
}

const allVariants: { name: string; strategy: SchedulingStrategy; maxBatchSize: number }[] = [
  { name: 'batch-on', strategy: 'stateless', maxBatchSize: 16 },
  { name: 'batch-off', strategy: 'stateless', maxBatchSize: 1 },
  { name: 'stateful', strategy: 'stateful', maxBatchSize: 16 },
  { name: 'event', strategy: 'event', maxBatchSize: 16 },
];
const wanted = arg('variants', allVariants.map((v) => v.name).join(',')).split(',');
const variants = allVariants.filter((v) => wanted.includes(v.name));
const configs = new Map<string, ModelConfig>(
  variants.map((v) => {
    const c = defaultModelConfig();
    c.batching.maxBatchSize = v.maxBatchSize;
    c.scheduling.strategy = v.strategy;
    return [`vad-${v.name}`, c];
  }),
);
const bench = await sileroFolderExecutor('hearth-exec-bench-', configs);
const { executor } = bench;
const bodies = Array.from({ length: 8 }, (_, i) => inputs(i));
const session = flag('no-direct') ? undefined : await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
console.log(
  `silero VAD, executor only, concurrency ${concurrency}, ${durationMs} ms each; load average ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);
try {
  for (const v of variants) await executor.load(manifest(`vad-${v.name}`));
  for (let r = 0; r < rounds; r++) {
    if (session) {
      const direct = await closedLoop(async (i) => session.run(toOrtFeeds(bodies[i % 8])));
      console.log(
        `direct session.run  ${direct.perSec.toFixed(0).padStart(6)} inf/s  p50 ${direct.p50.toFixed(2)}  p99 ${direct.p99.toFixed(2)} ms`,
      );
    }
    for (const v of variants) {
      const m = manifest(`vad-${v.name}`);
      // Fresh tensors per call: the executor transfers input buffers to the worker thread, detaching them here.
      const res = await closedLoop((i) =>
        executor.infer({ manifest: m, inputs: bodies[i % 8].map((t) => ({ ...t, data: t.data.slice() })) }),
      );
      const st = executor.stats({ name: m.name })[0];
      const meanBatch = st ? st.inferenceCount / Math.max(1, st.executionCount) : NaN;
      console.log(
        `${v.name.padEnd(19)} ${res.perSec.toFixed(0).padStart(6)} inf/s  p50 ${res.p50.toFixed(2)}  p99 ${res.p99.toFixed(2)} ms  mean batch ${meanBatch.toFixed(1)}`,
      );
    }
  }
} finally {
  await bench.close();
  await session?.release();
}
