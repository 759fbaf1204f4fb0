// A booted worker that throws while it waits in the pool (or between acquire and its instance's attach) has no
// 'error' listener of the instance yet: an 'error' event with no listener is thrown in the host process.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../core/index.ts';
import { WorkerPool } from '../../executor/worker-pool.ts';

describe('WorkerPool: a booted worker that crashes before an instance owns it', () => {
  let tmp: string;
  let entry: URL;
  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-wp-'));
    const file = path.join(tmp, 'crash-after-ready.mjs');
    await fs.writeFile(file, "import { parentPort } from 'node:worker_threads';\nparentPort.postMessage({ type: 'ready', bootMs: 0 });\nsetTimeout(() => { throw new Error('boom after ready'); }, 50);\n");
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
