// A run that passes its timeout while onnxruntime computes natively cannot be interrupted (session.run is synchronous
// on the instance thread; worker.terminate() does not stop native code). Seen live with a Loop model asked for 9e18
// passes: the client got 504 after 2 s, but the thread ran on at 100% of a core, shown nowhere; three such requests
// put the node at 182% CPU; on SIGTERM the port closed but the process lived on (process.exit waits for the thread)
// until it was SIGKILLed. Now such a run is a "stuck run": its CPU slot and memory stay taken, /v1/status and
// /metrics show it, its model version is refused at once on this node, health fails when every slot is stuck, and a
// shutdown still ends the process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loopOnnxBytes } from '../fixtures/make-loop-onnx.ts';
import { baseline, expectError, expectIntact, request, startNode, uploadSilero, type Baseline, type HostileNode } from './rig.ts';

let node: HostileNode;
let base: Baseline;

const json = { 'content-type': 'application/json' };

async function uploadLoop(name: string): Promise<void> {
  const up = await request(node, {
    method: 'POST',
    path: `/v1/models/${name}`,
    headers: { 'content-type': 'application/octet-stream' },
    body: loopOnnxBytes(),
  });
  expect(up.status, up.body.toString()).toBe(201);
  const put = await request(node, {
    method: 'PUT',
    path: `/v1/models/${name}/config`,
    headers: json,
    body: JSON.stringify({ timeoutMs: 2000 }),
  });
  expect(put.status, put.body.toString()).toBe(200);
}

/** Runs the loop model for `passes` passes (an INT64 as a decimal string). */
function loop(name: string, passes: string) {
  const body = JSON.stringify({
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [1], data: [0.5] },
      { name: 'm', datatype: 'INT64', shape: [], data: [passes] },
    ],
  });
  return request(node, { method: 'POST', path: `/v2/models/${name}/infer`, headers: json, body, timeoutMs: 30_000 });
}

interface StuckRun {
  model: string;
  version: number;
  since: string;
}

async function stuckRuns(): Promise<StuckRun[]> {
  const res = await request(node, { path: '/v1/status' });
  expect(res.status).toBe(200);
  return (res.json!.node as { stuckRuns?: StuckRun[] }).stuckRuns ?? [];
}

/** Polls /v1/status until `n` stuck runs are listed; the 20 s bound only detects a hang. */
async function waitForStuck(n: number): Promise<StuckRun[]> {
  const end = Date.now() + 20_000;
  let runs = await stuckRuns();
  while (runs.length < n && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    runs = await stuckRuns();
  }
  return runs;
}

beforeAll(async () => {
  // Two slots: one stuck run leaves the other for vad; SHUTDOWN_TIMEOUT_MS short, so the shutdown case is quick.
  node = await startNode({ env: { EXECUTOR_SLOTS: '2', SHUTDOWN_TIMEOUT_MS: '2000' } });
  await uploadSilero(node);
  await uploadLoop('loop');
  await uploadLoop('loop2');
  // The loop model serves a short run (its instance is warm when the long one comes).
  const short = await loop('loop', '10');
  expect(short.status, short.body.toString()).toBe(200);
  expect((short.json!.outputs as { data: number[] }[])[0].data).toEqual([10.5]);
  base = await baseline(node);
});

afterAll(async () => {
  // 60 s: the rig SIGKILLs a node that has not ended by then (it must end on its own, see the last case).
  await node?.stop(60_000);
});

describe('a run stuck in native code past its timeout', () => {
  it('answers 504 TIMEOUT, is listed in /v1/status and /metrics, and its model is refused at once with 503 MODEL_UNAVAILABLE', async () => {
    const res = await loop('loop', '9000000000000000000');
    expectError(res, 504, 'TIMEOUT', node);
    const runs = await waitForStuck(1);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ model: 'loop', version: 1 });
    expect(Number.isFinite(Date.parse(runs[0].since))).toBe(true);
    // The same model version again: refused at once instead of taking another core.
    const again = await loop('loop', '10');
    expectError(again, 503, 'MODEL_UNAVAILABLE', node);
    expect(again.json!.error).toMatch(/loop@1/);
    expect(again.json!.error).toMatch(/stuck/);
    expect(again.json!.error).toMatch(/restart/);
    const metrics = await request(node, { path: '/metrics' });
    expect(metrics.body.toString()).toMatch(/hearth_stuck_runs\{model="loop",version="1"\} 1/);
    // Its slot stays taken: 1 of the 2 slots is free, so the node is still ready and live.
    expect((await request(node, { path: '/v2/health/ready' })).status).toBe(200);
    // Other models answer the same.
    await expectIntact(node, base);
  });

  it('when every slot holds a stuck run, readiness and liveness fail (a supervisor restarts the node)', async () => {
    const res = await loop('loop2', '9000000000000000000');
    expectError(res, 504, 'TIMEOUT', node);
    expect(await waitForStuck(2)).toHaveLength(2);
    const ready = await request(node, { path: '/v2/health/ready' });
    expect(ready.status).toBe(400);
    expect(String(ready.headers['hearth-not-ready'])).toMatch(/stuck/);
    const live = await request(node, { path: '/v2/health/live' });
    expect(live.status).not.toBe(200);
    expect(String(live.headers['hearth-not-live'])).toMatch(/stuck/);
  });

  it('SIGTERM ends the process although its threads are stuck', async () => {
    const stopped = await node.stop(60_000);
    // Ended by itself (the rig's own SIGKILL comes only after 60 s, a bound that detects a hang): the log says so
    // (its last lines may be read just after the exit).
    expect(node.running()).toBe(false);
    const end = Date.now() + 5_000;
    while (!/stuck in native code/.test(node.logs()) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(node.logs()).toMatch(/stuck in native code[^\n]*SIGKILL/);
    expect(stopped.code === 0 && stopped.signal === null).toBe(false);
  }, 90_000);
});
