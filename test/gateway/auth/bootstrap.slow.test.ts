// The first start with AUTH=on and no HEARTH_ADMIN_KEY makes one admin key and logs it once with a curl line; a
// restart on the same key store logs none and the key keeps working (keys in Redis, and keys in the object store).
// HEARTH_ADMIN_KEY replaces the stored key of its id. On loopback without AUTH, the node warns and serves every route.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, uniquePrefix, type TestRedis } from '../../helpers/redis.ts';
import { startNode, type HostileNode } from '../../hostile/rig.ts';
import {
  adminToken,
  call,
  dumpRedis,
  expectNoSecretForms,
  expectUnauthenticated,
  startOnFreePort,
  hashLocations,
  idOf,
  logLines,
  secretOf,
  TOKEN_IN_TEXT,
} from './slow-rig.ts';

const FIRST_KEY = 'created the first admin key';
const CURL = /try: curl -H "Authorization: Bearer (hk_[a-z0-9]+_[A-Za-z0-9_-]+)" (https?):\/\/127\.0\.0\.1:(\d+|<port>)\/v1\/keys/;

/** The first-key lines of a node's log, and every distinct token anywhere in it. */
function firstKeyLog(n: HostileNode): { lines: { level: number; msg: string; keyId?: unknown }[]; tokens: string[] } {
  return { lines: logLines(n).filter((l) => l.msg.includes(FIRST_KEY)), tokens: [...new Set(n.logs().match(TOKEN_IN_TEXT) ?? [])] };
}

/** The one token a node logged at its first start, checked against its curl line; `port` when the line names one. */
function loggedToken(n: HostileNode, port: string): string {
  const { lines, tokens } = firstKeyLog(n);
  expect(lines, n.logs()).toHaveLength(1);
  expect(tokens, n.logs()).toHaveLength(1);
  const [line] = lines;
  expect(line.level).toBe(40); // warn: it must be seen
  expect(line.msg).toContain(`keep it now: ${tokens[0]}`);
  const curl = CURL.exec(line.msg);
  expect(curl, line.msg).not.toBeNull();
  expect(curl![1]).toBe(tokens[0]);
  expect(curl![2]).toBe('http');
  expect(curl![3]).toBe(port);
  expect(line.keyId).toBe(idOf(tokens[0]));
  return tokens[0];
}

async function expectAdmin(n: HostileNode, token: string): Promise<void> {
  const res = await call(n, 'GET', '/v1/keys', token);
  expect(res.status, res.body.toString()).toBe(200);
  expect((res.json!.keys as { id: string; scopes: string[] }[]).find((k) => k.id === idOf(token))?.scopes).toEqual(['admin']);
}

describe('the first admin key', () => {
  let redis: TestRedis;
  const dirs: string[] = [];
  const nodes: HostileNode[] = [];
  const dataDir = async () => {
    const d = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-auth-boot-'));
    dirs.push(d);
    return d;
  };
  const start = async (env: Record<string, string>, dir: string, port: 'any' | 'named' = 'any') => {
    const n = port === 'named' ? await startOnFreePort({ env, dataDir: dir }) : await startNode({ env, dataDir: dir });
    nodes.push(n);
    return n;
  };

  beforeAll(async () => {
    redis = await startTestRedis({ useEnv: false });
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.close();
    await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
  });

  it('keys in Redis: of two nodes starting at once on an empty store, one logs a key; a restart logs none and the key still works', async () => {
    const prefix = uniquePrefix('auth-boot');
    const [dirA, dirB] = [await dataDir(), await dataDir()];
    const env = { AUTH: 'on', REDIS_URL: redis.url, JOBS_PREFIX: prefix };
    const [a, b] = await Promise.all([start(env, dirA, 'named'), start(env, dirB, 'named')]);
    const logged = [a, b].filter((n) => firstKeyLog(n).lines.length > 0);
    expect(logged).toHaveLength(1);
    const [maker] = logged;
    const other = maker === a ? b : a;
    const token = loggedToken(maker, String(maker.port));
    expect(firstKeyLog(other).tokens).toEqual([]);
    // The key works on both nodes, and is the only key.
    for (const n of [a, b]) await expectAdmin(n, token);
    expect(((await call(b, 'GET', '/v1/keys', token)).json!.keys as unknown[]).length).toBe(1);
    // Redis holds its hash, not its secret.
    const dump = await dumpRedis(redis.url);
    expectNoSecretForms(dump, [token]);
    expect(hashLocations(dump, [token])[token]).toEqual([`redis hash ${prefix}:auth:keys`]);

    // The node that made it restarts on the same Redis and DATA_DIR: no new key.
    await maker.stop();
    const again = await start(env, maker === a ? dirA : dirB, 'named');
    expect(firstKeyLog(again)).toEqual({ lines: [], tokens: [] });
    await expectAdmin(again, token);
    await expectAdmin(other, token);
  });

  it('keys in the object store (no Redis): logged once with PORT=0 named as a placeholder; a restart on the same DATA_DIR logs none', async () => {
    const dir = await dataDir();
    const first = await start({ AUTH: 'on' }, dir);
    expect(first.logs(), first.logs()).toContain('keys live in the object store');
    const token = loggedToken(first, '<port>');
    await expectAdmin(first, token);
    const file = path.join(dir, 'store', 'auth', 'keys', `${idOf(token)}.json`);
    const stored = await fs.readFile(file, 'utf8');
    expect(stored).not.toContain(secretOf(token));
    expect(JSON.parse(stored)).toMatchObject({ name: 'admin (first start)', scopes: ['admin'] });

    await first.stop();
    const again = await start({ AUTH: 'on' }, dir);
    expect(firstKeyLog(again)).toEqual({ lines: [], tokens: [] });
    await expectAdmin(again, token);
  });

  it('HEARTH_ADMIN_KEY: no key is logged; a restart with a new secret, then with a new id, refuses the key before', async () => {
    const dir = await dataDir();
    const env = { AUTH: 'on', REDIS_URL: redis.url, JOBS_PREFIX: uniquePrefix('auth-admin') };
    const old = adminToken();
    const first = await start({ ...env, HEARTH_ADMIN_KEY: old }, dir);
    expect(firstKeyLog(first)).toEqual({ lines: [], tokens: [] });
    expect(first.logs()).toContain(`admin key hk_${idOf(old)}_... installed from HEARTH_ADMIN_KEY`);
    await expectAdmin(first, old);

    await first.stop();
    const rotated = `hk_${idOf(old)}_${secretOf(adminToken())}`;
    const again = await start({ ...env, HEARTH_ADMIN_KEY: rotated }, dir);
    expect(firstKeyLog(again)).toEqual({ lines: [], tokens: [] });
    await expectAdmin(again, rotated);
    expectUnauthenticated(await call(again, 'GET', '/v1/keys', old));

    // A key of another id in the variable: the one it held before is revoked (and said so in the log).
    await again.stop();
    const other = adminToken();
    const third = await start({ ...env, HEARTH_ADMIN_KEY: other }, dir);
    await expectAdmin(third, other);
    expectUnauthenticated(await call(third, 'GET', '/v1/keys', rotated));
    expect(third.logs()).toContain(`revoked hk_${idOf(rotated)}_..., installed from an earlier HEARTH_ADMIN_KEY`);
  });

  it('HOST=127.0.0.1 without AUTH: a warning that AUTH is off, and /v1/models answers without a key', async () => {
    const n = await start({ HOST: '127.0.0.1' }, await dataDir());
    const warn = logLines(n).filter((l) => l.component === 'auth' && l.msg.startsWith('AUTH is off'));
    expect(warn).toHaveLength(1);
    expect(warn[0].level).toBe(40);
    expect(warn[0].msg).toContain(`127.0.0.1:0 may call every route`);
    const models = await call(n, 'GET', '/v1/models');
    expect(models.status, models.body.toString()).toBe(200);
    // No key routes and no key made.
    expect((await call(n, 'GET', '/v1/keys')).status).toBe(404);
    expect(firstKeyLog(n)).toEqual({ lines: [], tokens: [] });
  });
});
