// A serving config is applied as the node can hold it: min/maxInstances capped by the slots and the memory budget,
// op threads by the cores, and each instance's reservation taken from the model's footprint (its file size, then
// the RSS growth measured when an instance loaded) rather than from a smaller declared memoryMb. Real worker threads
// with the test-only fault runtime, whose session can hold a given amount of resident memory.
import { afterEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../../core/index.ts';
import { onnxFixtureDir } from '../fixtures/golden.ts';
import { FAULT_SPECS, faultInputs, makeRig, manifestOf, modelConfig, type TestRig } from './helpers.ts';

let rig: TestRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setup(opts: {
  configs: Record<string, unknown>;
  env?: Record<string, string>;
  allocMb?: number;
  cores?: number;
}): Promise<{ m: Manifest; warnings: string[] }> {
  const warnings: string[] = [];
  rig = await makeRig({
    allowTestRuntimes: true,
    loadOptions: () => ({ runtime: 'fault', ...(opts.allocMb ? { fault: { loadAllocMb: opts.allocMb } } : {}) }),
    configs: opts.configs,
    env: opts.env,
    log: { warn: (_obj, m) => warnings.push(m) },
    ...(opts.cores ? { cores: opts.cores } : {}),
  });
  const name = Object.keys(opts.configs)[0];
  const f = await manifestOf(name, onnxFixtureDir('mlp-dynamic'), FAULT_SPECS);
  rig.sources.set(`${name}@1`, f.dir);
  return { m: f.manifest, warnings };
}

describe('a serving config larger than the node', () => {
  it('minInstances 1024 starts only the instances the slots can run, and the clamp is logged once', async () => {
    const { m, warnings } = await setup({
      configs: { p: { minInstances: 1024, maxInstances: 1024, memoryMb: 16 } },
      env: { EXECUTOR_SLOTS: '2' },
    });
    await rig!.executor.infer({ manifest: m, inputs: faultInputs(0) });
    for (let i = 0; i < 100 && rig!.executor.control.pool('p', 1)!.counts.starting > 0; i++) await tick(20);
    const pool = rig!.executor.control.pool('p', 1)!;
    expect(pool.instances.length).toBe(2);
    expect(pool.config).toMatchObject({ minInstances: 2, maxInstances: 2 });
    // The reservation is the model's (64 MB at least), not the 16 MB declared.
    expect(pool.memoryMb).toBeGreaterThanOrEqual(64);
    expect(rig!.executor.control.node().memoryUsedMb).toBe(2 * pool.memoryMb);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /serving config of p@1 clamped to this node: .*maxInstances 1024 -> 2.*minInstances 1024 -> 2.*memoryMb 16 -> \d+/,
    );
    // The autoscaler's control surface cannot go past it either.
    for (let i = 0; i < 50; i++) rig!.executor.control.startInstance('p', 1);
    expect(rig!.executor.control.pool('p', 1)!.instances.length).toBe(2);
    expect(rig!.executor.control.node().memoryUsedMb).toBe(2 * pool.memoryMb);
    // The same config again logs nothing new; a different clamp does.
    rig!.executor.setConfig('p', modelConfig({ minInstances: 1024, maxInstances: 1024, memoryMb: 16 }));
    expect(warnings).toHaveLength(1);
    rig!.executor.setConfig('p', modelConfig({ minInstances: 1, maxInstances: 1024 }));
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).not.toMatch(/minInstances/);
  });

  it('op threads are capped by the cores, concurrency by the slots', async () => {
    const { m } = await setup({
      configs: { t: { concurrency: 64, runtime: { intraOpNumThreads: 256 } } },
      env: { EXECUTOR_SLOTS: '4' },
      cores: 3,
    });
    const fitted = rig!.executor.fitConfig(m, modelConfig({ concurrency: 64, runtime: { intraOpNumThreads: 256 } }));
    expect(fitted.config).toMatchObject({ concurrency: 4, maxInstances: 1, runtime: { intraOpNumThreads: 3 } });
    expect(fitted.clamped.map((c) => c.field).sort()).toEqual(['concurrency', 'maxInstances', 'runtime.intraOpNumThreads']);
  });

  it("the reservation grows to the RSS an instance's load was measured to take, and the config follows it", async () => {
    const { m } = await setup({
      configs: { big: { memoryMb: 100, maxInstances: 8 } },
      env: { EXECUTOR_SLOTS: '8', EXECUTOR_MEMORY_MB: '1024' },
      allocMb: 300,
    });
    expect(rig!.executor.fitConfig(m, modelConfig({ memoryMb: 100, maxInstances: 8 })).config).toMatchObject({
      memoryMb: 100,
      maxInstances: 8,
    });
    await rig!.executor.infer({ manifest: m, inputs: faultInputs(0) });
    const pool = rig!.executor.control.pool('big', 1)!;
    // The session holds 300 MB: the declared 100 MB is not what the node accounts.
    expect(pool.memoryMb).toBeGreaterThanOrEqual(300);
    expect(pool.instances[0].memoryMb).toBe(pool.memoryMb);
    expect(rig!.executor.control.node().memoryUsedMb).toBe(pool.memoryMb);
    expect(pool.config.maxInstances).toBe(Math.floor(1024 / pool.memoryMb));
    const fitted = rig!.executor.fitConfig(m, modelConfig({ memoryMb: 100, maxInstances: 8 }));
    expect(fitted.config.memoryMb).toBe(pool.memoryMb);
    expect(fitted.clamped.find((c) => c.field === 'memoryMb')).toMatchObject({ requested: 100, applied: pool.memoryMb });
    // Retired, it gives back what it reserved.
    await rig!.executor.unload('big');
    expect(rig!.executor.control.node().memoryUsedMb).toBe(0);
  });
});
