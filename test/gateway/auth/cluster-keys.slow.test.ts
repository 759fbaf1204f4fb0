// Two Hearth processes with AUTH=on on one private Redis (keys in `<prefix>:auth:keys`, rate counters beside them):
// a key made on A works on B at once, a revocation on A holds for the very next request on B, an expiry holds on
// both, and a key's rate limit counts the requests of both nodes together.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, uniquePrefix, type TestRedis } from '../../helpers/redis.ts';
import { startNode, type HostileNode } from '../../hostile/rig.ts';
import { adminToken, call, createKey, expectUnauthenticated, sleep } from './slow-rig.ts';

describe('API keys across two processes on one Redis', () => {
  let redis: TestRedis;
  let a: HostileNode;
  let b: HostileNode;
  const admin = adminToken();

  beforeAll(async () => {
    redis = await startTestRedis({ useEnv: false });
    const env = { AUTH: 'on', HEARTH_ADMIN_KEY: admin, REDIS_URL: redis.url, JOBS_PREFIX: uniquePrefix('auth-cluster') };
    [a, b] = await Promise.all([startNode({ env }), startNode({ env })]);
    for (const n of [a, b]) expect(n.logs()).toContain(`keys live in redis at`);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.close();
  });

  it('a key made on A works on B at once; revoked on A, the very next request on B is refused', async () => {
    const k = await createKey(a, admin, { name: 'cluster reader', scopes: ['models:read'] });
    const onB = await call(b, 'GET', '/v1/models', k.key);
    expect(onB.status, onB.body.toString()).toBe(200);
    expect((await call(b, 'GET', `/v1/keys/${k.id}`, admin)).json).toMatchObject({ id: k.id, name: 'cluster reader' });
    // Scopes hold on B too: a models:read key may not write.
    expect((await call(b, 'DELETE', '/v1/models/anything', k.key)).status).toBe(403);

    const del = await call(a, 'DELETE', `/v1/keys/${k.id}`, admin);
    expect(del.status, del.body.toString()).toBe(200);
    expect(del.json).toEqual({ id: k.id, revoked: true });
    expectUnauthenticated(await call(b, 'GET', '/v1/models', k.key));
    expectUnauthenticated(await call(a, 'GET', '/v1/models', k.key));
    expect((await call(b, 'GET', `/v1/keys/${k.id}`, admin)).status).toBe(404);
  });

  it('a key past its expiresAt is refused on both nodes', async () => {
    const expiresAt = Date.now() + 2500;
    const k = await createKey(a, admin, { name: 'short-lived', scopes: ['models:read'], expiresAt: new Date(expiresAt).toISOString() });
    expect((await call(a, 'GET', '/v1/models', k.key)).status).toBe(200);
    expect((await call(b, 'GET', '/v1/models', k.key)).status).toBe(200);
    await sleep(expiresAt + 50 - Date.now());
    for (const n of [a, b]) {
      const res = await call(n, 'GET', '/v1/models', k.key);
      expectUnauthenticated(res);
      expect(res.json!.error).toContain('expired');
    }
    // The record is still there (GET shows it with its date): refused for the date, not for being gone.
    expect((await call(b, 'GET', `/v1/keys/${k.id}`, admin)).json).toMatchObject({
      id: k.id,
      expiresAt: new Date(expiresAt).toISOString(),
    });
  });

  it('a rate limit of 4 per minute counts both nodes: the 5th request overall, on either node, is 429', async () => {
    const k = await createKey(a, admin, { name: 'limited', scopes: ['models:read'], rateLimit: { max: 4, windowMs: 60_000 } });
    const other = await createKey(b, admin, { name: 'unlimited', scopes: ['models:read'] });
    for (let i = 0; i < 4; i++) {
      const res = await call(i % 2 === 0 ? a : b, 'GET', '/v1/models', k.key);
      expect(res.status, `request ${i + 1}: ${res.body.toString()}`).toBe(200);
      expect(res.headers['ratelimit-limit']).toBe('4');
      // The count left is the cluster's: 3, 2, 1, 0 whichever node answers.
      expect(res.headers['ratelimit-remaining']).toBe(String(3 - i));
    }
    for (const n of [a, b]) {
      const res = await call(n, 'GET', '/v1/models', k.key);
      expect(res.status, res.body.toString()).toBe(429);
      expect(res.json).toMatchObject({ code: 'RATE_LIMITED' });
      const retryAfter = Number(res.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(res.headers['ratelimit-limit']).toBe('4');
      expect(res.headers['ratelimit-remaining']).toBe('0');
      expect(Number(res.headers['ratelimit-reset'])).toBeGreaterThan(0);
    }
    // The limit is the key's, not the nodes': another key still passes on both.
    for (const n of [a, b]) expect((await call(n, 'GET', '/v1/models', other.key)).status).toBe(200);
    // Each node counted its own refusal for that key.
    for (const n of [a, b]) {
      const metrics = (await call(n, 'GET', '/metrics', admin)).body.toString();
      expect(metrics).toMatch(new RegExp(`^hearth_rate_limited_total\\{key_id="${k.id}"\\} 1$`, 'm'));
    }
  });
});
