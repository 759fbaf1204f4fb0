// The executor's worker pool (executor/worker-pool.ts) on the compiled worker: a pre-spawned worker runs a real model,
// and a handed-out pre-spawned worker is replaced after its first run, its exit, or the refill delay cap on the
// injected clock — whichever comes first.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../core/index.ts';
import { WorkerPool } from '../../executor/worker-pool.ts';
import type { WorkerToHost } from '../../functions/protocol.ts';
import { loadGolden } from '../fixtures/golden.ts';

const golden = loadGolden('mlp-dynamic');
const pools: WorkerPool[] = [];

function pool(clock: ManualClock): WorkerPool {
  const p = new WorkerPool({ size: 1, workerData: { preload: ['onnx'] }, clock, refillDelayMaxMs: 2_000 });
  pools.push(p);
  return p;
}

function next(worker: import('node:worker_threads').Worker, type: string): Promise<WorkerToHost> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: WorkerToHost) => {
      if (m.type !== type && m.type !== 'error') return;
      worker.off('message', onMessage);
      if (m.type === 'error') reject(new Error(m.message));
      else resolve(m);
    };
    worker.on('message', onMessage);
  });
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

describe('worker pool refill', () => {
  it('a pre-spawned worker runs mlp-dynamic, and its replacement boots after the first run', async () => {
    const clock = new ManualClock();
    const p = pool(clock);
    await p.fill();
    expect(p.readyCount).toBe(1);
    const { worker, prewarmed } = await p.acquire();
    expect(prewarmed).toBe(true);
    expect(p.readyCount).toBe(0);

    const loaded = next(worker, 'loaded');
    worker.postMessage({ type: 'load', dir: golden.dir, format: golden.format });
    expect(await loaded).toMatchObject({ runtime: 'onnxruntime-node', inputs: golden.inputs });
    const result = next(worker, 'result');
    worker.postMessage({ type: 'run', id: 1, inputs: golden.cases[0].inputs });
    const out = (await result) as Extract<WorkerToHost, { type: 'result' }>;
    expect(out.outputs[0].shape).toEqual(golden.cases[0].outputs[0].shape);
    // The clock never moved, so the refill came from the first run, not from the delay cap.
    await vi.waitFor(() => expect(p.readyCount).toBe(1), { timeout: 30_000, interval: 20 });
  });

  it('a handed-out worker that never runs is replaced when the delay cap passes on the clock, or when it exits', async () => {
    const clock = new ManualClock();
    const p = pool(clock);
    await p.fill();
    await p.acquire();
    clock.advance(2_000);
    await vi.waitFor(() => expect(p.readyCount).toBe(1), { timeout: 30_000, interval: 20 });

    const { worker } = await p.acquire();
    expect(p.readyCount).toBe(0);
    await p.terminate(worker);
    await vi.waitFor(() => expect(p.readyCount).toBe(1), { timeout: 30_000, interval: 20 });
  });
});
