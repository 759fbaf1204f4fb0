// Builds a whole Hearth for a test: temp data and cache folders, the fs store or an s3rver of its own,
// a config from loadConfig (never the process environment), and the app from createHearth.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { loadConfig, type Config } from '../../core/index.ts';
import { createHearth, type Hearth, type HearthOverrides } from '../../gateway/hearth.ts';
import { startS3rver, type S3rverHandle } from './s3rver.ts';

export type StoreBackend = 'fs' | 's3';

export interface TestHearth extends Hearth {
  config: Readonly<Config>;
  dataDir: string;
  /** Where uploads stage their local copies; empty between uploads. */
  stagingDir: string;
  s3?: S3rverHandle;
  /** The key every app.inject() sends, when started with `authScopes`. */
  authKey?: string;
}

export interface TestHearthOptions {
  backend?: StoreBackend;
  /** Extra environment for loadConfig, e.g. { MAX_MODEL_BYTES: '1000' }. */
  env?: Record<string, string>;
  overrides?: HearthOverrides;
  /** Reuse a running s3rver (several apps on one bucket); otherwise an s3 backend starts its own. */
  s3?: S3rverHandle;
  /** Reuse a data folder (a restart); otherwise a fresh temp folder. */
  dataDir?: string;
  /**
   * AUTH on, with a key holding these scopes (made with the admin key TEST_ADMIN_KEY): every app.inject() that sets no
   * Authorization header sends that key, so a suite written for AUTH off runs unchanged as that key.
   */
  authScopes?: string[];
}

/** The admin key of a test Hearth started with `authScopes`. */
export const TEST_ADMIN_KEY = `hk_testadmin_${'a'.repeat(43)}`;

export async function startTestHearth(opts: TestHearthOptions = {}): Promise<TestHearth> {
  const backend = opts.backend ?? 'fs';
  const dataDir = opts.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-test-')));
  const ownS3 = backend === 's3' && !opts.s3 ? await startS3rver() : undefined;
  const s3 = opts.s3 ?? ownS3;
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    // Never the shared Redis on 6379: a port nothing listens on, unless the test names one.
    REDIS_URL: 'redis://127.0.0.1:1',
    EXECUTOR_PREWARM_WORKERS: '0',
    LOG_LEVEL: 'silent',
    ...(s3
      ? {
          S3_ENDPOINT: s3.endpoint,
          S3_ACCESS_KEY: s3.accessKey,
          S3_SECRET_KEY: s3.secretKey,
          S3_REGION: s3.region,
          S3_BUCKET: 'hearth-test',
        }
      : {}),
    ...(opts.authScopes ? { AUTH: 'on', HEARTH_ADMIN_KEY: TEST_ADMIN_KEY } : {}),
    ...opts.env,
  };
  const config = loadConfig(env);
  let hearth: Hearth;
  try {
    hearth = await createHearth(config, opts.overrides);
  } catch (e) {
    await ownS3?.close();
    throw e;
  }
  const authKey = opts.authScopes ? await actAs(hearth, opts.authScopes) : undefined;
  return {
    ...hearth,
    ...(authKey ? { authKey } : {}),
    config,
    dataDir,
    stagingDir: path.join(config.cacheDir, 'staging'),
    s3,
    async close() {
      await hearth.close();
      await ownS3?.close();
      if (!opts.dataDir) await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface UploadLeftovers {
  /** Store keys under models/. Other components (the ledger's snapshot, jobs) write elsewhere in the store. */
  keys: string[];
  /** Files in the fs store's temp folder. */
  temp: string[];
  /** Folders in the upload staging folder. */
  staging: string[];
}

/** Everything an upload could leave behind. */
export async function uploadLeftovers(h: TestHearth): Promise<UploadLeftovers> {
  const keys = (await h.deps.store!.list('models/')).map((o) => o.key);
  const temp = h.config.store.kind === 'fs' ? await fs.readdir(path.join(h.config.store.root, '.hearth-tmp')).catch(() => []) : [];
  const staging = await fs.readdir(h.stagingDir).catch(() => []);
  return { keys, temp, staging };
}

/**
 * The leftovers once they equal `expected`, or the last snapshot after `limitMs`. Other components' writes pass
 * through the fs temp folder for a moment (a ledger snapshot), and a hang-up is cleaned up asynchronously:
 * a real leftover stays, so the caller's equality assertion still fails on it.
 */
export async function settledLeftovers(h: TestHearth, expected: UploadLeftovers, limitMs = 10_000): Promise<UploadLeftovers> {
  const end = Date.now() + limitMs;
  for (;;) {
    const now = await uploadLeftovers(h);
    if (JSON.stringify(now) === JSON.stringify(expected) || Date.now() > end) return now;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The leftovers at a moment when no write is passing through the fs temp folder (the state to compare against). */
export async function restingLeftovers(h: TestHearth, limitMs = 10_000): Promise<UploadLeftovers> {
  const end = Date.now() + limitMs;
  for (;;) {
    const now = await uploadLeftovers(h);
    if (now.temp.length === 0 || Date.now() > end) return now;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Makes a key with `scopes` and has every app.inject() without an Authorization header send it. */
async function actAs(hearth: Hearth, scopes: string[]): Promise<string> {
  const made = await hearth.app.inject({
    method: 'POST',
    url: '/v1/keys',
    headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
    payload: { name: `test ${scopes.join(' ')}`, scopes },
  });
  if (made.statusCode !== 201) throw new Error(`could not make a test key: ${made.body}`);
  const key = made.json<{ key: string }>().key;
  const inject = hearth.app.inject.bind(hearth.app) as (o: InjectOptions | string) => Promise<LightMyRequestResponse>;
  const withKey = (o: InjectOptions | string): InjectOptions => {
    const opts: InjectOptions = typeof o === 'string' ? { url: o } : o;
    const headers = { ...(opts.headers ?? {}) } as Record<string, string>;
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) headers.authorization = `Bearer ${key}`;
    return { ...opts, headers };
  };
  (hearth.app as { inject: unknown }).inject = (o: InjectOptions | string) => inject(withKey(o));
  return key;
}
