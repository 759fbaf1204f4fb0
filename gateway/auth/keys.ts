// API keys: `hk_<id>_<secret>`. The id is public (it names the key in lists, logs and metrics); the secret is 256
// random bits shown once. Only sha256 of the whole token is kept: with that much entropy a slow hash adds nothing,
// and a stolen store holds no usable key.
import crypto from 'node:crypto';
import { API_KEY_PATTERN, hearthError, shown } from '../../core/index.ts';

export const SCOPES = ['admin', 'models:write', 'models:read', 'infer', 'jobs'] as const;
export type Scope = (typeof SCOPES)[number];

/** Requests per window a key may make, by default the largest of its scopes' defaults. */
export interface RateLimit {
  max: number;
  windowMs: number;
}

/** A key as stored: what it was made with, never the secret. */
export interface KeyRecord extends KeyRequest {
  id: string;
  createdAt: number;
  /** hex sha256 of the whole token. */
  hash: string;
  /** Installed from HEARTH_ADMIN_KEY: replaced when the variable names another key. */
  fromEnv?: true;
}

/** What GET /v1/keys shows of a key. */
export type KeyView = Omit<KeyRecord, 'hash' | 'expiresAt' | 'createdAt'> & { createdAt: string; expiresAt?: string };

export function viewOf(k: KeyRecord): KeyView {
  const { hash: _hash, expiresAt, createdAt, ...rest } = k;
  return {
    ...rest,
    createdAt: new Date(createdAt).toISOString(),
    ...(expiresAt !== undefined ? { expiresAt: new Date(expiresAt).toISOString() } : {}),
  };
}

export function hashToken(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}

/** The id of a well-formed token, or undefined. */
export function parseToken(token: string): { id: string } | undefined {
  const m = API_KEY_PATTERN.exec(token);
  return m ? { id: m[1] } : undefined;
}

/** Constant-time comparison of a presented token with a stored hash. */
export function tokenMatches(token: string, hash: string): boolean {
  const a = Buffer.from(hashToken(token), 'hex');
  const b = Buffer.from(hash, 'hex');
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/** A new token: a 12-hex-digit id and 32 random bytes as base64url (43 characters). */
export function newToken(): { id: string; token: string } {
  const id = crypto.randomBytes(6).toString('hex');
  return { id, token: `hk_${id}_${crypto.randomBytes(32).toString('base64url')}` };
}

/** Defaults per scope: a key gets the most generous of its scopes (docs/security.md lists them). */
export const SCOPE_DEFAULTS: Record<Scope, { rateLimit: RateLimit; maxInFlight: number }> = {
  admin: { rateLimit: { max: 6000, windowMs: 60_000 }, maxInFlight: 64 },
  'models:write': { rateLimit: { max: 600, windowMs: 60_000 }, maxInFlight: 8 },
  'models:read': { rateLimit: { max: 6000, windowMs: 60_000 }, maxInFlight: 32 },
  infer: { rateLimit: { max: 60_000, windowMs: 60_000 }, maxInFlight: 64 },
  jobs: { rateLimit: { max: 1200, windowMs: 60_000 }, maxInFlight: 16 },
};

/** The limits that apply to a key: its own settings, else its scopes' defaults. */
export function effectiveLimits(k: KeyRecord): { rateLimit: RateLimit; maxInFlight: number } {
  const defaults = k.scopes.map((s) => SCOPE_DEFAULTS[s]);
  const rateLimit =
    k.rateLimit ??
    defaults.reduce((a, d) => (d.rateLimit.max / d.rateLimit.windowMs > a.max / a.windowMs ? d.rateLimit : a), defaults[0].rateLimit);
  const maxInFlight = k.maxInFlight ?? Math.max(...defaults.map((d) => d.maxInFlight));
  return { rateLimit, maxInFlight };
}

/** `vad`, `ocr-*`, `*`: model names with `*` standing for any run of characters. */
const MODEL_PATTERN = /^[a-z0-9*][a-z0-9._*-]{0,99}$/;

export function modelAllowed(k: Pick<KeyRecord, 'models'>, model: string): boolean {
  if (!k.models) return true;
  return k.models.some((p) => (p.includes('*') ? globRegExp(p).test(model) : p === model));
}

function globRegExp(p: string): RegExp {
  return new RegExp(
    `^${p
      .split('*')
      .map((s) => s.replace(/[.]/g, '\\.'))
      .join('.*')}$`,
  );
}

export const MAX_KEY_NAME = 100;
const MAX_MODEL_PATTERNS = 64;
const CREATE_FIELDS = ['name', 'scopes', 'models', 'rateLimit', 'maxInFlight', 'maxBodyBytes', 'expiresAt'];

/** What POST /v1/keys may set. */
export interface KeyRequest {
  name: string;
  scopes: Scope[];
  /** Model name patterns (`vad`, `ocr-*`) the key may touch; absent: every model. */
  models?: string[];
  rateLimit?: RateLimit;
  /** Most requests of this key in flight on one node at once. */
  maxInFlight?: number;
  /** Largest request body this key may send (on top of the node's own limits). */
  maxBodyBytes?: number;
  /** Epoch ms after which the key is refused. */
  expiresAt?: number;
}

/** Validates a POST /v1/keys body strictly (unknown fields are errors); `now` for expiresAt in the past. */
export function parseKeyRequest(body: unknown, now: number): KeyRequest {
  const bad = (msg: string) => hearthError('INVALID_REQUEST', msg);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('body: expected a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b))
    if (!CREATE_FIELDS.includes(k)) throw bad(`unknown field ${shown(k)}; expected ${CREATE_FIELDS.join(', ')}`);
  if (typeof b.name !== 'string' || b.name.trim() === '' || b.name.length > MAX_KEY_NAME || /[\p{Cc}]/u.test(b.name))
    throw bad(`"name": expected 1-${MAX_KEY_NAME} printable characters`);
  if (!Array.isArray(b.scopes) || b.scopes.length === 0 || b.scopes.length > SCOPES.length)
    throw bad(`"scopes": expected a non-empty array of ${SCOPES.join(', ')}`);
  for (const s of b.scopes as unknown[])
    if (typeof s !== 'string' || !(SCOPES as readonly string[]).includes(s))
      throw bad(`"scopes": ${shown(s)} is not one of ${SCOPES.join(', ')}`);
  const out: KeyRequest = { name: b.name, scopes: [...new Set(b.scopes as Scope[])] };
  if (b.models !== undefined) {
    if (!Array.isArray(b.models) || b.models.length === 0 || b.models.length > MAX_MODEL_PATTERNS)
      throw bad(`"models": expected 1-${MAX_MODEL_PATTERNS} model names or patterns such as "ocr-*"`);
    for (const p of b.models as unknown[])
      if (typeof p !== 'string' || !MODEL_PATTERN.test(p))
        throw bad(`"models": ${shown(p)} is not a model name or a pattern such as "ocr-*"`);
    out.models = b.models as string[];
  }
  if (b.rateLimit !== undefined) {
    const r = b.rateLimit as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || Object.keys(r).some((k) => k !== 'max' && k !== 'windowMs'))
      throw bad('"rateLimit": expected { "max": requests, "windowMs": window length in ms }');
    out.rateLimit = {
      max: wholeNumber('rateLimit.max', r.max, 1, 1e9),
      windowMs: wholeNumber('rateLimit.windowMs', r.windowMs, 1000, 86_400_000),
    };
  }
  if (b.maxInFlight !== undefined) out.maxInFlight = wholeNumber('maxInFlight', b.maxInFlight, 1, 100_000);
  if (b.maxBodyBytes !== undefined) out.maxBodyBytes = wholeNumber('maxBodyBytes', b.maxBodyBytes, 1, Number.MAX_SAFE_INTEGER);
  if (b.expiresAt !== undefined) {
    const t = typeof b.expiresAt === 'string' ? Date.parse(b.expiresAt) : NaN;
    if (!Number.isFinite(t)) throw bad('"expiresAt": expected an ISO 8601 date such as "2027-01-01T00:00:00Z"');
    if (t <= now) throw bad('"expiresAt": the date is in the past');
    out.expiresAt = t;
  }
  return out;
}

function wholeNumber(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    throw hearthError('INVALID_REQUEST', `"${field}": expected a whole number in [${min}, ${max}]`);
  return v;
}
