// Deleting a model and uploading another under the same name. Seen live: the executor's pools were keyed by
// name@version only, never compared the manifest's sha256 and were never removed, and the per-name config cache
// outlived the delete: a re-uploaded `px` (version 1 again, a new sha256) answered with the OLD model's output, even
// after an unload and a cold start; an unrelated model re-uploaded under the name failed every request with
// INVALID_TENSOR naming the old inputs. Instances of deleted models lived on (a minInstances 2 pool stayed listed
// 8+ minutes after its delete), and infers racing a delete restarted instances of the deleted version.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sileroBytes, tweakedSileroBytes } from '../helpers/model-bodies.ts';
import { writeTileOnnx } from '../fixtures/make-tile-onnx.ts';
import {
  baseline,
  expectError,
  expectIntact,
  request,
  sileroAnswer,
  sileroRequestBody,
  startNode,
  uploadSilero,
  type Baseline,
  type HostileNode,
} from './rig.ts';

let node: HostileNode;
let base: Baseline;
let tileBytes: Buffer;

const json = { 'content-type': 'application/json' };
const octet = { 'content-type': 'application/octet-stream' };

function upload(name: string, body: Buffer) {
  return request(node, { method: 'POST', path: `/v1/models/${name}`, headers: octet, body });
}

function del(name: string) {
  return request(node, { method: 'DELETE', path: `/v1/models/${name}` });
}

interface PoolStatus {
  name: string;
  version: number;
  instances: { starting: number; idle: number; busy: number };
}

async function pools(): Promise<PoolStatus[]> {
  const res = await request(node, { path: '/v1/status' });
  expect(res.status).toBe(200);
  return res.json!.models as PoolStatus[];
}

const live = (p: PoolStatus) => p.instances.starting + p.instances.idle + p.instances.busy;

/** Polls /v1/status until `done` holds; the 20 s bound only detects a hang. */
async function waitFor(done: (ps: PoolStatus[]) => boolean): Promise<PoolStatus[]> {
  const end = Date.now() + 20_000;
  let ps = await pools();
  while (!done(ps) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    ps = await pools();
  }
  return ps;
}

beforeAll(async () => {
  node = await startNode();
  await uploadSilero(node);
  base = await baseline(node);
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-redeploy-'));
  await writeTileOnnx(path.join(tmp, 'model.onnx'));
  tileBytes = await fs.readFile(path.join(tmp, 'model.onnx'));
  await fs.rm(tmp, { recursive: true, force: true });
});

afterAll(async () => {
  await node?.stop();
});

describe('delete and upload again under the same name', () => {
  it('a different model uploaded as the same name and version answers with its own weights, also after an unload', async () => {
    // What the tweaked model answers, from a name that never held anything else.
    expect((await upload('tw', tweakedSileroBytes())).status).toBe(201);
    const tweaked = await sileroAnswer(node, 'tw');
    expect(tweaked).not.toEqual(base.answer);

    const first = await upload('px', sileroBytes());
    expect(first.status, first.body.toString()).toBe(201);
    expect(await sileroAnswer(node, 'px')).toEqual(base.answer);
    expect((await del('px')).status).toBe(200);
    const second = await upload('px', tweakedSileroBytes());
    expect(second.status, second.body.toString()).toBe(201);
    expect(second.json).toMatchObject({ version: 1 });
    expect(second.json!.sha256).not.toBe(first.json!.sha256);
    expect(await sileroAnswer(node, 'px')).toEqual(tweaked);
    // An unload and a cold start change nothing.
    expect((await request(node, { method: 'POST', path: '/v2/repository/models/px/unload' })).status).toBe(200);
    expect(await sileroAnswer(node, 'px')).toEqual(tweaked);
    expect((await del('px')).status).toBe(200);
    expect((await del('tw')).status).toBe(200);
    await expectIntact(node, base);
  });

  it('an unrelated model uploaded under a deleted name is called with its own inputs', async () => {
    await uploadSilero(node, 'py');
    expect(await sileroAnswer(node, 'py')).toEqual(base.answer);
    expect((await del('py')).status).toBe(200);
    expect((await upload('py', tileBytes)).status).toBe(201);
    const body = JSON.stringify({
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
        { name: 'reps', datatype: 'INT64', shape: [2], data: [3, 1] },
      ],
    });
    const res = await request(node, { method: 'POST', path: '/v2/models/py/infer', headers: json, body });
    expect(res.status, res.body.toString()).toBe(200);
    expect((res.json!.outputs as { data: number[] }[])[0].data).toEqual([30]);
    // The old model's inputs are refused as the new model's.
    const old = await request(node, { method: 'POST', path: '/v2/models/py/infer', headers: json, body: sileroRequestBody() });
    expectError(old, 400, 'INVALID_TENSOR', node);
    expect((await del('py')).status).toBe(200);
    await expectIntact(node, base);
  });
});

describe('instances of a deleted model', () => {
  it('a minInstances 2 pool is gone from /v1/status soon after its delete, and the threads with it', async () => {
    const threadsBefore = node.threads();
    await uploadSilero(node, 'warm');
    const put = await request(node, {
      method: 'PUT',
      path: '/v1/models/warm/config',
      headers: json,
      body: JSON.stringify({ minInstances: 2 }),
    });
    expect(put.status, put.body.toString()).toBe(200);
    expect(await sileroAnswer(node, 'warm')).toEqual(base.answer);
    const up = await waitFor((ps) => ps.some((p) => p.name === 'warm' && p.instances.idle === 2));
    expect(up.find((p) => p.name === 'warm')?.instances.idle).toBe(2);
    const threadsWarm = node.threads();
    expect(threadsWarm).toBeGreaterThan(threadsBefore);
    expect((await del('warm')).status).toBe(200);
    const after = await waitFor((ps) => !ps.some((p) => p.name === 'warm'));
    expect(after.filter((p) => p.name === 'warm')).toEqual([]);
    // Each instance is a thread (and its op threads): they end with the pool. Polled; the bound only detects a hang.
    const end = Date.now() + 20_000;
    while (node.threads() > threadsBefore + 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    expect(node.threads()).toBeLessThanOrEqual(threadsBefore + 2);
    const gone = await request(node, { method: 'POST', path: '/v2/models/warm/infer', headers: json, body: sileroRequestBody() });
    expectError(gone, 404, 'MODEL_NOT_FOUND', node);
    await expectIntact(node, base);
  });

  it('a delete racing a burst of infers leaves no instance of the deleted model', async () => {
    await uploadSilero(node, 'burst');
    // The burst arrives cold: the requests wait in the queue for the first instance while the delete comes.
    const burst = Array.from({ length: 24 }, () =>
      request(node, { method: 'POST', path: '/v2/models/burst/infer', headers: json, body: sileroRequestBody(), timeoutMs: 60_000 }),
    );
    await new Promise((r) => setTimeout(r, 30));
    expect((await del('burst')).status).toBe(200);
    const answers = await Promise.all(burst);
    // The delete landed while the burst waited for its cold start: some requests were refused (before: all served).
    expect(answers.some((r) => r.status === 404)).toBe(true);
    for (const res of answers) {
      if (res.status === 200) continue;
      expect([404], res.body.toString()).toContain(res.status);
      expect(['MODEL_NOT_FOUND', 'VERSION_NOT_FOUND']).toContain(res.json!.code);
    }
    const after = await waitFor((ps) => !ps.some((p) => p.name === 'burst'));
    expect(after.filter((p) => p.name === 'burst' && live(p) > 0)).toEqual([]);
    // And none comes back later (a queued request or the autoscaler restarting one): two more ticks.
    await new Promise((r) => setTimeout(r, 2500));
    expect((await pools()).filter((p) => p.name === 'burst')).toEqual([]);
    await expectIntact(node, base);
  });
});
