// A serving config beyond what the node has: `PUT /v1/models/vad/config` with minInstances 1024, memoryMb 16 and
// intraOpNumThreads 256 started about 8,800 threads and 4.7 GB RSS; health checks timed out, SIGTERM was ignored,
// and after a restart the first request did it again. Every setting must be capped by the node (slots, memory
// budget, cores), the reservation must come from the model rather than the client's claim, and a stored config
// that does not fit must be clamped with a logged warning on every start.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  baseline,
  expectError,
  expectIntact,
  request,
  sileroAnswer,
  sileroRequestBody,
  startNode,
  uploadSilero,
  type HostileNode,
} from './rig.ts';

const SLOTS = 2;
const CORES = os.availableParallelism();
// maxInstances too: a minInstances above maxInstances is refused by the schema on any node.
const HOSTILE = { minInstances: 1024, maxInstances: 1024, memoryMb: 16, runtime: { intraOpNumThreads: 256 } };
// EXECUTOR_MEMORY_MB is set so that 16 MB instances would fit 64 times: without the caps, the node would try.
const ENV = { EXECUTOR_SLOTS: String(SLOTS), EXECUTOR_MEMORY_MB: '1024' };

let dataDir: string;
let node: HostileNode | undefined;
let restarted: HostileNode | undefined;

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-hostile-config-'));
});

afterAll(async () => {
  await node?.stop(5_000);
  await restarted?.stop(5_000);
  await fs.rm(dataDir, { recursive: true, force: true });
});

/**
 * Threads a node may have with one model: what it had with one warm instance, plus one thread and at most one op
 * thread per core for each further instance the node's slots allow, plus a margin for Node's own pools.
 */
function threadBound(warm: number): number {
  return warm + SLOTS * (1 + CORES) + 8;
}

/** Samples the node's thread count every 50 ms for `ms`; answers the highest seen (stops early past `bound`). */
async function peakThreads(n: HostileNode, ms: number, bound: number): Promise<number> {
  let peak = n.threads();
  const end = Date.now() + ms;
  while (Date.now() < end && peak <= bound) {
    await new Promise((r) => setTimeout(r, 50));
    peak = Math.max(peak, n.threads());
  }
  return peak;
}

function putConfig(n: HostileNode, body: unknown) {
  return request(n, {
    method: 'PUT',
    path: '/v1/models/vad/config',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    timeoutMs: 10_000,
  });
}

interface Effective {
  minInstances: number;
  maxInstances: number;
  memoryMb: number;
  concurrency: number;
  runtime: { intraOpNumThreads: number };
}

describe('a serving config larger than the node', () => {
  it('the PUT from the issue answers with the effective (clamped) config, and the node stays bounded and healthy', async () => {
    node = await startNode({ dataDir, env: ENV });
    await uploadSilero(node);
    const base = await baseline(node);
    const bound = threadBound(node.threads());
    const put = await putConfig(node, HOSTILE);
    expect(put.status, put.body.toString()).toBe(200);
    const eff = put.json as unknown as Effective;
    // What applies on this node, not what was asked.
    expect(eff.minInstances).toBeLessThanOrEqual(SLOTS);
    expect(eff.maxInstances).toBeLessThanOrEqual(SLOTS);
    expect(eff.runtime.intraOpNumThreads).toBeLessThanOrEqual(CORES);
    expect(eff.memoryMb).toBeGreaterThanOrEqual(64); // silero's reservation, not the 16 MB claimed
    const header = String(put.headers['hearth-config-clamped']);
    expect(header).toMatch(/minInstances 1024 -> \d/);
    expect(header).toMatch(/maxInstances 1024 -> \d/);
    expect(header).toMatch(/runtime\.intraOpNumThreads 256 -> \d/);
    expect(header).toMatch(/memoryMb 16 -> \d+/);
    const peak = await peakThreads(node, 3_000, bound);
    expect(peak, `threads peaked at ${peak}, bound ${bound}`).toBeLessThanOrEqual(bound);
    // GET shows the same effective values.
    const get = await request(node, { path: '/v1/models/vad/config' });
    expect(get.json).toEqual(put.json);
    // The store holds the config as asked (a bigger node may apply more of it).
    await expectIntact(node, base, { expectKeys: ['models/vad/config.json'] });
    expect(node.threads()).toBeLessThanOrEqual(bound);
  });

  it('SIGTERM still stops the node on its own', async () => {
    const stopped = await node!.stop(15_000);
    expect(stopped.signal).toBeNull();
    expect(stopped.code).toBe(0);
    node = undefined;
  });

  it('after a restart with the hostile config stored, the first request is served, the clamp is logged, threads stay bounded', async () => {
    // The store keeps what was asked (a bigger node may apply more of it); this node clamps it when it reads it.
    const stored = JSON.parse(await fs.readFile(path.join(dataDir, 'store/models/vad/config.json'), 'utf8'));
    expect(stored).toMatchObject(HOSTILE);
    restarted = await startNode({ dataDir, env: ENV });
    const before = restarted.threads();
    const first = await request(restarted, {
      method: 'POST',
      path: '/v2/models/vad/infer',
      headers: { 'content-type': 'application/json' },
      body: sileroRequestBody(),
      timeoutMs: 30_000,
    });
    expect(first.status, first.body.toString()).toBe(200);
    // One instance up and the pool's minimum on its way: the bound counts from a node with no instance yet.
    const bound = threadBound(before + 1);
    const peak = await peakThreads(restarted, 3_000, bound);
    expect(peak, `threads peaked at ${peak}, bound ${bound}`).toBeLessThanOrEqual(bound);
    expect(restarted.logs()).toMatch(/serving config of vad@1 clamped to this node[^\n]*minInstances 1024 -> \d/);
    const base = await baseline(restarted);
    await expectIntact(restarted, base);
  });

  it('a config value nested 100k deep answers 400 INVALID_CONFIG, not 500', async () => {
    const n = restarted!;
    const res = await request(n, {
      method: 'PUT',
      path: '/v1/models/vad/config',
      headers: { 'content-type': 'application/json' },
      body: `{"timeoutMs":${'['.repeat(100_000)}1${']'.repeat(100_000)}}`,
    });
    expectError(res, 400, 'INVALID_CONFIG', n);
    expect(await sileroAnswer(n)).toBeDefined();
  });
});

// PUT {"memoryMb": 1048576} answered 200 (only maxInstances was clamped), and afterwards the model could not start:
// an infer waited out its 30 s queue budget for 503 OVERLOADED, a load answered 503. No single instance of such a
// config fits the node: that is refused at PUT, and a stored one (written by a bigger node) fails requests at once.
describe('a memoryMb larger than the whole node', () => {
  it('PUT answers 400 INVALID_CONFIG naming EXECUTOR_MEMORY_MB, and the stored config is unchanged', async () => {
    const n = restarted!;
    const file = path.join(dataDir, 'store/models/vad/config.json');
    const before = await fs.readFile(file, 'utf8');
    const res = await putConfig(n, { memoryMb: 1_048_576 });
    expectError(res, 400, 'INVALID_CONFIG', n);
    expect(res.json!.error).toMatch(/memoryMb/);
    expect(res.json!.error).toMatch(/EXECUTOR_MEMORY_MB/);
    expect(await fs.readFile(file, 'utf8')).toBe(before);
    expect(await sileroAnswer(n)).toBeDefined();
  });

  it('a stored config that does not fit (a bigger node wrote it) fails infer and load at once with 503 MODEL_UNAVAILABLE naming the memory', async () => {
    const n = restarted!;
    await uploadSilero(n, 'huge');
    await fs.writeFile(path.join(dataDir, 'store/models/huge/config.json'), JSON.stringify({ memoryMb: 1_048_576 }));
    const base = await baseline(n);
    // 10 s: well under the 30 s queue budget the request used to wait out (a bound that detects the old wait).
    const res = await request(n, {
      method: 'POST',
      path: '/v2/models/huge/infer',
      headers: { 'content-type': 'application/json' },
      body: sileroRequestBody(),
      timeoutMs: 10_000,
    });
    expectError(res, 503, 'MODEL_UNAVAILABLE', n);
    expect(res.json!.error).toMatch(/1048576 MB/);
    expect(res.json!.error).toMatch(/EXECUTOR_MEMORY_MB/);
    const load = await request(n, { method: 'POST', path: '/v2/repository/models/huge/load', timeoutMs: 10_000 });
    expectError(load, 503, 'MODEL_UNAVAILABLE', n);
    await expectIntact(n, base);
  });
});
