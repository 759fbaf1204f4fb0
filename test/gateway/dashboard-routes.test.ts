// The dashboard's server side: static files (content types, caching, no way out of the folder), the event stream
// over real HTTP on loopback (history and status at once, a cold start seen after an inference, heartbeats, the
// per-node bound, no stream left behind by a client that goes or by a shutdown), the keep-alive and recent-requests
// routes, and their auth rules.
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, systemClock, type RequestDoneEvent } from '../../core/index.ts';
import { EventsHub, type JobsAccess } from '../../gateway/events.ts';
import { buildApp } from '../../gateway/app.ts';
import { onnxFixtureDir } from '../fixtures/golden.ts';
import { startTestHearth, TEST_ADMIN_KEY, type TestHearth } from '../helpers/app.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('static files of the dashboard', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-ui-'));
    await fs.writeFile(path.join(dir, 'index.html'), '<!doctype html><title>Hearth</title>');
    await fs.writeFile(path.join(dir, 'main-ABCD1234.js'), 'console.log(1)');
    await fs.writeFile(path.join(dir, 'main-ABCD1234.css'), 'body{}');
    await fs.writeFile(path.join(dir, 'notes.txt'), 'not served: no known type');
    await fs.mkdir(path.join(dir, 'sub'));
    await fs.writeFile(path.join(dir, 'sub', 'x.js'), 'nested: not served');
    // A secret next to the folder, which no request may reach.
    await fs.writeFile(path.join(path.dirname(dir), `${path.basename(dir)}-secret.js`), 'TOPSECRET');
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rm(path.join(path.dirname(dir), `${path.basename(dir)}-secret.js`), { force: true });
  });

  it('serves index.html at / (no-cache) and hashed assets under /ui/ (immutable), with their types', async () => {
    const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent' }), clock: systemClock, uiDir: dir });
    const root = await app.inject('/');
    expect(root.statusCode).toBe(200);
    expect(root.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(root.headers['cache-control']).toBe('no-cache');
    expect(root.headers['content-security-policy']).toContain("default-src 'self'");
    expect(root.headers['x-content-type-options']).toBe('nosniff');
    expect(root.body).toContain('<title>Hearth</title>');
    const js = await app.inject('/ui/main-ABCD1234.js');
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const css = await app.inject('/ui/main-ABCD1234.css');
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    const head = await app.inject({ method: 'HEAD', url: '/ui/main-ABCD1234.js' });
    expect(head.statusCode).toBe(200);
    await app.close();
  });

  it('answers 404 for anything outside the listed files: traversal in every spelling, folders, unknown types', async () => {
    const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent' }), clock: systemClock, uiDir: dir });
    const secret = `${path.basename(dir)}-secret.js`;
    for (const url of [
      `/ui/../${secret}`,
      `/ui/..%2f${secret}`,
      `/ui/%2e%2e%2f${secret}`,
      `/ui/%2E%2E/${secret}`,
      '/ui/..%5c..%5cpackage.json',
      '/ui/sub/x.js',
      '/ui/sub',
      '/ui/notes.txt',
      '/ui/',
      '/ui/index.html%00.js',
      `/ui/${'a'.repeat(5000)}`,
    ]) {
      const r = await app.inject(url);
      expect([400, 404, 414], url).toContain(r.statusCode);
      expect(r.body, url).not.toContain('TOPSECRET');
      expect(r.body, url).not.toContain('nested');
    }
    await app.close();
  });

  it('picks up a rebuild under a running node (a missing name lists the folder again, at most once a second)', async () => {
    const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent' }), clock: systemClock, uiDir: dir });
    expect((await app.inject('/ui/main-NEWHASH1.js')).statusCode).toBe(404);
    await fs.writeFile(path.join(dir, 'main-NEWHASH1.js'), 'console.log(2)');
    await sleep(1100);
    const r = await app.inject('/ui/main-NEWHASH1.js');
    expect(r.statusCode).toBe(200);
    expect(r.body).toBe('console.log(2)');
    await app.close();
  });

  it('says how to build the dashboard when its folder is missing', async () => {
    const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent' }), clock: systemClock, uiDir: path.join(dir, 'nope') });
    const r = await app.inject('/');
    expect(r.statusCode).toBe(404);
    expect(r.json()).toEqual({ code: 'NOT_FOUND', error: 'the dashboard is not built: run npm run build' });
    await app.close();
  });
});

/** An SSE reader over plain HTTP: events parsed as they arrive, comments counted. */
function openEvents(port: number, headers: Record<string, string> = {}) {
  const events: { event: string; data: any }[] = [];
  let comments = 0;
  let ended = false;
  let status = 0;
  let body = '';
  const req = http.get({ host: '127.0.0.1', port, path: '/v1/events', headers });
  const ready = new Promise<void>((resolve, reject) => {
    req.on('error', (e) => (ended ? resolve() : reject(e)));
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (block.startsWith(':')) comments++;
          const ev = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
        }
      });
      res.on('end', () => (ended = true));
      res.on('close', () => (ended = true));
      resolve();
    });
  });
  return {
    ready,
    events,
    get comments() {
      return comments;
    },
    get ended() {
      return ended;
    },
    get status() {
      return status;
    },
    get body() {
      return body;
    },
    close: () => req.destroy(),
  };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, deadlineMs = 15_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('GET /v1/events and the keep-alive view, over HTTP with the real executor', () => {
  let h: TestHearth;
  let port: number;
  const infer = async () => {
    const r = await h.app.inject({
      method: 'POST',
      url: '/v2/models/idm/infer',
      payload: { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] },
    });
    expect(r.statusCode, r.body).toBe(200);
  };

  beforeAll(async () => {
    h = await startTestHearth({ env: { EVENTS_MAX_CLIENTS: '2', CONNECTION_TIMEOUT_MS: '600', AUTOSCALER_TICK_MS: '250' } });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    port = (h.app.server.address() as { port: number }).port;
    const bytes = await fs.readFile(path.join(onnxFixtureDir('identity-fp32'), 'model.onnx'));
    const up = await h.app.inject({
      method: 'POST',
      url: '/v1/models/idm',
      headers: { 'content-type': 'application/octet-stream' },
      payload: bytes,
    });
    expect(up.statusCode, up.body).toBe(201);
    const put = await h.app.inject({
      method: 'PUT',
      url: '/v1/models/idm/config',
      payload: { keepAlive: { kind: 'histogram', binMs: 100, rangeMs: 5000, minSamples: 3 } },
    });
    expect(put.statusCode, put.body).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('streams history and status at once, then a status showing the cold start an inference caused, and heartbeats', async () => {
    const s = openEvents(port);
    await s.ready;
    expect(s.status).toBe(200);
    await until('history and status', () => s.events.some((e) => e.event === 'history') && s.events.some((e) => e.event === 'status'));
    expect(s.events[0].event).toBe('history');
    await infer();
    await until('a status with the cold start', () =>
      s.events.some(
        (e) => e.event === 'status' && e.data.models.some((m: any) => m.name === 'idm' && m.coldStarts === 1 && m.requests === 1),
      ),
    );
    // CONNECTION_TIMEOUT_MS 600: heartbeats every 200 ms keep the silent stream open well past it.
    await sleep(1500);
    expect(s.ended).toBe(false);
    expect(s.comments).toBeGreaterThanOrEqual(3);
    // Coalesced: in 1.5 s with one request, at most one snapshot per 500 ms interval (plus the first), however many events.
    const statuses = s.events.filter((e) => e.event === 'status').map((e) => e.data.at as number);
    for (let i = 1; i < statuses.length; i++) expect(statuses[i] - statuses[i - 1]).toBeGreaterThanOrEqual(500);
    s.close();
    await until('the hub to forget the client', () => h.deps.events!.clients === 0);
  });

  it('refuses a stream past EVENTS_MAX_CLIENTS with 503 OVERLOADED, and takes one again once a client leaves', async () => {
    const a = openEvents(port);
    const b = openEvents(port);
    await Promise.all([a.ready, b.ready]);
    await until('two clients', () => h.deps.events!.clients === 2);
    const c = openEvents(port);
    await c.ready;
    await until('the refusal body', () => c.ended);
    expect(c.status).toBe(503);
    expect(JSON.parse(c.body).code).toBe('OVERLOADED');
    a.close();
    await until('one client', () => h.deps.events!.clients === 1);
    const d = openEvents(port);
    await d.ready;
    expect(d.status).toBe(200);
    b.close();
    d.close();
    await until('no client', () => h.deps.events!.clients === 0);
  });

  it('a burst of clients that connect and vanish leaves no stream and no socket behind', async () => {
    for (let round = 0; round < 10; round++) {
      const s = openEvents(port);
      await s.ready;
      s.close();
    }
    await until('no client', () => h.deps.events!.clients === 0);
    const conns = await new Promise<number>((r) => h.app.server.getConnections((_e, n) => r(n)));
    expect(conns).toBe(0);
  });

  it('GET /v1/models/{name}/keep-alive shows the histogram of idle times with the decision and its windows', async () => {
    for (let i = 0; i < 4; i++) {
      await infer();
      await sleep(250);
    }
    const r = await h.app.inject('/v1/models/idm/keep-alive');
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json();
    expect(body.name).toBe('idm');
    expect(body.pools).toHaveLength(1);
    const p = body.pools[0];
    expect(p.policy).toMatchObject({ kind: 'histogram', binMs: 100, rangeMs: 5000 });
    expect(p.histogram.binMs).toBe(100);
    expect(p.histogram.bins).toHaveLength(50);
    const counted = p.histogram.bins.reduce((a: number, b: number) => a + b, 0) + p.histogram.outOfRange;
    expect(counted).toBeGreaterThanOrEqual(4);
    expect(p.decision.policy).toMatch(/^histogram/);
    expect(p.decision.warmUntilMs).toBe(p.decision.prewarmMs + p.decision.keepAliveMs);
    expect((await h.app.inject('/v1/models/nosuch/keep-alive')).json()).toEqual({ name: 'nosuch', pools: [] });
    expect((await h.app.inject('/v1/models/Bad!/keep-alive')).statusCode).toBe(400);
  });

  it('GET /v1/models/{name}/requests lists recent requests, the first one cold', async () => {
    const r = (await h.app.inject('/v1/models/idm/requests')).json();
    expect(r.requests.length).toBeGreaterThanOrEqual(2);
    expect(r.requests[0]).toMatchObject({ version: 1, coldStart: true, ok: true });
    const st = (await h.app.inject('/v1/status')).json().models.find((m: any) => m.name === 'idm');
    expect(r.requests.length).toBe(st.requests + st.failures);
    expect(r.requests.filter((q: any) => q.coldStart).length).toBe(st.coldRequests);
  });

  it('a shutdown ends open streams at once (close does not wait on them)', async () => {
    const s = openEvents(port);
    await s.ready;
    await until('the stream', () => h.deps.events!.clients === 1);
    await h.close();
    await until('the stream to end', () => s.ended, 5000);
    expect(h.deps.events!.clients).toBe(0);
  });
});

describe('auth rules of the dashboard routes', () => {
  let h: TestHearth;
  beforeAll(async () => {
    h = await startTestHearth({ authScopes: ['infer'] });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('static files are public; events and the keep-alive view need models:read', async () => {
    expect((await h.app.inject({ url: '/', headers: { authorization: '' } })).statusCode).not.toBe(401);
    const anon = await h.app.inject({ url: '/v1/events', headers: { authorization: '' } });
    expect(anon.statusCode).toBe(401);
    const noScope = await h.app.inject('/v1/models/x/keep-alive');
    expect(noScope.statusCode).toBe(403);
    expect((await h.app.inject('/v1/models/x/requests')).statusCode).toBe(403);
    const admin = await h.app.inject({ url: '/v1/models/x/keep-alive', headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    expect(admin.statusCode).toBe(200);
  });
});

describe('EventsHub on a real HTTP server: history steps, job visibility, slow readers', () => {
  const serve = async (hub: EventsHub, access: (n: number) => JobsAccess) => {
    let n = 0;
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      hub.add(res, access(n++));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { server, port: (server.address() as { port: number }).port };
  };
  const done = (at: number, ms: number, over: Partial<RequestDoneEvent> = {}): RequestDoneEvent => ({
    name: 'm',
    version: 1,
    ok: true,
    queueMs: 0,
    computeMs: ms,
    billedMs: Math.ceil(ms),
    memoryMb: 128,
    batchSize: 1,
    coldStart: false,
    at,
    ...over,
  });

  it('a history point per step: rate, p50 and p99 of the requests that ended in it, errors and cold starts', async () => {
    const hub = new EventsHub({ clock: systemClock, historyStepMs: 400 });
    hub.start({ status: () => ({ models: [], node: {} }) });
    const { server, port } = await serve(hub, () => undefined);
    const s = openEvents(port);
    await s.ready;
    await until('history', () => s.events.some((e) => e.event === 'history'));
    // 100 requests of 1..100 ms, one failed, two cold.
    for (let i = 1; i <= 100; i++) hub.observer.onRequestDone!(done(systemClock.now(), i, { ok: i !== 50, coldStart: i <= 2 }));
    await until('a sample with them', () => s.events.some((e) => e.event === 'sample' && e.data.pools.length === 1));
    const p = s.events.find((e) => e.event === 'sample' && e.data.pools.length === 1)!.data.pools[0];
    expect(p).toMatchObject({ name: 'm', version: 1, p50Ms: 50, p99Ms: 99, errors: 1, coldStarts: 2 });
    expect(p.ratePerSec).toBeGreaterThan(0);
    // A new client gets the points so far in its history.
    const t = openEvents(port);
    await t.ready;
    await until('history', () => t.events.some((e) => e.event === 'history'));
    expect(t.events[0].data.points.some((pt: any) => pt.pools.length === 1)).toBe(true);
    expect(hub.recent('m')).toHaveLength(100);
    expect(hub.recent('other')).toEqual([]);
    s.close();
    t.close();
    hub.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('jobs go only to streams that may see them, each with its own caller', async () => {
    const hub = new EventsHub({ clock: systemClock, jobsPollMs: 100 });
    const asked: (string | undefined)[] = [];
    hub.start({
      status: () => ({ models: [], node: {} }),
      jobs: async (caller) => {
        asked.push(caller.owner);
        return [{ id: `job-of-${caller.owner ?? 'all'}` } as any];
      },
    });
    const access: JobsAccess[] = [undefined, { owner: 'k1', admin: false }];
    const { server, port } = await serve(hub, (n) => access[n]);
    const none = openEvents(port);
    await none.ready;
    await until('the first stream', () => hub.clients === 1);
    const mine = openEvents(port);
    await mine.ready;
    await until('jobs on the second stream', () => mine.events.some((e) => e.event === 'jobs'));
    await sleep(300);
    expect(mine.events.find((e) => e.event === 'jobs')!.data.jobs[0].id).toBe('job-of-k1');
    // Sent once: the list did not change.
    expect(mine.events.filter((e) => e.event === 'jobs')).toHaveLength(1);
    expect(none.events.some((e) => e.event === 'jobs')).toBe(false);
    expect(new Set(asked)).toEqual(new Set(['k1']));
    none.close();
    mine.close();
    hub.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('a client that stops reading is dropped once 1 MiB waits unread (the node holds no more for it)', async () => {
    const big = 'x'.repeat(512 * 1024);
    const hub = new EventsHub({ clock: systemClock, intervalMs: 50, refreshMs: 50 });
    hub.start({ status: () => ({ models: [big], node: {} }) });
    const { server, port } = await serve(hub, () => undefined);
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    sock.pause();
    await until('the stream', () => hub.clients === 1);
    await until('the slow reader to be dropped', () => hub.clients === 0, 30_000);
    sock.destroy();
    hub.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
});
