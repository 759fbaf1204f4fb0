// A run that passes its timeout while onnxruntime is still computing natively. Terminating the worker then
// makes onnxruntime-node throw Napi::Error on a dead environment, which aborts the whole process (seen as
// "terminate called after throwing an instance of 'Napi::Error'"): this file's fork would die.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../core/index.ts';
import { isHearthError } from '../../core/index.ts';
import { onnxFixtureDir, SILERO_VAD_FILE } from '../fixtures/golden.ts';
import { makeRig, manifestOf, type TestRig } from './helpers.ts';

describe('a timeout during a native onnxruntime run', () => {
  let rig: TestRig;
  let cnn: Manifest;
  beforeAll(async () => {
    rig = await makeRig({ configs: { cnn: { timeoutMs: 30, maxInstances: 1, batching: { maxBatchSize: 1 } } } });
    const a = await manifestOf('cnn', onnxFixtureDir('cnn-dynamic'));
    cnn = a.manifest;
    rig.sources.set('cnn@1', a.dir);
  });
  afterAll(() => rig.close());

  const call = (batch: number) =>
    rig.executor.infer({
      manifest: cnn,
      inputs: [{ name: 'x', datatype: 'FP32', shape: [batch, 3, 32, 32], data: new Float32Array(batch * 3 * 32 * 32) }],
    });

  // On a loaded 2-core machine a batch of one may pass 30 ms itself, and the abandoned batch of 1500 may still be
  // computing when the test goes on (the node then refuses the model as stuck until that run returns): a small call
  // is tried again on either, for up to 30 s. The claim is that the process lives and serves, not how fast.
  const small = async () => {
    const end = Date.now() + 30_000;
    for (;;) {
      try {
        return await call(1);
      } catch (e) {
        const retry = isHearthError(e) && (e.code === 'TIMEOUT' || e.code === 'MODEL_UNAVAILABLE');
        if (!retry || Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  };

  it('answers TIMEOUT, keeps the process alive, and the next request is served by a new instance', async () => {
    await small(); // cold start outside the timed run
    const err = await call(1500).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isHearthError(err) && err.code).toBe('TIMEOUT');
    // Give the abandoned native run time to finish (and, before the fix, the terminate time to abort).
    await new Promise((r) => setTimeout(r, 1500));
    const r = await small();
    expect(r.outputs[0].shape).toEqual([1, 10]);
  });

  it('closing the executor while a native run is in flight does not abort the process', async () => {
    const r2 = await makeRig({ configs: { cnn: { timeoutMs: 60_000 } } });
    r2.sources.set('cnn@1', rig.sources.get('cnn@1')!);
    await r2.executor.infer({
      manifest: cnn,
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) }],
    });
    const inflight = r2.executor
      .infer({
        manifest: cnn,
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1500, 3, 32, 32], data: new Float32Array(1500 * 3 * 32 * 32) }],
      })
      .then(
        () => 'ok',
        (e: unknown) => (isHearthError(e) ? e.code : 'other'),
      );
    await new Promise((r) => setTimeout(r, 30));
    await r2.close();
    await new Promise((r) => setTimeout(r, 1500));
    expect(['ok', 'OVERLOADED', 'INSTANCE_FAILED']).toContain(await inflight);
  });
});

describe('a load timeout or unload while onnxruntime creates the session natively', () => {
  it('answers the waiting request and keeps the process alive', async () => {
    const rig = await makeRig({ loadTimeoutMs: 1 });
    try {
      const { manifest, dir } = await manifestOf('silero', SILERO_VAD_FILE);
      rig.sources.set('silero@1', dir);
      for (let i = 0; i < 4; i++) {
        const err = await rig.executor.infer({ manifest, inputs: [] }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isHearthError(err) && err.code).toBe('TIMEOUT');
      }
      // Before the fix the terminated workers' native loads abort the process in this window.
      await new Promise((r) => setTimeout(r, 1000));
      expect(rig.executor.isLoaded('silero', 1)).toBe(false);
    } finally {
      await rig.close();
    }
  });
});
