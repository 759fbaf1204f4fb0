// Issue 13, case 6 (bodies): every buffered route has a body limit (MAX_REQUEST_BYTES, counted after
// decompression), a Content-Length over it is refused before a byte is read, and the bytes of bodies a node holds
// at once are capped (MAX_BODY_BYTES_IN_FLIGHT: 503 OVERLOADED with Retry-After past it), released however the
// request ends.
import { once } from 'node:events';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startNodeWithVad, expectError, expectIntact, request, type Baseline, type HostileNode } from './rig.ts';
import { filler, openRequest, type RawAnswer, type RawExchange } from './http-raw.ts';

const MiB = 1024 * 1024;

/** A gzip or deflate stream of `inflatedBytes` zeros, made a MiB at a time (about 1 KB of output per MiB). */
async function zeroBomb(kind: 'gzip' | 'deflate', inflatedBytes: number): Promise<Buffer> {
  const z = kind === 'gzip' ? zlib.createGzip({ level: 9 }) : zlib.createDeflate({ level: 9 });
  const out: Buffer[] = [];
  z.on('data', (c: Buffer) => out.push(c));
  const zeros = Buffer.alloc(MiB);
  for (let i = 0; i < inflatedBytes / MiB; i++) if (!z.write(zeros)) await once(z, 'drain');
  z.end();
  await once(z, 'end');
  return Buffer.concat(out);
}

describe('the body limit (MAX_REQUEST_BYTES, default 16 MiB)', () => {
  let node: HostileNode;
  let base: Baseline;

  beforeAll(async () => {
    ({ node, base } = await startNodeWithVad());
  });
  afterAll(async () => {
    await node?.stop();
  });

  it('a Content-Length over the limit is refused before the body is read, on every buffered route', async () => {
    const routes: [string, string][] = [
      ['POST', '/v2/models/vad/infer'],
      ['POST', '/v2/repository/index'],
      ['POST', '/v2/repository/models/vad/load'],
      ['PUT', '/v1/models/vad/config'],
      ['POST', '/v1/jobs'],
    ];
    for (const [method, path] of routes) {
      // Not one byte of the body is sent: the answer can only come from the declared length.
      const ex = openRequest(node, {
        method,
        path,
        headers: { 'content-type': 'application/json', 'content-length': 16 * MiB + 1 },
        waitMs: 10_000,
      });
      const res = await ex.answer;
      ex.socket.destroy();
      expectError(res, 413, 'PAYLOAD_TOO_LARGE', node);
      expect(res.json!.error, `${method} ${path}`).toMatch(/MAX_REQUEST_BYTES \(16777216 bytes\)/);
    }
    await expectIntact(node, base);
  });

  it('a chunked body (no Content-Length) is cut at the first byte past the limit', async () => {
    const ex = openRequest(node, {
      path: '/v2/models/vad/infer',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      waitMs: 20_000,
    });
    // 20 MiB offered in 1 MiB chunks; the answer comes while the client is still sending.
    for (let i = 0; i < 20; i++) {
      await ex.send(Buffer.concat([Buffer.from(`${MiB.toString(16)}\r\n`), filler(MiB), Buffer.from('\r\n')]));
      if (ex.socket.destroyed) break;
    }
    const res = await ex.answer;
    ex.socket.destroy();
    expectError(res, 413, 'PAYLOAD_TOO_LARGE', node);
    await expectIntact(node, base);
  });

  it('a gzip bomb on infer is stopped at MAX_REQUEST_BYTES of inflated bytes: 413, not a 64 MB inflate', async () => {
    for (const kind of ['gzip', 'deflate'] as const) {
      const body = await zeroBomb(kind, 128 * MiB);
      expect(body.length).toBeLessThan(MiB);
      const res = await request(node, {
        method: 'POST',
        path: '/v2/models/vad/infer',
        headers: { 'content-type': 'application/json', 'content-encoding': kind },
        body,
        timeoutMs: 20_000,
      });
      expectError(res, 413, 'PAYLOAD_TOO_LARGE', node);
      expect(res.json!.error).toMatch(/decompressed.*MAX_REQUEST_BYTES \(16777216 bytes\)/);
    }
    await expectIntact(node, base);
  });

  it('a compressed body within the limit still infers', async () => {
    const plain = await request(node, {
      method: 'POST',
      path: '/v2/models/vad/infer',
      headers: { 'content-type': 'application/json' },
      body: sileroJson(),
    });
    const gz = await request(node, {
      method: 'POST',
      path: '/v2/models/vad/infer',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: zlib.gzipSync(sileroJson()),
    });
    expect(gz.status, gz.body.toString()).toBe(200);
    expect(gz.json!.outputs).toEqual(plain.json!.outputs);
  });
});

describe('bodies in flight (MAX_BODY_BYTES_IN_FLIGHT)', () => {
  const BUDGET = 32 * MiB;
  let node: HostileNode;
  let base: Baseline;

  beforeAll(async () => {
    ({ node, base } = await startNodeWithVad({ env: { MAX_BODY_BYTES_IN_FLIGHT: String(BUDGET) } }));
  });
  afterAll(async () => {
    await node?.stop();
  });

  it('many unfinished large bodies at once: past the budget they get 503 OVERLOADED, and memory stays bounded', async () => {
    const N = 24;
    const SENT = 8 * MiB;
    const exchanges: RawExchange[] = [];
    for (let i = 0; i < N; i++) {
      exchanges.push(
        openRequest(node, {
          path: '/v2/models/vad/infer',
          headers: { 'content-type': 'application/json', 'content-length': 12 * MiB },
          waitMs: 60_000,
        }),
      );
    }
    // Closed whatever happens below, so a failure here cannot hold the budget for the next case.
    onTestFinished(() => {
      for (const ex of exchanges) ex.socket.destroy();
    });
    const answers: RawAnswer[] = [];
    for (const ex of exchanges) void ex.answer.then((a) => answers.push(a));
    // Each sends 8 of its 12 MiB and then goes quiet.
    await Promise.all(exchanges.map((ex) => ex.send(filler(SENT))));
    // The refusals come at once; a generous bound only so that a busy machine cannot fail the case.
    const deadline = Date.now() + 20_000;
    while ((N - answers.length) * SENT > BUDGET && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const refused = [...answers];
    const held = N - refused.length;
    const rssGrowth = node.rssMb() - base.rssMb;

    expect(refused.length).toBeGreaterThan(0);
    for (const res of refused) {
      expectError(res, 503, 'OVERLOADED', node);
      expect(res.headers['retry-after']).toMatch(/^\d+$/);
      expect(res.json!.error).toMatch(/MAX_BODY_BYTES_IN_FLIGHT/);
    }
    // The ones still open hold at most the budget between them.
    expect(held * SENT).toBeLessThanOrEqual(BUDGET);
    // Without the cap the node held all 24 x 8 MiB (192 MiB) here. With it: the 32 MiB budget, plus the refused
    // bodies' bytes read and dropped but not yet collected (more of them on Node 24, whose young generation is larger).
    expect(rssGrowth, `RSS grew ${rssGrowth.toFixed(0)} MB`).toBeLessThan(160);

    for (const ex of exchanges) ex.socket.destroy();
    await expectIntact(node, base);
  });

  it('the bytes are given back when a request is answered or its client goes away', async () => {
    // Whatever the clients above left behind is released once their sockets close: a body of half the budget
    // is read again (400: spaces are not JSON), and so are the next ones, 48 MiB in all (answered ones release).
    const deadline = Date.now() + 10_000;
    let first = await junkInfer(node, 16 * MiB);
    while (first.status === 503 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      first = await junkInfer(node, 16 * MiB);
    }
    expectError(first, 400, 'INVALID_REQUEST', node);
    for (let i = 0; i < 4; i++) expectError(await junkInfer(node, 12 * MiB), 400, 'INVALID_REQUEST', node);

    // Clients that give up half-way release too.
    for (let i = 0; i < 6; i++) {
      const ex = openRequest(node, {
        path: '/v2/models/vad/infer',
        headers: { 'content-type': 'application/json', 'content-length': 12 * MiB },
      });
      await ex.send(filler(10 * MiB));
      ex.socket.destroy();
    }
    const again = Date.now() + 10_000;
    let after = await junkInfer(node, 12 * MiB);
    while (after.status === 503 && Date.now() < again) {
      await new Promise((r) => setTimeout(r, 200));
      after = await junkInfer(node, 12 * MiB);
    }
    expectError(after, 400, 'INVALID_REQUEST', node);
    await expectIntact(node, base);
  });
});

/** A body of `n` spaces under MAX_REQUEST_BYTES: read whole, then refused as JSON (or refused early, 503). */
async function junkInfer(node: HostileNode, n: number) {
  const ex = openRequest(node, {
    path: '/v2/models/vad/infer',
    headers: { 'content-type': 'application/json', 'content-length': n },
    waitMs: 20_000,
  });
  await ex.send(filler(n));
  const res = await ex.answer;
  ex.socket.destroy();
  return res;
}

function sileroJson(): string {
  const wave = Array.from({ length: 512 }, (_, i) => Math.round(Math.sin(i / 7) * 1e4) / 1e5);
  return JSON.stringify({
    inputs: [
      { name: 'input', datatype: 'FP32', shape: [1, 512], data: wave },
      { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
      { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: new Array(128).fill(0) },
      { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: new Array(128).fill(0) },
    ],
  });
}
