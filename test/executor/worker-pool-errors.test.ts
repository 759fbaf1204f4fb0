// A booted worker that throws while it waits in the pool (or between acquire and its instance's attach) has no
// 'error' listener of the instance yet: an 'error' event with no listener is thrown in the host process.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHearthError, systemClock, type Manifest } from '../../core/index.ts';
import { Instance } from '../../executor/instance.ts';
import { WorkerPool } from '../../executor/worker-pool.ts';

describe('WorkerPool: a booted worker that crashes before an instance owns it', () => {
  let tmp: string;
  let entry: URL;
  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-wp-'));
    const file = path.join(tmp, 'crash-after-ready.mjs');
    await fs.writeFile(
      file,
      "import { parentPort } from 'node:worker_threads';\nparentPort.postMessage({ type: 'ready', bootMs: 0 });\nsetTimeout(() => { throw new Error('boom after ready'); }, 50);\n",
    );
    entry = pathToFileURL(file);
  });
  afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

  it('leaves the pool without throwing in the host, waiting or acquired', async () => {
    const pool = new WorkerPool({ size: 1, workerData: {}, clock: systemClock, entry, refillDelayMaxMs: 60_000 });
    try {
      await pool.fill();
      expect(pool.readyCount).toBe(1);
      const acquired = await pool.acquire(); // handed out, not yet attached to an instance
      const exited = new Promise<number>((r) => acquired.worker.once('exit', r));
      expect(await exited).toBe(1);
      // The replacement (refilled on exit) crashes while waiting in the pool.
      await new Promise((r) => setTimeout(r, 600));
      expect(pool.readyCount).toBe(0);
    } finally {
      await pool.close();
    }
  });
});

describe('Instance: attached to a worker that already exited', () => {
  it('fails its load at once instead of waiting for the load timeout', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-wp-'));
    const file = path.join(dir, 'exit-after-ready.mjs');
    await fs.writeFile(
      file,
      "import { parentPort } from 'node:worker_threads';\nparentPort.postMessage({ type: 'ready', bootMs: 0 });\nsetTimeout(() => process.exit(3), 20);\n",
    );
    const pool = new WorkerPool({ size: 0, workerData: {}, clock: systemClock, entry: pathToFileURL(file), refillDelayMaxMs: 0 });
    try {
      const { worker } = await pool.acquire();
      await new Promise((r) => worker.once('exit', r));
      const states: string[] = [];
      const manifest = {
        name: 'm',
        version: 1,
        format: 'onnx',
        files: [],
        sha256: '',
        sizeBytes: 0,
        createdAt: '',
        inputs: [],
        outputs: [],
      } as unknown as Manifest;
      const inst = new Instance({
        manifest,
        memoryMb: 1,
        concurrency: 1,
        clock: systemClock,
        hooks: { onState: (_i, _f, to) => states.push(to) },
      });
      inst.attach(worker, (w) => pool.terminate(w));
      const err = await inst.load(dir, {}, 60_000).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isHearthError(err) && err.code).toBe('INSTANCE_FAILED');
      expect(states.at(-1)).toBe('gone');
    } finally {
      await pool.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
