// inspectModel timing out while onnxruntime creates the session natively: terminating a worker *thread* at that moment
// made onnxruntime-node throw Napi::Error into a dead environment and aborted the whole process (this fork). The
// load now runs in a child process, killed at the timeout; this keeps checking that the caller survives it.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHearthError } from '../../core/index.ts';
import { inspectModel } from '../../functions/index.ts';
import { writeLargeOnnx } from '../fixtures/make-large-onnx.ts';

describe('inspectModel timeout during a native load', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-inspect-timeout-'));
    await writeLargeOnnx(path.join(tmp, 'model.onnx'), 100);
  });
  afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

  it('answers MODEL_INVALID and the process survives the ended worker', async () => {
    // Boot and load times of this machine: the timeout below falls in the middle of the load.
    const t0 = Date.now();
    const sig = await inspectModel(tmp, 'onnx');
    const total = Date.now() - t0;
    const timeoutMs = Math.max(1, Math.round(total - sig.loadMs / 2));
    const err = await inspectModel(tmp, 'onnx', { timeoutMs }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isHearthError(err) && err.code).toBe('MODEL_INVALID');
    // With a thread, the ended worker's native load aborted the process in this window; a killed child leaves
    // nothing running here, so a short wait is enough (it was loadMs * 3, past a minute on a loaded machine).
    await new Promise((r) => setTimeout(r, 1000));
    expect((await inspectModel(tmp, 'onnx')).inputs.length).toBeGreaterThan(0);
  }, 120_000);
});
