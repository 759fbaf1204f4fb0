// The hostile-input rig: a real Hearth process (main.ts, as `npm start` runs it) on a loopback port, with its own
// data folder, so an input that would kill the node kills a child, not the test. Each case checks the node after
// the hostile request: alive, RSS back within a bound, an earlier model still giving the same answer, and the
// store holding nothing new.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { sileroBytes } from '../helpers/model-bodies.ts';

export interface HostileNode {
  /** http://127.0.0.1:<port>, or https:// when the node serves TLS (TLS_CERT_FILE and TLS_KEY_FILE) */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly dataDir: string;
  /** `Bearer <HEARTH_ADMIN_KEY>` when the node runs with AUTH=on: request() sends it unless told otherwise. */
  readonly authorization?: string;
  /** Everything the process wrote to stdout and stderr so far. */
  logs(): string;
  /** Resident memory of the process, in MB (from /proc). */
  rssMb(): number;
  /** Threads of the process (from /proc; worker threads and native pools included); 0 once it has exited. */
  threads(): number;
  /** True while the process has not exited. */
  running(): boolean;
  /** SIGTERM, then the exit (SIGKILL after `killAfterMs`). */
  stop(killAfterMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

export interface StartOptions {
  /** Extra environment; the rig sets DATA_DIR, PORT, HOST, REDIS_URL (unreachable) and LOG_LEVEL. */
  env?: Record<string, string>;
  /** Reuse a data folder (a restart). */
  dataDir?: string;
}

/** The command that runs Hearth the way `npm start` does. */
export function hearthCommand(): { cmd: string; args: string[] } {
  return { cmd: process.execPath, args: ['dist/main.js'] };
}

const ROOT = path.resolve(import.meta.dirname, '../..');

export async function startNode(opts: StartOptions = {}): Promise<HostileNode> {
  const dataDir = opts.dataDir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'hearth-hostile-')));
  const { cmd, args } = hearthCommand();
  const child: ChildProcess = spawn(cmd, args, {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? os.tmpdir(),
      DATA_DIR: dataDir,
      PORT: '0',
      HOST: '127.0.0.1',
      // A port nothing listens on: the job API answers 503 unless a test gives a Redis of its own.
      REDIS_URL: 'redis://127.0.0.1:1',
      EXECUTOR_PREWARM_WORKERS: '1',
      LOG_LEVEL: 'info',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  // A test process that dies without its afterAll must not leave the node behind.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      process.removeListener('exit', reap);
      resolve(exited);
    }),
  );
  let scheme = 'http';
  const port = await new Promise<number>((resolve, reject) => {
    // A node that never listens is killed, so a failed start leaves no process behind.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`Hearth did not start within 30 s:\n${out}`));
    }, 30_000);
    const look = () => {
      const m = /Server listening at (https?):\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        scheme = m[1];
        resolve(Number(m[2]));
      }
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    void exit.then(() => {
      clearTimeout(timer);
      reject(new Error(`Hearth exited before it listened:\n${out}`));
    });
  });
  const adminKey = opts.env?.AUTH === 'on' ? opts.env.HEARTH_ADMIN_KEY : undefined;
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    dataDir,
    ...(adminKey ? { authorization: `Bearer ${adminKey}` } : {}),
    logs: () => out,
    rssMb: () => {
      const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
    },
    threads: () => {
      try {
        return Number(/Threads:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]);
      } catch {
        return 0;
      }
    },
    running: () => exited === undefined,
    async stop(killAfterMs = 20_000) {
      const t0 = Date.now();
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        await exit;
        clearTimeout(timer);
      }
      if (!opts.dataDir) await fsp.rm(dataDir, { recursive: true, force: true });
      return { ...(await exit), ms: Date.now() - t0 };
    },
  };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body as JSON, or undefined when it is not JSON. */
  json: Record<string, unknown> | undefined;
}

/**
 * One HTTP request over a fresh connection. `body` may be a Buffer or a function that writes to the request as
 * it likes (a trickle, a cut-off body); `timeoutMs` bounds the whole exchange.
 */
export function request(
  node: Pick<HostileNode, 'port' | 'authorization'>,
  opts: {
    method?: string;
    path: string;
    headers?: Record<string, string | number>;
    body?: Buffer | string | ((req: http.ClientRequest) => void);
    timeoutMs?: number;
  },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers = { ...opts.headers };
    if (node.authorization && !Object.keys(headers).some((h) => h.toLowerCase() === 'authorization'))
      headers.authorization = node.authorization;
    const req = http.request(
      { host: '127.0.0.1', port: node.port, method: opts.method ?? 'GET', path: opts.path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          const body = Buffer.concat(chunks);
          let json: Record<string, unknown> | undefined;
          try {
            json = JSON.parse(body.toString('utf8'));
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
        });
        res.on('error', reject);
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`no answer to ${opts.method ?? 'GET'} ${opts.path} within ${opts.timeoutMs ?? 30_000} ms`)),
      opts.timeoutMs ?? 30_000,
    );
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (typeof opts.body === 'function') opts.body(req);
    else req.end(opts.body);
  });
}

/** One fixed silero VAD request body (V2 JSON): a 512-sample wave, sr 16000, zero state. */
export function sileroRequestBody(): string {
  const wave = Array.from({ length: 512 }, (_, i) => Math.round(Math.sin(i / 9) * 1e4) / 1e5);
  return JSON.stringify({
    inputs: [
      { name: 'input', datatype: 'FP32', shape: [1, 512], data: wave },
      { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
      { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: new Array(128).fill(0) },
      { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: new Array(128).fill(0) },
    ],
    outputs: [{ name: 'output' }],
  });
}

/** Uploads silero VAD as `name` (raw ONNX) and answers its manifest. */
export async function uploadSilero(node: HostileNode, name = 'vad'): Promise<Record<string, unknown>> {
  const res = await request(node, {
    method: 'POST',
    path: `/v1/models/${name}`,
    headers: { 'content-type': 'application/octet-stream' },
    body: sileroBytes(),
  });
  expect(res.status, res.body.toString()).toBe(201);
  return res.json!;
}

/** The `output` of the fixed silero request on model `name`. */
export async function sileroAnswer(node: HostileNode, name = 'vad'): Promise<unknown> {
  const res = await request(node, {
    method: 'POST',
    path: `/v2/models/${name}/infer`,
    headers: { 'content-type': 'application/json' },
    body: sileroRequestBody(),
  });
  expect(res.status, res.body.toString()).toBe(200);
  return (res.json!.outputs as { name: string; data: unknown }[]).find((o) => o.name === 'output')!.data;
}

/** Every file in the node's fs store (keys), without the store's in-flight temp folder. */
export function storeKeys(node: HostileNode): string[] {
  const root = path.join(node.dataDir, 'store');
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!rel && ent.name === '.hearth-tmp') continue;
      const key = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) walk(path.join(dir, ent.name), key);
      else out.push(key);
    }
  };
  if (fs.existsSync(root)) walk(root, '');
  return out.sort();
}

/** What a case compares the node against after its hostile request. */
export interface Baseline {
  rssMb: number;
  answer: unknown;
  /** Store keys under models/ (other components, the ledger's snapshot, write elsewhere). */
  modelKeys: string[];
}

export async function baseline(node: HostileNode, name = 'vad'): Promise<Baseline> {
  const answer = await sileroAnswer(node, name);
  return { rssMb: node.rssMb(), answer, modelKeys: modelKeys(node) };
}

function modelKeys(node: HostileNode): string[] {
  return storeKeys(node).filter((k) => k.startsWith('models/'));
}

/**
 * The node survived: /v2/health/live answers 200, RSS comes back to within `rssSlackMb` of the baseline (given
 * time for the garbage collector), the earlier model gives the same answer, and the model store holds exactly
 * what it held before (plus `expectKeys`).
 */
export async function expectIntact(
  node: HostileNode,
  base: Baseline,
  opts: { rssSlackMb?: number; name?: string; expectKeys?: string[] } = {},
): Promise<void> {
  expect(node.running(), `the node exited:\n${node.logs().slice(-3000)}`).toBe(true);
  const live = await request(node, { path: '/v2/health/live', timeoutMs: 10_000 });
  expect(live.status).toBe(200);
  expect(await sileroAnswer(node, opts.name ?? 'vad')).toEqual(base.answer);
  const slack = opts.rssSlackMb ?? 200;
  const end = Date.now() + 15_000;
  let rss = node.rssMb();
  while (rss > base.rssMb + slack && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 250));
    rss = node.rssMb();
  }
  expect(rss, `RSS ${rss.toFixed(0)} MB against a baseline of ${base.rssMb.toFixed(0)} MB`).toBeLessThanOrEqual(base.rssMb + slack);
  // Cleanup of a refused upload may finish just after its answer.
  const want = [...base.modelKeys, ...(opts.expectKeys ?? [])].sort();
  const keysEnd = Date.now() + 5_000;
  let keys = modelKeys(node);
  while (JSON.stringify(keys) !== JSON.stringify(want) && Date.now() < keysEnd) {
    await new Promise((r) => setTimeout(r, 50));
    keys = modelKeys(node);
  }
  expect(keys).toEqual(want);
}

/**
 * Nothing of a refused upload is left outside the model keys (which expectIntact compares): the fs store's
 * in-flight temp folder and the upload staging folder are empty (cleanup may finish just after the answer).
 */
export async function expectNoUploadLeftovers(node: HostileNode): Promise<void> {
  const list = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);
  const temp = path.join(node.dataDir, 'store', '.hearth-tmp');
  const staging = path.join(node.dataDir, 'cache', 'staging');
  const end = Date.now() + 5_000;
  while ((list(temp).length || list(staging).length) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  expect({ temp: list(temp), staging: list(staging) }).toEqual({ temp: [], staging: [] });
}

/** An error body in Hearth's shape with `code`, whose message names no absolute server path. */
export function expectError(res: RawResponse, status: number, code: string, node?: HostileNode): void {
  expect(res.status, res.body.toString().slice(0, 500)).toBe(status);
  expect(res.json, res.body.toString().slice(0, 500)).toMatchObject({ code });
  expect(typeof res.json!.error).toBe('string');
  if (node) {
    expect(res.body.toString()).not.toContain(node.dataDir);
    expect(res.body.toString()).not.toContain(ROOT);
  }
}

/** A node with silero uploaded as `vad`, and the baseline its cases compare against. */
export async function startNodeWithVad(opts: StartOptions = {}): Promise<{ node: HostileNode; base: Baseline }> {
  const node = await startNode(opts);
  await uploadSilero(node);
  return { node, base: await baseline(node) };
}
