// Lab, kept for the record: the upload memory figures (docs/api/models.md, docs/performance/decisions.md, 2026-11-26).
// Peak memory of a Hearth node while a large body streams through an upload, on the fs store and on s3 (s3rver).
// The node runs as its own process (npm start's entry); this script samples its RSS from /proc while it sends
// a generated body of UPLOAD_MB megabytes (default 400). The bytes are not a model, so inspection refuses them,
// but only after they have streamed whole through the store: the figure that matters is RSS while streaming.
// Run: npx tsx benchmarks/lab/upload-memory.ts   (Linux only: reads /proc/<pid>/status)
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { startS3rver } from '../../test/helpers/s3rver.ts';

const UPLOAD_MB = Number(process.env.UPLOAD_MB ?? 400);

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function rssMb(pid: number): Promise<{ rss: number; hwm: number }> {
  const s = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

async function startNode(env: Record<string, string>): Promise<{ child: ChildProcess; port: number; pid: number }> {
  const port = await freePort();
  // Run tsx's loader directly in node, so the pid sampled is the server's own.
  const child = spawn(process.execPath, ['--import', 'tsx', 'main.ts'], {
    env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'warn', REDIS_URL: 'redis://127.0.0.1:1', EXECUTOR_PREWARM_WORKERS: '0' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/v2/health/live`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { child, port, pid: child.pid! };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error('the Hearth node did not start');
}

function body(totalBytes: number): Readable {
  // One random MiB repeated with a counter: cheap to make, and no compression or dedup could shrink it.
  const block = randomBytes(1024 * 1024);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= totalBytes) return void this.push(null);
      const n = Math.min(block.length, totalBytes - sent);
      const chunk = Buffer.from(block.subarray(0, n));
      chunk.writeUInt32LE(sent / block.length, 0);
      sent += n;
      this.push(chunk);
    },
  });
}

async function measure(label: string, env: Record<string, string>): Promise<void> {
  const node = await startNode(env);
  try {
    const idle = await rssMb(node.pid);
    let streamingPeak = 0;
    let overallPeak = 0;
    let phase: 'streaming' | 'inspecting' = 'streaming';
    const sampler = setInterval(() => {
      rssMb(node.pid).then(
        ({ rss }) => {
          overallPeak = Math.max(overallPeak, rss);
          if (phase === 'streaming') streamingPeak = Math.max(streamingPeak, rss);
        },
        () => {},
      );
    }, 20);
    const total = UPLOAD_MB * 1024 * 1024;
    const t0 = performance.now();
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`http://127.0.0.1:${node.port}/v1/models/big`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(total) },
      });
      req.on('response', (r) => {
        let b = '';
        r.on('data', (c) => (b += c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body: b }));
      });
      req.on('error', reject);
      const src = body(total);
      src.pipe(req);
      // The server has every byte once the request finished sending and the store has it: from here on it inspects.
      req.on('finish', () => (phase = 'inspecting'));
    });
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    const end = await rssMb(node.pid);
    console.log(
      `${label}: ${UPLOAD_MB} MB in ${seconds.toFixed(1)} s (${(UPLOAD_MB / seconds).toFixed(0)} MB/s) -> ${res.status} ${JSON.parse(res.body).code ?? ''}; ` +
        `RSS idle ${idle.rss.toFixed(0)} MB, peak while streaming ${streamingPeak.toFixed(0)} MB (+${(streamingPeak - idle.rss).toFixed(0)} MB), ` +
        `peak incl. inspection ${Math.max(overallPeak, end.hwm).toFixed(0)} MB (VmHWM)`,
    );
  } finally {
    node.child.kill('SIGTERM');
    await new Promise((r) => node.child.once('exit', r));
  }
}

const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-upload-mem-'));
const limit = String(4 * 1024 ** 3);
try {
  await measure('fs store', { DATA_DIR: path.join(dataDir, 'fs'), MAX_MODEL_BYTES: limit });
  const s3 = await startS3rver();
  try {
    await measure('s3 store (s3rver, 16 MiB parts)', {
      DATA_DIR: path.join(dataDir, 's3'),
      MAX_MODEL_BYTES: limit,
      S3_ENDPOINT: s3.endpoint,
      S3_ACCESS_KEY: s3.accessKey,
      S3_SECRET_KEY: s3.secretKey,
    });
  } finally {
    await s3.close();
  }
} finally {
  await fs.rm(dataDir, { recursive: true, force: true });
}
