// A real Hearth for job tests: createHearth on an fs store in a temp dir, a private Redis prefix, real silero VAD.
// When createHearth does not build an executor yet, the rig builds one over the registry (as main.ts will).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defaultModelConfig, loadConfig, type Config, type Manifest, type Tensor } from '../../core/index.ts';
import { createExecutor, type HearthExecutor } from '../../executor/index.ts';
import { createHearth, type Hearth } from '../../gateway/hearth.ts';
import type { WorkerTuning } from '../../jobs/index.ts';
import { ArtifactCache, type ModelRegistry } from '../../model-store/index.ts';
import { sileroBytes } from '../helpers/model-bodies.ts';

export interface JobsRig {
  hearth: Hearth;
  config: Readonly<Config>;
  dir: string;
  executor: HearthExecutor;
  registry: ModelRegistry;
  uploadSilero(name?: string): Promise<Manifest>;
  close(): Promise<void>;
}

/** Short locks and back-offs so crash and retry scenarios take seconds, not minutes. */
export const FAST_TUNING: Partial<WorkerTuning> = {
  lockDuration: 2000,
  stalledInterval: 1000,
  backoffMs: 100,
  callbackBackoffMs: 100,
  pollMs: 50,
};

export async function makeJobsRig(opts: {
  redisUrl: string;
  prefix: string;
  /** Share a store root with another node. */
  dataDir?: string;
  workerOptions?: Partial<WorkerTuning>;
  env?: Record<string, string>;
}): Promise<JobsRig> {
  const ownDir = opts.dataDir === undefined;
  const dir = opts.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-jobs-')));
  const config = loadConfig({
    DATA_DIR: dir,
    CACHE_DIR: path.join(dir, `cache-${process.pid}-${Math.random().toString(36).slice(2, 6)}`),
    REDIS_URL: opts.redisUrl,
    JOBS_PREFIX: opts.prefix,
    EXECUTOR_SLOTS: '2',
    EXECUTOR_PREWARM_WORKERS: '1',
    EXECUTOR_MEMORY_MB: '2048',
    // The callback tests listen on loopback.
    CALLBACK_ALLOW_PRIVATE: 'true',
    CALLBACK_TIMEOUT_MS: '2000',
    ...opts.env,
  });
  const hearth = await createHearth(config, { jobs: { workerOptions: { ...FAST_TUNING, ...opts.workerOptions } } });
  const registry = hearth.deps.registry as ModelRegistry;
  let executor = hearth.deps.executor as HearthExecutor | undefined;
  let ownExecutor = false;
  if (!executor) {
    const cache = new ArtifactCache({ dir: config.cacheDir, maxBytes: config.cacheMaxBytes, openFile: (m, p) => registry.openFile(m, p) });
    executor = createExecutor({
      config,
      clock: hearth.deps.clock,
      artifacts: cache,
      getConfig: async (name) => registry.getServingConfig(name).catch(() => defaultModelConfig(config.executor.keepAliveMs)),
    });
    hearth.deps.executor = executor;
    ownExecutor = true;
  }
  const exec = executor;
  let closing: Promise<void> | undefined;
  return {
    hearth,
    config,
    dir,
    executor: exec,
    registry,
    async uploadSilero(name = 'vad') {
      const res = await hearth.app.inject({
        method: 'POST',
        url: `/v1/models/${name}`,
        headers: { 'content-type': 'application/octet-stream' },
        payload: sileroBytes(),
      });
      if (res.statusCode !== 201) throw new Error(`upload ${name}: ${res.statusCode} ${res.body}`);
      return registry.getManifest(name);
    },
    close() {
      // Idempotent: tests close a node mid-test and again in `finally`.
      closing ??= (async () => {
        await hearth.close();
        if (ownExecutor) await exec.close();
        if (ownDir) await fs.rm(dir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}

/** One silero VAD request body (a dataset row): 512 samples, zero LSTM state; distinct per index. */
export function sileroRow(i: number): Record<string, unknown> {
  const wave: number[] = [];
  for (let k = 0; k < 512; k++) wave.push(Number((Math.sin((k + i * 37) * 0.05 * (1 + (i % 7))) * (0.1 + (i % 5) * 0.2)).toFixed(4)));
  const zeros = new Array(128).fill(0);
  return {
    id: `row-${i}`,
    inputs: [
      { name: 'input', datatype: 'FP32', shape: [1, 512], data: wave },
      { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
      { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: zeros },
      { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: zeros },
    ],
  };
}

/** The same row as tensors, for online inference through executor.infer. */
export function sileroTensors(i: number): Tensor[] {
  const row = sileroRow(i) as { inputs: { name: string; datatype: string; shape: number[]; data: number[] }[] };
  return row.inputs.map((t) => ({
    name: t.name,
    datatype: t.datatype as Tensor['datatype'],
    shape: t.shape,
    data: t.datatype === 'INT64' ? BigInt64Array.from(t.data.map(BigInt)) : Float32Array.from(t.data),
  }));
}

export async function waitFor<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 45_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
