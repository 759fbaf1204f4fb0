// Issue 13, case 6 (time): a slow body is no longer held for ever (REQUEST_TIMEOUT_MS for the whole request,
// CONNECTION_TIMEOUT_MS of silence), and SIGTERM no longer waits on a trickling client: requests in flight get
// SHUTDOWN_TIMEOUT_MS, then every connection is closed and the process exits 0.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeWithVad, expectError, expectIntact, startNode, uploadSilero, type Baseline, type HostileNode } from './rig.ts';
import { openRequest, type RawExchange } from './http-raw.ts';

/** Sends one byte of the body every `everyMs` until the connection closes. */
function trickle(ex: RawExchange, everyMs: number): () => void {
  const timer = setInterval(() => {
    if (ex.socket.destroyed) return clearInterval(timer);
    ex.socket.write(' ');
  }, everyMs);
  void ex.answer.then(() => clearInterval(timer));
  return () => clearInterval(timer);
}

describe('a slow body is cut', () => {
  let node: HostileNode;
  let base: Baseline;

  beforeAll(async () => {
    ({ node, base } = await startNodeWithVad({ env: { REQUEST_TIMEOUT_MS: '2000', CONNECTION_TIMEOUT_MS: '500' } }));
  });
  afterAll(async () => {
    await node?.stop();
  });

  it('a client trickling its body never silent for long is answered 408 REQUEST_TIMEOUT and closed', async () => {
    const ex = openRequest(node, {
      path: '/v2/models/vad/infer',
      headers: { 'content-type': 'application/json', 'content-length': 1024 * 1024 },
      waitMs: 30_000,
    });
    const stop = trickle(ex, 100);
    const res = await ex.answer;
    stop();
    ex.socket.destroy();
    expect(res.timedOut, 'the node held the trickling request for 30 s').toBe(false);
    // Node checks request deadlines on an interval; the answer is a 408 unless the socket was already gone.
    if (!res.closed) expectError(res, 408, 'REQUEST_TIMEOUT', node);
    await expectIntact(node, base);
  });

  it('a client that goes silent half-way through its body is closed after CONNECTION_TIMEOUT_MS', async () => {
    const ex = openRequest(node, {
      path: '/v2/models/vad/infer',
      headers: { 'content-type': 'application/json', 'content-length': 1024 * 1024 },
      waitMs: 30_000,
    });
    await ex.send(Buffer.alloc(512 * 1024, 0x20));
    const res = await ex.answer;
    ex.socket.destroy();
    expect(res.timedOut, 'the node held the silent request for 30 s').toBe(false);
    if (!res.closed) expectError(res, 408, 'REQUEST_TIMEOUT', node);
    await expectIntact(node, base);
  });

  it('a client that trickles its headers is cut too', async () => {
    const socket = net.connect(node.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    // A header line every 100 ms, and never the blank line that ends the head.
    const timer = setInterval(() => socket.write('x-slow: 1\r\n'), 100);
    const closed = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 30_000);
      socket.on('close', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    clearInterval(timer);
    socket.destroy();
    expect(closed, 'the node held the trickling head for 30 s').toBe(true);
    await expectIntact(node, base);
  });
});

describe('shutdown has a deadline', () => {
  it('SIGTERM with a trickling client connected exits 0 after SHUTDOWN_TIMEOUT_MS, without being killed', async () => {
    const node = await startNode({ env: { SHUTDOWN_TIMEOUT_MS: '1000' } });
    await uploadSilero(node);
    const ex = openRequest(node, {
      path: '/v2/models/vad/infer',
      headers: { 'content-type': 'application/json', 'content-length': 1024 * 1024 },
      waitMs: 60_000,
    });
    const stopTrickle = trickle(ex, 200);
    await new Promise((r) => setTimeout(r, 500));
    // The rig sends SIGKILL only if the process is still there 11 s after SIGTERM.
    const exit = await node.stop(11_000);
    stopTrickle();
    const res = await ex.answer;
    ex.socket.destroy();
    expect(exit.signal, node.logs().slice(-2000)).toBeNull();
    expect(exit.code, node.logs().slice(-2000)).toBe(0);
    expect(res.timedOut).toBe(false);
    expect(node.logs()).toMatch(/SHUTDOWN_TIMEOUT_MS \(1000 ms\): closing every connection/);
  });
});
