// S3ObjectStore's timeout is time without progress (STORE_TIMEOUT_MS): a silent endpoint fails the call with
// STORE_UNAVAILABLE, a transfer that keeps moving is never cut however long it takes, and one that stalls
// half-way errors instead of hanging. Fake S3 endpoints on loopback (plain HTTP servers), and s3rver.
import http from 'node:http';
import type net from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { S3ObjectStore } from '../../model-store/index.ts';
import { startS3rver } from '../helpers/s3rver.ts';

const TIMEOUT_MS = 300;
const servers: http.Server[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function fakeS3(handler: http.RequestListener, timeoutMs = TIMEOUT_MS): Promise<S3ObjectStore> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return new S3ObjectStore({
    endpoint: `http://127.0.0.1:${port}`,
    accessKey: 'k',
    secretKey: 's',
    bucket: 'b-x',
    region: 'us-east-1',
    timeoutMs,
  });
}

it('an endpoint that never answers fails every kind of call with STORE_UNAVAILABLE naming STORE_TIMEOUT_MS', async () => {
  const store = await fakeS3(() => {}); // reads the request, never answers
  for (const call of [
    () => store.stat('a/b'),
    () => store.get('a/b'),
    () => store.list('a/'),
    () => store.put('a/b', Buffer.from('x')),
    () => store.delete('a/b'),
    () => store.init(),
  ]) {
    const err = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringMatching(/STORE_TIMEOUT_MS/) });
  }
  await store.close();
});

it('a download that keeps moving is not cut, though it takes many times the timeout', async () => {
  // A chunk every 100 ms against a 1 s timeout: a busy machine's late timers cannot pass for a stall.
  const timeoutMs = 1000;
  const chunks = 30;
  const store = await fakeS3((req, res) => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(chunks * 1000),
      etag: '"e"',
      'last-modified': new Date().toUTCString(),
    });
    let sent = 0;
    const timer = setInterval(() => {
      res.write(Buffer.alloc(1000, 7));
      if (++sent === chunks) {
        clearInterval(timer);
        res.end();
      }
    }, 100);
    req.on('close', () => clearInterval(timer));
  }, timeoutMs);
  const t0 = Date.now();
  const stream = await store.get('a/b');
  let bytes = 0;
  for await (const c of stream) bytes += (c as Buffer).length;
  expect(bytes).toBe(chunks * 1000);
  // The premise: the whole transfer took far longer than the timeout.
  expect(Date.now() - t0).toBeGreaterThan(2 * timeoutMs);
  await store.close();
});

it('a streaming put whose body arrives slowly is not cut, though it takes many times the timeout', async () => {
  // As an upload streams from a slow client: parts go up as they fill, each its own exchange with the store.
  // s3rver runs in this process and answers a part only once it has stored it: a longer timeout here, so a busy
  // machine cannot make s3rver itself look hung.
  const timeoutMs = 2000;
  const s3 = await startS3rver();
  const store = new S3ObjectStore({ ...s3, bucket: 'slow-put', partSizeBytes: 5 * 1024 * 1024, timeoutMs });
  try {
    await store.init();
    const chunk = Buffer.alloc(256 * 1024, 3);
    const total = 48; // 12 MiB, a chunk every 125 ms: about 6 s
    const body = Readable.from(
      (async function* () {
        for (let i = 0; i < total; i++) {
          await new Promise((r) => setTimeout(r, 125));
          yield chunk;
        }
      })(),
    );
    const t0 = Date.now();
    expect(await store.put('a/b', body)).toEqual({ sizeBytes: total * chunk.length });
    expect(Date.now() - t0).toBeGreaterThan(2 * timeoutMs);
    expect((await store.stat('a/b'))?.sizeBytes).toBe(total * chunk.length);
  } finally {
    await store.close();
    await s3.close();
  }
});

it('a download that stalls half-way errors with STORE_UNAVAILABLE instead of hanging', async () => {
  const store = await fakeS3((_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': '10000',
      etag: '"e"',
      'last-modified': new Date().toUTCString(),
    });
    res.write(Buffer.alloc(1000)); // then nothing more
  });
  const stream = await store.get('a/b');
  const err = await (async () => {
    for await (const _ of stream) {
      // drain
    }
  })().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringMatching(/STORE_TIMEOUT_MS/) });
  await store.close();
});
