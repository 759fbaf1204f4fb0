// The instance worker as one prebuilt plain-JS bundle, so a thread starts without registering tsx and
// transpiling functions/ and core/ again (Node 20 workers do not inherit the parent's loader). Built with
// esbuild once per hash of its sources; worker-entry.mjs (the tsx bootstrap) stays the fallback.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { WorkerData } from './protocol.ts';

/** The tsx bootstrap: what a worker runs when there is no bundle. */
const TSX_ENTRY_URL = new URL('./worker-entry.mjs', import.meta.url);

/** Folders (under the project root) whose files make up the worker; all of them go into the hash. */
const SOURCE_ROOTS = ['functions', 'core'];
const SOURCE_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs', '.json']);
/** Root-level files that change how esbuild transforms the sources. */
const SOURCE_FILES = ['tsconfig.json'];
/** Bump when the build options below change meaning, so old bundles are not reused. */
const RECIPE = 'esm-split-node20-external-v1';
const ENTRY_FILE = 'worker.mjs';

export interface WorkerBundleOptions {
  /** Project root holding functions/, core/, tsconfig.json and node_modules/. Default: the folder above functions/. */
  root?: string;
  /**
   * Where bundles are written, one folder per source hash. It must lie under a folder whose node_modules holds
   * onnxruntime-node and the other packages the worker imports, because the bundle keeps them as bare imports
   * that Node resolves from the bundle's own location. Default: <root>/node_modules/.cache/hearth-worker.
   */
  cacheDir?: string;
}

export interface WorkerBundle {
  /** The entry for `new Worker(url, { workerData })`. */
  url: URL;
  /** Hash of the sources, the esbuild version and the recipe; the bundle's folder name. */
  hash: string;
  /** False when an existing bundle of the same hash was reused. */
  built: boolean;
}

function defaultRoot(): string {
  return fileURLToPath(new URL('..', import.meta.url));
}

function defaultCacheDir(root: string): string {
  return path.join(root, 'node_modules', '.cache', 'hearth-worker');
}

async function listSources(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
      const child = path.posix.join(rel, e.name);
      if (e.isDirectory()) await walk(child);
      else if (e.isFile() && SOURCE_EXTENSIONS.has(path.extname(e.name))) out.push(child);
    }
  };
  for (const dir of SOURCE_ROOTS) await walk(dir);
  for (const f of SOURCE_FILES) {
    if (await fs.stat(path.join(root, f)).then((s) => s.isFile(), () => false)) out.push(f);
  }
  return out.sort();
}

async function esbuildVersion(): Promise<string> {
  return (await import('esbuild')).version;
}

/**
 * The bundle key for the worker sources under `root`: every file in functions/ and core/ (path and content),
 * tsconfig.json, the esbuild version and the build recipe. Any edit there gives a new key, hence a rebuild.
 */
export async function hashWorkerSources(root: string = defaultRoot()): Promise<string> {
  const files = await listSources(root);
  const contents = await Promise.all(files.map((f) => fs.readFile(path.join(root, f))));
  const h = createHash('sha256').update(`${RECIPE}\0esbuild ${await esbuildVersion()}\0`);
  files.forEach((f, i) => h.update(`${f}\0${contents[i]!.length}\0`).update(contents[i]!));
  return h.digest('hex').slice(0, 32);
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(() => true, () => false);
}

/**
 * Returns the bundle for the current sources, building it when none of this hash exists yet. The build goes
 * to a private temporary folder that is renamed into place, so concurrent processes never see a partial bundle;
 * the loser of a race drops its copy and uses the winner's. Throws when esbuild fails, or when the worker
 * imports a local file outside functions/ and core/ (it would be missing from the hash, so edits to it would
 * leave a stale bundle).
 */
export async function buildWorkerBundle(opts: WorkerBundleOptions = {}): Promise<WorkerBundle> {
  const root = path.resolve(opts.root ?? defaultRoot());
  const cacheDir = path.resolve(opts.cacheDir ?? defaultCacheDir(root));
  const hash = await hashWorkerSources(root);
  const finalDir = path.join(cacheDir, hash);
  const url = pathToFileURL(path.join(finalDir, ENTRY_FILE));
  if (await exists(path.join(finalDir, ENTRY_FILE))) return { url, hash, built: false };

  await fs.mkdir(cacheDir, { recursive: true });
  const tmpDir = path.join(cacheDir, `.tmp-${hash}-${process.pid}-${randomUUID()}`);
  try {
    const { build } = await import('esbuild');
    const result = await build({
      absWorkingDir: root,
      entryPoints: { worker: path.join(root, 'functions', 'worker.ts') },
      outdir: tmpDir,
      bundle: true,
      // Separate chunks keep the runtimes' dynamic imports lazy: a worker loads onnxruntime-node or tfjs
      // only when it preloads or loads that format, exactly as the unbundled worker does.
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      outExtension: { '.js': '.mjs' },
      chunkNames: 'chunk-[hash]',
      sourcemap: 'linked',
      tsconfig: path.join(root, 'tsconfig.json'),
      metafile: true,
      logLevel: 'silent',
    });
    const hashed = new Set(await listSources(root));
    const stray = Object.keys(result.metafile.inputs).filter((f) => !hashed.has(f.split(path.sep).join('/')));
    if (stray.length > 0) {
      throw new Error(`the worker imports ${stray.join(', ')}, outside the hashed folders ${SOURCE_ROOTS.join(', ')}`);
    }
    await fs.writeFile(path.join(tmpDir, 'bundle.json'), JSON.stringify({ hash, recipe: RECIPE, hashedFiles: [...hashed], builtAt: new Date().toISOString() }, null, 1));
    try {
      await fs.rename(tmpDir, finalDir);
    } catch (e) {
      // Another process renamed its identical build into place first.
      if (!(await exists(path.join(finalDir, ENTRY_FILE)))) throw e;
      await fs.rm(tmpDir, { recursive: true, force: true });
      return { url, hash, built: false };
    }
    return { url, hash, built: true };
  } catch (e) {
    await fs.rm(tmpDir, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

// One lookup per project root and cache folder per process, shared by every pool and inspection. It caches an
// immutable on-disk artifact (like Node's own module cache), not configuration or state, so a module-level map
// is the honest place; the bundle a process starts with is the code all of its workers run.
const resolved = new Map<string, Promise<URL>>();

/**
 * The URL to start an instance worker from: the bundle for the current sources (built on first use, then reused),
 * or the tsx bootstrap when bundling is not possible, with a process warning (code HEARTH_WORKER_BUNDLE) that says
 * why. Never rejects. Pools and inspections call it before each spawn; after the first call per process it only
 * checks that the bundle file is still there (and builds it again if someone removed the cache).
 */
export async function resolveWorkerEntry(opts: WorkerBundleOptions & { buildTimeoutMs?: number } = {}): Promise<URL> {
  const root = path.resolve(opts.root ?? defaultRoot());
  const cacheDir = path.resolve(opts.cacheDir ?? defaultCacheDir(root));
  const key = `${root}\0${cacheDir}`;
  const known = resolved.get(key);
  if (known) {
    const url = await known;
    if (url === TSX_ENTRY_URL || (await exists(fileURLToPath(url)))) return url;
    if (resolved.get(key) === known) resolved.delete(key);
  }
  let p = resolved.get(key);
  if (!p) {
    const timeoutMs = opts.buildTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    // A stuck esbuild must not hold every cold start: past the limit, workers use the tsx bootstrap.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`esbuild did not finish within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
    });
    p = Promise.race([buildWorkerBundle({ root, cacheDir }), timeout]).then(
      (b) => b.url,
      (e: unknown) => {
        const why = e instanceof Error ? e.message : String(e);
        process.emitWarning(`instance workers start through the tsx bootstrap, because bundling them failed: ${why}`, { code: 'HEARTH_WORKER_BUNDLE' });
        return TSX_ENTRY_URL;
      },
    ).finally(() => clearTimeout(timer));
    resolved.set(key, p);
  }
  return p;
}

const LOADER_FLAGS = new Set(['--require', '-r', '--import', '--loader', '--experimental-loader']);
const isTsxModule = (spec: string) => spec === 'tsx' || spec.startsWith('tsx/') || /[\\/]node_modules[\\/]tsx[\\/]/.test(spec);

/**
 * execArgv for a worker started from `entry`: the parent's minus tsx's preload and loader flags, when the entry is
 * plain JS and the parent has such flags; otherwise undefined (inherit, Node's default). A worker inherits the
 * parent's execArgv, so under `tsx main.ts` every worker would register tsx again (about 50 ms a thread) although
 * neither the bundle nor the tsx bootstrap, which registers its own, needs it. A TypeScript entry (tests may pass
 * one) keeps the parent's flags.
 */
export function workerExecArgv(entry: URL, parentExecArgv: readonly string[] = process.execArgv): string[] | undefined {
  if (/\.[mc]?ts$/.test(entry.pathname)) return undefined;
  const out: string[] = [];
  for (let i = 0; i < parentExecArgv.length; i++) {
    const arg = parentExecArgv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (LOADER_FLAGS.has(flag)) {
      const value = eq > 0 ? arg.slice(eq + 1) : parentExecArgv[i + 1];
      if (value !== undefined && isTsxModule(value)) {
        if (eq < 0) i++;
        continue;
      }
    }
    out.push(arg);
  }
  return out.length === parentExecArgv.length ? undefined : out;
}

/**
 * `new Worker(entry, options)` with workerExecArgv(entry). Node refuses an explicit execArgv that holds V8 or
 * process-wide flags (--max-old-space-size, --expose-gc, --title: ERR_WORKER_INVALID_EXEC_ARGV) although it lets
 * a worker inherit them, so on that refusal the worker inherits the parent's flags as before.
 */
export function spawnInstanceWorker(entry: URL, options: WorkerOptions = {}, parentExecArgv: readonly string[] = process.execArgv): Worker {
  const execArgv = workerExecArgv(entry, parentExecArgv);
  if (!execArgv) return new Worker(entry, options);
  try {
    return new Worker(entry, { ...options, execArgv });
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw e;
    return new Worker(entry, options);
  }
}

/**
 * The same worker entry as a child process (model inspection: its native memory and time can be bounded, and it can
 * be killed mid-load, which a thread cannot). It speaks the protocol of functions/protocol.ts over its IPC channel
 * (structured clone, no transfer lists) and reads `workerData` as JSON from argv[2]. `execArgv` is added to the
 * parent's flags (minus tsx's, as for threads); stdout and stderr go to the parent's.
 */
export function forkInstanceProcess(entry: URL, workerData: WorkerData, opts: { execArgv?: string[] } = {}, parentExecArgv: readonly string[] = process.execArgv): ChildProcess {
  const execArgv = [...(workerExecArgv(entry, parentExecArgv) ?? parentExecArgv), ...(opts.execArgv ?? [])];
  return fork(fileURLToPath(entry), [JSON.stringify(workerData)], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** The tsx bootstrap entry, which transpiles the TypeScript sources in each worker. */
export const TSX_WORKER_ENTRY_URL = TSX_ENTRY_URL;
