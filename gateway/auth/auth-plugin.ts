// Identity on every call: the Bearer key is checked against the key store, then the route's rule (scopes, model
// patterns), then the key's own bounds (requests in flight on this node, body size); the rate limit per key
// follows (@fastify/rate-limit, on Redis when keys live there). Writes leave one audit line each.
import { Transform, type Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { Logger } from 'pino';
import { hearthError, HearthError, type Clock, type Config } from '../../core/index.ts';
import { effectiveLimits, modelAllowed, parseToken, tokenMatches, type KeyRecord, type RateLimit } from './keys.ts';
import type { KeyStore } from './key-store.ts';
import { ruleFor, type RouteRule } from './route-rules.ts';

/** Who sent a request, when AUTH is on. */
export interface Identity {
  key: KeyRecord;
  rateLimit: RateLimit;
  maxInFlight: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's key; undefined when AUTH is off or on a public route. */
    identity?: Identity;
    /** What a write made, for its audit line (a new key's id and name). */
    auditDetail?: Record<string, unknown>;
  }
  interface FastifyInstance {
    /** Every route registered after installAuth, with its rule (tests walk it). */
    authRoutes: { method: string; url: string; rule: RouteRule }[];
  }
  interface FastifyContextConfig {
    auth?: RouteRule;
  }
}

/** Counters for /metrics, per key id. */
export interface AuthCounters {
  authFailure(keyId: string): void;
  rateLimited(keyId: string): void;
}

export interface AuthOptions {
  config: Readonly<Config>;
  clock: Clock;
  /** The key store; required when AUTH is on. */
  keys?: KeyStore;
  counters?: AuthCounters;
  /** Where audit lines go ({"component": "audit"}). */
  audit: Pick<Logger, 'info'>;
}

const WWW_AUTHENTICATE = 'Bearer realm="hearth"';

/** Adds the hooks to the root instance; call before any route is registered. */
export async function installAuth(app: FastifyInstance, o: AuthOptions): Promise<void> {
  const enabled = o.config.auth.enabled;
  if (enabled && !o.keys) throw new Error('AUTH is on but no key store was given');
  const inFlight = new Map<string, number>();

  app.decorateRequest('identity', undefined);
  app.decorateRequest('auditDetail', undefined);
  const routes: FastifyInstance['authRoutes'] = [];
  app.decorate('authRoutes', routes);
  // Every route gets its rule at registration; one without a rule stops the node from starting.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) {
      // The table decides; a route outside it (one a test adds) may carry its own rule in its config.
      const rule =
        route.url === '/metrics' && o.config.auth.metricsPublic ? { public: true as const } : (ruleFor(m, route.url) ?? route.config?.auth);
      if (!rule) throw new Error(`route ${m} ${route.url} has no auth rule in gateway/auth/route-rules.ts`);
      route.config = { ...(route.config ?? {}), auth: rule };
      routes.push({ method: m, url: route.url, rule });
    }
  });

  if (enabled) {
    const keys = o.keys!;
    app.addHook('onRequest', async (req, reply) => {
      const rule = req.routeOptions.config.auth;
      // No route (a 404) or a public one: nothing to check.
      if (!rule || rule.public) return;
      const identity = await authenticate(req, keys, o);
      // Set before the rule is checked, so a write refused 403 is audited with the key that tried it.
      req.identity = identity;
      authorize(identity.key, rule, req);
      const maxBody = identity.key.maxBodyBytes;
      if (maxBody !== undefined) checkDeclaredBody(req, maxBody);
      const n = inFlight.get(identity.key.id) ?? 0;
      if (n >= identity.maxInFlight) {
        o.counters?.rateLimited(identity.key.id);
        throw new HearthError(
          'RATE_LIMITED',
          `key ${identity.key.id} already has ${n} requests in flight on this node (its maxInFlight); wait for one to finish`,
          { headers: { 'retry-after': '1' } },
        );
      }
      inFlight.set(identity.key.id, n + 1);
      reply.raw.once('close', () => {
        const left = (inFlight.get(identity.key.id) ?? 1) - 1;
        if (left <= 0) inFlight.delete(identity.key.id);
        else inFlight.set(identity.key.id, left);
      });
    });

    // A body sent without Content-Length is counted as it is read, and cut at the key's maxBodyBytes.
    app.addHook('preParsing', async (req, _reply, payload) => {
      const maxBody = req.identity?.key.maxBodyBytes;
      if (maxBody === undefined) return payload;
      return capBody(payload, maxBody, req.identity!.key.id, (e) => ((req as CappedRequest)[BODY_CAP] = e));
    });

    await app.register(rateLimit, {
      global: true,
      hook: 'onRequest',
      // Keys, never addresses: requests without an identity (AUTH off, public routes) are not limited here.
      allowList: (req) => req.identity === undefined,
      // (keyGenerator runs before allowList, on public routes too.)
      keyGenerator: (req) => req.identity?.key.id ?? '',
      max: (req) => req.identity?.rateLimit.max ?? 1,
      timeWindow: (req) => req.identity?.rateLimit.windowMs ?? 1000,
      ...(keys.redis ? { redis: keys.redis, nameSpace: `${keys.prefix}:ratelimit:` } : {}),
      // Redis away: let requests through rather than refuse everyone (the key itself was still checked).
      skipOnError: true,
      enableDraftSpec: true,
      onExceeded: (req) => o.counters?.rateLimited(req.identity!.key.id),
      errorResponseBuilder: (req, ctx) =>
        new HearthError('RATE_LIMITED', `key ${req.identity!.key.id} is past its rate limit of ${ctx.max} requests per ${ctx.after}`),
    });
  }

  // One audit line per write (route, key, outcome), whether AUTH is on or off.
  app.addHook('onResponse', async (req, reply) => {
    const rule = req.routeOptions.config.auth;
    if (!rule?.audit) return;
    const k = req.identity?.key;
    const status = reply.statusCode;
    o.audit.info(
      {
        audit: {
          key: k ? { id: k.id, name: k.name } : null,
          method: req.method,
          route: req.routeOptions.url,
          params: req.params,
          ...(req.auditDetail ? { detail: req.auditDetail } : {}),
          status,
          outcome: status < 400 ? 'done' : status === 401 || status === 403 || status === 429 ? 'refused' : 'failed',
        },
      },
      `audit ${req.method} ${req.routeOptions.url} ${status}`,
    );
  });
}

async function authenticate(req: FastifyRequest, keys: KeyStore, o: AuthOptions): Promise<Identity> {
  const header = req.headers.authorization;
  const refuse = (keyId: string, message: string, invalid: boolean) => {
    o.counters?.authFailure(keyId);
    return new HearthError('UNAUTHENTICATED', message, {
      headers: { 'www-authenticate': invalid ? `${WWW_AUTHENTICATE}, error="invalid_token"` : WWW_AUTHENTICATE },
    });
  };
  if (header === undefined) throw refuse('none', 'this route needs an API key: send "Authorization: Bearer hk_..."', false);
  const m = /^Bearer +(\S+) *$/i.exec(header);
  if (!m) throw refuse('none', 'the Authorization header must be "Bearer <key>"', true);
  const token = m[1];
  const parsed = parseToken(token);
  const rec = parsed ? await keys.get(parsed.id) : undefined;
  // Same answer for a malformed, unknown or revoked key, and for a wrong secret: nothing to probe.
  if (!rec || !tokenMatches(token, rec.hash)) throw refuse(rec ? rec.id : 'unknown', 'the API key is unknown or revoked', true);
  if (rec.expiresAt !== undefined && o.clock.now() >= rec.expiresAt)
    throw refuse(rec.id, `the API key ${rec.id} expired at ${new Date(rec.expiresAt).toISOString()}`, true);
  return { key: rec, ...effectiveLimits(rec) };
}

/** Throws 403 FORBIDDEN naming what the key lacks. */
function authorize(key: KeyRecord, rule: RouteRule, req: FastifyRequest): void {
  if (key.scopes.includes('admin')) return;
  const scopes = rule.scopes ?? [];
  if (scopes !== 'any' && !scopes.some((s) => key.scopes.includes(s))) {
    throw hearthError(
      'FORBIDDEN',
      `key ${key.id} lacks the scope ${scopes.map((s) => `"${s}"`).join(' or ')} needed for ${req.method} ${req.routeOptions.url}`,
    );
  }
  if (rule.nodeWide && key.models)
    throw hearthError('FORBIDDEN', `key ${key.id} is limited to some models and ${req.routeOptions.url} shows every model`);
  if (rule.model) {
    const name = (req.params as { name?: string }).name ?? '';
    if (!modelAllowed(key, name)) throw hearthError('FORBIDDEN', `key ${key.id} may not use model "${name.slice(0, 100)}"`);
  }
}

/** 403 unless the caller may use `model` (for a model named in a body, such as a job's). */
export function checkModelAccess(req: FastifyRequest, model: string): void {
  const key = req.identity?.key;
  if (key && !key.scopes.includes('admin') && !modelAllowed(key, model))
    throw hearthError('FORBIDDEN', `key ${key.id} may not use model "${model.slice(0, 100)}"`);
}

/** Keeps only the names the caller may see (a key limited to some models sees only those). */
export function visibleModels<T>(req: FastifyRequest, items: T[], name: (t: T) => string): T[] {
  const key = req.identity?.key;
  if (!key?.models || key.scopes.includes('admin')) return items;
  return items.filter((t) => modelAllowed(key, name(t)));
}

/** The owner recorded on jobs and datasets: the key's id, or undefined when AUTH is off. */
export function ownerOf(req: FastifyRequest): { owner?: string; admin: boolean } {
  const key = req.identity?.key;
  return key ? { owner: key.id, admin: key.scopes.includes('admin') } : { admin: true };
}

function checkDeclaredBody(req: FastifyRequest, maxBody: number): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBody) {
    throw hearthError('PAYLOAD_TOO_LARGE', `the body is ${declared} bytes; this key may send at most ${maxBody} (its maxBodyBytes)`);
  }
  // A multipart upload is read from the socket past the body hooks: its size must be declared to be bounded.
  if (req.headers['content-length'] === undefined && /^multipart\//i.test(req.headers['content-type'] ?? '')) {
    throw hearthError('LENGTH_REQUIRED', `this key (maxBodyBytes ${maxBody}) must send multipart uploads with a Content-Length`);
  }
}

const BODY_CAP = Symbol('bodyCap');
type CappedRequest = FastifyRequest & { [BODY_CAP]?: HearthError };

/**
 * The refusal of a body cut at its key's maxBodyBytes. Each route reads its body its own way and words a broken
 * stream its own way; the error handler answers this instead, so the client learns which limit it passed.
 */
export function bodyCapError(req: FastifyRequest): HearthError | undefined {
  return (req as CappedRequest)[BODY_CAP];
}

function capBody(payload: Readable, maxBody: number, keyId: string, onCut: (e: HearthError) => void): Readable {
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen <= maxBody) return done(null, chunk);
      const e = hearthError('PAYLOAD_TOO_LARGE', `the body passed ${maxBody} bytes, the most key ${keyId} may send (its maxBodyBytes)`);
      onCut(e);
      done(e);
    },
  });
  payload.on('error', (e) => counter.destroy(e));
  // A route may not be reading yet when the cut comes (an upload waits for its version first): without a listener
  // the error would be uncaught and end the process. The route sees a destroyed stream when it reads.
  counter.on('error', () => {});
  return payload.pipe(counter);
}
