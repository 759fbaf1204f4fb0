// GET/PUT /v1/models/{name}/config: a model's serving settings, validated strictly, persisted with the model
// and applied to its running pools at once.
//
// The store keeps what was asked; each node applies what it can hold (cores, slots, memory budget, the model's
// footprint), so the answer to both routes is the config as this node applies it to the latest version, and
// `hearth-config-clamped` says what it changed and why. A value past the node's limits is clamped, not refused:
// configs are shared by every node through the store, and nodes differ in size. Only a memoryMb larger than the
// node's whole budget is refused (400 INVALID_CONFIG): no instance of it could start here at all.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { describeClamps, mergeModelConfig, type ModelConfig } from '../core/index.ts';
import type { Executor } from '../executor/index.ts';
import { checkModelName, type ModelRegistry } from '../model-store/index.ts';

export interface ConfigRoutesOptions {
  registry: ModelRegistry;
  executor?: Pick<Executor, 'setConfig'> & Partial<Pick<Executor, 'fitConfig' | 'checkConfig'>>;
}

export async function configRoutes(app: FastifyInstance, opts: ConfigRoutesOptions): Promise<void> {
  const { registry, executor } = opts;

  const effective = async (name: string, requested: ModelConfig, reply: FastifyReply): Promise<ModelConfig> => {
    if (!executor?.fitConfig) return requested;
    const fitted = executor.fitConfig(await registry.getManifest(name), requested);
    if (fitted.clamped.length > 0) reply.header('hearth-config-clamped', describeClamps(fitted.clamped));
    return fitted.config;
  };

  app.get<{ Params: { name: string } }>('/v1/models/:name/config', async (req, reply) => {
    checkModelName(req.params.name);
    return effective(req.params.name, await registry.getServingConfig(req.params.name), reply);
  });

  app.put<{ Params: { name: string } }>('/v1/models/:name/config', async (req, reply) => {
    checkModelName(req.params.name);
    // A config no instance of which could start on this node (memoryMb past EXECUTOR_MEMORY_MB) is refused, not stored.
    if (executor?.checkConfig) executor.checkConfig(mergeModelConfig(await registry.getServingConfig(req.params.name), req.body ?? {}));
    const config = await registry.putServingConfig(req.params.name, req.body ?? {});
    executor?.setConfig(req.params.name, config);
    return effective(req.params.name, config, reply);
  });
}
