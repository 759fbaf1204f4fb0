// A run past its timeout that onnxruntime is still computing: the request answers TIMEOUT at once, but the worker's
// core and memory stay counted (a held slot) until the native call returns; past the grace it is a stuck run,
// listed by control.node() and its model version refused with MODEL_UNAVAILABLE; once it returns, all is released.
// The fixture loops 1e6 times (a few seconds), so the run does end and this file's process can exit.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHearthError, type Manifest } from '../../core/index.ts';
import { writeLoopOnnx } from '../fixtures/make-loop-onnx.ts';
import { makeRig, manifestOf, type TestRig } from './helpers.ts';

let rig: TestRig;
let loop: Manifest;

beforeAll(async () => {
  rig = await makeRig({ stuckGraceMs: 200, configs: { loop: { timeoutMs: 200, maxInstances: 1 } } });
  const file = path.join(rig.tmp, 'loop-src', 'model.onnx');
  await writeLoopOnnx(file);
  const m = await manifestOf('loop', file);
  loop = m.manifest;
  rig.sources.set('loop@1', m.dir);
});

afterAll(async () => {
  await rig?.close();
});

const run = (passes: bigint) =>
  rig.executor.infer({
    manifest: loop,
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [1], data: Float32Array.of(0.5) },
      { name: 'm', datatype: 'INT64', shape: [], data: BigInt64Array.of(passes) },
    ],
  });
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (isHearthError(e) ? e.code : String(e)),
  );

/** Polls until `cond` holds; the bound only detects a hang. */
async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
}

describe('a run stuck in onnxruntime past its timeout', () => {
  it('holds its slot and memory, is listed once past the grace, refuses its model meanwhile, and releases all when it returns', async () => {
    const warm = await run(10n);
    expect(Array.from(warm.outputs[0].data as Float32Array)).toEqual([10.5]);
    const control = rig.executor.control;
    const memoryWarm = control.node().memoryUsedMb;
    expect(await codeOf(run(1_000_000n))).toBe('TIMEOUT');
    // At once: the thread still computes, so its slot is held and its memory still reserved.
    expect(control.node().heldSlots).toBe(1);
    expect(control.node().memoryUsedMb).toBe(memoryWarm);
    expect(rig.executor.busyNativeThreads()).toBe(1);
    await until(() => control.node().stuckRuns.length === 1, 10_000);
    expect(control.node().stuckRuns).toEqual([
      { model: 'loop', version: 1, instanceId: expect.any(String), kind: 'run', since: expect.any(String) },
    ]);
    const refused = await run(10n).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isHearthError(refused) && refused.code).toBe('MODEL_UNAVAILABLE');
    expect((refused as Error).message).toMatch(/loop@1.*stuck/);
    // The run ends by itself (1e6 passes take a few seconds): everything comes back, and the model serves again.
    await until(() => control.node().heldSlots === 0, 120_000);
    expect(control.node().stuckRuns).toEqual([]);
    expect(control.node().memoryUsedMb).toBe(0);
    expect(rig.executor.busyNativeThreads()).toBe(0);
    const again = await run(10n);
    expect(Array.from(again.outputs[0].data as Float32Array)).toEqual([10.5]);
  }, 180_000);
});
