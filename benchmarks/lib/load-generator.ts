// A closed-loop HTTP load generator: N clients, each on its own keep-alive socket, sending its next request
// as soon as the previous answer arrives, for a bounded time. Records every latency; reports inferences/s and
// percentiles. It runs on the same cores as the server under test, so it is built to cost little: requests
// are pre-serialised HTTP/1.1 bytes written to raw sockets, and responses are parsed only as far as the
// status line, Content-Length or chunk sizes (in the spirit of wrk, not of a full HTTP client).
import net from 'node:net';
import { percentileSorted as nearestRank } from './percentiles.ts';

export interface LoadOptions {
  /** Full URL of the endpoint, e.g. http://127.0.0.1:8080/v2/models/vad/infer. */
  url: string;
  /** Request bodies, used round-robin; each is one inference request. */
  bodies: readonly Buffer[];
  headers?: Record<string, string>;
  concurrency: number;
  durationMs: number;
  /** Requests in this leading window are sent but not counted (JIT, pool growth, caches). */
  warmupMs?: number;
  /** Inferences per request (a batched body counts its rows); default 1. */
  itemsPerRequest?: number;
  /** Checks a response body against the index of the body that was sent; false counts as an error. */
  check?: (bodyIndex: number, body: Buffer) => boolean;
  /** Check every n-th response (default 50); the rest only need status 200. */
  checkEvery?: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  /** First few error descriptions, for the report. */
  errorSamples: string[];
  seconds: number;
  requestsPerSec: number;
  inferencesPerSec: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  /** CPU the generator itself used over the whole run, in percent of one core (it shares the machine). */
  clientCpuPct: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

interface Response {
  status: number;
  body: Buffer;
}

/** One keep-alive connection that sends a request and parses one response at a time. */
class Connection {
  #socket: net.Socket;
  #buf: Buffer = Buffer.alloc(0);
  #pending?: { resolve: (r: Response) => void; reject: (e: Error) => void };
  #closed = false;

  constructor(host: string, port: number) {
    this.#socket = net.connect({ host, port, noDelay: true });
    this.#socket.on('data', (chunk: Buffer) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      this.#tryParse();
    });
    const fail = (e: Error) => {
      this.#closed = true;
      const p = this.#pending;
      this.#pending = undefined;
      p?.reject(e);
    };
    this.#socket.on('error', fail);
    this.#socket.on('close', () => fail(new Error('connection closed by server')));
  }

  get closed(): boolean {
    return this.#closed;
  }

  request(bytes: Buffer): Promise<Response> {
    if (this.#closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#socket.write(bytes);
    });
  }

  close(): void {
    this.#closed = true;
    this.#socket.destroy();
  }

  #tryParse(): void {
    if (!this.#pending) return;
    const buf = this.#buf;
    const headEnd = buf.indexOf(CRLFCRLF);
    if (headEnd < 0) return;
    const head = buf.toString('latin1', 0, headEnd);
    const status = Number(head.slice(9, 12));
    const lower = head.toLowerCase();
    const bodyStart = headEnd + 4;
    let body: Buffer;
    let consumed: number;
    const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
    if (cl) {
      const len = Number(cl[1]);
      if (buf.length < bodyStart + len) return;
      body = buf.subarray(bodyStart, bodyStart + len);
      consumed = bodyStart + len;
    } else if (/\r\ntransfer-encoding:\s*chunked/.test(lower)) {
      const parts: Buffer[] = [];
      let at = bodyStart;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', at);
        if (lineEnd < 0) return;
        const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
        if (buf.length < lineEnd + 2 + size + 2) return;
        if (size === 0) {
          consumed = lineEnd + 4;
          break;
        }
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      body = Buffer.alloc(0);
      consumed = bodyStart;
    }
    this.#buf = buf.length === consumed ? Buffer.alloc(0) : buf.subarray(consumed);
    const p = this.#pending;
    this.#pending = undefined;
    p.resolve({ status, body });
  }
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const url = new URL(opts.url);
  const host = url.hostname;
  const port = Number(url.port || 80);
  const extra = Object.entries({ 'content-type': 'application/json', ...opts.headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const requests = opts.bodies.map((b) =>
    Buffer.concat([
      Buffer.from(
        `POST ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: keep-alive\r\n${extra}content-length: ${b.length}\r\n\r\n`,
        'latin1',
      ),
      b,
    ]),
  );
  const checkEvery = opts.checkEvery ?? 50;
  const warmupMs = opts.warmupMs ?? 0;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const countFrom = start + warmupMs;
  const end = countFrom + opts.durationMs;
  const latencies: number[] = [];
  let errors = 0;
  const errorSamples: string[] = [];
  let seq = 0;
  const fail = (msg: string) => {
    errors++;
    if (errorSamples.length < 5) errorSamples.push(msg);
  };
  const connections: Connection[] = [];

  async function client(): Promise<void> {
    let conn = new Connection(host, port);
    connections.push(conn);
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      const n = seq++;
      const index = n % requests.length;
      try {
        if (conn.closed) {
          conn = new Connection(host, port);
          connections.push(conn);
        }
        const res = await conn.request(requests[index]);
        const t1 = performance.now();
        if (t0 < countFrom) continue;
        if (res.status !== 200) fail(`HTTP ${res.status}: ${res.body.toString('utf8', 0, Math.min(300, res.body.length))}`);
        else if (opts.check && n % checkEvery === 0 && !opts.check(index, res.body))
          fail(`check failed: ${res.body.toString('utf8', 0, 300)}`);
        else latencies.push(t1 - t0);
      } catch (e) {
        if (t0 >= countFrom) fail(String((e as Error).message ?? e));
        if (errors > 1000) return;
      }
    }
  }

  await Promise.all(Array.from({ length: opts.concurrency }, () => client()));
  const seconds = (Math.max(performance.now(), end) - countFrom) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const clientCpuPct = ((cpu.user + cpu.system) / 1000 / (performance.now() - start)) * 100;
  for (const c of connections) c.close();
  const sorted = Float64Array.from(latencies).sort();
  const ok = sorted.length;
  return {
    requests: ok,
    errors,
    errorSamples,
    seconds,
    requestsPerSec: ok / seconds,
    inferencesPerSec: (ok * (opts.itemsPerRequest ?? 1)) / seconds,
    meanMs: ok ? latencies.reduce((a, b) => a + b, 0) / ok : NaN,
    p50Ms: nearestRank(sorted, 50),
    p90Ms: nearestRank(sorted, 90),
    p95Ms: nearestRank(sorted, 95),
    p99Ms: nearestRank(sorted, 99),
    maxMs: ok ? sorted[ok - 1] : NaN,
    clientCpuPct,
  };
}

export function formatLoad(label: string, r: LoadResult): string {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '-');
  return `${label.padEnd(30)} ${r.inferencesPerSec.toFixed(0).padStart(7)} inf/s  p50 ${f(r.p50Ms)}  p90 ${f(r.p90Ms)}  p95 ${f(r.p95Ms)}  p99 ${f(r.p99Ms)} ms  (${r.requests} ok, ${r.errors} errors, client CPU ${r.clientCpuPct.toFixed(0)}%)`;
}
