// core/config: defaults, the fs/s3 switch, and invalid values that name their variable.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../core/index.ts';

describe('loadConfig', () => {
  it('runs on embedded defaults with an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      redisUrl: 'redis://127.0.0.1:6379',
      maxModelBytes: 2 * 1024 ** 3,
      logLevel: 'info',
      deferJsonBytes: 16 * 1024,
    });
    expect(loadConfig({ DEFER_JSON_BYTES: '1024' }).deferJsonBytes).toBe(1024);
    expect(c.dataDir).toBe(path.resolve('./data'));
    expect(c.cacheDir).toBe(path.join(c.dataDir, 'cache'));
    expect(c.store).toEqual({ kind: 'fs', root: path.join(c.dataDir, 'store') });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.store)).toBe(true);
  });

  it('switches to s3 when S3_ENDPOINT is set', () => {
    const c = loadConfig({ S3_ENDPOINT: 'http://127.0.0.1:9000', S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b' });
    expect(c.store).toEqual({
      kind: 's3',
      endpoint: 'http://127.0.0.1:9000',
      accessKey: 'a',
      secretKey: 'b',
      bucket: 'hearth',
      region: 'us-east-1',
    });
  });

  const bad: [Record<string, string>, string][] = [
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ MAX_MODEL_BYTES: '-5' }, 'MAX_MODEL_BYTES'],
    [{ MAX_MODEL_BYTES: '0' }, 'MAX_MODEL_BYTES'],
    [{ S3_ENDPOINT: 'not a url' }, 'S3_ENDPOINT'],
    [{ S3_ENDPOINT: 'ftp://host' }, 'S3_ENDPOINT'],
    [{ S3_ENDPOINT: 'http://127.0.0.1:9000' }, 'S3_ACCESS_KEY'],
    [{ S3_ENDPOINT: 'http://127.0.0.1:9000', S3_ACCESS_KEY: 'a' }, 'S3_SECRET_KEY'],
    [{ S3_BUCKET: 'Bad_Bucket' }, 'S3_BUCKET'],
    [{ REDIS_URL: 'http://127.0.0.1' }, 'REDIS_URL'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ CACHE_MAX_BYTES: 'lots' }, 'CACHE_MAX_BYTES'],
    [{ DEFER_JSON_BYTES: '0' }, 'DEFER_JSON_BYTES'],
    [{ DEFER_JSON_BYTES: '16k' }, 'DEFER_JSON_BYTES'],
    // The autoscaler and its rate windows refuse these later, in a message that names no variable.
    [{ AUTOSCALER_TARGET_UTILIZATION: '0' }, 'AUTOSCALER_TARGET_UTILIZATION'],
    [{ AUTOSCALER_TARGET_UTILIZATION: '1.5' }, 'AUTOSCALER_TARGET_UTILIZATION'],
    [{ AUTOSCALER_STABLE_WINDOW_MS: '5000' }, 'AUTOSCALER_PANIC_WINDOW_MS'],
  ];
  for (const [env, variable] of bad) {
    it(`refuses ${JSON.stringify(env)} naming ${variable}`, () => {
      let err: unknown;
      try {
        loadConfig(env);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe(variable);
      expect((err as ConfigError).message.startsWith(`${variable}:`)).toBe(true);
    });
  }
});

describe("docs/reference/configuration.md's table", () => {
  it('lists every variable that core/config.ts reads', () => {
    const src = fs.readFileSync(new URL('../../core/config.ts', import.meta.url), 'utf8');
    const read = new Set([...src.matchAll(/env\.([A-Z][A-Z0-9_]+)|\(env, '([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1] ?? m[2]));
    const page = fs.readFileSync(new URL('../../docs/reference/configuration.md', import.meta.url), 'utf8');
    const section = page.split(/^## Variables\s*$/m)[1]?.split(/^## /m)[0] ?? '';
    const documented = new Set([...section.matchAll(/^\|\s*`([A-Z][A-Z0-9_]+)`/gm)].map((m) => m[1]));
    expect(read.size).toBeGreaterThan(10);
    expect([...read].filter((v) => !documented.has(v))).toEqual([]);
  });
});

describe('the built node (dist/main.js) with an invalid environment', () => {
  it('exits 1 with a message naming the variable, before starting anything', async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['dist/main.js'], {
      env: { ...process.env, MAX_MODEL_BYTES: 'two gigs', DATA_DIR: path.join(os.tmpdir(), 'hearth-never-created') },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('MAX_MODEL_BYTES');
    expect(fs.existsSync(path.join(os.tmpdir(), 'hearth-never-created'))).toBe(false);
  });
});
