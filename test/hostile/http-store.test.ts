// Issue 13, case 7 (a store that hangs): every S3 call is bounded by STORE_TIMEOUT_MS of no progress and fails
// with 503 STORE_UNAVAILABLE, instead of holding the request for ever. The S3 endpoint is a loopback proxy in
// front of s3rver that can switch to accepting connections and never answering (the node needs a working store
// to start: it creates its bucket).
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.ts';
import { sileroBytes } from '../helpers/model-bodies.ts';
import { baseline, expectError, expectIntact, request, startNode, uploadSilero, type Baseline, type HostileNode } from './rig.ts';

interface HangingProxy {
  endpoint: string;
  /** From now on, bytes from Hearth are swallowed: nothing reaches S3, nothing comes back. */
  hang(): void;
  pass(): void;
  close(): Promise<void>;
}

async function startProxy(upstreamPort: number): Promise<HangingProxy> {
  let hanging = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => {});
    client.on('close', () => sockets.delete(client));
    // A hung store: the connection is accepted and then nothing, not even a close.
    if (hanging) return;
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(upstream);
    client.on('data', (d) => {
      if (!hanging) upstream.write(d);
    });
    upstream.on('data', (d) => client.write(d));
    upstream.on('error', () => {});
    upstream.on('close', () => {
      sockets.delete(upstream);
      if (!hanging) client.destroy();
    });
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    hang: () => (hanging = true),
    pass: () => (hanging = false),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

let s3: S3rverHandle;
let proxy: HangingProxy;
let node: HostileNode;
let base: Baseline;

beforeAll(async () => {
  s3 = await startS3rver();
  proxy = await startProxy(Number(new URL(s3.endpoint).port));
  node = await startNode({
    env: {
      S3_ENDPOINT: proxy.endpoint,
      S3_ACCESS_KEY: s3.accessKey,
      S3_SECRET_KEY: s3.secretKey,
      S3_REGION: s3.region,
      S3_BUCKET: 'hearth-hostile',
      // Long enough that s3rver, in this busy test process, never looks hung while it works.
      STORE_TIMEOUT_MS: '2500',
    },
  });
  await uploadSilero(node);
  base = await baseline(node);
});

afterAll(async () => {
  await node?.stop();
  await proxy?.close();
  await s3?.close();
});

it('a store that accepts connections and never answers: 503 STORE_UNAVAILABLE instead of a request held for ever', async () => {
  proxy.hang();
  try {
    // The upload stops at its first store call (reserving a version).
    const upload = await request(node, {
      method: 'POST',
      path: '/v1/models/second',
      headers: { 'content-type': 'application/octet-stream' },
      body: sileroBytes(),
      timeoutMs: 20_000,
    });
    expectError(upload, 503, 'STORE_UNAVAILABLE', node);
    expect(upload.json!.error).toMatch(/STORE_TIMEOUT_MS/);
    for (const p of ['/v1/models', '/v1/models/vad', '/v2/models/vad']) {
      const res = await request(node, { path: p, timeoutMs: 20_000 });
      expectError(res, 503, 'STORE_UNAVAILABLE', node);
    }
    // Readiness answers "not ready" the protocol's way (a 4xx, empty body), with the reason in a header.
    const ready = await request(node, { path: '/v2/health/ready', timeoutMs: 20_000 });
    expect(ready.status).toBe(400);
    expect(ready.headers['hearth-not-ready']).toMatch(/unreachable/);
    expect((await request(node, { path: '/v2/health/live', timeoutMs: 5000 })).status).toBe(200);
  } finally {
    proxy.pass();
  }
  // Once the store answers again, so does the node; nothing of the refused upload is left.
  expect((await request(node, { path: '/v2/health/ready', timeoutMs: 20_000 })).status).toBe(200);
  const models = await request(node, { path: '/v1/models', timeoutMs: 20_000 });
  expect(models.status).toBe(200);
  expect((models.json!.models as { name: string }[]).map((m) => m.name)).toEqual(['vad']);
  await expectIntact(node, base);
});
