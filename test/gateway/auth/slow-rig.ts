// Shared by the multi-process auth tests (*.slow.test.ts here): Hearth processes (test/hostile/rig.ts) with AUTH=on,
// calls with a Bearer key, and a dump of everything a node keeps (its Redis, its DATA_DIR) to search for secrets.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import { request, startNode, type HostileNode, type RawResponse, type StartOptions } from '../../hostile/rig.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A well-formed admin token for HEARTH_ADMIN_KEY (id `t` + 8 hex digits, 32 random bytes as base64url). */
export function adminToken(): string {
  return `hk_t${crypto.randomBytes(4).toString('hex')}_${crypto.randomBytes(32).toString('base64url')}`;
}

/** The id of `hk_<id>_<secret>`. */
export const idOf = (token: string): string => token.split('_')[1];
/** The secret of `hk_<id>_<secret>` (which may itself hold `_`). */
export const secretOf = (token: string): string => token.slice(token.indexOf('_', 3) + 1);

/** `hk_<id>_<secret>` anywhere in a text (a log). */
export const TOKEN_IN_TEXT = /hk_[a-z0-9]{4,32}_[A-Za-z0-9_-]{32,128}/g;

/** One request to the node, with `Authorization: Bearer <token>` when a token is given and JSON when a body is. */
export function call(node: HostileNode, method: string, urlPath: string, token?: string, body?: unknown): Promise<RawResponse> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return request(node, { method, path: urlPath, headers, body: body === undefined ? undefined : JSON.stringify(body), timeoutMs: 10_000 });
}

export interface CreatedKey {
  id: string;
  /** The whole token, as POST /v1/keys answered it (once). */
  key: string;
}

/** POST /v1/keys with the admin token; expects 201. */
export async function createKey(node: HostileNode, admin: string, spec: Record<string, unknown>): Promise<CreatedKey> {
  const res = await call(node, 'POST', '/v1/keys', admin, spec);
  expect(res.status, res.body.toString()).toBe(201);
  const { id, key } = res.json as { id: string; key: string };
  expect(key.startsWith(`hk_${id}_`)).toBe(true);
  return { id, key };
}

/** Expects 401 UNAUTHENTICATED with a Bearer challenge. */
export function expectUnauthenticated(res: RawResponse): void {
  expect(res.status, res.body.toString()).toBe(401);
  expect(res.json).toMatchObject({ code: 'UNAUTHENTICATED' });
  expect(String(res.headers['www-authenticate'])).toMatch(/^Bearer /);
}

/** A loopback port free right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * startNode on a PORT chosen here rather than PORT=0, for a node whose log must name its real port (the first-key
 * curl line). A port another process takes between the choice and the listen is chosen again.
 */
export async function startOnFreePort(opts: StartOptions = {}): Promise<HostileNode> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await startNode({ ...opts, env: { ...opts.env, PORT: String(port) } });
    } catch (e) {
      if (attempt >= 3 || !/EADDRINUSE/.test(String(e))) throw e;
    }
  }
}

/** Waits until `count` matches of `re` (global) are in the node's log (lines written after an answer come later). */
export async function logMatches(node: HostileNode, re: RegExp, count: number, timeoutMs = 5000): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  let found = node.logs().match(re) ?? [];
  while (found.length < count && Date.now() < end) {
    await sleep(25);
    found = node.logs().match(re) ?? [];
  }
  return [...found];
}

/** Parsed pino lines of a node's log (other lines are skipped). */
export function logLines(node: HostileNode): { level: number; msg: string; component?: string; [k: string]: unknown }[] {
  const out = [];
  for (const line of node.logs().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // a line cut by the read so far
    }
  }
  return out;
}

/** A piece of stored bytes and where it came from. */
export interface Blob {
  where: string;
  bytes: Buffer;
}

/** Everything in a Redis: each key's name and its whole value, by type; a type not read here fails the dump. */
export async function dumpRedis(url: string): Promise<Blob[]> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const out: Blob[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scanBuffer(cursor, 'COUNT', 1000);
      cursor = next.toString();
      for (const key of keys) {
        const name = key.toString();
        out.push({ where: `redis key name ${name}`, bytes: key });
        const type = await redis.type(key);
        const read: Record<string, () => Promise<unknown>> = {
          string: () => redis.getBuffer(key),
          hash: () => redis.hgetallBuffer(key).then((h) => Object.entries(h).flatMap(([f, v]) => [Buffer.from(f), v])),
          set: () => redis.smembersBuffer(key),
          list: () => redis.lrangeBuffer(key, 0, -1),
          zset: () => redis.zrangeBuffer(key, 0, -1, 'WITHSCORES'),
          stream: () => redis.xrangeBuffer(key, '-', '+'),
        };
        if (!read[type]) throw new Error(`redis key ${name} has type ${type}, which the dump does not read`);
        for (const bytes of flatten(await read[type]())) out.push({ where: `redis ${type} ${name}`, bytes });
      }
    } while (cursor !== '0');
    return out;
  } finally {
    redis.disconnect();
  }
}

function flatten(v: unknown): Buffer[] {
  if (v === null || v === undefined) return [];
  if (Buffer.isBuffer(v)) return [v];
  if (Array.isArray(v)) return v.flatMap(flatten);
  if (typeof v === 'string' || typeof v === 'number') return [Buffer.from(String(v))];
  throw new Error(`the dump met a ${typeof v} it does not read`);
}

/** Every regular file under `dir`, whole. */
export async function dumpDir(dir: string): Promise<Blob[]> {
  const out: Blob[] = [];
  for (const ent of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!ent.isFile()) continue;
    const full = path.join(ent.parentPath, ent.name);
    out.push({ where: full, bytes: await fs.readFile(full) });
  }
  return out;
}

/**
 * The forms a token's secret could be kept in: the token, its secret part as sent, the secret's bytes raw, as hex and
 * as base64, and the whole token as hex and base64.
 */
export function secretForms(token: string): { name: string; bytes: Buffer }[] {
  const secret = secretOf(token);
  const raw = Buffer.from(secret, 'base64url');
  expect(raw.length).toBeGreaterThanOrEqual(24);
  return [
    { name: 'token', bytes: Buffer.from(token) },
    { name: 'secret', bytes: Buffer.from(secret) },
    { name: 'secret bytes', bytes: raw },
    { name: 'secret hex', bytes: Buffer.from(raw.toString('hex')) },
    { name: 'secret HEX', bytes: Buffer.from(raw.toString('hex').toUpperCase()) },
    { name: 'secret base64', bytes: Buffer.from(raw.toString('base64').replace(/=+$/, '')) },
    { name: 'token hex', bytes: Buffer.from(Buffer.from(token).toString('hex')) },
    { name: 'token base64', bytes: Buffer.from(Buffer.from(token).toString('base64').replace(/=+$/, '')) },
  ];
}

export function sha256Hex(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}

/** No form of any token's secret is in the dump (the names of the leaks otherwise). */
export function expectNoSecretForms(blobs: Blob[], tokens: string[]): void {
  expect(blobs.length).toBeGreaterThan(0);
  const leaks: string[] = [];
  for (const token of tokens)
    for (const form of secretForms(token))
      for (const b of blobs) if (b.bytes.includes(form.bytes)) leaks.push(`${form.name} of ${token.slice(0, 16)}... in ${b.where}`);
  expect(leaks).toEqual([]);
}

/** Where each token's sha256 (hex) is in the dump. */
export function hashLocations(blobs: Blob[], tokens: string[]): Record<string, string[]> {
  return Object.fromEntries(tokens.map((t) => [t, blobs.filter((b) => b.bytes.includes(sha256Hex(t))).map((b) => b.where)]));
}
