// Over HTTP with the real executor, in real time: a fixed 2 s keep-alive takes a pool to zero after a few idle
// seconds and the next call is cold; minInstances 1 stays warm and accrues idle GB-s; /v1/costs and /metrics
// count exactly the requests sent. Deadlines here bound polling loops; nothing asserts on speed.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CostLedger } from '../../ledger/cost-ledger.ts';
import { onnxFixtureDir } from '../fixtures/golden.ts';
import { startTestHearth, type TestHearth } from '../helpers/app.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Rig {
  app: FastifyInstance;
  close(): Promise<void>;
}

/** The whole node from createHearth: executor, autoscaler, ledger (Redis refused, so an fs-store snapshot) and metrics. */
async function startRig(): Promise<Rig> {
  const hearth: TestHearth = await startTestHearth({ env: { EXECUTOR_PREWARM_WORKERS: '1', AUTOSCALER_TICK_MS: '250' } });
  expect(hearth.deps.executor).toBeDefined();
  expect(hearth.deps.autoscaler).toBeDefined();
  expect((hearth.deps.ledger as CostLedger).persistenceKind).toBe('store');
  return { app: hearth.app, close: () => hearth.close() };
}

function metric(text: string, name: string, match: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    const labels = /\{([^}]*)\}/.exec(line)?.[1] ?? '';
    if (Object.entries(match).every(([k, v]) => labels.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('autoscaler, ledger and metrics over HTTP with the real executor', () => {
  let rig: Rig;
  const infer = async (name: string) => {
    const r = await rig.app.inject({
      method: 'POST',
      url: `/v2/models/${name}/infer`,
      payload: { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] },
    });
    expect(r.statusCode, r.body).toBe(200);
    return r;
  };
  const status = async (name: string) =>
    ((await rig.app.inject('/v1/status')).json().models as Array<Record<string, any>>).find((m) => m.name === name);
  const live = (s: Record<string, any> | undefined) => (s ? s.instances.starting + s.instances.idle + s.instances.busy : 0);
  const until = async (what: string, ok: () => Promise<boolean>, deadlineMs = 15_000) => {
    const end = Date.now() + deadlineMs;
    while (!(await ok())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  };

  beforeAll(async () => {
    rig = await startRig();
    const bytes = await fs.readFile(path.join(onnxFixtureDir('identity-fp32'), 'model.onnx'));
    for (const name of ['ka', 'warm']) {
      const up = await rig.app.inject({
        method: 'POST',
        url: `/v1/models/${name}`,
        headers: { 'content-type': 'application/octet-stream' },
        payload: bytes,
      });
      expect(up.statusCode, up.body).toBe(201);
    }
  }, 60_000);
  afterAll(async () => {
    await rig?.close();
  });

  it('keepAlive fixed 2 s, minInstances 0: traffic creates instances, idle seconds bring them to zero, the next call is cold', async () => {
    const put = await rig.app.inject({
      method: 'PUT',
      url: '/v1/models/ka/config',
      payload: { keepAlive: { kind: 'fixed', idleMs: 2000 }, minInstances: 0 },
    });
    expect(put.statusCode, put.body).toBe(200);
    for (let i = 0; i < 5; i++) await infer('ka');
    const s1 = await status('ka');
    expect(live(s1)).toBeGreaterThanOrEqual(1);
    expect(s1!.coldStarts).toBe(1);
    expect(s1!.keepAlive).toMatchObject({ policy: 'fixed', keepAliveMs: 2000 });
    await until('the pool to reach zero instances', async () => live(await status('ka')) === 0);
    const r = await infer('ka');
    const s2 = await status('ka');
    expect(s2!.coldStarts).toBe(2);
    expect(s2!.requests).toBe(6);
    expect(r.statusCode).toBe(200);

    const costs = (await rig.app.inject('/v1/costs?model=ka')).json();
    expect(costs.models).toHaveLength(1);
    expect(costs.models[0]).toMatchObject({ name: 'ka', version: 1, invocations: 6, coldStarts: 2 });
    expect(costs.models[0].storageBytes).toBeGreaterThan(0);
    const text = (await rig.app.inject('/metrics')).body;
    const l = { model: 'ka', version: '1' };
    expect(metric(text, 'hearth_inference_request_success_total', l)).toBe(6);
    expect(metric(text, 'hearth_inference_count_total', l)).toBe(6);
    expect(metric(text, 'hearth_cold_starts_total', l)).toBe(2);
    expect(metric(text, 'hearth_cost_usd_total', { ...l, kind: 'request' })).toBeCloseTo(costs.models[0].requestCost, 15);
  }, 60_000);

  it('minInstances 1: the instance stays warm through idle time and idle GB-s grow', async () => {
    const put = await rig.app.inject({
      method: 'PUT',
      url: '/v1/models/warm/config',
      payload: { keepAlive: { kind: 'fixed', idleMs: 500 }, minInstances: 1 },
    });
    expect(put.statusCode, put.body).toBe(200);
    await infer('warm');
    await until('one idle instance', async () => (await status('warm'))?.instances.idle === 1);
    const idle1 = (await rig.app.inject('/v1/costs?model=warm')).json().models[0].idleGbSeconds;
    await sleep(2500); // five keep-alive windows
    const s = await status('warm');
    expect(live(s)).toBe(1);
    expect(s!.desiredInstances).toBe(1);
    const idle2 = (await rig.app.inject('/v1/costs?model=warm')).json().models[0].idleGbSeconds;
    expect(idle2).toBeGreaterThan(idle1);
  }, 60_000);
});
