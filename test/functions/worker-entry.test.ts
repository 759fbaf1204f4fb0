// The instance worker as production starts it: the compiled dist/functions/worker.js (functions/worker-entry.ts).
// It runs a real model to its golden outputs, its compiled copy is the one the build made from the current sources,
// and tsx's loader flags are not passed on to it.
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../../core/index.ts';
import type { LoadedMessage, ResultMessage, WorkerToHost } from '../../functions/protocol.ts';
import { resolveWorkerEntry, spawnInstanceWorker, WORKER_ENTRY_URL, workerExecArgv } from '../../functions/index.ts';
import { loadGolden } from '../fixtures/golden.ts';

const golden = loadGolden('mlp-dynamic');

/** Starts a worker from `entry`, loads mlp-dynamic, runs every golden case, and ends the thread. */
async function runGolden(entry: URL): Promise<{ loaded: LoadedMessage; results: Tensor[][] }> {
  const worker = spawnInstanceWorker(entry, { workerData: {} });
  const next = (type: string) =>
    new Promise<WorkerToHost>((resolve, reject) => {
      const onMessage = (m: WorkerToHost) => {
        if (m.type !== type && m.type !== 'error') return;
        worker.off('message', onMessage);
        if (m.type === 'error') reject(new Error(`${m.code}: ${m.message}`));
        else resolve(m);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
  try {
    await next('ready');
    const loadedP = next('loaded');
    worker.postMessage({ type: 'load', dir: golden.dir, format: golden.format });
    const loaded = (await loadedP) as LoadedMessage;
    const results: Tensor[][] = [];
    for (const [id, c] of golden.cases.entries()) {
      const resultP = next('result');
      worker.postMessage({ type: 'run', id, inputs: c.inputs });
      results.push(((await resultP) as ResultMessage).outputs);
    }
    return { loaded, results };
  } finally {
    await worker.terminate();
  }
}

function expectGolden(results: Tensor[][]): void {
  expect(results).toHaveLength(golden.cases.length);
  golden.cases.forEach((c, i) => {
    const got = results[i][0];
    const want = c.outputs[0];
    expect(got.name).toBe(want.name);
    expect(got.shape).toEqual(want.shape);
    const g = Array.from(got.data as Float32Array);
    Array.from(want.data as Float32Array).forEach((w, j) => expect(Math.abs(g[j] - w)).toBeLessThanOrEqual(golden.tolerance));
  });
}

describe('the compiled instance worker', () => {
  it('is the build of functions/worker.ts, and runs mlp-dynamic to its golden outputs', async () => {
    const entry = await resolveWorkerEntry();
    expect(entry.href).toBe(WORKER_ENTRY_URL.href);
    expect(fileURLToPath(entry)).toMatch(/[\\/]dist[\\/]functions[\\/]worker\.js$/);
    // The build is not older than the worker's source (the test set-up rebuilds a stale dist/).
    const [built, source] = await Promise.all([fs.stat(entry), fs.stat(new URL('../../functions/worker.ts', import.meta.url))]);
    expect(built.mtimeMs).toBeGreaterThanOrEqual(source.mtimeMs);
    const { loaded, results } = await runGolden(entry);
    expect(loaded.runtime).toBe('onnxruntime-node');
    expectGolden(results);
  });

  it("workerExecArgv drops tsx's preload and loader flags and keeps the rest", () => {
    const parent = [
      '--require',
      '/p/node_modules/tsx/dist/preflight.cjs',
      '--import',
      'file:///p/node_modules/tsx/dist/loader.mjs',
      '--max-old-space-size=4096',
      '--import=tsx',
      '--require',
      '/p/otel.cjs',
      '--loader',
      'tsx/esm',
      '--enable-source-maps',
    ];
    const kept = ['--max-old-space-size=4096', '--require', '/p/otel.cjs', '--enable-source-maps'];
    expect(workerExecArgv(parent)).toEqual(kept);
    // Nothing to drop: inherit (undefined).
    expect(workerExecArgv(['--enable-source-maps'])).toBeUndefined();
  });

  it('spawnInstanceWorker boots the worker, also when the flags left after dropping tsx are refused in a worker', async () => {
    const entry = await resolveWorkerEntry();
    // Without tsx's flags this leaves ['--expose-gc'], which Node refuses as an explicit worker execArgv.
    expect(() => new Worker(entry, { execArgv: ['--expose-gc'] })).toThrow(
      expect.objectContaining({ code: 'ERR_WORKER_INVALID_EXEC_ARGV' }),
    );
    for (const parent of [process.execArgv, ['--import', 'tsx', '--expose-gc']]) {
      const w = spawnInstanceWorker(entry, { workerData: {} }, parent);
      try {
        const m = await new Promise<WorkerToHost>((resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
        });
        expect(m.type).toBe('ready');
      } finally {
        await w.terminate();
      }
    }
  });
});
