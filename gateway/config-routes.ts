// GET/PUT /v1/models/{name}/config: a model's serving settings, validated strictly, persisted with the model
// and applied to its running pools at once.
import type { FastifyInstance } from 'fastify';
import type { Executor } from '../executor/types.ts';
import { checkModelName, type ModelRegistry } from '../model-store/index.ts';

export interface ConfigRoutesOptions {
  registry: ModelRegistry;
  executor?: Pick<Executor, 'setConfig'>;
}

export async function configRoutes(app: FastifyInstance, opts: ConfigRoutesOptions): Promise<void> {
  const { registry, executor } = opts;

  app.get<{ Params: { name: string } }>('/v1/models/:name/config', async (req) => {
    checkModelName(req.params.name);
    return registry.getServingConfig(req.params.name);
  });

  app.put<{ Params: { name: string } }>('/v1/models/:name/config', async (req) => {
    checkModelName(req.params.name);
    const config = await registry.putServingConfig(req.params.name, req.body ?? {});
    executor?.setConfig(req.params.name, config);
    return config;
  });
}
