// The bundled instance worker (functions/worker-bundle.ts): it runs a real model like the tsx bootstrap does,
// an edit to a worker source gives a new bundle that runs the edited code, concurrent builds share one bundle,
// and a worker that cannot be bundled falls back to the tsx bootstrap with a warning.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../../core/index.ts';
import type { LoadedMessage, ResultMessage, WorkerToHost } from '../../functions/protocol.ts';
import {
  buildWorkerBundle, hashWorkerSources, resolveWorkerEntry, spawnInstanceWorker, TSX_WORKER_ENTRY_URL, workerExecArgv,
} from '../../functions/worker-bundle.ts';
import { loadGolden } from '../fixtures/golden.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const golden = loadGolden('mlp-dynamic');

/** Starts a worker from `entry`, loads mlp-dynamic, runs every golden case, and ends the thread. */
async function runGolden(entry: URL): Promise<{ loaded: LoadedMessage; results: Tensor[][] }> {
  const worker = spawnInstanceWorker(entry, { workerData: {} });
  const next = (type: string) => new Promise<WorkerToHost>((resolve, reject) => {
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
    const got = results[i]![0]!;
    const want = c.outputs[0]!;
    expect(got.name).toBe(want.name);
    expect(got.shape).toEqual(want.shape);
    const g = Array.from(got.data as Float32Array);
    Array.from(want.data as Float32Array).forEach((w, j) => expect(Math.abs(g[j]! - w)).toBeLessThanOrEqual(golden.tolerance));
  });
}

let tmp: string;

/** A copy of the worker's sources under a temp root whose node_modules points at the project's. */
async function copyProject(name: string): Promise<{ root: string; cacheDir: string }> {
  const root = path.join(tmp, name);
  await fs.mkdir(root, { recursive: true });
  for (const d of ['functions', 'core']) await fs.cp(path.join(ROOT, d), path.join(root, d), { recursive: true });
  await fs.copyFile(path.join(ROOT, 'tsconfig.json'), path.join(root, 'tsconfig.json'));
  await fs.symlink(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  // Not under the symlinked node_modules: the project's own cache stays untouched by these tests.
  return { root, cacheDir: path.join(root, '.cache', 'hearth-worker') };
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-worker-bundle-'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('worker bundle', () => {
  it('the bundled worker and the tsx bootstrap both run mlp-dynamic to its golden outputs', async () => {
    const entry = await resolveWorkerEntry();
    // Bundling works here, so the default entry is the bundle under the project's node_modules, not the fallback.
    expect(entry.href).not.toBe(TSX_WORKER_ENTRY_URL.href);
    expect(fileURLToPath(entry)).toContain(path.join(ROOT, 'node_modules', '.cache', 'hearth-worker'));
    expect(path.basename(fileURLToPath(entry))).toBe('worker.mjs');
    expect(await resolveWorkerEntry()).toBe(entry); // one lookup per process

    const bundled = await runGolden(entry);
    const tsx = await runGolden(TSX_WORKER_ENTRY_URL);
    for (const r of [bundled, tsx]) {
      expect(r.loaded.runtime).toBe('onnxruntime-node');
      expect(r.loaded.inputs).toEqual(golden.inputs);
      expect(r.loaded.outputs).toEqual(golden.outputs);
      expectGolden(r.results);
    }
    expect(bundled.results.map((r) => Array.from(r[0]!.data as Float32Array)))
      .toEqual(tsx.results.map((r) => Array.from(r[0]!.data as Float32Array)));
  });

  it('an edit to a worker source gives a new hash and a new bundle that runs the edited code', async () => {
    const { root, cacheDir } = await copyProject('edit');
    const first = await buildWorkerBundle({ root, cacheDir });
    expect(first.built).toBe(true);
    expect(first.hash).toBe(await hashWorkerSources(root));
    const again = await buildWorkerBundle({ root, cacheDir });
    expect(again).toMatchObject({ hash: first.hash, built: false });
    expect(again.url.href).toBe(first.url.href);

    const file = path.join(root, 'functions', 'onnx-runtime.ts');
    const src = await fs.readFile(file, 'utf8');
    expect(src).toContain("readonly name = 'onnxruntime-node';");
    await fs.writeFile(file, src.replace("readonly name = 'onnxruntime-node';", "readonly name = 'onnxruntime-node-edited';"));
    const edited = await buildWorkerBundle({ root, cacheDir });
    expect(edited.built).toBe(true);
    expect(edited.hash).not.toBe(first.hash);
    expect(edited.url.href).not.toBe(first.url.href);
    expect((await fs.readdir(cacheDir)).sort()).toEqual([first.hash, edited.hash].sort());

    // Both bundles run, each with its own code (bare imports resolve through the copy's node_modules).
    const oldRun = await runGolden(first.url);
    const newRun = await runGolden(edited.url);
    expect(oldRun.loaded.runtime).toBe('onnxruntime-node');
    expect(newRun.loaded.runtime).toBe('onnxruntime-node-edited');
    expectGolden(newRun.results);

    // A change to tsconfig.json also changes the key; a change outside functions/ and core/ does not.
    await fs.writeFile(path.join(root, 'unrelated.ts'), 'export const x = 1;\n');
    expect(await hashWorkerSources(root)).toBe(edited.hash);
    await fs.appendFile(path.join(root, 'tsconfig.json'), '\n');
    expect(await hashWorkerSources(root)).not.toBe(edited.hash);
  });

  it('concurrent builds of one hash end with one bundle and no temporary folders', async () => {
    const { root, cacheDir } = await copyProject('race');
    const builds = await Promise.all([1, 2, 3, 4].map(() => buildWorkerBundle({ root, cacheDir })));
    expect(new Set(builds.map((b) => b.url.href)).size).toBe(1);
    expect(builds.filter((b) => b.built)).toHaveLength(1);
    expect(await fs.readdir(cacheDir)).toEqual([builds[0]!.hash]);
    const files = await fs.readdir(path.join(cacheDir, builds[0]!.hash));
    expect(files).toContain('worker.mjs');
    expect(files).toContain('bundle.json');
  });

  it('falls back to the tsx bootstrap with a HEARTH_WORKER_BUNDLE warning when the worker does not bundle', async () => {
    const { root, cacheDir } = await copyProject('broken');
    await fs.appendFile(path.join(root, 'functions', 'worker.ts'), '\nconst = ;\n');
    const warnings: Error[] = [];
    const onWarning = (w: Error & { code?: string }) => {
      if (w.code === 'HEARTH_WORKER_BUNDLE') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      await expect(buildWorkerBundle({ root, cacheDir })).rejects.toThrow();
      const entry = await resolveWorkerEntry({ root, cacheDir });
      expect(entry.href).toBe(TSX_WORKER_ENTRY_URL.href);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.message).toMatch(/tsx bootstrap/);
      // A failed build leaves no partial bundle behind.
      expect(await fs.readdir(cacheDir)).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('builds the bundle again when its cache folder is removed while the process runs', async () => {
    const { root, cacheDir } = await copyProject('removed');
    const first = await resolveWorkerEntry({ root, cacheDir });
    expect(first.href).not.toBe(TSX_WORKER_ENTRY_URL.href);
    expect(await resolveWorkerEntry({ root, cacheDir })).toBe(first);
    await fs.rm(cacheDir, { recursive: true, force: true });
    const again = await resolveWorkerEntry({ root, cacheDir });
    expect(again.href).toBe(first.href); // same sources, same hash
    await expect(fs.access(fileURLToPath(again))).resolves.toBeUndefined();
  });

  it('refuses to bundle a worker that imports a local file outside functions/ and core/', async () => {
    const { root, cacheDir } = await copyProject('stray');
    await fs.mkdir(path.join(root, 'executor'));
    await fs.writeFile(path.join(root, 'executor', 'stray.ts'), 'export const stray = 1;\n');
    await fs.appendFile(path.join(root, 'functions', 'worker.ts'), "\nimport { stray } from '../executor/stray.ts';\nvoid stray;\n");
    await expect(buildWorkerBundle({ root, cacheDir })).rejects.toThrow(/executor\/stray\.ts, outside the hashed folders/);
  });

  it("workerExecArgv drops tsx's preload and loader flags for a plain-JS entry and keeps the rest", () => {
    const parent = [
      '--require', '/p/node_modules/tsx/dist/preflight.cjs', '--import', 'file:///p/node_modules/tsx/dist/loader.mjs',
      '--max-old-space-size=4096', '--import=tsx', '--require', '/p/otel.cjs', '--loader', 'tsx/esm', '--enable-source-maps',
    ];
    const kept = ['--max-old-space-size=4096', '--require', '/p/otel.cjs', '--enable-source-maps'];
    expect(workerExecArgv(new URL('file:///p/node_modules/.cache/hearth-worker/h/worker.mjs'), parent)).toEqual(kept);
    expect(workerExecArgv(TSX_WORKER_ENTRY_URL, parent)).toEqual(kept);
    // Nothing to drop, or a TypeScript entry that needs the parent's loader: inherit (undefined).
    expect(workerExecArgv(TSX_WORKER_ENTRY_URL, ['--enable-source-maps'])).toBeUndefined();
    expect(workerExecArgv(new URL('file:///p/functions/worker.ts'), parent)).toBeUndefined();
  });

  it('spawnInstanceWorker boots the bundle, also when the flags left after dropping tsx are refused in a worker', async () => {
    const entry = await resolveWorkerEntry();
    // Without tsx's flags this leaves ['--expose-gc'], which Node refuses as an explicit worker execArgv.
    expect(() => new Worker(entry, { execArgv: ['--expose-gc'] })).toThrow(expect.objectContaining({ code: 'ERR_WORKER_INVALID_EXEC_ARGV' }));
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
