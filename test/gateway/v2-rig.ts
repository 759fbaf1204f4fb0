// A Hearth with an executor for the V2 HTTP tests: createHearth's app when it already builds an executor,
// else the same deps plus an executor built here, through buildApp (so the routes are the real ones).
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { systemClock } from '../../core/index.ts';
import { createExecutor, type CreateExecutorOptions, type HearthExecutor } from '../../executor/index.ts';
import { buildApp } from '../../gateway/app.ts';
import { ArtifactCache } from '../../model-store/artifact-cache.ts';
import type { ModelRegistry } from '../../model-store/index.ts';
import { startTestHearth, type TestHearth } from '../helpers/app.ts';

export interface V2Rig {
  app: FastifyInstance;
  hearth: TestHearth;
  executor: HearthExecutor;
  close(): Promise<void>;
}

/**
 * `executorOptions` (e.g. the test-only fault runtime) always builds an executor here, beside any that
 * createHearth made, so the options apply.
 */
export async function startV2Rig(env: Record<string, string> = {}, executorOptions?: Partial<CreateExecutorOptions>): Promise<V2Rig> {
  const hearth = await startTestHearth({ env: { EXECUTOR_PREWARM_WORKERS: '1', ...env } });
  const existing = hearth.deps.executor as HearthExecutor | undefined;
  if (existing && !executorOptions) return { app: hearth.app, hearth, executor: existing, close: () => hearth.close() };

  const registry = hearth.deps.registry as ModelRegistry;
  const executor = createExecutor({
    config: hearth.config,
    clock: systemClock,
    artifacts: new ArtifactCache({
      dir: path.join(hearth.config.cacheDir, 'artifacts'),
      maxBytes: hearth.config.cacheMaxBytes,
      openFile: (m, p) => registry.openFile(m, p),
    }),
    getConfig: (name) => registry.getServingConfig(name),
    ...executorOptions,
  });
  const app = await buildApp({ ...hearth.deps, jobs: undefined, executor });
  return {
    app,
    hearth,
    executor,
    async close() {
      await app.close();
      await executor.close();
      await hearth.close();
    },
  };
}
