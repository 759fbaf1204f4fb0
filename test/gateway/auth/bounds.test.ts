// A key's own bounds over real HTTP: requests in flight (held open mid-body, so the count is real), body size
// (declared or counted as a chunked body arrives; a chunked multipart upload must declare its length), the rate
// limit per key (shared by two Hearths on one Redis), and the /metrics counters of refusals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, uniquePrefix, type TestRedis } from '../../helpers/redis.ts';
import { multipartBody } from '../../helpers/model-bodies.ts';
import { ADMIN_KEY, metric, rawRequest, startAuthNode, type AuthNode, type RawAnswer } from './auth-rig.ts';

let redis: TestRedis;
let a: AuthNode;
let b: AuthNode;
/** Uncaught exceptions while the tests run: in a real node each one ends the process. */
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => void uncaught.push(e);

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  redis = await startTestRedis();
  const prefix = uniquePrefix('bounds');
  [a, b] = await Promise.all([startAuthNode({ redis, prefix }), startAuthNode({ redis, prefix })]);
});
afterAll(async () => {
  process.removeListener('uncaughtException', onUncaught);
  await Promise.all([a?.close(), b?.close()]);
  await redis?.close();
});

async function metrics(): Promise<string> {
  const res = await a.call('GET', '/metrics', { token: ADMIN_KEY });
  expect(res.status).toBe(200);
  return res.text;
}

/** A JSON body of exactly `n` bytes for PUT /v1/models/{name}/config. */
function configBody(n: number): Buffer {
  const json = '{"maxInstances": 2}';
  return Buffer.from(json + ' '.repeat(n - json.length));
}

/**
 * A PUT /v1/models/held/config that declares 100 bytes, waits for its 100 Continue (sent once the route starts
 * reading, so the request has passed every auth check and counts as in flight) and sends 10 of them. Resolves
 * `held` once in flight, or `refused` with the answer when the node refused it from its headers.
 */
function hold(token: string): Promise<{ held: { finish(): Promise<RawAnswer>; abort(): void } } | { refused: RawAnswer }> {
  const body = configBody(100);
  const { req, answer } = rawRequest(a.port, 'PUT', '/v1/models/held/config', {
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    'content-length': '100',
    expect: '100-continue',
  });
  req.flushHeaders();
  return new Promise((resolve, reject) => {
    req.once('continue', () => {
      req.write(body.subarray(0, 10));
      resolve({
        held: {
          finish: () => {
            req.end(body.subarray(10));
            return answer;
          },
          abort: () => req.destroy(),
        },
      });
    });
    answer.then((res) => resolve({ refused: res }), reject);
  });
}

describe('maxInFlight', () => {
  it('refuses the request past a key’s maxInFlight with 429 RATE_LIMITED and Retry-After, and frees the slot when one ends', async () => {
    const { id, token } = await a.createKey({ name: 'two at once', scopes: ['models:write'], maxInFlight: 2 });
    const counted = metric(await metrics(), 'hearth_rate_limited_total', { key_id: id });
    const first = await hold(token);
    const second = await hold(token);
    if (!('held' in first) || !('held' in second)) throw new Error(`a held request was refused: ${JSON.stringify([first, second])}`);

    const third = await a.call('PUT', '/v1/models/held/config', { token, body: { maxInstances: 2 } });
    expect(third.status).toBe(429);
    expect(third.json().code).toBe('RATE_LIMITED');
    expect(third.json().error).toContain('maxInFlight');
    expect(third.headers.get('retry-after')).toBe('1');
    // Per key: another key (and the admin) still get through.
    expect((await a.call('GET', '/v1/models/held/config', { token: ADMIN_KEY })).status).toBe(404);
    // The other node counts its own requests in flight.
    expect((await b.call('PUT', '/v1/models/held/config', { token, body: { maxInstances: 2 } })).status).toBe(404);

    // One ends normally: its slot is free again.
    const done = await first.held.finish();
    expect(done.status, done.body).toBe(404); // no such model: the body was read whole
    const again = await hold(token);
    if (!('held' in again)) throw new Error(`refused after a request ended: ${again.refused.status} ${again.refused.body}`);
    expect((await a.call('PUT', '/v1/models/held/config', { token, body: {} })).status).toBe(429);

    // Two clients go away mid-body: both slots come back once the node has seen them close.
    second.held.abort();
    again.held.abort();
    const held: { finish(): Promise<RawAnswer>; abort(): void }[] = [];
    const deadline = Date.now() + 10_000;
    while (held.length < 2) {
      const h = await hold(token);
      if ('held' in h) held.push(h.held);
      else if (h.refused.status !== 429 || Date.now() > deadline) throw new Error(`slots not freed: ${h.refused.status} ${h.refused.body}`);
      else await new Promise((r) => setTimeout(r, 20));
    }
    for (const h of held) expect((await h.finish()).status).toBe(404);
    expect(metric(await metrics(), 'hearth_rate_limited_total', { key_id: id })).toBeGreaterThanOrEqual(counted + 2);
  });
});

describe('maxBodyBytes', () => {
  let id: string;
  let token: string;
  beforeAll(async () => {
    ({ id, token } = await a.createKey({ name: 'small bodies', scopes: ['models:write', 'infer', 'jobs'], maxBodyBytes: 1000 }));
  });

  async function send(method: string, path: string, headers: Record<string, string>, body: Buffer, chunked: boolean) {
    const { req, answer } = rawRequest(a.port, method, path, {
      authorization: `Bearer ${token}`,
      ...headers,
      ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(body.length) }),
    });
    // Chunked: in pieces, the first under the limit, so the cut happens while the body streams.
    if (chunked) {
      req.write(body.subarray(0, 600));
      req.end(body.subarray(600));
    } else {
      req.end(body);
    }
    return answer;
  }

  it('a declared Content-Length over the key’s maxBodyBytes is 413 before the body is read; at the bound it passes', async () => {
    const over = await send('PUT', '/v1/models/m/config', { 'content-type': 'application/json' }, configBody(1001), false);
    expect(over.status).toBe(413);
    expect(JSON.parse(over.body)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', error: expect.stringContaining('maxBodyBytes') });
    const at = await send('PUT', '/v1/models/m/config', { 'content-type': 'application/json' }, configBody(1000), false);
    expect(at.status, at.body).toBe(404); // read whole, and no model m
    // The same bytes chunked pass too.
    expect((await send('PUT', '/v1/models/m/config', { 'content-type': 'application/json' }, configBody(1000), true)).status).toBe(404);
  });

  it('a chunked body over it is cut with 413 on every kind of body reader, and the node goes on serving', async () => {
    const big = Buffer.alloc(5000, 'a');
    for (const [method, path, type] of [
      ['PUT', '/v1/models/m/config', 'application/json'], // buffered JSON
      ['POST', '/v2/models/m/infer', 'application/json'], // V2's own reader
      ['POST', '/v1/jobs', 'application/json'],
      ['PUT', '/v1/datasets/big', 'application/x-ndjson'], // streamed into the store
      ['POST', '/v1/models/m', 'application/octet-stream'], // streamed uploads
      ['POST', '/v1/models/m', 'application/gzip'],
    ] as const) {
      const res = await send(method, path, { 'content-type': type }, big, true);
      expect(res.status, `${method} ${path} ${type}: ${res.body}`).toBe(413);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', error: expect.stringContaining('maxBodyBytes') });
    }
    // Nothing was stored under those names (the dataset would be the key's own).
    expect((await a.call('GET', '/v1/datasets/big', { token })).status).toBe(404);
    expect((await a.call('GET', `/v1/datasets/big?owner=${id}`, { token: ADMIN_KEY })).status).toBe(404);
    expect((await a.call('GET', '/v1/models/m', { token: ADMIN_KEY })).status).toBe(404);
    // Still serving, with nothing thrown past the routes.
    expect((await a.call('GET', '/v2/health/ready')).status).toBe(200);
    expect((await a.call('PUT', '/v1/models/m/config', { token, body: {} })).status).toBe(404);
    await new Promise((r) => setTimeout(r, 50));
    expect(uncaught).toEqual([]);
  });

  it('a multipart upload must declare its length (411 chunked), and is bounded by it (413)', async () => {
    const small = multipartBody([{ filename: 'model.onnx', data: Buffer.alloc(200, 1) }]);
    const large = multipartBody([{ filename: 'model.onnx', data: Buffer.alloc(5000, 1) }]);
    for (const mp of [small, large]) {
      const res = await send('POST', '/v1/models/m', { 'content-type': mp.contentType }, mp.body, true);
      expect(res.status).toBe(411);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'LENGTH_REQUIRED', error: expect.stringContaining('Content-Length') });
    }
    const over = await send('POST', '/v1/models/m', { 'content-type': large.contentType }, large.body, false);
    expect(over.status).toBe(413);
    expect(JSON.parse(over.body).code).toBe('PAYLOAD_TOO_LARGE');
    // Declared and within the bound: the key's checks pass and the upload itself decides (not a model).
    const within = await send('POST', '/v1/models/m', { 'content-type': small.contentType }, small.body, false);
    expect([411, 413, 401, 403]).not.toContain(within.status);
    // A key without maxBodyBytes may send a chunked multipart body.
    const free = multipartBody([{ filename: 'model.onnx', data: Buffer.alloc(200, 1) }]);
    const { req, answer } = rawRequest(a.port, 'POST', '/v1/models/m2', {
      authorization: `Bearer ${ADMIN_KEY}`,
      'content-type': free.contentType,
      'transfer-encoding': 'chunked',
    });
    req.end(free.body);
    expect([411, 413]).not.toContain((await answer).status);
  });
});

describe('rate limit per key', () => {
  it('the 4th request of a key limited to 3 a minute is 429 with Retry-After and RateLimit-*, across both nodes', async () => {
    const { id, token } = await a.createKey({ name: 'three a minute', scopes: ['models:read'], rateLimit: { max: 3, windowMs: 60_000 } });
    const counted = metric(await metrics(), 'hearth_rate_limited_total', { key_id: id });
    // Two on one node, one on the other: one Redis counts them together.
    for (const [node, left] of [
      [a, 2],
      [b, 1],
      [a, 0],
    ] as const) {
      const res = await node.call('GET', '/v1/models', { token });
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-limit')).toBe('3');
      expect(res.headers.get('ratelimit-remaining')).toBe(String(left));
    }
    for (const node of [b, a]) {
      const res = await node.call('GET', '/v1/models', { token });
      expect(res.status).toBe(429);
      expect(res.json().code).toBe('RATE_LIMITED');
      expect(res.json().error).toContain(id);
      const retry = Number(res.headers.get('retry-after'));
      expect(retry).toBeGreaterThan(0);
      expect(retry).toBeLessThanOrEqual(60);
      expect(res.headers.get('ratelimit-limit')).toBe('3');
      expect(res.headers.get('ratelimit-remaining')).toBe('0');
      const reset = Number(res.headers.get('ratelimit-reset'));
      expect(reset).toBeGreaterThan(0);
      expect(reset).toBeLessThanOrEqual(60);
    }
    // Another key, and the health checks, are not limited by it.
    const other = await a.createKey({ name: 'unlimited reader', scopes: ['models:read'] });
    expect((await a.call('GET', '/v1/models', { token: other.token })).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await a.call('GET', '/v2/health/live')).status).toBe(200);
    expect(metric(await metrics(), 'hearth_rate_limited_total', { key_id: id })).toBe(counted + 1);
    // (The node that refused the other counted it: each node's /metrics is its own.)
    const onB = await b.call('GET', '/metrics', { token: ADMIN_KEY });
    expect(metric(onB.text, 'hearth_rate_limited_total', { key_id: id })).toBe(1);
  });
});

describe('hearth_auth_failures_total', () => {
  it('counts 401s by key id: none, unknown, or the id of a known key with a wrong secret', async () => {
    const { id, token } = await a.createKey({ name: 'target', scopes: ['models:read'] });
    const before = await metrics();
    const count = (text: string, keyId: string) => metric(text, 'hearth_auth_failures_total', { key_id: keyId });
    await a.call('GET', '/v1/models');
    await a.call('GET', '/v1/models');
    await a.call('GET', '/v1/models', { token: 'hk_nobody_' + 'q'.repeat(40) });
    await a.call('GET', '/v1/models', { token: token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A') });
    // A success and a 403 are not authentication failures.
    expect((await a.call('GET', '/v1/models', { token })).status).toBe(200);
    expect((await a.call('GET', '/v1/jobs', { token })).status).toBe(403);
    const after = await metrics();
    expect(count(after, 'none') - count(before, 'none')).toBe(2);
    expect(count(after, 'unknown') - count(before, 'unknown')).toBe(1);
    expect(count(after, id) - count(before, id)).toBe(1);
  });
});
