// /v1/keys over real HTTP: a key's token is answered once and never again, lists hold no secret (nor does the key
// store), revocation and expiry hold at once (also on a second Hearth on the same Redis), and the refusals.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY_PATTERN } from '../../../core/index.ts';
import { hashToken } from '../../../gateway/auth/index.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../../helpers/redis.ts';
import { ADMIN_KEY, startAuthNode, type Answer, type AuthNode } from './auth-rig.ts';

function expectUnauthenticated(res: Answer, message?: string | RegExp): void {
  expect(res.status, res.text).toBe(401);
  expect(res.json().code).toBe('UNAUTHENTICATED');
  expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
  if (message) expect(res.json().error).toMatch(message);
}

/** Nothing of a token in a text: not the token, not its secret, not its hash. */
function expectNoSecret(text: string, token: string): void {
  const secret = API_KEY_PATTERN.exec(token)![2];
  expect(text).not.toContain(token);
  expect(text).not.toContain(secret);
  expect(text).not.toContain(hashToken(token));
}

describe('/v1/keys with keys in Redis', () => {
  let redis: TestRedis;
  let a: AuthNode;
  let b: AuthNode;
  const prefix = uniquePrefix('keys-api');

  beforeAll(async () => {
    redis = await startTestRedis();
    // Two Hearths on one Redis and prefix, as two nodes behind a balancer.
    [a, b] = await Promise.all([startAuthNode({ redis, prefix }), startAuthNode({ redis, prefix })]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.close();
  });

  it('POST answers the token once (201, no-store) and it works at once on both nodes', async () => {
    const res = await a.call('POST', '/v1/keys', { token: ADMIN_KEY, body: { name: 'reader', scopes: ['models:read'] } });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = res.json<Record<string, unknown>>();
    expect(res.headers.get('location')).toBe(`/v1/keys/${body.id as string}`);
    expect(body).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{12}$/),
      name: 'reader',
      scopes: ['models:read'],
      createdAt: expect.any(String),
      key: expect.stringMatching(API_KEY_PATTERN),
    });
    expect(body).not.toHaveProperty('hash');
    expect(API_KEY_PATTERN.exec(body.key as string)![1]).toBe(body.id);
    for (const node of [a, b]) expect((await node.call('GET', '/v1/models', { token: body.key as string })).status).toBe(200);
  });

  it('GET /v1/keys and GET /v1/keys/:id never show a token, a secret or a hash; neither does Redis', async () => {
    const { id, token } = await a.createKey({
      name: 'lister',
      scopes: ['infer', 'jobs'],
      models: ['ocr-*'],
      rateLimit: { max: 5, windowMs: 60_000 },
      maxInFlight: 3,
      maxBodyBytes: 4096,
      expiresAt: '2099-01-01T00:00:00Z',
    });
    const list = await b.call('GET', '/v1/keys', { token: ADMIN_KEY });
    expect(list.status).toBe(200);
    const keys = list.json<{ keys: Record<string, unknown>[] }>().keys;
    expect(keys.find((k) => k.id === id)).toEqual({
      id,
      name: 'lister',
      scopes: ['infer', 'jobs'],
      models: ['ocr-*'],
      rateLimit: { max: 5, windowMs: 60_000 },
      maxInFlight: 3,
      maxBodyBytes: 4096,
      expiresAt: '2099-01-01T00:00:00.000Z',
      createdAt: expect.any(String),
    });
    // The HEARTH_ADMIN_KEY is listed too, under its id.
    expect(keys.find((k) => k.id === 'admin')).toMatchObject({ name: 'admin (HEARTH_ADMIN_KEY)', scopes: ['admin'] });
    for (const k of keys) expect(Object.keys(k)).not.toContain('hash');
    const one = await b.call('GET', `/v1/keys/${id}`, { token: ADMIN_KEY });
    expect(one.status).toBe(200);
    expect(one.json()).toEqual(keys.find((k) => k.id === id));
    for (const text of [list.text, one.text]) {
      expectNoSecret(text, token);
      expectNoSecret(text, ADMIN_KEY);
      expect(text).not.toMatch(/[0-9a-f]{64}/);
    }
    // What Redis holds: hashes, never a usable token or its secret.
    const client = new Redis(redis.url);
    try {
      const stored = await client.hgetall(`${prefix}:auth:keys`);
      expect(Object.keys(stored)).toEqual(expect.arrayContaining(['admin', id]));
      const dump = JSON.stringify(stored);
      expect(dump).not.toContain(token);
      expect(dump).not.toContain(API_KEY_PATTERN.exec(token)![2]);
      expect(dump).not.toContain(ADMIN_KEY);
      expect(JSON.parse(stored[id]).hash).toBe(hashToken(token));
    } finally {
      client.disconnect();
    }
  });

  it('DELETE revokes at once, on this node and on the other', async () => {
    const { id, token } = await a.createKey({ name: 'short-lived', scopes: ['models:read'] });
    // Both nodes have seen the key (each remembers its last answer for a Redis outage).
    for (const node of [a, b]) expect((await node.call('GET', '/v1/models', { token })).status).toBe(200);
    const del = await a.call('DELETE', `/v1/keys/${id}`, { token: ADMIN_KEY });
    expect(del.status).toBe(200);
    expect(del.json()).toEqual({ id, revoked: true });
    for (const node of [a, b]) expectUnauthenticated(await node.call('GET', '/v1/models', { token }), /unknown or revoked/);
    expect((await b.call('GET', `/v1/keys/${id}`, { token: ADMIN_KEY })).status).toBe(404);
    // A second revocation finds nothing.
    const again = await b.call('DELETE', `/v1/keys/${id}`, { token: ADMIN_KEY });
    expect(again.status).toBe(404);
    expect(again.json().code).toBe('KEY_NOT_FOUND');
  });

  it('an unknown or malformed id is 404 KEY_NOT_FOUND', async () => {
    for (const id of ['abcd0000', 'NOT-AN-ID', 'a'.repeat(40)]) {
      for (const method of ['GET', 'DELETE']) {
        const res = await a.call(method, `/v1/keys/${id}`, { token: ADMIN_KEY });
        expect(res.status, `${method} ${id}`).toBe(404);
        expect(res.json().code).toBe('KEY_NOT_FOUND');
      }
    }
  });

  it('an expired key is refused with 401 saying it expired', async () => {
    const expiresAt = Date.now() + 1500;
    const { id, token } = await a.createKey({ name: 'soon', scopes: ['models:read'], expiresAt: new Date(expiresAt).toISOString() });
    expect((await a.call('GET', '/v1/models', { token })).status).toBe(200);
    await new Promise((r) => setTimeout(r, expiresAt - Date.now() + 20));
    for (const node of [a, b]) {
      const res = await node.call('GET', '/v1/models', { token });
      expectUnauthenticated(res, /expired/);
      expect(res.json().error).toContain(id);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
    // Still listed (an admin sees why it fails) until revoked.
    expect((await a.call('GET', `/v1/keys/${id}`, { token: ADMIN_KEY })).json<{ expiresAt: string }>().expiresAt).toBe(
      new Date(expiresAt).toISOString(),
    );
  });

  it('HEARTH_ADMIN_KEY works; the same id with another secret does not', async () => {
    expect((await a.call('GET', '/v1/keys', { token: ADMIN_KEY })).status).toBe(200);
    expectUnauthenticated(await a.call('GET', '/v1/keys', { token: 'hk_admin_' + 'y'.repeat(40) }), /unknown or revoked/);
  });

  it('refuses a bad Authorization header or token alike, with error="invalid_token"', async () => {
    const { token } = await a.createKey({ name: 'victim', scopes: ['models:read'] });
    const wrongSecret = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    const answers: string[] = [];
    for (const header of [`Basic ${token}`, 'Bearer', `Bearer ${wrongSecret}`, 'Bearer hk_nope_' + 'z'.repeat(40), 'Bearer not-a-key']) {
      const res = await fetch(`http://127.0.0.1:${a.port}/v1/models`, { headers: { authorization: header } });
      expect(res.status, header).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="hearth", error="invalid_token"');
      const body = (await res.json()) as { code: string; error: string };
      expect(body.code).toBe('UNAUTHENTICATED');
      answers.push(body.error);
    }
    // A wrong secret for a real id answers as an unknown key does: nothing tells which ids exist.
    expect(answers[2]).toBe(answers[3]);
    // Without a header: plain Bearer challenge.
    const none = await a.call('GET', '/v1/models');
    expectUnauthenticated(none);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="hearth"');
  });

  it('refuses admin with models (400) and creates nothing', async () => {
    const before = (await a.call('GET', '/v1/keys', { token: ADMIN_KEY })).json<{ keys: unknown[] }>().keys.length;
    const res = await a.call('POST', '/v1/keys', { token: ADMIN_KEY, body: { name: 'x', scopes: ['admin'], models: ['vad'] } });
    expect(res.status).toBe(400);
    expect(res.json().code).toBe('INVALID_REQUEST');
    expect(res.json().error).toContain('"models"');
    const bad = await a.call('POST', '/v1/keys', { token: ADMIN_KEY, body: { name: 'x', scopes: ['infer'], secret: 'mine' } });
    expect(bad.status).toBe(400);
    expect((await a.call('GET', '/v1/keys', { token: ADMIN_KEY })).json<{ keys: unknown[] }>().keys.length).toBe(before);
  });
});

describe('/v1/keys with keys in the object store (no Redis)', () => {
  let n: AuthNode;
  beforeAll(async () => {
    n = await startAuthNode();
  });
  afterAll(async () => {
    await n?.close();
  });

  it('stores only hashes, and revokes at once on this node', async () => {
    expect(n.h.deps.keys!.describe).toMatch(/object store/);
    const { id, token } = await n.createKey({ name: 'fs', scopes: ['models:read'] });
    expect((await n.call('GET', '/v1/models', { token })).status).toBe(200);
    const stored = async (id: string) => (await buffer(await n.h.deps.store!.get(`auth/keys/${id}.json`))).toString('utf8');
    const file = await stored(id);
    expect(JSON.parse(file)).toMatchObject({ id, name: 'fs', hash: hashToken(token) });
    expectNoSecret(file.replace(hashToken(token), ''), token);
    const admin = await stored('admin');
    expect(admin).not.toContain(ADMIN_KEY);
    expect(admin).not.toContain('x'.repeat(40));
    expect((await n.call('DELETE', `/v1/keys/${id}`, { token: ADMIN_KEY })).status).toBe(200);
    expectUnauthenticated(await n.call('GET', '/v1/models', { token }));
  });
});

describe('the first admin key (no HEARTH_ADMIN_KEY)', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-auth-first-'));
  });
  afterAll(async () => {
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('is made on the first start only, shown once in the log with a curl line, and works', async () => {
    const start = async () => {
      const lines: { component?: string; level: number; msg: string }[] = [];
      const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as (typeof lines)[number]) });
      const node = await startAuthNode({ dataDir, env: { HEARTH_ADMIN_KEY: '' }, overrides: { logger } });
      return { node, lines };
    };
    const first = await start();
    let token: string;
    try {
      const made = first.lines.filter((l) => l.component === 'auth' && l.msg.includes('created the first admin key'));
      expect(made).toHaveLength(1);
      expect(made[0].level).toBe(40); // warn
      token = /hk_[a-z0-9]{4,32}_[A-Za-z0-9_-]{32,128}/.exec(made[0].msg)![0];
      expect(made[0].msg).toContain(`curl -H "Authorization: Bearer ${token}" http://127.0.0.1:`);
      const keys = await first.node.call('GET', '/v1/keys', { token });
      expect(keys.status).toBe(200);
      expect(keys.json<{ keys: { name: string; scopes: string[] }[] }>().keys).toEqual([
        expect.objectContaining({ name: 'admin (first start)', scopes: ['admin'] }),
      ]);
    } finally {
      await first.node.close();
    }
    // Restarted on the same store: the key still works, and no new one is made or shown.
    const second = await start();
    try {
      expect(JSON.stringify(second.lines)).not.toMatch(/hk_[a-z0-9]{4,32}_[A-Za-z0-9_-]{32,}/);
      const keys = await second.node.call('GET', '/v1/keys', { token });
      expect(keys.status).toBe(200);
      expect(keys.json<{ keys: unknown[] }>().keys).toHaveLength(1);
    } finally {
      await second.node.close();
    }
  });
});
