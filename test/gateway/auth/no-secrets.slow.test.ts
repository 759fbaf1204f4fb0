// A stolen key store gives no usable key: after keys are made and used, everything a node keeps (its whole Redis, read
// by type, and every file under its DATA_DIR) holds none of their secrets in any usual encoding, and does hold each
// key's sha256 (so the search looked where the keys are). Once with keys in Redis (two nodes), once without Redis
// (keys in the object store under auth/keys/).
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, uniquePrefix, type TestRedis } from '../../helpers/redis.ts';
import { request, startNode, type HostileNode } from '../../hostile/rig.ts';
import { sileroBytes } from '../../helpers/model-bodies.ts';
import {
  adminToken,
  call,
  createKey,
  dumpDir,
  dumpRedis,
  expectNoSecretForms,
  hashLocations,
  idOf,
  logMatches,
  secretOf,
  TOKEN_IN_TEXT,
  type CreatedKey,
} from './slow-rig.ts';

const SPECS = [
  { name: 'reader', scopes: ['models:read'] },
  { name: 'writer', scopes: ['models:write', 'models:read'], models: ['vad', 'ocr-*'] },
  { name: 'batch', scopes: ['jobs', 'infer'], rateLimit: { max: 100, windowMs: 60_000 }, maxInFlight: 2, maxBodyBytes: 1_000_000 },
  { name: 'expiring admin', scopes: ['admin'], expiresAt: '2099-01-01T00:00:00Z' },
];

/** Makes every key of SPECS on the first node, uses each once on every node, and answers them. */
async function makeAndUse(nodes: HostileNode[], admin: string): Promise<CreatedKey[]> {
  const keys: CreatedKey[] = [];
  for (const spec of SPECS) keys.push(await createKey(nodes[0], admin, spec));
  // Each creation left an audit line (so the log searched below is the one that saw the keys made).
  const audit = /"audit":\{[^\n]*"method":"POST","route":"\/v1\/keys"/g;
  expect(await logMatches(nodes[0], audit, SPECS.length)).toHaveLength(SPECS.length);
  for (const n of nodes) {
    for (const k of keys) {
      const res = await call(n, 'GET', '/v2', k.key);
      expect(res.status, res.body.toString()).toBe(200);
    }
    expect((await call(n, 'GET', '/v1/keys', admin)).status).toBe(200);
  }
  return keys;
}

/** The node's log holds no token: neither the answers of POST /v1/keys nor HEARTH_ADMIN_KEY are logged. */
function expectNoTokenInLog(n: HostileNode, tokens: string[]): void {
  const log = n.logs();
  for (const t of tokens) expect(log).not.toContain(secretOf(t));
  expect(log.match(TOKEN_IN_TEXT)).toBeNull();
}

describe('no usable secret in what a node keeps', () => {
  let redis: TestRedis;
  const nodes: HostileNode[] = [];
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.close();
  });
  beforeAll(async () => {
    redis = await startTestRedis({ useEnv: false });
  });

  it('keys in Redis (two nodes): the Redis dump and both DATA_DIRs hold hashes only', async () => {
    const admin = adminToken();
    const env = { AUTH: 'on', HEARTH_ADMIN_KEY: admin, REDIS_URL: redis.url, JOBS_PREFIX: uniquePrefix('auth-secrets') };
    const pair = await Promise.all([startNode({ env }), startNode({ env })]);
    nodes.push(...pair);
    const keys = await makeAndUse(pair, admin);
    const tokens = [admin, ...keys.map((k) => k.key)];

    // A model uploaded with the writer key, so each DATA_DIR holds files to search (the upload lands in A's).
    const up = await request(pair[0], {
      method: 'POST',
      path: '/v1/models/vad',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${keys[1].key}` },
      body: sileroBytes(),
    });
    expect(up.status, up.body.toString()).toBe(201);

    const inRedis = await dumpRedis(redis.url);
    expectNoSecretForms(inRedis, tokens);
    const hashesAt = hashLocations(inRedis, tokens);
    for (const t of tokens) expect(hashesAt[t]).toEqual([`redis hash ${env.JOBS_PREFIX}:auth:keys`]);
    // The rate limiter's counters are there too, named by key id only.
    expect(inRedis.some((b) => b.where.startsWith(`redis key name ${env.JOBS_PREFIX}:ratelimit:`))).toBe(true);

    const files = (await Promise.all(pair.map((n) => dumpDir(n.dataDir)))).flat();
    expect(files.some((f) => f.where.startsWith(path.join(pair[0].dataDir, 'store', 'models', 'vad')))).toBe(true);
    expectNoSecretForms(files, tokens);
    // No file holds a key at all: they are in Redis.
    expect(Object.values(hashLocations(files, tokens)).flat()).toEqual([]);
    for (const n of pair) expectNoTokenInLog(n, tokens);
  });

  it('keys in the object store (Redis unreachable): the files under auth/keys/ and the rest of DATA_DIR hold hashes only', async () => {
    const admin = adminToken();
    // The rig's REDIS_URL is a port nothing listens on.
    const node = await startNode({ env: { AUTH: 'on', HEARTH_ADMIN_KEY: admin } });
    nodes.push(node);
    expect(node.logs()).toContain('keys live in the object store');
    const keys = await makeAndUse([node], admin);
    const tokens = [admin, ...keys.map((k) => k.key)];

    const keyDir = path.join(node.dataDir, 'store', 'auth', 'keys');
    const ids = [idOf(admin), ...keys.map((k) => k.id)];
    expect((await fs.readdir(keyDir)).sort()).toEqual(ids.map((id) => `${id}.json`).sort());
    const files = await dumpDir(node.dataDir);
    expectNoSecretForms(files, tokens);
    const hashesAt = hashLocations(files, tokens);
    for (const [i, t] of tokens.entries()) expect(hashesAt[t]).toEqual([path.join(keyDir, `${ids[i]}.json`)]);
    expectNoTokenInLog(node, tokens);
  });
});
