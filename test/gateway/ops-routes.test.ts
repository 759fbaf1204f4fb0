// /v1/status, /v1/costs and /metrics through app.inject, over the simulated executor on a ManualClock:
// the three agree exactly with each other and with the number of requests sent.
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_HISTOGRAM, ManualClock, defaultModelConfig, loadConfig } from '../../core/index.ts';
import { SimulatedPools } from '../../scaling/simulated-pools.ts';
import { buildApp } from '../../gateway/app.ts';
import { startOps, type Ops } from '../../gateway/ops-wiring.ts';
import { metric } from '../helpers/metrics.ts';

describe('ops routes', async () => {
  const clock = new ManualClock(1_700_000_000_000);
  const config = loadConfig({ EXECUTOR_SLOTS: '4', EXECUTOR_MEMORY_MB: '8192' });
  const pools = new SimulatedPools({ clock, slots: 4, memoryMb: 8192 });
  pools.addModel({
    name: 'alpha',
    version: 1,
    config: { ...defaultModelConfig(2000), keepAlive: { kind: 'fixed', idleMs: 2000 } },
    memoryMb: 512,
    coldStartMs: 300,
    serviceMs: 40,
  });
  pools.addModel({
    name: 'beta',
    version: 2,
    config: { ...defaultModelConfig(), minInstances: 1, keepAlive: { ...DEFAULT_HISTOGRAM } },
    memoryMb: 1024,
    coldStartMs: 500,
    serviceMs: 25,
  });
  const ops: Ops = await startOps({ config, clock, executor: { control: pools, setObserver: (o) => pools.setObserver(o) }, redisUrl: '' });
  const app = await buildApp({ config, clock, autoscaler: ops.autoscaler, ledger: ops.ledger, metrics: ops.metrics, poolControl: pools });
  afterAll(async () => {
    await app.close();
    await ops.close();
  });

  it('counts agree exactly across /v1/status, /v1/costs and /metrics', async () => {
    for (let i = 0; i < 37; i++) {
      pools.invoke('alpha', 1);
      if (i % 3 === 0) pools.invoke('beta', 2);
      clock.advance(20);
    }
    clock.advance(1000);
    const sentAlpha = 37;
    const sentBeta = 13;

    const status = (await app.inject('/v1/status')).json();
    const costs = (await app.inject('/v1/costs')).json();
    const prom = await app.inject('/metrics');
    expect(prom.statusCode).toBe(200);
    expect(prom.headers['content-type']).toMatch(/text\/plain/);
    const text = prom.body;

    expect(status.node).toEqual({ slots: 4, memoryMb: 8192, memoryUsedMb: expect.any(Number), stuckRuns: [] });
    const byName = (xs: { name: string }[], n: string) => xs.find((x) => x.name === n)! as Record<string, any>;
    for (const [name, version, sent] of [
      ['alpha', '1', sentAlpha],
      ['beta', '2', sentBeta],
    ] as const) {
      const s = byName(status.models, name);
      const c = byName(costs.models, name);
      const l = { model: name, version };
      expect(s.requests).toBe(sent);
      expect(c.invocations).toBe(sent);
      expect(metric(text, 'hearth_inference_request_success_total', l)).toBe(sent);
      expect(metric(text, 'hearth_inference_count_total', l)).toBe(sent);
      expect(metric(text, 'hearth_inference_exec_count_total', l)).toBe(sent); // no batching in the simulation
      expect(metric(text, 'hearth_inference_queue_duration_seconds_count', l)).toBe(sent);
      expect(metric(text, 'hearth_inference_pending_requests', l)).toBe(0);
      expect(metric(text, 'hearth_cold_starts_total', l)).toBe(s.coldStarts);
      expect(c.coldStarts).toBe(s.coldStarts);
      for (const state of ['starting', 'idle', 'busy'] as const)
        expect(metric(text, 'hearth_instances', { ...l, state })).toBe(s.instances[state]);
      expect(metric(text, 'hearth_cost_usd_total', { ...l, kind: 'compute' })).toBeCloseTo(c.computeCost, 15);
      expect(metric(text, 'hearth_cost_usd_total', { ...l, kind: 'request' })).toBeCloseTo(c.requestCost, 15);
      expect(c.totalCost).toBeCloseTo(c.computeCost + c.requestCost + c.idleCost + c.storageCost, 15);
    }
    expect(metric(text, 'hearth_inference_request_success_total')).toBe(sentAlpha + sentBeta);
    expect(costs.total.invocations).toBe(sentAlpha + sentBeta);
    expect(costs).toMatchObject({ currency: 'USD', prices: config.prices, from: null });

    const a = byName(status.models, 'alpha');
    expect(a).toMatchObject({
      version: 1,
      strategy: 'event',
      keepAlive: { policy: 'fixed', keepAliveMs: 2000, prewarmMs: 0, stableWindowMs: 60_000, panicWindowMs: 6_000 },
    });
    expect(a.latencyMs.p50).toBeGreaterThanOrEqual(40);
    expect(a.latencyMs.p99).toBeGreaterThanOrEqual(a.latencyMs.p50);
    expect(a.ratePerSec).toBeGreaterThan(0);
    const b = byName(status.models, 'beta');
    expect(b.keepAlive.policy).toBe('histogram-fallback');
    expect(b.keepAlive.reason).toMatch(/minSamples/);
  });

  it('an idle pool falls to zero after its keep-alive; minInstances stays and its idle GB-s grow', async () => {
    // Past alpha's 2 s keep-alive, and past the 30 s scale-down delay that trims beta's on-demand extras to its floor.
    clock.advance(35_000);
    const status = (await app.inject('/v1/status')).json();
    const a = status.models.find((m: { name: string }) => m.name === 'alpha');
    const b = status.models.find((m: { name: string }) => m.name === 'beta');
    expect(a.instances).toEqual({ starting: 0, idle: 0, busy: 0 });
    expect(a.desiredInstances).toBe(0);
    expect(b.instances.idle).toBe(1);
    const idle1 = (await app.inject('/v1/costs?model=beta')).json().models[0].idleGbSeconds;
    clock.advance(10_000);
    const costs = (await app.inject('/v1/costs?model=beta')).json();
    expect(costs.models).toHaveLength(1);
    expect(costs.models[0].idleGbSeconds - idle1).toBeCloseTo(10, 6); // 1 GB for 10 s
  });

  it('rejects a bad time or an unknown parameter with INVALID_REQUEST', async () => {
    const r1 = await app.inject('/v1/costs?from=yesterday');
    expect(r1.statusCode).toBe(400);
    expect(r1.json()).toEqual({ error: expect.stringMatching(/^from:/), code: 'INVALID_REQUEST' });
    const r2 = await app.inject('/v1/costs?modle=x');
    expect(r2.statusCode).toBe(400);
    expect(r2.json().code).toBe('INVALID_REQUEST');
    const r3 = await app.inject('/v1/costs?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z');
    expect(r3.statusCode).toBe(400);
    const r4 = await app.inject(`/v1/costs?from=${new Date(clock.now() + 3_600_000).toISOString()}`);
    expect(r4.json().models.filter((m: { invocations: number }) => m.invocations > 0)).toEqual([]);
  });
});
