// A pool belongs to one upload (name, version, sha256): another upload of the same version retires it; a delete
// (remove) drops the model's pools and refuses its manifest afterwards; a pool is made only for the registry's
// current upload (currentManifest), so a request still carrying a deleted one never starts an instance.
import { afterEach, describe, expect, it } from 'vitest';
import { hearthError, isHearthError, type Manifest } from '../../core/index.ts';
import { onnxFixtureDir } from '../fixtures/golden.ts';
import { FAULT_SPECS, faultInputs, makeRig, manifestOf, modelConfig, type TestRig } from './helpers.ts';

let rig: TestRig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (isHearthError(e) ? e.code : String(e)),
  );

/** A registry of current manifests for the executor's currentManifest, with a count of its reads. */
class Registry {
  current = new Map<string, Manifest>();
  reads = 0;
  /** Delay of each read; what it answers is what was current when it began (a read that overlaps a delete). */
  delayMs = 0;
  put(m: Manifest): void {
    this.current.set(`${m.name}@${m.version}`, m);
  }
  delete(name: string): void {
    for (const k of [...this.current.keys()]) if (k.startsWith(`${name}@`)) this.current.delete(k);
  }
  read = async (name: string, version: number): Promise<Manifest> => {
    this.reads++;
    const m = this.current.get(`${name}@${version}`);
    if (this.delayMs) await tick(this.delayMs);
    if (!m)
      throw hearthError(
        [...this.current.keys()].some((k) => k.startsWith(`${name}@`)) ? 'VERSION_NOT_FOUND' : 'MODEL_NOT_FOUND',
        `no ${name}@${version}`,
      );
    return m;
  };
}

async function setup(
  configs: Record<string, unknown> = {},
): Promise<{ a: Manifest; b: Manifest; reg: Registry; dirs: { a: string; b: string } }> {
  const reg = new Registry();
  rig = await makeRig({
    allowTestRuntimes: true,
    loadOptions: () => ({ runtime: 'fault' }),
    configs,
    currentManifest: reg.read,
    env: { EXECUTOR_SLOTS: '1' },
  });
  // Two uploads of m@1 with different content.
  const a = await manifestOf('m', onnxFixtureDir('mlp-dynamic'), FAULT_SPECS);
  const b = await manifestOf('m', onnxFixtureDir('mlp-fixed'), FAULT_SPECS);
  expect(a.manifest.sha256).not.toBe(b.manifest.sha256);
  rig.sources.set('m@1', a.dir);
  reg.put(a.manifest);
  return { a: a.manifest, b: b.manifest, reg, dirs: { a: a.dir, b: b.dir } };
}

const infer = (m: Manifest, mode = 0, payload = 1) => rig!.executor.infer({ manifest: m, inputs: faultInputs(mode, payload) });

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await tick(20);
}

describe('pool identity', () => {
  it('another upload of the same version gets its own pool; the old one is retired and its queued requests told', async () => {
    const { a, b, reg, dirs } = await setup({ m: { maxInstances: 1, batching: { maxBatchSize: 1 } } });
    await infer(a);
    const [old] = rig!.executor.control.pool('m', 1)!.instances;
    const running = codeOf(infer(a, 1200)); // sleeps 200 ms on the only instance
    await tick(20);
    const queued = codeOf(infer(a));
    // The version is deleted and uploaded again with other content.
    reg.delete('m');
    reg.put(b);
    rig!.sources.set('m@1', dirs.b);
    const r = await infer(b, 0, 7);
    expect(r.coldStart).toBe(true);
    expect((r.outputs[1].data as Float32Array)[0]).toBe(7);
    expect(await queued).toBe('VERSION_NOT_FOUND');
    expect(await running).toBe('ok'); // a run in flight finishes
    await until(() => !rig!.executor.control.pool('m', 1)!.instances.some((i) => i.id === old.id));
    expect(rig!.executor.control.pools().map((p) => p.key)).toEqual(['m@1']);
    expect(rig!.executor.control.pool('m', 1)!.instances.map((i) => i.id)).not.toContain(old.id);
    // The old upload's manifest is refused now, and starts nothing.
    expect(await codeOf(infer(a))).toBe('VERSION_NOT_FOUND');
    expect(rig!.executor.control.pool('m', 1)!.instances).toHaveLength(1);
  });
});

describe('remove (a delete)', () => {
  it('queued requests fail MODEL_NOT_FOUND, the pool leaves control.pools(), and its manifest is refused without a store read', async () => {
    const { a, reg } = await setup({ m: { maxInstances: 1, batching: { maxBatchSize: 1 }, minInstances: 1 } });
    await rig!.executor.load(a);
    const blocker = codeOf(infer(a, 1300));
    await tick(20);
    const queued = [1, 2, 3].map(() => codeOf(infer(a)));
    reg.delete('m');
    await rig!.executor.remove('m');
    expect(await Promise.all(queued)).toEqual(['MODEL_NOT_FOUND', 'MODEL_NOT_FOUND', 'MODEL_NOT_FOUND']);
    expect(await blocker).toBe('ok');
    expect(rig!.executor.control.pools()).toEqual([]);
    const reads = reg.reads;
    expect(await codeOf(infer(a))).toBe('MODEL_NOT_FOUND');
    expect(await codeOf(rig!.executor.load(a))).toBe('MODEL_NOT_FOUND');
    expect(reg.reads).toBe(reads);
    // The autoscaler's view of it is gone too: starting an instance of it does nothing, minInstances is forgotten.
    rig!.executor.control.startInstance('m', 1);
    await until(() => rig!.executor.control.node().memoryUsedMb === 0);
    await tick(100);
    expect(rig!.executor.control.pools()).toEqual([]);
    expect(rig!.executor.control.node().memoryUsedMb).toBe(0);
  });

  it('the very same bytes uploaded again after a delete are a new upload, served', async () => {
    const { a, reg } = await setup();
    expect((await infer(a, 0, 2)).outputs).toHaveLength(2);
    reg.delete('m');
    await rig!.executor.remove('m');
    const again: Manifest = { ...a, createdAt: new Date(Date.parse(a.createdAt) + 1000).toISOString() };
    reg.put(again);
    expect(await codeOf(infer(a))).toBe('MODEL_NOT_FOUND');
    const r = await infer(again, 0, 3);
    expect((r.outputs[1].data as Float32Array)[0]).toBe(3);
  });

  it('a request whose manifest was read before the delete, and whose pool is made after it, is refused', async () => {
    const { a, reg } = await setup();
    reg.delayMs = 100;
    // The pool is being made: its registry read began before the delete.
    const late = codeOf(infer(a));
    await tick(30);
    reg.delete('m');
    await rig!.executor.remove('m');
    expect(await late).toBe('MODEL_NOT_FOUND');
    expect(rig!.executor.control.pools()).toEqual([]);
    expect(rig!.reads).toEqual([]); // no instance started: the artifact was never fetched
  });

  it("a manifest that is not the registry's current one (a deleted upload a job still carries) starts nothing", async () => {
    const { a, reg } = await setup();
    const stale: Manifest = { ...a, createdAt: new Date(Date.parse(a.createdAt) - 60_000).toISOString() };
    expect(await codeOf(infer(stale))).toBe('VERSION_NOT_FOUND');
    expect(await codeOf(infer({ ...a, version: 2 }))).toBe('VERSION_NOT_FOUND');
    reg.delete('m');
    expect(await codeOf(infer(a))).toBe('MODEL_NOT_FOUND');
    expect(rig!.executor.control.pools()).toEqual([]);
    expect(rig!.reads).toEqual([]);
  });
});

describe('unload', () => {
  it('drops an idle pool: the next request reads the serving config again', async () => {
    let configReads = 0;
    const reg = new Registry();
    rig = await makeRig({
      allowTestRuntimes: true,
      loadOptions: () => ({ runtime: 'fault' }),
      currentManifest: reg.read,
      getConfig: async () => {
        configReads++;
        return modelConfig();
      },
    } as Parameters<typeof makeRig>[0]);
    const { manifest, dir } = await manifestOf('u', onnxFixtureDir('mlp-dynamic'), FAULT_SPECS);
    rig.sources.set('u@1', dir);
    reg.put(manifest);
    await infer(manifest);
    expect(configReads).toBe(1);
    await rig.executor.unload('u');
    expect(rig.executor.control.pools()).toEqual([]);
    const r = await infer(manifest, 0, 5);
    expect(r.coldStart).toBe(true);
    expect(configReads).toBe(2);
  });
});

describe('checkConfig', () => {
  it('refuses a memoryMb larger than the whole node, naming EXECUTOR_MEMORY_MB', async () => {
    rig = await makeRig({ env: { EXECUTOR_MEMORY_MB: '1024' } });
    expect(() => rig!.executor.checkConfig(modelConfig({ memoryMb: 1024 }))).not.toThrow();
    let err: unknown;
    try {
      rig.executor.checkConfig(modelConfig({ memoryMb: 1025 }));
    } catch (e) {
      err = e;
    }
    expect(isHearthError(err) && err.code).toBe('INVALID_CONFIG');
    expect((err as Error).message).toMatch(/EXECUTOR_MEMORY_MB/);
  });
});
