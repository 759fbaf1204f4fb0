// The instance worker over real threads: every datatype through the Identity fixtures, transferred
// buffers, protocol errors as messages, and the test-only fault runtime's hangs, throws and exits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DATATYPES, deferredJson, type Tensor } from '../../core/index.ts';
import { writeTileOnnx } from '../fixtures/make-tile-onnx.ts';
import { IDENTITY_FIXTURES, loadGolden, onnxFixtureDir, TFJS_GRAPH_DIR } from '../fixtures/golden.ts';
import { WorkerClient } from './worker-client.ts';

const clients: WorkerClient[] = [];
function client(data?: ConstructorParameters<typeof WorkerClient>[0]): WorkerClient {
  const c = new WorkerClient(data);
  clients.push(c);
  return c;
}
afterAll(async () => {
  await Promise.all(clients.map((c) => c.terminate()));
});

function plain(t: Tensor): unknown {
  return { ...t, data: Array.from(t.data as ArrayLike<unknown>), type: t.data.constructor.name };
}

describe('every V2 datatype through a worker running its Identity fixture', () => {
  let w: WorkerClient;
  beforeAll(async () => {
    w = client();
    await w.ready;
  });

  it('covers all 13 datatypes', () => {
    expect(IDENTITY_FIXTURES.map((f) => f.datatype)).toEqual([...DATATYPES]);
  });

  for (const { datatype, name } of IDENTITY_FIXTURES) {
    it(`${datatype} comes back bit for bit`, async () => {
      const g = loadGolden(name);
      // One worker, reused: dispose then load the next model, as a pre-spawned worker would be.
      const loaded = await w.load(onnxFixtureDir(name), 'onnx');
      expect(loaded.inputs).toEqual([{ name: 'x', datatype, shape: [-1, -1] }]);
      expect(loaded.runtime).toBe('onnxruntime-node');
      const input = g.cases[0].inputs[0];
      const expected = plain({ ...g.cases[0].outputs[0] });
      const result = await w.run([input]);
      expect(result.outputs.map(plain)).toEqual([expected]);
      if (datatype === 'INT64') expect((result.outputs[0].data as BigInt64Array)[3]).toBe(2n ** 53n + 1n);
      if (datatype === 'UINT64') expect((result.outputs[0].data as BigUint64Array)[5]).toBe(2n ** 64n - 1n);
      if (datatype === 'FP16')
        expect(Array.from(result.outputs[0].data as Uint16Array)).toEqual([0x3c00, 0xc000, 0x0001, 0x7bff, 0x2e66, 0x8000, 0x7c00]);
      if (datatype === 'BYTES') expect(result.outputs[0].data).toContain('🦀🔥');
      await w.dispose();
    });
  }
});

describe('worker protocol', () => {
  it('moves input buffers (transfer, not copy) and answers runs that overlap', async () => {
    const w = client();
    const g = loadGolden('mlp-dynamic');
    await w.load(g.dir, 'onnx');
    const inputs = g.cases.map((c) => c.inputs);
    const sent = inputs.map((i) => i[0].data as Float32Array);
    const results = await Promise.all(inputs.map((i) => w.run(i)));
    for (const s of sent) expect(s.byteLength).toBe(0); // detached: the bytes went to the worker
    results.forEach((r, i) => {
      expect(r.outputs[0].shape).toEqual(g.cases[i].outputs[0].shape);
      expect(r.computeMs).toBeGreaterThanOrEqual(0);
    });
  });

  it('runs a TF.js graph model in a worker', async () => {
    const w = client({ preload: ['tfjs-graph'] });
    await w.ready;
    const loaded = await w.load(TFJS_GRAPH_DIR, 'tfjs-graph');
    expect(['tfjs-wasm', 'tfjs-node']).toContain(loaded.runtime);
    const g = loadGolden('tfjs-graph');
    const r = await w.run(g.cases[1].inputs);
    const want = g.cases[1].outputs[0].data as Float32Array;
    const got = r.outputs[0].data as Float32Array;
    expect(got.length).toBe(want.length);
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-3);
  });

  it('reports load and run failures as error messages, and keeps serving', async () => {
    const w = client();
    await expect(w.run([])).rejects.toMatchObject({ code: 'INSTANCE_FAILED', message: expect.stringMatching(/before a model was loaded/) });
    await expect(w.load('/nonexistent/hearth', 'onnx')).rejects.toMatchObject({ code: 'MODEL_INVALID' });
    const g = loadGolden('mlp-fixed');
    await w.load(g.dir, 'onnx');
    await expect(w.load(g.dir, 'onnx')).rejects.toMatchObject({ message: expect.stringMatching(/already holds a model/) });
    await expect(w.run([{ name: 'x', datatype: 'FP32', shape: [2, 4], data: new Float32Array(8) }])).rejects.toMatchObject({
      code: 'INVALID_TENSOR',
      message: expect.stringMatching(/input "x": expected shape \[1,4\], got \[2,4\]/),
    });
    const ok = await w.run(g.cases[0].inputs);
    expect(ok.outputs[0].name).toBe('y');
    expect(w.errors).toEqual([]);
  });
});

describe('allocation failures fail the run, not the worker', () => {
  it('a deferred input whose shape cannot be allocated: INVALID_TENSOR, and the next run is served', async () => {
    const w = client();
    const g = loadGolden('mlp-dynamic');
    await w.load(g.dir, 'onnx');
    // The HTTP thread refuses this ([1e12, 4] from 11 bytes of text); the worker must survive it all the same.
    const huge = deferredJson('x', 'FP32', [1e12, 4], new TextEncoder().encode('[1,2,3,4.0]'), 4e12);
    await expect(w.run([huge as unknown as Tensor])).rejects.toMatchObject({
      code: 'INVALID_TENSOR',
      message: expect.stringMatching(/cannot be allocated/),
    });
    expect((await w.run(g.cases[0].inputs)).outputs[0].name).toBe('y');
    expect(w.errors).toEqual([]);
  });

  it('an onnxruntime kernel that refuses its allocation: INTERNAL (not INSTANCE_FAILED), and the next run is served', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-tile-'));
    try {
      await writeTileOnnx(path.join(dir, 'model.onnx'));
      const w = client();
      await w.load(dir, 'onnx');
      const x: Tensor = { name: 'x', datatype: 'FP32', shape: [1, 1024], data: new Float32Array(1024).fill(1) };
      const reps = (n: bigint): Tensor => ({ name: 'reps', datatype: 'INT64', shape: [2], data: BigInt64Array.of(n, 1n) });
      // 2^28 copies of 4 KB: past onnxruntime's 4 GB limit for one tensor.
      await expect(w.run([x, reps(2n ** 28n)])).rejects.toMatchObject({
        code: 'INTERNAL',
        message: expect.stringMatching(/onnxruntime: .*Tile/),
      });
      const ok = await w.run([{ ...x, data: new Float32Array(1024).fill(1) }, reps(2n)]);
      expect(Array.from(ok.outputs[0].data as Float32Array)).toEqual([2048]);
      expect(w.errors).toEqual([]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('fault runtime (test only)', () => {
  const fault = { runtime: 'fault' as const };
  const call = (mode: number): Tensor[] => [
    { name: 'mode', datatype: 'INT32', shape: [1], data: Int32Array.of(mode) },
    { name: 'payload', datatype: 'FP32', shape: [3], data: Float32Array.of(1, 2, 3) },
  ];

  it('is refused without allowTestRuntimes', async () => {
    const w = client();
    await expect(w.load('/', 'onnx', fault)).rejects.toMatchObject({ code: 'MODEL_INVALID', message: expect.stringMatching(/tests only/) });
  });

  it('echoes (mode 0), sleeps then echoes (mode 1000+n), throws as a message (mode 3)', async () => {
    const w = client({ allowTestRuntimes: true });
    const loaded = await w.load('/', 'onnx', fault);
    expect(loaded.runtime).toBe('fault');
    const echo = await w.run(call(0));
    expect(Array.from(echo.outputs[1].data as Float32Array)).toEqual([1, 2, 3]);
    const slow = await w.run(call(1030), ['payload']);
    expect(slow.outputs.map((t) => t.name)).toEqual(['payload']);
    await expect(w.run(call(3))).rejects.toMatchObject({ code: 'INSTANCE_FAILED', message: expect.stringMatching(/deliberate throw/) });
    expect((await w.run(call(0))).outputs).toHaveLength(2);
  });

  it('mode 1 never answers but the thread stays responsive', async () => {
    const w = client({ allowTestRuntimes: true });
    await w.load('/', 'onnx', fault);
    let settled = false;
    void w.run(call(1)).then(
      () => (settled = true),
      () => (settled = true),
    );
    const next = await w.run(call(0));
    expect(next.outputs).toHaveLength(2);
    expect(settled).toBe(false);
  });

  it('mode 2 blocks the thread; terminate() still ends it', async () => {
    const w = client({ allowTestRuntimes: true });
    await w.load('/', 'onnx', fault);
    let settled = false;
    void w.run(call(2)).then(
      () => (settled = true),
      () => (settled = true),
    );
    void w.run(call(0)).then(
      () => (settled = true),
      () => (settled = true),
    );
    await sleep(100);
    expect(settled).toBe(false);
    await w.terminate();
    expect(await w.exited).toBe(1);
  });

  it('mode 4 exits the worker thread only', async () => {
    const w = client({ allowTestRuntimes: true });
    await w.load('/', 'onnx', fault);
    await expect(w.run(call(4))).rejects.toThrow(/exited with code 3/);
    expect(await w.exited).toBe(3);
  });

  it('mode 5 throws an uncaught exception that kills the worker', async () => {
    const w = client({ allowTestRuntimes: true });
    await w.load('/', 'onnx', fault);
    await expect(w.run(call(5))).rejects.toThrow(/deliberate uncaught exception/);
    expect(await w.exited).toBe(1);
    expect(w.errors[0]?.message).toMatch(/mode 5/);
  });

  it('load faults: throw, delay', async () => {
    const w = client({ allowTestRuntimes: true });
    await expect(w.load('/', 'onnx', { ...fault, fault: { load: 'throw' } })).rejects.toMatchObject({ code: 'MODEL_INVALID' });
    const slow = await w.load('/', 'onnx', { ...fault, fault: { loadDelayMs: 50 } });
    expect(slow.loadMs).toBeGreaterThanOrEqual(45);
  });
});
