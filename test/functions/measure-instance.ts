// Prints what an instance costs on this machine: thread spawn, the thread hop for a 440 KB tensor
// (transferred vs copied), silero session creation, and silero run time direct vs through a worker.
// Not a test (no assertions on time): npx tsx test/functions/measure-instance.ts
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Tensor } from '../../core/index.ts';
import { SILERO_VAD_FILE } from '../fixtures/golden.ts';
import { WorkerClient } from './worker-client.ts';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
const fmt = (xs: number[]): string => `p50 ${pct(xs, 50).toFixed(3)} ms, p90 ${pct(xs, 90).toFixed(3)} ms (n=${xs.length})`;

const ELEMENTS = 110_000; // 440 KB of FP32
const ROUNDS = 1000;

// Thread spawn to 'ready' (tsx registration + worker module graph).
const spawns: number[] = [];
for (let i = 0; i < 5; i++) {
  const t = performance.now();
  const w = new WorkerClient({ allowTestRuntimes: true });
  await w.ready;
  spawns.push(performance.now() - t);
  await w.terminate();
}
console.log(`worker spawn to ready: ${fmt(spawns)}`);

const w = new WorkerClient({ allowTestRuntimes: true });
await w.load('/', 'onnx', { runtime: 'fault' });
const call = (): Tensor[] => [
  { name: 'mode', datatype: 'INT32', shape: [1], data: Int32Array.of(0) },
  { name: 'payload', datatype: 'FP32', shape: [ELEMENTS], data: new Float32Array(ELEMENTS).fill(1) },
];
for (let i = 0; i < 100; i++) await w.run(call());
const hops: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const inputs = call();
  const t = performance.now();
  await w.run(inputs);
  hops.push(performance.now() - t);
}
console.log(`thread hop, 440 KB FP32 echo, transferred both ways: ${fmt(hops)}`);

// The same round trip with structured-clone copies (no transfer list), for comparison.
const copies: number[] = [];
let id = 1_000_000;
for (let i = 0; i < ROUNDS; i++) {
  const inputs = call();
  const myId = id++;
  const t = performance.now();
  await new Promise<void>((resolve) => {
    const on = (m: { type: string; id?: number }): void => {
      if (m.id === myId) {
        w.worker.off('message', on);
        resolve();
      }
    };
    w.worker.on('message', on);
    w.worker.postMessage({ type: 'run', id: myId, inputs, outputs: ['mode'] }); // copied in, tiny answer
  });
  copies.push(performance.now() - t);
}
console.log(`thread hop, 440 KB copied in (no transfer), small answer: ${fmt(copies)}`);
await w.terminate();

// Silero: session creation and batch-1 runs, direct in this thread vs through a worker.
const siloT = performance.now();
const direct = await ort.InferenceSession.create(SILERO_VAD_FILE, {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
});
console.log(`silero session create, direct: ${(performance.now() - siloT).toFixed(1)} ms`);
const feeds = (): Record<string, ort.Tensor> => ({
  input: new ort.Tensor('float32', new Float32Array(512).fill(0.1), [1, 512]),
  sr: new ort.Tensor('int64', BigInt64Array.of(16000n), []),
  h: new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]),
  c: new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]),
});
for (let i = 0; i < 50; i++) await direct.run(feeds());
const directRuns: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const f = feeds();
  const t = performance.now();
  await direct.run(f);
  directRuns.push(performance.now() - t);
}
console.log(`silero batch 1, direct session.run: ${fmt(directRuns)}`);
await direct.release();

const sw = new WorkerClient();
await sw.ready;
const wallT = performance.now();
const loaded = await sw.load(path.dirname(SILERO_VAD_FILE), 'onnx');
console.log(
  `silero load in a ready worker: loadMs ${loaded.loadMs.toFixed(1)} ms (wall incl. message ${(performance.now() - wallT).toFixed(1)} ms)`,
);
const sileroInputs = (): Tensor[] => [
  { name: 'input', datatype: 'FP32', shape: [1, 512], data: new Float32Array(512).fill(0.1) },
  { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
  { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: new Float32Array(128) },
  { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: new Float32Array(128) },
];
for (let i = 0; i < 50; i++) await sw.run(sileroInputs());
const workerRuns: number[] = [];
const computes: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const inp = sileroInputs();
  const t = performance.now();
  const r = await sw.run(inp);
  workerRuns.push(performance.now() - t);
  computes.push(r.computeMs);
}
console.log(`silero batch 1, through a worker (round trip): ${fmt(workerRuns)}; computeMs inside: ${fmt(computes)}`);
await sw.terminate();
