// PUT/GET /v1/models/{name}/config: strict validation, persistence with the model, and the executor told at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModelConfig, type ModelConfig } from '../../core/index.ts';
import { startTestHearth, type TestHearth } from '../helpers/app.ts';
import { sileroBytes } from '../helpers/model-bodies.ts';

describe('model serving config routes', () => {
  let h: TestHearth;
  const applied: { name: string; config: ModelConfig }[] = [];
  const removed: { name: string; version?: number }[] = [];

  beforeAll(async () => {
    h = await startTestHearth();
    // A recording executor stands in for the real one: only setConfig is under test here.
    h.deps.executor = {
      setConfig: (name: string, config: ModelConfig) => void applied.push({ name, config }),
      remove: async (name: string, version?: number) => void removed.push({ name, version }),
    } as never;
    await h.app.close();
    const { buildApp } = await import('../../gateway/app.ts');
    h.app = await buildApp(h.deps);
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/models/vad',
      headers: { 'content-type': 'application/octet-stream' },
      payload: sileroBytes(),
    });
    expect(res.statusCode).toBe(201);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('answers the defaults before any PUT', async () => {
    const res = await h.app.inject({ url: '/v1/models/vad/config' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(defaultModelConfig(h.config.executor.keepAliveMs));
  });

  it('merges a patch, persists it in the store and hands it to the executor', async () => {
    const res = await h.app.inject({
      method: 'PUT',
      url: '/v1/models/vad/config',
      payload: { maxInstances: 2, keepAlive: { kind: 'histogram' }, batching: { maxBatchSize: 8 } },
    });
    expect(res.statusCode).toBe(200);
    const cfg = res.json();
    expect(cfg).toMatchObject({
      maxInstances: 2,
      batching: { maxBatchSize: 8, maxQueueDelayMs: 0 },
      keepAlive: { kind: 'histogram', keepAlivePercentile: 99 },
    });
    expect(applied.at(-1)).toEqual({ name: 'vad', config: cfg });
    expect(await h.deps.store!.stat('models/vad/config.json')).toBeDefined();
    // A second patch builds on the first.
    const res2 = await h.app.inject({ method: 'PUT', url: '/v1/models/vad/config', payload: { timeoutMs: 5000 } });
    expect(res2.json()).toMatchObject({ maxInstances: 2, timeoutMs: 5000 });
    expect((await h.app.inject({ url: '/v1/models/vad/config' })).json()).toEqual(res2.json());
  });

  it('refuses unknown keys and out-of-range values with INVALID_CONFIG naming the field, changing nothing', async () => {
    const before = (await h.app.inject({ url: '/v1/models/vad/config' })).json();
    const calls = applied.length;
    for (const [payload, field] of [
      [{ maxInstancez: 3 }, 'maxInstancez'],
      [{ minInstances: 5, maxInstances: 2 }, 'minInstances'],
      [{ keepAlive: { kind: 'fixed', idleMs: -1 } }, 'keepAlive.idleMs'],
      [{ batching: { maxBatchSize: 0 } }, 'batching.maxBatchSize'],
      [{ scheduling: { strategy: 'random' } }, 'scheduling.strategy'],
      // 604,800,000 one-millisecond bins would be an array the autoscaler allocates on its next tick.
      [{ keepAlive: { kind: 'histogram', binMs: 1, rangeMs: 604_800_000 } }, 'keepAlive.binMs'],
    ] as const) {
      const res = await h.app.inject({ method: 'PUT', url: '/v1/models/vad/config', payload });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('INVALID_CONFIG');
      expect(res.json().error).toContain(field);
    }
    expect((await h.app.inject({ url: '/v1/models/vad/config' })).json()).toEqual(before);
    expect(applied.length).toBe(calls);
  });

  it('answers 404 MODEL_NOT_FOUND for an unknown model and 400 INVALID_NAME for a bad name', async () => {
    expect((await h.app.inject({ url: '/v1/models/nope/config' })).json().code).toBe('MODEL_NOT_FOUND');
    expect((await h.app.inject({ method: 'PUT', url: '/v1/models/nope/config', payload: {} })).json().code).toBe('MODEL_NOT_FOUND');
    expect((await h.app.inject({ url: '/v1/models/-bad/config' })).json().code).toBe('INVALID_NAME');
  });

  it('drops the config with the model', async () => {
    expect((await h.app.inject({ method: 'DELETE', url: '/v1/models/vad' })).statusCode).toBe(200);
    expect(await h.deps.store!.list('models/vad/')).toEqual([]);
    expect(removed).toEqual([{ name: 'vad', version: undefined }]);
  });
});
