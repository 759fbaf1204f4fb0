// A private redis-server per test file (or REDIS_URL when it is set), which a test can stop and start again.
// With `persistent`, the server keeps an append-only file in a temp dir, so a restart keeps the queue (the
// Redis-restart scenario); otherwise nothing touches the disk.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface TestRedis {
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** True when the server came from REDIS_URL: stop/start are then unavailable. */
  readonly external: boolean;
  /** Stops the server (SIGTERM, which flushes the append-only file) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** Stops it for good and removes its temp dir. */
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.write('PING\r\n');
        s.once('data', (d) => {
          s.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startTestRedis(opts: { persistent?: boolean; useEnv?: boolean; port?: number } = {}): Promise<TestRedis> {
  const envUrl = opts.useEnv === false ? undefined : process.env.REDIS_URL;
  if (envUrl && !opts.persistent) {
    const port = Number(new URL(envUrl).port || 6379);
    const refuse = async () => {
      throw new Error('stop/start need a private redis-server; unset REDIS_URL');
    };
    return { url: envUrl, host: new URL(envUrl).hostname, port, external: true, stop: refuse, start: refuse, close: async () => {} };
  }
  const port = opts.port ?? (await freePort());
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-redis-'));
  let proc: ChildProcess | undefined;
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
  args.push(...(opts.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));

  const start = async () => {
    if (proc) return;
    const p = spawn('redis-server', args, { stdio: 'ignore' });
    proc = p;
    // A test process that dies without its afterAll must not leave the server behind.
    const reap = () => p.kill('SIGKILL');
    process.once('exit', reap);
    p.once('exit', () => {
      process.removeListener('exit', reap);
      if (proc === p) proc = undefined;
    });
    await waitForPort(port, 10_000);
  };
  const stop = async () => {
    const p = proc;
    if (!p) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGTERM');
    await exited;
    proc = undefined;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    external: false,
    stop,
    start,
    close: async () => {
      await stop();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** A queue prefix no other test uses, so tests can share one Redis. */
export function uniquePrefix(label: string): string {
  return `t-${label}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}
