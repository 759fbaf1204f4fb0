// Servers under test run in their own processes, so the load generator and the server do not share an event
// loop: Hearth through benchmarks/lib/hearth-server.ts (createHearth + listen on port 0), the hand-rolled baseline
// through benchmarks/lib/minimal-server.ts. Each prints "listening <url>" when it accepts requests.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

export interface ChildServer {
  url: string;
  child: ChildProcess;
  /** Last lines the server wrote to stderr (for error notes). */
  stderrTail(): string;
  stop(): Promise<void>;
}

export interface ChildServerOptions {
  timeoutMs?: number;
  /** Node flags before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Also copy the server's stderr to this process's stderr as it comes (the tail is kept either way). */
  echoStderr?: boolean;
}

export function startChildServer(
  file: string,
  args: string[],
  env: Record<string, string>,
  opts: ChildServerOptions = {},
): Promise<ChildServer> {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', path.resolve(here, file), ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    if (opts.echoStderr) process.stderr.write(d as Buffer);
    stderr = (stderr + String(d)).slice(-4000);
  });
  const stop = (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill('SIGTERM');
    });
  };
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${file} did not start within ${opts.timeoutMs ?? 60_000} ms:\n${stderr.slice(-2000)}`));
    }, opts.timeoutMs ?? 60_000);
    child.stdout.on('data', (d) => {
      out += String(d);
      const m = /listening (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1].replace(/\/$/, ''), child, stderrTail: () => stderr, stop });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited with ${code} before listening:\n${stderr.slice(-2000)}`));
    });
  });
}

/** A Hearth node on a fresh data folder, with Redis pointed nowhere (the benchmarks need no job queue). */
export function startHearth(dataDir: string, env: Record<string, string> = {}, opts: ChildServerOptions = {}): Promise<ChildServer> {
  return startChildServer(
    'hearth-server.ts',
    [],
    {
      DATA_DIR: dataDir,
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL: 'redis://127.0.0.1:1',
      LOG_LEVEL: 'silent',
      ...env,
    },
    opts,
  );
}

export function startMinimal(modelFile: string): Promise<ChildServer> {
  return startChildServer('minimal-server.ts', [modelFile], {});
}

/** fetch with a JSON or binary body; throws with the server's answer on a non-2xx status. */
export async function httpCall(
  url: string,
  method: string,
  body?: Buffer | string,
  contentType = 'application/json',
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(url, {
    method,
    body: body === undefined ? undefined : typeof body === 'string' ? body : new Uint8Array(body),
    headers: body === undefined ? headers : { 'content-type': contentType, ...headers },
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${text.slice(0, 500)}`);
  return { status: res.status, headers: res.headers, text, ms };
}
