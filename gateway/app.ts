// buildApp: the fastify instance with every route group registered, not yet listening.
// Each route group is a plugin in its own file; they all share one error shape: { error, code }.
import Fastify, { type FastifyInstance } from 'fastify';
import { HearthError, isHearthError, type Clock, type Config } from '../core/index.ts';
import type { Executor } from '../executor/types.ts';
import type { ModelRegistry, ModelUploader, ObjectStore } from '../model-store/index.ts';
import { configRoutes } from './config-routes.ts';
import { healthRoutes } from './health-routes.ts';
import { modelsRoutes } from './models-routes.ts';
import { ManifestCache, v2Routes } from './v2-routes.ts';
import { jobsRoutes } from './jobs-routes.ts';
import { datasetsRoutes } from './datasets-routes.ts';
import type { Jobs } from '../jobs/index.ts';
import type { Autoscaler, PoolControl } from '../executor/autoscaler.ts';
import type { CostLedger } from '../executor/cost-ledger.ts';
import type { HearthMetrics } from './ops-metrics.ts';
import { opsRoutes } from './ops-routes.ts';

/** Everything the routes need, built by main.ts (or by a test) and passed in. */
export interface AppDeps {
  config: Readonly<Config>;
  clock: Clock;
  store?: ObjectStore;
  registry?: ModelRegistry;
  uploader?: ModelUploader;
  executor?: Executor;
  // The remaining members are added by the components as they land (store, registry, executor, jobs, ledger, metrics).
  [component: string]: unknown;
}

export async function buildApp(deps: AppDeps, opts: { logger?: boolean } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ? { level: deps.config.logLevel } : false,
    bodyLimit: 64 * 1024 * 1024,
    // Model names are lower case; paths are matched exactly as the Open Inference Protocol spells them.
    routerOptions: { ignoreTrailingSlash: true },
  });

  app.setErrorHandler((err, req, reply) => {
    const e = toHearthError(err);
    if (e.statusCode >= 500) req.log.error({ err }, e.message);
    if (e.headers) reply.headers(e.headers);
    reply.code(e.statusCode).type('application/json').send(e.toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: `no route for ${req.method} ${req.url}`, code: 'NOT_FOUND' });
  });

  await app.register(healthRoutes, { store: deps.store });
  if (deps.registry && deps.uploader) {
    await app.register(modelsRoutes, { registry: deps.registry, uploader: deps.uploader, maxModelBytes: deps.config.maxModelBytes, executor: deps.executor });
    await app.register(configRoutes, { registry: deps.registry, executor: deps.executor });
    // The V2 infer path caches manifests; any successful change under /v1/models clears that cache at once.
    const manifests = new ManifestCache(deps.registry, deps.clock);
    app.addHook('onSend', async (req, reply, payload) => {
      if (req.method !== 'GET' && req.method !== 'HEAD' && req.url.startsWith('/v1/models/') && reply.statusCode < 400) manifests.clear();
      return payload;
    });
    await app.register(v2Routes, { registry: deps.registry, executor: deps.executor, clock: deps.clock, manifests, deferJsonBytes: deps.config.deferJsonBytes });
  }
  if (deps.autoscaler || deps.ledger || deps.metrics) {
    await app.register(opsRoutes, {
      autoscaler: deps.autoscaler as Autoscaler | undefined,
      ledger: deps.ledger as CostLedger | undefined,
      metrics: deps.metrics as HearthMetrics | undefined,
      node: deps.poolControl ? () => (deps.poolControl as PoolControl).node() : undefined,
    });
  }
  if (deps.jobs) {
    await app.register(jobsRoutes, { jobs: deps.jobs as Jobs });
    await app.register(datasetsRoutes, { datasets: (deps.jobs as Jobs).datasets });
  }

  return app;
}

/** Maps anything thrown inside a route to the registry: fastify's own 4xx become INVALID_REQUEST. */
export function toHearthError(err: unknown): HearthError {
  if (isHearthError(err)) return err;
  const e = err as { statusCode?: number; code?: string; message?: string };
  if (e && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 413) return new HearthError('MODEL_TOO_LARGE', e.message ?? 'body too large');
    if (e.statusCode === 415) return new HearthError('UNSUPPORTED_MEDIA_TYPE', e.message ?? 'unsupported media type');
    return new HearthError('INVALID_REQUEST', e.message ?? 'bad request');
  }
  return new HearthError('INTERNAL', (e && e.message) || 'internal error', { cause: err });
}
