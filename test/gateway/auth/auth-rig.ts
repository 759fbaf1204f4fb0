// A Hearth with AUTH on for the auth tests: the admin key from HEARTH_ADMIN_KEY, keys in a private Redis (or in the
// object store when none is given), listening on a loopback port, and small clients for it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HearthOverrides } from '../../../gateway/hearth.ts';
import { startTestHearth, type TestHearth } from '../../helpers/app.ts';
import type { TestRedis } from '../../helpers/redis.ts';
import { metric } from '../../helpers/metrics.ts';

export { metric };

export const ADMIN_KEY = 'hk_admin_' + 'x'.repeat(40);

export interface AuthNode {
  h: TestHearth;
  port: number;
  /** JSON in and out over real HTTP; `token` goes in Authorization: Bearer. */
  call(method: string, path: string, opts?: { token?: string; body?: unknown }): Promise<Answer>;
  /** Creates a key with the admin key; its token. */
  createKey(body: Record<string, unknown>): Promise<{ id: string; token: string }>;
  close(): Promise<void>;
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json<T = { code: string; error: string }>(): T;
}

export async function startAuthNode(
  o: { redis?: TestRedis; prefix?: string; env?: Record<string, string>; overrides?: HearthOverrides; dataDir?: string } = {},
): Promise<AuthNode> {
  const start = () =>
    startTestHearth({
      ...(o.dataDir ? { dataDir: o.dataDir } : {}),
      // JOBS_PREFIX keys the key store and the rate limiter alike.
      env: { AUTH: 'on', HEARTH_ADMIN_KEY: ADMIN_KEY, ...(o.prefix ? { JOBS_PREFIX: o.prefix } : {}), ...o.env },
      overrides: { ...o.overrides, ...(o.redis ? { jobs: { redisUrl: o.redis.url, ...o.overrides?.jobs } } : {}) },
    });
  let h = await start();
  // openKeyStore takes Redis only if it answers within 1.2 s of the start, else it keeps the keys in the object
  // store for good; on this 2-core machine under load that happened once (the second node then knew no key made
  // on the first). These tests are about keys in Redis: start again rather than test the other store.
  for (let attempt = 1; o.redis && !h.deps.keys?.redis; attempt++) {
    const fellBack = h.deps.keys?.describe;
    await h.close();
    if (attempt === 3) throw new Error(`the key store was not Redis in three starts: ${fellBack}`);
    h = await start();
  }
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (h.app.server.address() as AddressInfo).port;
  const call: AuthNode['call'] = async (method, path, opts = {}) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: {
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: <T>() => JSON.parse(text) as T };
  };
  return {
    h,
    port,
    call,
    async createKey(body) {
      const res = await call('POST', '/v1/keys', { token: ADMIN_KEY, body });
      if (res.status !== 201) throw new Error(`POST /v1/keys answered ${res.status} ${res.text}`);
      const { id, key } = res.json<{ id: string; key: string }>();
      return { id, token: key };
    },
    close: () => h.close(),
  };
}

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request over node:http, for bodies fetch cannot send as wanted (chunked, held open). */
export function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
): { req: http.ClientRequest; answer: Promise<RawAnswer> } {
  const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false });
  const answer = new Promise<RawAnswer>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  return { req, answer };
}
