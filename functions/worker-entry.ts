// Where instance workers start: the compiled functions/worker.js in dist/ (`npm run build`). From the built code
// it sits beside this file; from the TypeScript sources (tests, benchmarks under tsx) the build's copy is used, so
// a worker always runs plain JavaScript and never needs a TypeScript loader.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { WorkerData } from './protocol.ts';

/** The instance worker's entry, for `new Worker(WORKER_ENTRY_URL, { workerData })`. */
export const WORKER_ENTRY_URL = import.meta.url.endsWith('.ts')
  ? new URL('../dist/functions/worker.js', import.meta.url)
  : new URL('./worker.js', import.meta.url);

/** WORKER_ENTRY_URL once it exists; a clear error (run the build) when it does not. */
export function resolveWorkerEntry(): Promise<URL> {
  const file = fileURLToPath(WORKER_ENTRY_URL);
  return fs.promises.access(file).then(
    () => WORKER_ENTRY_URL,
    () => Promise.reject(new Error(`the instance worker ${file} is missing: run \`npm run build\``)),
  );
}

const LOADER_FLAGS = new Set(['--require', '-r', '--import', '--loader', '--experimental-loader']);
const isTsxModule = (spec: string) => spec === 'tsx' || spec.startsWith('tsx/') || /[\\/]node_modules[\\/]tsx[\\/]/.test(spec);

/**
 * execArgv for a worker: the parent's minus tsx's preload and loader flags, or undefined (inherit, Node's default)
 * when there are none. A worker inherits the parent's execArgv, so under tsx (benchmarks, dev scripts) every worker
 * would register tsx again (about 50 ms a thread) for a plain-JS entry that does not need it.
 */
export function workerExecArgv(parentExecArgv: readonly string[] = process.execArgv): string[] | undefined {
  const out: string[] = [];
  for (let i = 0; i < parentExecArgv.length; i++) {
    const arg = parentExecArgv[i];
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
 * `new Worker(entry, options)` with workerExecArgv(). Node refuses an explicit execArgv that holds V8 or
 * process-wide flags (--max-old-space-size, --expose-gc: ERR_WORKER_INVALID_EXEC_ARGV) although it lets a worker
 * inherit them, so on that refusal the worker inherits the parent's flags.
 */
export function spawnInstanceWorker(entry: URL, options: WorkerOptions = {}, parentExecArgv: readonly string[] = process.execArgv): Worker {
  const execArgv = workerExecArgv(parentExecArgv);
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
export function forkInstanceProcess(
  entry: URL,
  workerData: WorkerData,
  opts: { execArgv?: string[] } = {},
  parentExecArgv: readonly string[] = process.execArgv,
): ChildProcess {
  const execArgv = [...(workerExecArgv(parentExecArgv) ?? parentExecArgv), ...(opts.execArgv ?? [])];
  return fork(fileURLToPath(entry), [JSON.stringify(workerData)], {
    execArgv,
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}
