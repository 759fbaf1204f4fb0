// Every registered route against this file's own table of what it needs (issue 15: "a table-driven test that walks
// the registered routes, so a new route without an auth decision fails the test"). The table below is written out
// here, not read from gateway/auth/route-rules.ts: a route added to the app (and to ROUTE_RULES) fails the first
// test until someone decides here what it should need, and a rule changed there fails the walk.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { Scope } from '../../../gateway/auth/index.ts';
import { startTestHearth, type TestHearth } from '../../helpers/app.ts';
import { startTestRedis, type TestRedis } from '../../helpers/redis.ts';
import { sileroBytes } from '../../helpers/model-bodies.ts';

const ADMIN_KEY = 'hk_admin_' + 'x'.repeat(40);
const SCOPES: readonly Scope[] = ['admin', 'models:write', 'models:read', 'infer', 'jobs'];

interface Need {
  /** public: no key needed; any: any valid key; else one of these scopes (admin passes every rule). */
  need: 'public' | 'any' | readonly Scope[];
  /** :name is a model: a key's model patterns apply. */
  model?: true;
  /** Shows every model on the node: a key limited to some models is refused. */
  nodeWide?: true;
}

const PUBLIC: Need = { need: 'public' };
const READ: readonly Scope[] = ['models:read'];
const WRITE: readonly Scope[] = ['models:write'];
const READ_OR_INFER: readonly Scope[] = ['models:read', 'infer'];
const JOBS: readonly Scope[] = ['jobs'];
const ADMIN: readonly Scope[] = ['admin'];

/** `METHOD url` → what it needs. HEAD routes (fastify adds one per GET) are expected to need what their GET needs. */
const EXPECTED: Record<string, Need> = {
  'GET /v2/health/live': PUBLIC,
  'GET /v2/health/ready': PUBLIC,
  'GET /v2': { need: 'any' },

  'GET /metrics': { need: READ, nodeWide: true },
  'GET /v1/status': { need: READ, nodeWide: true },
  'GET /v1/costs': { need: READ, nodeWide: true },
  // The dashboard: its files hold no data; its event stream shows every model.
  'GET /': PUBLIC,
  'GET /ui/*': PUBLIC,
  'GET /v1/events': { need: READ, nodeWide: true },

  'GET /v1/models': { need: READ },
  'GET /v1/models/:name': { need: READ, model: true },
  'GET /v1/models/:name/versions/:version': { need: READ, model: true },
  'GET /v1/models/:name/config': { need: READ, model: true },
  'GET /v1/models/:name/keep-alive': { need: READ, model: true },
  'GET /v1/models/:name/requests': { need: READ, model: true },
  'POST /v1/models/:name': { need: WRITE, model: true },
  'PUT /v1/models/:name/versions/:version': { need: WRITE, model: true },
  'DELETE /v1/models/:name': { need: WRITE, model: true },
  'DELETE /v1/models/:name/versions/:version': { need: WRITE, model: true },
  'PUT /v1/models/:name/config': { need: WRITE, model: true },

  'GET /v2/models/:name': { need: READ_OR_INFER, model: true },
  'GET /v2/models/:name/versions/:version': { need: READ_OR_INFER, model: true },
  'GET /v2/models/:name/ready': { need: READ_OR_INFER, model: true },
  'GET /v2/models/:name/versions/:version/ready': { need: READ_OR_INFER, model: true },
  'GET /v2/models/:name/config': { need: READ_OR_INFER, model: true },
  'GET /v2/models/:name/versions/:version/config': { need: READ_OR_INFER, model: true },
  'POST /v2/models/:name/infer': { need: ['infer'], model: true },
  'POST /v2/models/:name/versions/:version/infer': { need: ['infer'], model: true },
  'GET /v2/models/stats': { need: READ, nodeWide: true },
  'GET /v2/models/:name/stats': { need: READ, model: true },
  'GET /v2/models/:name/versions/:version/stats': { need: READ, model: true },
  'POST /v2/repository/index': { need: READ },
  'POST /v2/repository/models/:name/load': { need: WRITE, model: true },
  'POST /v2/repository/models/:name/unload': { need: WRITE, model: true },

  'POST /v1/jobs': { need: JOBS },
  'GET /v1/jobs': { need: JOBS },
  'GET /v1/jobs/:id': { need: JOBS },
  'DELETE /v1/jobs/:id': { need: JOBS },
  'GET /v1/jobs/:id/results': { need: JOBS },
  // A dataset's name is not a model's: model patterns do not apply.
  'PUT /v1/datasets/:name': { need: JOBS },
  'GET /v1/datasets': { need: JOBS },
  'GET /v1/datasets/:name': { need: JOBS },
  'DELETE /v1/datasets/:name': { need: JOBS },

  'POST /v1/keys': { need: ADMIN },
  'GET /v1/keys': { need: ADMIN },
  'GET /v1/keys/:id': { need: ADMIN },
  'DELETE /v1/keys/:id': { need: ADMIN },
};

/** The expected table with each GET's HEAD, as `METHOD url` → need. */
function expectedRoutes(): Map<string, Need> {
  const out = new Map<string, Need>();
  for (const [route, need] of Object.entries(EXPECTED)) {
    out.set(route, need);
    if (route.startsWith('GET ')) out.set(`HEAD ${route.slice(4)}`, need);
  }
  return out;
}

/** One file the dashboard's build wrote (the test set-up builds dist/), for `/ui/*`. */
const UI_FILE = fs.readdirSync(path.resolve(import.meta.dirname, '../../../dist/ui')).find((f) => f !== 'index.html');

/** A request for a route: :name filled with `model`, :version 1, :id an id nothing has; writes carry `{}`. */
function requestFor(route: string, model: string, token?: string): InjectOptions {
  const [method, pattern] = route.split(' ');
  const url = pattern
    .replace(':name', model)
    .replace(':version', '1')
    .replace(':id', 'abcd0000')
    .replace('*', UI_FILE ?? 'missing');
  const write = method === 'POST' || method === 'PUT';
  return {
    method,
    url,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(write ? { 'content-type': 'application/json' } : {}),
    },
    ...(write ? { payload: '{}' } : {}),
  };
}

interface Answer {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  json<T>(): T;
}

/**
 * Sends one request through inject. The event stream never ends on its own: its answer is read as a stream, and a
 * 200 is closed at once (a refusal is read whole).
 */
async function send(app: FastifyInstance, opts: InjectOptions): Promise<Answer> {
  if (!(typeof opts.url === 'string' ? opts.url : '').startsWith('/v1/events')) return app.inject(opts);
  const res = await app.inject({ ...opts, payloadAsStream: true });
  const stream = res.stream();
  let body = '';
  if (res.statusCode === 200 || opts.method === 'HEAD') stream.destroy();
  else for await (const c of stream) body += String(c);
  return { statusCode: res.statusCode, headers: res.headers, body, json: <T>() => JSON.parse(body) as T };
}

/** A short account of an answer, for the failure list. */
function shown(route: string, who: string, res: Answer): string {
  return `${route} as ${who}: ${res.statusCode} ${res.body.slice(0, 160)}`;
}

describe('auth rule of every route', () => {
  let redis: TestRedis;
  let h: TestHearth;
  const tokens = new Map<Scope, string>();
  /** Every non-admin scope, limited to the models vad and ocr-*. */
  let limited: string;

  const admin = { authorization: `Bearer ${ADMIN_KEY}` };
  async function createKey(body: Record<string, unknown>): Promise<string> {
    const res = await h.app.inject({ method: 'POST', url: '/v1/keys', headers: admin, payload: body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<{ key: string }>().key;
  }

  beforeAll(async () => {
    redis = await startTestRedis();
    h = await startTestHearth({
      env: { AUTH: 'on', HEARTH_ADMIN_KEY: ADMIN_KEY },
      overrides: { jobs: { redisUrl: redis.url } },
    });
    for (const s of SCOPES) tokens.set(s, await createKey({ name: `only ${s}`, scopes: [s] }));
    limited = await createKey({ name: 'limited', scopes: ['models:read', 'models:write', 'infer', 'jobs'], models: ['vad', 'ocr-*'] });
  });
  afterAll(async () => {
    await h?.close();
    await redis?.close();
  });

  it('the registered routes are exactly this table’s (a route missing here fails)', () => {
    const actual = h.app.authRoutes.map((r) => `${r.method} ${r.url}`).sort();
    expect(new Set(actual).size).toBe(actual.length);
    expect(actual).toEqual([...expectedRoutes().keys()].sort());
  });

  it('each scope passes exactly the routes that name it; no key gets 401 with WWW-Authenticate: Bearer', async () => {
    const wrong: string[] = [];
    for (const [route, { need }] of expectedRoutes()) {
      const head = route.startsWith('HEAD ');
      for (const scope of SCOPES) {
        const res = await send(h.app, requestFor(route, 'vad', tokens.get(scope)));
        const allowed = need === 'public' || need === 'any' || scope === 'admin' || need.includes(scope);
        if (allowed) {
          if (res.statusCode === 401 || res.statusCode === 403) wrong.push(`expected a pass: ${shown(route, scope, res)}`);
          continue;
        }
        if (res.statusCode !== 403) {
          wrong.push(`expected 403: ${shown(route, scope, res)}`);
          continue;
        }
        // HEAD answers carry no body.
        if (head) continue;
        const body = res.json<{ code: string; error: string }>();
        const named = need.every((s) => body.error.includes(`"${s}"`));
        if (body.code !== 'FORBIDDEN' || !named) wrong.push(`expected FORBIDDEN naming ${need.join(' or ')}: ${shown(route, scope, res)}`);
      }
      const anon = await send(h.app, requestFor(route, 'vad'));
      if (need === 'public') {
        if (anon.statusCode >= 400) wrong.push(`expected a public answer: ${shown(route, 'no key', anon)}`);
        continue;
      }
      if (anon.statusCode !== 401 || !/^Bearer\b/.test(String(anon.headers['www-authenticate'])))
        wrong.push(
          `expected 401 with WWW-Authenticate: Bearer: ${shown(route, 'no key', anon)} ${String(anon.headers['www-authenticate'])}`,
        );
      else if (!head && anon.json<{ code: string }>().code !== 'UNAUTHENTICATED')
        wrong.push(`expected UNAUTHENTICATED: ${shown(route, 'no key', anon)}`);
    }
    expect(wrong).toEqual([]);
  });

  it('a key limited to vad and ocr-* may use those models only, and no route that shows every model', async () => {
    const wrong: string[] = [];
    const passes = (route: string, model: string, res: Answer) => {
      if (res.statusCode === 401 || res.statusCode === 403) wrong.push(`expected a pass: ${shown(route, `limited on ${model}`, res)}`);
    };
    const refused = (route: string, res: Answer, says: string) => {
      if (res.statusCode !== 403) wrong.push(`expected 403: ${shown(route, 'limited', res)}`);
      else if (!route.startsWith('HEAD ') && !res.json<{ error: string }>().error.includes(says))
        wrong.push(`expected a message with ${says}: ${shown(route, 'limited', res)}`);
    };
    for (const [route, { need, model, nodeWide }] of expectedRoutes()) {
      if (need === 'public' || need === 'any') continue;
      if (need.includes('admin')) {
        refused(route, await send(h.app, requestFor(route, 'vad', limited)), '"admin"');
      } else if (nodeWide) {
        refused(route, await send(h.app, requestFor(route, 'vad', limited)), 'limited to some models');
      } else if (model) {
        refused(route, await send(h.app, requestFor(route, 'other', limited)), 'may not use model "other"');
        // A name that only contains an allowed one is still another model.
        refused(route, await send(h.app, requestFor(route, 'xocr-1', limited)), 'may not use model "xocr-1"');
        passes(route, 'ocr-1', await send(h.app, requestFor(route, 'ocr-1', limited)));
        passes(route, 'vad', await send(h.app, requestFor(route, 'vad', limited)));
      } else {
        // Routes that name no model (jobs, datasets, the model list) take the key as any other.
        passes(route, 'other', await send(h.app, requestFor(route, 'other', limited)));
      }
    }
    expect(wrong).toEqual([]);
    // The node-wide routes the brief names, spelled out.
    for (const url of ['/v1/status', '/v1/costs', '/metrics', '/v2/models/stats']) {
      const res = await h.app.inject({ url, headers: { authorization: `Bearer ${limited}` } });
      expect(res.statusCode, url).toBe(403);
      expect(res.json().code).toBe('FORBIDDEN');
    }
    // A job names its model in the body: the same patterns apply.
    const job = (model: string) =>
      h.app.inject({ method: 'POST', url: '/v1/jobs', headers: { authorization: `Bearer ${limited}` }, payload: { model, input: 'rows' } });
    const other = await job('other');
    expect(other.statusCode).toBe(403);
    expect(other.json().error).toContain('may not use model "other"');
    expect([401, 403]).not.toContain((await job('ocr-1')).statusCode);
  });

  it('GET /v1/models and POST /v2/repository/index list only the models a limited key may use', async () => {
    for (const name of ['vad', 'ocr-1', 'other']) {
      const res = await h.app.inject({
        method: 'POST',
        url: `/v1/models/${name}`,
        headers: { ...admin, 'content-type': 'application/octet-stream' },
        payload: sileroBytes(),
      });
      expect(res.statusCode, res.body).toBe(201);
    }
    const names = async (token: string) => {
      const res = await h.app.inject({ url: '/v1/models', headers: { authorization: `Bearer ${token}` } });
      expect(res.statusCode).toBe(200);
      return res
        .json<{ models: { name: string }[] }>()
        .models.map((m) => m.name)
        .sort();
    };
    expect(await names(ADMIN_KEY)).toEqual(['ocr-1', 'other', 'vad']);
    expect(await names(tokens.get('models:read')!)).toEqual(['ocr-1', 'other', 'vad']);
    expect(await names(limited)).toEqual(['ocr-1', 'vad']);
    const index = await h.app.inject({
      method: 'POST',
      url: '/v2/repository/index',
      headers: { authorization: `Bearer ${limited}`, 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(index.statusCode).toBe(200);
    expect([...new Set(index.json<{ name: string }[]>().map((m) => m.name))].sort()).toEqual(['ocr-1', 'vad']);
  });
});

describe('METRICS_PUBLIC=true', () => {
  let h: TestHearth;
  beforeAll(async () => {
    h = await startTestHearth({ env: { AUTH: 'on', HEARTH_ADMIN_KEY: ADMIN_KEY, METRICS_PUBLIC: 'true' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('opens /metrics and nothing else', async () => {
    expect(h.app.authRoutes.find((r) => r.method === 'GET' && r.url === '/metrics')?.rule).toEqual({ public: true });
    const metrics = await h.app.inject({ url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain('hearth_auth_failures_total');
    for (const url of ['/v1/status', '/v1/costs', '/v2/models/stats', '/v1/models']) {
      expect((await h.app.inject({ url })).statusCode, url).toBe(401);
    }
  });
});
