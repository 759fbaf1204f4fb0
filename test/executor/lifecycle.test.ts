// Instance lifecycle with real models on real worker threads: cold then warm, the artifact cache on a second
// cold start, a corrupt cache entry, and faults (crash, throw, timeout) that fail only their own requests.
import fs from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest, Tensor } from '../../core/index.ts';
import { isHearthError } from '../../core/index.ts';
import { loadGolden, onnxFixtureDir, SILERO_VAD_FILE } from '../fixtures/golden.ts';
import { FAULT_SPECS, faultInputs, makeRig, manifestOf, type TestRig } from './helpers.ts';

function sileroInputs(seed: number): Tensor[] {
  const n = 512;
  const audio = new Float32Array(n);
  for (let i = 0; i < n; i++) audio[i] = Math.sin((i + seed) / 7) * 0.5;
  return [
    { name: 'input', datatype: 'FP32', shape: [1, n], data: audio },
    { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
    { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: new Float32Array(128) },
    { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: new Float32Array(128) },
  ];
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return isHearthError(e) ? e.code : `non-hearth: ${(e as Error).message}`;
  }
}

describe('lifecycle with silero VAD', () => {
  let rig: TestRig;
  let silero: Manifest;
  beforeAll(async () => {
    rig = await makeRig();
    const m = await manifestOf('silero', SILERO_VAD_FILE);
    silero = m.manifest;
    rig.sources.set('silero@1', m.dir);
    await rig.executor.prewarmed();
  });
  afterAll(() => rig.close());

  it('first call is cold with a breakdown, second is warm, outputs equal a direct session.run', async () => {
    const first = await rig.executor.infer({ manifest: silero, inputs: sileroInputs(1) });
    expect(first.coldStart).toBe(true);
    expect(first.breakdown?.fetchSource).toBe('store');
    expect(first.coldStartMs).toBeGreaterThan(0);
    for (const k of ['acquireMs', 'fetchMs', 'loadMs', 'firstRunMs'] as const) expect(first.breakdown![k]).toBeGreaterThanOrEqual(0);
    expect(first.outputs.map((t) => t.name).sort()).toEqual(['cn', 'hn', 'output']);
    expect(rig.reads).toEqual(['silero@1/silero_vad.onnx']);

    const second = await rig.executor.infer({ manifest: silero, inputs: sileroInputs(2), outputs: ['output'] });
    expect(second.coldStart).toBe(false);
    expect(second.breakdown).toBeUndefined();
    expect(second.outputs.map((t) => t.name)).toEqual(['output']);

    const session = await ort.InferenceSession.create(SILERO_VAD_FILE, { intraOpNumThreads: 1 });
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of sileroInputs(2)) feeds[t.name] = new ort.Tensor(t.datatype === 'INT64' ? 'int64' : 'float32', t.data, t.shape);
    const direct = await session.run(feeds);
    const got = second.outputs[0].data as Float32Array;
    const want = direct.output.data as Float32Array;
    expect(got.length).toBe(want.length);
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-4);
    await session.release();

    const [s] = rig.executor.stats({ name: 'silero' });
    expect(s.inferenceCount).toBe(2);
    expect(s.coldStarts).toBe(1);
    expect(s.queue.count).toBe(2);
  });

  it('a second cold start of the same version reads the cache and skips the download', async () => {
    await rig.executor.unload('silero');
    expect(rig.executor.isLoaded('silero', 1)).toBe(false);
    const r = await rig.executor.infer({ manifest: silero, inputs: sileroInputs(3) });
    expect(r.coldStart).toBe(true);
    expect(r.breakdown?.fetchSource).toBe('cache');
    expect(rig.reads).toHaveLength(1);
  });

  it('a corrupt cache entry is fetched again', async () => {
    await rig.executor.unload('silero');
    const file = path.join(rig.cache.dir, silero.sha256, 'silero_vad.onnx');
    const bytes = await fs.readFile(file);
    bytes[bytes.length - 5] ^= 0xff;
    await fs.writeFile(file, bytes);
    const r = await rig.executor.infer({ manifest: silero, inputs: sileroInputs(4) });
    expect(r.breakdown?.fetchSource).toBe('store');
    expect(rig.reads).toHaveLength(2);
    expect(r.outputs).toHaveLength(3);
  });

  it('load() warms an instance; isLoaded reflects it', async () => {
    await rig.executor.unload('silero');
    expect(rig.executor.isLoaded('silero', 1)).toBe(false);
    await rig.executor.load(silero);
    expect(rig.executor.isLoaded('silero', 1)).toBe(true);
    const r = await rig.executor.infer({ manifest: silero, inputs: sileroInputs(5) });
    expect(r.coldStart).toBe(false);
  });
});

describe('faults fail only their own requests', () => {
  let rig: TestRig;
  let fault: Manifest;
  let mlp: Manifest;
  const states: string[] = [];
  beforeAll(async () => {
    rig = await makeRig({
      env: { EXECUTOR_SLOTS: '4' },
      allowTestRuntimes: true,
      loadOptions: (m) => (m.name === 'fault' ? { runtime: 'fault' } : undefined),
      configs: { fault: { timeoutMs: 400, maxInstances: 1, batching: { maxBatchSize: 1 } } },
      observer: { onInstanceState: (e) => states.push(`${e.name}:${e.from}->${e.to}`) },
    });
    const a = await manifestOf('mlp', onnxFixtureDir('mlp-dynamic'));
    mlp = a.manifest;
    rig.sources.set('mlp@1', a.dir);
    // The fault runtime ignores its files; the manifest borrows the mlp's so the cache has something to fetch.
    const f = await manifestOf('fault', onnxFixtureDir('mlp-dynamic'), FAULT_SPECS);
    fault = f.manifest;
    rig.sources.set('fault@1', f.dir);
  });
  afterAll(() => rig.close());

  const mlpCall = () =>
    rig.executor.infer({ manifest: mlp, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) }] });

  it('a worker that exits fails its request with INSTANCE_FAILED; the next request gets a new instance', async () => {
    expect((await rig.executor.infer({ manifest: fault, inputs: faultInputs(0) })).coldStart).toBe(true);
    await mlpCall();
    const [crash, other] = [rig.executor.infer({ manifest: fault, inputs: faultInputs(4) }), mlpCall()];
    expect(await codeOf(crash)).toBe('INSTANCE_FAILED');
    expect(await codeOf(other)).toBe('ok');
    const after = await rig.executor.infer({ manifest: fault, inputs: faultInputs(0, 7) });
    expect((after.outputs.find((t) => t.name === 'payload')!.data as Float32Array)[0]).toBe(7);
    expect(states.filter((s) => s === 'fault:busy->gone')).toHaveLength(1);
    // Replaced: a second fault instance was started after the first one died.
    expect(states.filter((s) => s === 'fault:none->starting')).toHaveLength(2);
  });

  it('an uncaught exception in the worker and a runtime throw each fail only their request', async () => {
    expect(await codeOf(rig.executor.infer({ manifest: fault, inputs: faultInputs(5) }))).toBe('INSTANCE_FAILED');
    expect(await codeOf(rig.executor.infer({ manifest: fault, inputs: faultInputs(3) }))).toBe('INSTANCE_FAILED');
    expect(await codeOf(rig.executor.infer({ manifest: fault, inputs: faultInputs(0) }))).toBe('ok');
    expect(await codeOf(mlpCall())).toBe('ok');
  });

  it('a run past timeoutMs answers TIMEOUT, its instance is replaced, queued requests behind it still succeed', async () => {
    await rig.executor.infer({ manifest: fault, inputs: faultInputs(0) });
    // maxInstances 1: the second request queues behind the blocked one and must survive its timeout.
    const hung = rig.executor.infer({ manifest: fault, inputs: faultInputs(2) });
    const behind = rig.executor.infer({ manifest: fault, inputs: faultInputs(0, 9) });
    const meanwhile = mlpCall();
    expect(await codeOf(hung)).toBe('TIMEOUT');
    expect(await codeOf(meanwhile)).toBe('ok');
    const r = await behind;
    expect(r.coldStart).toBe(true);
    expect((r.outputs.find((t) => t.name === 'payload')!.data as Float32Array)[0]).toBe(9);
    const [s] = rig.executor.stats({ name: 'fault' });
    expect(s.fail.count).toBeGreaterThanOrEqual(4);
  });

  it('a load that fails answers the waiting requests with its error instead of retrying forever', async () => {
    const broken = { ...fault, name: 'fault-broken' };
    const r2 = await makeRig({
      allowTestRuntimes: true,
      loadOptions: () => ({ runtime: 'fault', fault: { load: 'throw' } }),
    });
    r2.sources.set('fault-broken@1', rig.sources.get('fault@1')!);
    try {
      const codes = await Promise.all([0, 1].map(() => codeOf(r2.executor.infer({ manifest: broken, inputs: faultInputs(0) }))));
      expect(codes.every((c) => c !== 'ok' && !c.startsWith('non-hearth'))).toBe(true);
    } finally {
      await r2.close();
    }
  });
});

describe('golden models through the executor (ONNX and TF.js, several files per artifact)', () => {
  let rig: TestRig;
  beforeAll(async () => {
    rig = await makeRig();
  });
  afterAll(() => rig.close());

  for (const name of ['tfjs-graph', 'cnn-dynamic', 'identity-int64', 'identity-fp16']) {
    it(`${name}: every golden case matches within its tolerance`, async () => {
      const g = loadGolden(name);
      const { manifest, dir } = await manifestOf(name, g.dir, { format: g.format, inputs: g.inputs, outputs: g.outputs });
      rig.sources.set(`${name}@1`, dir);
      for (const c of g.cases) {
        const r = await rig.executor.infer({ manifest, inputs: c.inputs });
        for (const want of c.outputs) {
          const got = r.outputs.find((t) => t.name === want.name)!;
          expect(got.shape).toEqual(want.shape);
          expect(got.datatype).toBe(want.datatype);
          const a = Array.from(got.data as ArrayLike<number | bigint>);
          const b = Array.from(want.data as ArrayLike<number | bigint>);
          expect(a.length).toBe(b.length);
          for (let i = 0; i < a.length; i++) {
            if (typeof a[i] === 'bigint') expect(a[i]).toBe(b[i]);
            else expect(Math.abs((a[i] as number) - (b[i] as number))).toBeLessThanOrEqual(g.tolerance);
          }
        }
      }
    });
  }
});
