// API keys as values: the token format, hashing and comparison, the limits a key gets, model patterns, the strict
// POST /v1/keys body, and the AUTH / HEARTH_ADMIN_KEY settings. No server: these are the rules the routes apply.
import { describe, expect, it } from 'vitest';
import { API_KEY_PATTERN, ConfigError, loadConfig } from '../../../core/index.ts';
import {
  SCOPE_DEFAULTS,
  SCOPES,
  effectiveLimits,
  hashToken,
  modelAllowed,
  newToken,
  parseKeyRequest,
  parseToken,
  tokenMatches,
  type KeyRecord,
  type Scope,
} from '../../../gateway/auth/index.ts';
import { hearthFailure } from '../../helpers/errors.ts';

const NOW = Date.parse('2026-12-01T00:00:00Z');

function record(fields: Partial<KeyRecord> & { scopes: Scope[] }): KeyRecord {
  return { id: 'abcd', name: 'k', createdAt: NOW, hash: '0'.repeat(64), ...fields };
}

describe('tokens', () => {
  it('newToken makes hk_<12 hex>_<43 base64url> tokens that parseToken reads back, each different', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const { id, token } = newToken();
      expect(token).toMatch(/^hk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
      expect(token.startsWith(`hk_${id}_`)).toBe(true);
      expect(API_KEY_PATTERN.test(token)).toBe(true);
      expect(parseToken(token)).toEqual({ id });
      seen.add(token);
      seen.add(id);
    }
    expect(seen.size).toBe(100);
  });

  it('parseToken refuses anything not hk_<id 4-32 [a-z0-9]>_<secret 32-128 [A-Za-z0-9_-]>', () => {
    const secret = 'S'.repeat(32);
    expect(parseToken(`hk_abcd_${secret}`)).toEqual({ id: 'abcd' });
    expect(parseToken(`hk_${'a'.repeat(32)}_${'x'.repeat(128)}`)).toEqual({ id: 'a'.repeat(32) });
    for (const bad of [
      '',
      `hk_abc_${secret}`, // id too short
      `hk_${'a'.repeat(33)}_${secret}`, // id too long
      `hk_ABCD_${secret}`, // upper-case id
      `hk_ab-d_${secret}`,
      `hk_abcd_${'S'.repeat(31)}`, // secret too short
      `hk_abcd_${'S'.repeat(129)}`, // secret too long
      `hk_abcd_${'S'.repeat(31)}=`,
      `HK_abcd_${secret}`,
      `xk_abcd_${secret}`,
      `hk_abcd_${secret} `,
      ` hk_abcd_${secret}`,
      `hk_abcd_${secret}\n`,
      `Bearer hk_abcd_${secret}`,
    ]) {
      expect(parseToken(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });

  it('hashToken is sha256 hex of the whole token; tokenMatches takes only that token', () => {
    const { token } = newToken();
    const hash = hashToken(token);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hashToken(token)).toBe(hash);
    expect(tokenMatches(token, hash)).toBe(true);
    // Same id, another secret (one character changed, at the end and at the start of the secret).
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    expect(tokenMatches(token.slice(0, -1) + last, hash)).toBe(false);
    const [, id, secret] = API_KEY_PATTERN.exec(token)!;
    expect(tokenMatches(`hk_${id}_${secret[0] === 'A' ? 'B' : 'A'}${secret.slice(1)}`, hash)).toBe(false);
    // Same secret under another id: the whole token is hashed, not only the secret.
    expect(tokenMatches(`hk_ffffffffffff_${secret}`, hash)).toBe(id === 'ffffffffffff');
    // A stored hash of another length (truncated, empty, not hex) never matches and never throws.
    expect(tokenMatches(token, hash.slice(0, 62))).toBe(false);
    expect(tokenMatches(token, hash + '00')).toBe(false);
    expect(tokenMatches(token, '')).toBe(false);
    expect(tokenMatches(token, 'not hex at all')).toBe(false);
  });
});

describe('effectiveLimits', () => {
  it('takes the key’s own settings when it has them', () => {
    const k = record({ scopes: ['infer'], rateLimit: { max: 3, windowMs: 60_000 }, maxInFlight: 2 });
    expect(effectiveLimits(k)).toEqual({ rateLimit: { max: 3, windowMs: 60_000 }, maxInFlight: 2 });
  });

  it('else the scope defaults, the most generous of several scopes', () => {
    for (const s of SCOPES) expect(effectiveLimits(record({ scopes: [s] }))).toEqual(SCOPE_DEFAULTS[s]);
    // models:write alone: 600/min and 8 in flight; with jobs (1200/min, 16) the larger of each.
    expect(effectiveLimits(record({ scopes: ['models:write', 'jobs'] }))).toEqual({
      rateLimit: SCOPE_DEFAULTS.jobs.rateLimit,
      maxInFlight: SCOPE_DEFAULTS.jobs.maxInFlight,
    });
    // Order does not matter.
    expect(effectiveLimits(record({ scopes: ['jobs', 'models:write'] }))).toEqual(
      effectiveLimits(record({ scopes: ['models:write', 'jobs'] })),
    );
    // infer has the highest rate; admin and infer share the highest in-flight.
    const all = effectiveLimits(record({ scopes: [...SCOPES] }));
    expect(all.rateLimit).toEqual(SCOPE_DEFAULTS.infer.rateLimit);
    expect(all.maxInFlight).toBe(Math.max(...SCOPES.map((s) => SCOPE_DEFAULTS[s].maxInFlight)));
    // One own setting, the other from the defaults.
    expect(effectiveLimits(record({ scopes: ['jobs'], maxInFlight: 1 }))).toEqual({
      rateLimit: SCOPE_DEFAULTS.jobs.rateLimit,
      maxInFlight: 1,
    });
  });
});

describe('modelAllowed', () => {
  it('lets a key without patterns use every model', () => {
    expect(modelAllowed({}, 'anything')).toBe(true);
  });

  it('matches exact names, `*` globs and `*` alone', () => {
    const k = { models: ['vad', 'ocr-*'] };
    expect(modelAllowed(k, 'vad')).toBe(true);
    expect(modelAllowed(k, 'vad2')).toBe(false);
    expect(modelAllowed(k, 'xvad')).toBe(false);
    expect(modelAllowed(k, 'ocr-1')).toBe(true);
    expect(modelAllowed(k, 'ocr-')).toBe(true);
    expect(modelAllowed(k, 'ocr-a.b-c')).toBe(true);
    expect(modelAllowed(k, 'ocr')).toBe(false);
    expect(modelAllowed(k, 'xocr-1')).toBe(false);
    expect(modelAllowed(k, 'other')).toBe(false);
    expect(modelAllowed(k, '')).toBe(false);
    expect(modelAllowed({ models: ['*'] }, 'anything')).toBe(true);
    expect(modelAllowed({ models: ['*-v2'] }, 'ocr-v2')).toBe(true);
    expect(modelAllowed({ models: ['*-v2'] }, 'ocr-v2x')).toBe(false);
    expect(modelAllowed({ models: ['a*b*c'] }, 'a1b2c')).toBe(true);
    expect(modelAllowed({ models: ['a*b*c'] }, 'a1c')).toBe(false);
  });

  it('treats `.` in a pattern as a dot, not as any character', () => {
    expect(modelAllowed({ models: ['m.v*'] }, 'm.v1')).toBe(true);
    expect(modelAllowed({ models: ['m.v*'] }, 'mxv1')).toBe(false);
    expect(modelAllowed({ models: ['m.v'] }, 'mxv')).toBe(false);
  });
});

describe('parseKeyRequest', () => {
  const ok = { name: 'ci', scopes: ['infer'] };
  const refused = (body: unknown) => hearthFailure(() => parseKeyRequest(body, NOW));

  it('accepts a full request and keeps every field, with scopes de-duplicated and expiresAt as epoch ms', () => {
    const r = parseKeyRequest(
      {
        name: 'ocr team',
        scopes: ['infer', 'models:read', 'infer'],
        models: ['vad', 'ocr-*'],
        rateLimit: { max: 3, windowMs: 60_000 },
        maxInFlight: 2,
        maxBodyBytes: 1000,
        expiresAt: '2027-01-01T00:00:00Z',
      },
      NOW,
    );
    expect(r).toEqual({
      name: 'ocr team',
      scopes: ['infer', 'models:read'],
      models: ['vad', 'ocr-*'],
      rateLimit: { max: 3, windowMs: 60_000 },
      maxInFlight: 2,
      maxBodyBytes: 1000,
      expiresAt: Date.parse('2027-01-01T00:00:00Z'),
    });
    expect(parseKeyRequest(ok, NOW)).toEqual(ok);
  });

  it('refuses a body that is not an object', () => {
    for (const b of [null, [], 'x', 3, undefined]) expect(refused(b).code).toBe('INVALID_REQUEST');
  });

  it('refuses an unknown field, naming it', () => {
    const e = refused({ ...ok, secret: 'mine' });
    expect(e.code).toBe('INVALID_REQUEST');
    expect(e.message).toContain('secret');
    // id and hash are the server's to choose.
    expect(refused({ ...ok, id: 'abcd' }).message).toContain('unknown field');
    expect(refused({ ...ok, hash: 'x' }).message).toContain('unknown field');
  });

  it('refuses a bad name', () => {
    for (const name of [undefined, '', '   ', 3, 'a'.repeat(101), 'tab\there', 'nl\n']) {
      const e = refused({ ...ok, name });
      expect(e.code).toBe('INVALID_REQUEST');
      expect(e.message).toContain('"name"');
    }
    expect(parseKeyRequest({ ...ok, name: 'a'.repeat(100) }, NOW).name).toHaveLength(100);
  });

  it('refuses a missing, empty or unknown scope', () => {
    for (const scopes of [undefined, [], 'infer', ['infer', 'root'], ['Admin'], ['functions:write'], [1]]) {
      const e = refused({ ...ok, scopes });
      expect(e.code, JSON.stringify(scopes)).toBe('INVALID_REQUEST');
      expect(e.message).toContain('"scopes"');
    }
    expect(refused({ ...ok, scopes: ['root'] }).message).toContain('root');
  });

  it('refuses bad model patterns', () => {
    for (const models of [[], 'vad', ['VAD'], ['a b'], ['../x'], ['x/y'], [''], [3], ['-x'], ['a'.repeat(101)]]) {
      const e = refused({ ...ok, models });
      expect(e.code, JSON.stringify(models)).toBe('INVALID_REQUEST');
      expect(e.message).toContain('"models"');
    }
    expect(refused({ ...ok, models: Array.from({ length: 65 }, (_, i) => `m${i}`) }).message).toContain('"models"');
    expect(parseKeyRequest({ ...ok, models: ['*', 'ocr-*', 'a.b_c-1'] }, NOW).models).toEqual(['*', 'ocr-*', 'a.b_c-1']);
  });

  it('bounds rateLimit, maxInFlight and maxBodyBytes', () => {
    for (const [rateLimit, field] of [
      [{ max: 0, windowMs: 60_000 }, 'rateLimit.max'],
      [{ max: 1.5, windowMs: 60_000 }, 'rateLimit.max'],
      [{ max: 1e9 + 1, windowMs: 60_000 }, 'rateLimit.max'],
      [{ max: '3', windowMs: 60_000 }, 'rateLimit.max'],
      [{ windowMs: 60_000 }, 'rateLimit.max'],
      [{ max: 3, windowMs: 999 }, 'rateLimit.windowMs'],
      [{ max: 3, windowMs: 86_400_001 }, 'rateLimit.windowMs'],
      [{ max: 3 }, 'rateLimit.windowMs'],
      [{ max: 3, windowMs: 60_000, burst: 1 }, 'rateLimit'],
      [null, 'rateLimit'],
      [7, 'rateLimit'],
    ] as const) {
      const e = refused({ ...ok, rateLimit });
      expect(e.code, JSON.stringify(rateLimit)).toBe('INVALID_REQUEST');
      expect(e.message).toContain(field);
    }
    expect(parseKeyRequest({ ...ok, rateLimit: { max: 1, windowMs: 1000 } }, NOW).rateLimit).toEqual({ max: 1, windowMs: 1000 });
    expect(parseKeyRequest({ ...ok, rateLimit: { max: 1e9, windowMs: 86_400_000 } }, NOW).rateLimit).toEqual({
      max: 1e9,
      windowMs: 86_400_000,
    });
    for (const v of [0, -1, 1.5, '2', 100_001]) expect(refused({ ...ok, maxInFlight: v }).message).toContain('maxInFlight');
    for (const v of [0, -1, 0.5, '2', 2 ** 53]) expect(refused({ ...ok, maxBodyBytes: v }).message).toContain('maxBodyBytes');
  });

  it('refuses an expiresAt in the past, now, or not a date', () => {
    expect(refused({ ...ok, expiresAt: new Date(NOW - 1000).toISOString() }).message).toContain('past');
    expect(refused({ ...ok, expiresAt: new Date(NOW).toISOString() }).message).toContain('past');
    for (const expiresAt of ['tomorrow', '', NOW + 60_000, null, '2027-13-45T00:00:00Z']) {
      const e = refused({ ...ok, expiresAt });
      expect(e.code, JSON.stringify(expiresAt)).toBe('INVALID_REQUEST');
      expect(e.message).toContain('"expiresAt"');
    }
    expect(parseKeyRequest({ ...ok, expiresAt: new Date(NOW + 1).toISOString() }, NOW).expiresAt).toBe(NOW + 1);
  });
});

describe('AUTH and HEARTH_ADMIN_KEY settings', () => {
  const configError = (env: Record<string, string>): ConfigError => {
    try {
      loadConfig(env);
    } catch (e) {
      if (e instanceof ConfigError) return e;
      throw e;
    }
    throw new Error(`loadConfig(${JSON.stringify(env)}) did not throw`);
  };

  it('AUTH is on by default on a non-loopback HOST and off on loopback', () => {
    expect(loadConfig({ HOST: '0.0.0.0' }).auth.enabled).toBe(true);
    expect(loadConfig({ HOST: '::' }).auth.enabled).toBe(true);
    expect(loadConfig({ HOST: '192.0.2.10' }).auth.enabled).toBe(true);
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST'])
      expect(loadConfig({ HOST: host }).auth.enabled, host).toBe(false);
    // No HOST: 127.0.0.1.
    expect(loadConfig({}).auth.enabled).toBe(false);
    expect(loadConfig({ HOST: '0.0.0.0', AUTH: '' }).auth.enabled).toBe(true);
  });

  it('AUTH=on and AUTH=off win over the default either way', () => {
    expect(loadConfig({ HOST: '127.0.0.1', AUTH: 'on' }).auth.enabled).toBe(true);
    expect(loadConfig({ HOST: '0.0.0.0', AUTH: 'off' }).auth.enabled).toBe(false);
    expect(loadConfig({ HOST: '0.0.0.0', AUTH: 'OFF' }).auth.enabled).toBe(false);
  });

  it('refuses any other AUTH value', () => {
    for (const v of ['bogus', 'true', '1', 'yes']) {
      const e = configError({ AUTH: v });
      expect(e.variable).toBe('AUTH');
      expect(e.message).toContain('on or off');
    }
  });

  it('takes a well-formed HEARTH_ADMIN_KEY and refuses a bad one without echoing it', () => {
    const good = 'hk_admin_' + 'x'.repeat(40);
    expect(loadConfig({ AUTH: 'on', HEARTH_ADMIN_KEY: good }).auth.adminKey).toBe(good);
    for (const bad of [
      'hk_admin_' + 'Z'.repeat(31), // secret too short
      'hk_ADMIN_' + 'Zq'.repeat(20),
      'sk-' + 'Zq9'.repeat(20),
      'hk_admin_' + 'Zq9'.repeat(20) + '!',
      'hk_admin_' + 'Zq9'.repeat(43), // secret too long
    ]) {
      const e = configError({ AUTH: 'on', HEARTH_ADMIN_KEY: bad });
      expect(e.variable).toBe('HEARTH_ADMIN_KEY');
      expect(e.message).not.toContain(bad);
      // Not even the secret part of it.
      expect(e.message).not.toContain(bad.slice(9, 30));
      expect(e.message).not.toContain('Zq');
    }
  });
});
