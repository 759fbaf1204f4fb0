// The executor alone, without store, registry or HTTP: every model is silero VAD copied into one temp folder
// (artifacts.ensure hands that folder out as a cache hit), each name with its own ModelConfig. For scripts that
// measure the engine's own cost (queue, thread hop, merge/split).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, systemClock, type ModelConfig } from '../../core/index.ts';
import { createExecutor, type HearthExecutor } from '../../executor/index.ts';
import { SILERO_FILE } from './bench-models.ts';

export interface FolderExecutor {
  executor: HearthExecutor;
  /** Closes the executor and removes the folder. */
  close(): Promise<void>;
}

/** `configs` maps model name to its config; Redis points nowhere (no job queue here). */
export async function sileroFolderExecutor(prefix: string, configs: ReadonlyMap<string, ModelConfig>): Promise<FolderExecutor> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  await fs.copyFile(SILERO_FILE, path.join(dir, 'model.onnx'));
  const executor = createExecutor({
    config: loadConfig({ DATA_DIR: dir, REDIS_URL: 'redis://127.0.0.1:1' }),
    clock: systemClock,
    artifacts: { ensure: async () => ({ dir, source: 'cache', fetchMs: 0 }) },
    getConfig: async (name) => configs.get(name)!,
  });
  return {
    executor,
    close: async () => {
      await executor.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
