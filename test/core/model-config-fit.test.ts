// fitModelConfig: a serving config as one node applies it (pure), the reservation rule behind it
// (instanceMemoryMb), and mergeModelConfig's errors for values nested too deep to print.
import { describe, expect, it } from 'vitest';
import { hearthFailure as codeOf } from '../helpers/errors.ts';
import { defaultModelConfig, describeClamps, fitModelConfig, mergeModelConfig, type NodeCapacity } from '../../core/index.ts';
import { defaultMemoryMb, instanceMemoryMb } from '../../executor/node-resources.ts';

const config = (patch: unknown = {}) => mergeModelConfig(defaultModelConfig(), patch);
const NODE: NodeCapacity = { cores: 2, slots: 2, memoryMb: 12_052 };

describe('fitModelConfig', () => {
  it("clamps the issue's config to a 2-core node, and says why for each field", () => {
    const { config: out, clamped } = fitModelConfig(
      config({ minInstances: 1024, maxInstances: 1024, memoryMb: 16, runtime: { intraOpNumThreads: 256 } }),
      NODE,
      64,
    );
    expect(out).toMatchObject({ minInstances: 2, maxInstances: 2, memoryMb: 64, runtime: { intraOpNumThreads: 2 } });
    expect(clamped).toEqual([
      { field: 'runtime.intraOpNumThreads', requested: 256, applied: 2, because: '2 CPU cores' },
      { field: 'maxInstances', requested: 1024, applied: 2, because: '2 CPU slots (EXECUTOR_SLOTS) at concurrency 1' },
      { field: 'minInstances', requested: 1024, applied: 2, because: '2 CPU slots (EXECUTOR_SLOTS) at concurrency 1' },
      { field: 'memoryMb', requested: 16, applied: 64, because: expect.stringContaining('footprint') },
    ]);
    expect(describeClamps(clamped)).toMatch(/^runtime\.intraOpNumThreads 256 -> 2 \(2 CPU cores\); maxInstances 1024 -> 2 /);
  });

  it('a config that fits comes back unchanged, with memoryMb showing the reservation', () => {
    const asked = config({ minInstances: 1, maxInstances: 2, memoryMb: 512 });
    const { config: out, clamped } = fitModelConfig(asked, NODE, 512);
    expect(clamped).toEqual([]);
    expect(out).toEqual(asked);
    expect(fitModelConfig(config(), { cores: 8, slots: 8, memoryMb: 4096 }, 64)).toEqual({
      config: { ...config(), memoryMb: 64 },
      clamped: [],
    });
  });

  it('the memory budget caps instances when it holds fewer than the slots run, never below one', () => {
    const big = { cores: 64, slots: 64, memoryMb: 1024 };
    expect(fitModelConfig(config({ maxInstances: 16, minInstances: 8 }), big, 300)).toMatchObject({
      config: { maxInstances: 3, minInstances: 3 },
      clamped: [
        { field: 'maxInstances', applied: 3, because: 'a 1024 MB budget (EXECUTOR_MEMORY_MB) at 300 MB per instance' },
        { field: 'minInstances' },
      ],
    });
    expect(fitModelConfig(config(), big, 5000).config.maxInstances).toBe(1);
  });

  it('concurrency is capped by the slots, and instances by ceil(slots / concurrency)', () => {
    const { config: out } = fitModelConfig(config({ concurrency: 64, maxInstances: 10 }), { cores: 4, slots: 4, memoryMb: 100_000 }, 64);
    expect(out).toMatchObject({ concurrency: 4, maxInstances: 1 });
    expect(
      fitModelConfig(config({ concurrency: 2, maxInstances: 10 }), { cores: 4, slots: 5, memoryMb: 100_000 }, 64).config.maxInstances,
    ).toBe(3);
  });

  it('does not change the config it was given', () => {
    const asked = config({ maxInstances: 1024 });
    fitModelConfig(asked, NODE, 64);
    expect(asked.maxInstances).toBe(1024);
  });
});

describe('instanceMemoryMb', () => {
  const size = 2 * 1024 ** 2; // a 2 MB model: estimated at defaultMemoryMb
  it('a declared memoryMb below the footprint is not obeyed; above it, it is', () => {
    expect(instanceMemoryMb(size, 16, undefined)).toBe(defaultMemoryMb(size));
    expect(instanceMemoryMb(size, 1024, undefined)).toBe(1024);
    expect(instanceMemoryMb(size, undefined, undefined)).toBe(defaultMemoryMb(size));
  });

  it('a measured footprint above the estimate replaces it; one below leaves the estimate', () => {
    expect(instanceMemoryMb(size, 16, 300.2)).toBe(301);
    expect(instanceMemoryMb(size, 512, 300)).toBe(512);
    expect(instanceMemoryMb(size, undefined, 10)).toBe(defaultMemoryMb(size));
  });
});

describe('mergeModelConfig with hostile values', () => {
  it('a value nested 100k deep is INVALID_CONFIG with a short message, not a stack overflow', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    for (const patch of [{ timeoutMs: deep }, { keepAlive: { kind: deep } }, { scheduling: { strategy: deep } }]) {
      const f = codeOf(() => mergeModelConfig(defaultModelConfig(), patch));
      expect(f.code).toBe('INVALID_CONFIG');
      expect(f.message.length).toBeLessThan(300);
    }
  });
});
