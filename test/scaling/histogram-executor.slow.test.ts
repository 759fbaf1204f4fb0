// The histogram keep-alive with the real executor, in real time, on a scaled-down clock face: 100 ms bins instead of
// 1 minute, a call every 2 s. After learning, the pool is unloaded right after each call and warmed again before
// the next, so the calls are warm. Deadlines bound polling only; nothing asserts on speed.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onnxFixtureDir } from '../fixtures/golden.ts';
import { startTestHearth, type TestHearth } from '../helpers/app.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('histogram keep-alive on the real executor', () => {
  let h: TestHearth;
  beforeAll(async () => {
    h = await startTestHearth({ env: { EXECUTOR_PREWARM_WORKERS: '1', AUTOSCALER_TICK_MS: '100' } });
    const bytes = await fs.readFile(path.join(onnxFixtureDir('identity-fp32'), 'model.onnx'));
    const up = await h.app.inject({
      method: 'POST',
      url: '/v1/models/rhythm',
      headers: { 'content-type': 'application/octet-stream' },
      payload: bytes,
    });
    expect(up.statusCode, up.body).toBe(201);
    const put = await h.app.inject({
      method: 'PUT',
      url: '/v1/models/rhythm/config',
      payload: { keepAlive: { kind: 'histogram', binMs: 100, rangeMs: 10_000, minSamples: 4, marginPct: 40, fallbackIdleMs: 5000 } },
    });
    expect(put.statusCode, put.body).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  const status = async () =>
    ((await h.app.inject('/v1/status')).json().models as Array<Record<string, any>>).find((m) => m.name === 'rhythm')!;
  const live = (s: Record<string, any>) => s.instances.starting + s.instances.idle + s.instances.busy;

  it('learns a 2 s rhythm, unloads after each call and pre-warms before the next', async () => {
    const call = async () => {
      const r = await h.app.inject({
        method: 'POST',
        url: '/v2/models/rhythm/infer',
        payload: { inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', data: [1] }] },
      });
      expect(r.statusCode, r.body).toBe(200);
      return r.headers['hearth-cold-start'] === 'true';
    };
    const cold: boolean[] = [];
    let sawUnloaded = 0;
    for (let i = 0; i < 10; i++) {
      const started = Date.now();
      cold.push(await call());
      if (i >= 6) {
        // Learned by now: shortly after the call the pool is empty (pre-warm window 0.6 x 1.9 s = 1.14 s).
        await sleep(400);
        if (live(await status()) === 0) sawUnloaded++;
      }
      await sleep(Math.max(0, 2000 - (Date.now() - started)));
    }
    const s = await status();
    expect(s.keepAlive.policy).toBe('histogram');
    expect(s.keepAlive.prewarmMs).toBeGreaterThan(500);
    expect(s.keepAlive.prewarmMs).toBeLessThan(2000);
    expect(cold[0]).toBe(true);
    expect(sawUnloaded).toBeGreaterThanOrEqual(2);
    // Pre-warmed: most calls after learning find a warm instance although the pool was empty in between.
    expect(cold.slice(6).filter((c) => !c).length).toBeGreaterThanOrEqual(3);
  }, 60_000);
});
