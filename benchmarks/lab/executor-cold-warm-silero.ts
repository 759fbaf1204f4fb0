// Lab, kept for the record: checked the executor's cold-start breakdown and warm overhead before the cold-warm suite measured them over HTTP (2026-11-26).
// Silero VAD through createExecutor(): the cold-start breakdown (store fetch, then cache), and the warm
// sequential latency beside session.run on the calling thread, measured in the same run.
//   tsx benchmarks/lab/executor-cold-warm-silero.ts [--warm 2000]
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { defaultModelConfig, loadConfig, systemClock } from '../../core/index.ts';
import { createExecutor } from '../../executor/index.ts';
import { ArtifactCache } from '../../model-store/index.ts';
import { arg } from '../lib/args.ts';
import { SILERO_FILE as modelPath, sileroFileManifest, sileroQuietFrame, toOrtFeeds } from '../lib/bench-models.ts';
import { sampleAt } from '../lib/percentiles.ts';

const warmN = Number(arg('warm', '2000'));
const manifest = await sileroFileManifest();
const inputs = sileroQuietFrame;
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-coldwarm-'));
const config = loadConfig({ DATA_DIR: tmp, EXECUTOR_PREWARM_WORKERS: '1' });
const cache = new ArtifactCache({
  dir: config.cacheDir,
  maxBytes: config.cacheMaxBytes,
  openFile: async () => createReadStream(modelPath),
});
const executor = createExecutor({ config, clock: systemClock, artifacts: cache, getConfig: async () => defaultModelConfig() });
await executor.prewarmed();
const fmt = (o: object) =>
  Object.entries(o)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? v.toFixed(2) : v}`)
    .join(' ');
for (const label of ['cold (store)', 'cold (cache)']) {
  const t0 = performance.now();
  const r = await executor.infer({ manifest, inputs: inputs() });
  console.log(`${label}: wall=${(performance.now() - t0).toFixed(2)} coldStartMs=${r.coldStartMs?.toFixed(2)} ${fmt(r.breakdown ?? {})}`);
  await executor.unload('silero');
  await executor.prewarmed();
}
const pct = sampleAt;
const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
const feeds = () => toOrtFeeds(inputs());
await executor.infer({ manifest, inputs: inputs() });
for (let round = 0; round < 2; round++) {
  const viaExec: number[] = [];
  const compute: number[] = [];
  const direct: number[] = [];
  for (let i = 0; i < warmN; i++) {
    const t0 = performance.now();
    const r = await executor.infer({ manifest, inputs: inputs() });
    viaExec.push(performance.now() - t0);
    compute.push(r.computeMs);
    const t1 = performance.now();
    await session.run(feeds());
    direct.push(performance.now() - t1);
  }
  console.log(
    `warm round ${round}: executor.infer p50=${pct(viaExec, 0.5).toFixed(3)} p99=${pct(viaExec, 0.99).toFixed(3)} ms (computeMs p50 ${pct(compute, 0.5).toFixed(3)}); direct session.run p50=${pct(direct, 0.5).toFixed(3)} p99=${pct(direct, 0.99).toFixed(3)} ms; ratio p50 ${(pct(viaExec, 0.5) / pct(direct, 0.5)).toFixed(2)}x`,
  );
}
await session.release();
await executor.close();
await fs.rm(tmp, { recursive: true, force: true });
