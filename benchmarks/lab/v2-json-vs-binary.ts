// Lab, kept for the record: V2 JSON against the binary extension, before the throughput suite measured both (2026-11-26).
// Silero VAD through Hearth over HTTP, the same requests as V2 JSON and as the binary tensor extension (binary
// inputs and outputs), in alternating rounds so drifting machine load hits both alike. Prints throughput,
// p50/p99 and the binary/JSON ratio. Hearth runs in its own process (benchmarks/lib/hearth-server.ts).
//   tsx benchmarks/lab/v2-json-vs-binary.ts [--duration 3000] [--warmup 500] [--rounds 3] [--concurrency 16]
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Tensor } from '../../core/index.ts';
import { encodeInferRequest } from '../../protocol/index.ts';
import { sileroFeed } from '../../test/helpers/model-bodies.ts';
import { arg } from '../lib/args.ts';
import { SILERO_FILE as modelPath } from '../lib/bench-models.ts';
import { startHearth, type ChildServer } from '../lib/child-server.ts';
import { formatLoad, runLoad, type LoadResult } from '../lib/load-generator.ts';
import { sampleAt } from '../lib/percentiles.ts';

const durationMs = Number(arg('duration', '3000'));
const warmupMs = Number(arg('warmup', '500'));
const rounds = Number(arg('rounds', '3'));
const concurrency = Number(arg('concurrency', '16'));

function sileroInputs(seed: number): Tensor[] {
  return sileroFeed(
    1,
    (i) => Math.sin((i + seed) / 7) * 0.5,
    () => 0,
  );
}

const median = (xs: number[]) => sampleAt(xs, 0.5);

const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-v2bench-'));
let server: ChildServer | undefined;
try {
  server = await startHearth(dataDir, {}, { echoStderr: true });
  const base = server.url;
  const up = await fetch(`${base}/v1/models/vad`, {
    method: 'POST',
    body: new Uint8Array(await fs.readFile(modelPath)),
    headers: { 'content-type': 'application/octet-stream' },
  });
  if (!up.ok) throw new Error(`upload: HTTP ${up.status} ${await up.text()}`);
  const url = `${base}/v2/models/vad/infer`;

  const json = Array.from({ length: 16 }, (_, i) => encodeInferRequest({ inputs: sileroInputs(i) }).body);
  const binary = Array.from({ length: 16 }, (_, i) =>
    encodeInferRequest({ inputs: sileroInputs(i), parameters: { binary_data_output: true } }, { binaryInputs: true }),
  );
  const variants: { name: string; bodies: Buffer[]; headers: Record<string, string> }[] = [
    { name: 'JSON', bodies: json, headers: { 'content-type': 'application/json' } },
    // Every binary body has the same JSON header, so one Inference-Header-Content-Length fits all.
    {
      name: 'binary',
      bodies: binary.map((b) => b.body),
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(binary[0].headerLength) },
    },
  ];
  // Warm the pool (cold starts are not what this compares).
  for (const v of variants) await runLoad({ url, bodies: v.bodies, headers: v.headers, concurrency, durationMs: 1500 });

  console.log(
    `silero VAD through Hearth, concurrency ${concurrency}, ${durationMs} ms per measurement, ${rounds} round(s); ${os.availableParallelism()} CPUs, load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
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
  console.log(
    `median: JSON ${j.toFixed(0)} inf/s, binary ${b.toFixed(0)} inf/s, binary/JSON ${(b / j).toFixed(2)}; request bytes JSON ${json[0].length}, binary ${binary[0].body.length}`,
  );
} finally {
  await server?.stop();
  await fs.rm(dataDir, { recursive: true, force: true });
}
