// Shared setup for executor tests: manifests built from local model folders, a counting fake store behind a
// real ArtifactCache, and an executor with its own config, clock and temp dirs.
import type { Tensor } from '../../core/index.ts';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  loadConfig,
  systemClock,
  type Clock,
  type Manifest,
  type ModelConfig,
  type ModelFormat,
  type TensorSpec,
  defaultModelConfig,
  mergeModelConfig,
} from '../../core/index.ts';
import { createExecutor, type CreateExecutorOptions, type HearthExecutor } from '../../executor/index.ts';
import { inspectModel } from '../../functions/index.ts';
import { ArtifactCache } from '../../model-store/artifact-cache.ts';

async function walk(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const d of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(...(await walk(dir, r)));
    else out.push(r);
  }
  return out.sort();
}

/** A manifest for the model files in `dir` (or a single file), with real hashes; specs from inspection unless given. */
export async function manifestOf(
  name: string,
  source: string,
  opts: { version?: number; format?: ModelFormat; inputs?: TensorSpec[]; outputs?: TensorSpec[] } = {},
): Promise<{ manifest: Manifest; dir: string }> {
  let dir = source;
  let files: string[];
  if ((await fs.stat(source)).isFile()) {
    dir = path.dirname(source);
    files = [path.basename(source)];
  } else files = await walk(source);
  const list = [];
  for (const f of files) {
    const b = await fs.readFile(path.join(dir, f));
    list.push({ path: f, sizeBytes: b.length, sha256: createHash('sha256').update(b).digest('hex') });
  }
  const lines = list.map((f) => `${f.path} ${f.sha256}\n`).join('');
  const format = opts.format ?? 'onnx';
  let { inputs, outputs } = opts;
  if (!inputs || !outputs) {
    // Inspection loads from a folder with exactly the manifest's files.
    const sig = await inspectModel(dir, format);
    inputs ??= sig.inputs;
    outputs ??= sig.outputs;
  }
  const manifest: Manifest = {
    name,
    version: opts.version ?? 1,
    format,
    files: list,
    sha256: list.length === 1 ? list[0].sha256 : createHash('sha256').update(lines).digest('hex'),
    sizeBytes: list.reduce((n, f) => n + f.sizeBytes, 0),
    createdAt: new Date().toISOString(),
    inputs,
    outputs,
  };
  return { manifest, dir };
}

export interface TestRig {
  executor: HearthExecutor;
  cache: ArtifactCache;
  /** Store reads, as "name@version/path". */
  reads: string[];
  tmp: string;
  /** Where each manifest's files come from. */
  sources: Map<string, string>;
  close(): Promise<void>;
}

/** An executor over a real ArtifactCache whose "store" is local folders. */
export async function makeRig(
  opts: {
    env?: Record<string, string>;
    clock?: Clock;
    configs?: Record<string, unknown>;
  } & Partial<Omit<CreateExecutorOptions, 'config' | 'clock' | 'artifacts' | 'getConfig'>> = {},
): Promise<TestRig> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-exec-'));
  const config = loadConfig({ DATA_DIR: tmp, EXECUTOR_PREWARM_WORKERS: '1', EXECUTOR_SLOTS: '2', EXECUTOR_MEMORY_MB: '4096', ...opts.env });
  const clock = opts.clock ?? systemClock;
  const sources = new Map<string, string>();
  const reads: string[] = [];
  const cache = new ArtifactCache({
    dir: config.cacheDir,
    maxBytes: config.cacheMaxBytes,
    clock,
    openFile: async (m, p) => {
      reads.push(`${m.name}@${m.version}/${p}`);
      const dir = sources.get(`${m.name}@${m.version}`);
      if (!dir) throw new Error(`no source for ${m.name}@${m.version}`);
      return createReadStream(path.join(dir, p));
    },
  });
  const { env: _e, clock: _c, configs, ...rest } = opts;
  const executor = createExecutor({
    config,
    clock,
    artifacts: cache,
    getConfig: async (name) => mergeModelConfig(defaultModelConfig(config.executor.keepAliveMs), configs?.[name] ?? {}),
    ...rest,
  });
  return {
    executor,
    cache,
    reads,
    tmp,
    sources,
    async close() {
      await executor.close();
      await fs.rm(tmp, { recursive: true, force: true });
    },
  };
}

export function modelConfig(patch: unknown = {}): ModelConfig {
  return mergeModelConfig(defaultModelConfig(), patch);
}

/** Inputs and outputs of the test-only fault runtime (functions/protocol.ts). */
export const FAULT_SPECS = {
  inputs: [
    { name: 'mode', datatype: 'INT32' as const, shape: [-1] },
    { name: 'payload', datatype: 'FP32' as const, shape: [-1] },
  ],
  outputs: [
    { name: 'mode', datatype: 'INT32' as const, shape: [-1] },
    { name: 'payload', datatype: 'FP32' as const, shape: [-1] },
  ],
};

/** A request for the fault runtime: mode 0 echo, 1 hang, 3 throw, 4 exit, >= 1000 sleep (mode-1000) ms. */
export function faultInputs(mode: number, payload = 1): Tensor[] {
  return [
    { name: 'mode', datatype: 'INT32', shape: [1], data: Int32Array.of(mode) },
    { name: 'payload', datatype: 'FP32', shape: [1], data: Float32Array.of(payload) },
  ];
}
