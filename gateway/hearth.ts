// createHearth: builds every component from the config (store, registry, uploader, and as they land the executor,
// jobs and ledger), hands them to buildApp, and knows how to close them again. main.ts and tests both use it.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { systemClock, type Clock, type Config } from '../core/index.ts';
import { InspectionQueue, inspectModel } from '../functions/index.ts';
import {
  ArtifactCache,
  createObjectStore,
  ModelRegistry,
  ModelUploader,
  type ModelInspector,
  type ObjectStore,
} from '../model-store/index.ts';
import { createExecutor } from '../executor/index.ts';
import { buildApp, type AppDeps } from './app.ts';
import { startOps } from './ops-wiring.ts';
import { statusBody } from './ops-routes.ts';
import { EventsHub } from './events.ts';
import { createJobs, type WorkerTuning } from '../jobs/index.ts';
import { bootstrapAdminKey, openKeyStore } from './auth/index.ts';

export interface HearthOverrides {
  clock?: Clock;
  /** A store to use instead of the one the config names (init() is still called). */
  store?: ObjectStore;
  /** Replaces the real inspection (a throwaway worker that loads the model). */
  inspector?: ModelInspector;
  /** true: log at LOG_LEVEL to stdout (main.ts); a pino logger: log through it; default: nothing is logged. */
  logger?: boolean | Logger;
  /** Batch jobs: Redis URL, key prefix and worker tuning (tests use short locks and back-offs). */
  jobs?: { redisUrl?: string; prefix?: string; workerOptions?: Partial<WorkerTuning> };
}

export interface Hearth {
  app: FastifyInstance;
  /** The node's logger (components log through children of it). */
  log: Logger;
  deps: AppDeps;
  /** Stops the HTTP server and every component, in reverse order of creation. */
  close(): Promise<void>;
  /** Instance threads stuck inside native code: process.exit() would wait for them for ever (main.ts). */
  busyNativeThreads(): number;
}

/** Staging folders older than this at start-up were left by a crash. */
const STALE_STAGING_MS = 3_600_000;

export async function createHearth(config: Readonly<Config>, overrides: HearthOverrides = {}): Promise<Hearth> {
  const clock = overrides.clock ?? systemClock;
  // One logger for the node; each component logs through a child that names it ({"component": "jobs"}).
  const logger = typeof overrides.logger === 'object' ? overrides.logger : pino({ level: overrides.logger ? config.logLevel : 'silent' });
  const closers: (() => Promise<void>)[] = [];
  const store = overrides.store ?? createObjectStore(config.store, { timeoutMs: config.limits.storeTimeoutMs });
  closers.push(() => store.close());
  try {
    await store.init();
    const storeLog = logger.child({ component: 'store' });
    storeLog.info(describeStore(config, store), 'object store ready');
    const registry = new ModelRegistry(store, { clock, keepAliveMs: config.executor.keepAliveMs });
    const stagingDir = path.join(config.cacheDir, 'staging');
    await sweepStaging(stagingDir);
    // Inspections run in child processes bounded in time and memory, a few at a time; close() kills those running.
    const inspections = new InspectionQueue({ concurrency: config.limits.inspectConcurrency, queueSize: config.limits.inspectQueueSize });
    const closing = new AbortController();
    closers.push(async () => closing.abort(new Error('the node is shutting down')));
    const { inspectTimeoutMs: timeoutMs, inspectMaxRssMb: maxRssMb } = config.limits;
    const inspector: ModelInspector = (dir, format, signal) => {
      const stop = signal ? AbortSignal.any([signal, closing.signal]) : closing.signal;
      return inspections.run(() => inspectModel(dir, format, { timeoutMs, maxRssMb, signal: stop }), stop);
    };
    const uploader = new ModelUploader({
      registry,
      inspector: overrides.inspector ?? inspector,
      stagingDir,
      maxModelBytes: config.maxModelBytes,
      maxArchiveFiles: config.limits.maxArchiveFiles,
      clock,
    });
    const deps: AppDeps = { config, clock, store, registry, uploader };
    // Inference: the node-local artifact cache in front of the store, and the executor (its idle instances are
    // retired by the autoscaler's keep-alive policy, started below with the ops side).
    const artifacts = new ArtifactCache({
      dir: config.cacheDir,
      maxBytes: config.cacheMaxBytes,
      clock,
      openFile: (m, p) => registry.openFile(m, p),
    });
    // The executor's warnings: a stored serving config clamped to this node, a stuck run, an observer that threw.
    const executorLog = logger.child({ component: 'executor' });
    const executor = createExecutor({
      config,
      clock,
      artifacts,
      getConfig: (name) => registry.getServingConfig(name),
      // Pools are made only for a version's current upload (never for a deleted one a job or a cache still names).
      currentManifest: (name, version) => registry.getManifest(name, version),
      log: executorLog,
    });
    closers.push(() => executor.close());
    deps.executor = executor;
    const { slots, memoryMb, prewarmWorkers } = config.executor;
    executorLog.info({ slots, memoryMb, prewarmWorkers }, `executor ready: ${slots} CPU slots, ${memoryMb} MB for instances`);
    // Components added by later issues are built here, each pushing its close() onto `closers`.
    // Batch jobs: start() never waits for Redis; closed before the executor, so running chunks can hand back.
    const jobs = createJobs({ config, store, registry, executor, log: logger.child({ component: 'jobs' }), ...overrides.jobs });
    jobs.start();
    closers.push(() => jobs.close());
    deps.jobs = jobs;

    // Operations (issue 5): cost ledger (Redis if it answers, else a store snapshot), autoscaler and metrics,
    // fed by the executor's observer hooks. The executor retires no idle instance on its own: the autoscaler's
    // keep-alive policy (fixed or histogram) decides when idle instances go.
    const opsLog = logger.child({ component: 'ops' });
    // The dashboard's live feed hears the executor through the same fan-out as the autoscaler and the ledger.
    const events = new EventsHub({ clock, heartbeatMs: Math.min(15_000, Math.floor(config.limits.connectionTimeoutMs / 3)) });
    const ops = await startOps({
      config,
      clock,
      executor,
      store,
      observers: [events.observer],
      onError: (err) => opsLog.warn({ err }, 'autoscaler or ledger error'),
    });
    closers.push(() => ops.close());
    events.start({
      status: () => statusBody(ops.autoscaler, () => executor.control.node()),
      jobs: async (caller) => (jobs.available() ? (await jobs.service.list({ limit: 20 }, caller)).jobs : undefined),
    });
    closers.push(async () => events.close());
    deps.events = events;
    opsLog.info({ ledger: ops.ledgerPersistence }, `cost ledger: ${ops.ledgerPersistence}`);
    Object.assign(deps, { autoscaler: ops.autoscaler, ledger: ops.ledger, metrics: ops.metrics, poolControl: executor.control });

    // Identity: API keys in Redis when it answers (one read per request, so a revocation holds on every node at
    // once), else in the object store. With AUTH off (the default on loopback) every route is open.
    const authLog = logger.child({ component: 'auth' });
    if (config.auth.enabled) {
      const keys = await openKeyStore({
        redisUrl: overrides.jobs?.redisUrl ?? config.redisUrl,
        prefix: overrides.jobs?.prefix ?? config.jobs.prefix,
        store,
        clock,
      });
      closers.push(() => keys.close());
      deps.keys = keys;
      await bootstrapAdminKey(keys, config, clock, authLog);
      const where = `AUTH is on: every route but the health checks needs an API key; keys live in ${keys.describe}`;
      // Keys in the store while Redis is configured: other nodes on the Redis do not share this node's keys.
      if (keys.redis) authLog.info(where);
      else authLog.warn(`${where}; nodes that share only the object store see each other's keys within a second`);
    } else {
      authLog.warn(
        `AUTH is off: anyone who can reach ${config.host}:${config.port} may call every route (set AUTH=on, or HOST to a non-loopback address)`,
      );
    }
    deps.audit = logger.child({ component: 'audit' });
    const https = config.tls ? { cert: await fs.readFile(config.tls.certFile), key: await fs.readFile(config.tls.keyFile) } : undefined;

    // No logger at all when nothing is logged: fastify then skips its per-request child loggers.
    const app = await buildApp(deps, {
      logger: overrides.logger ? logger.child({ component: 'http' }) : false,
      ...(https ? { https } : {}),
    });
    closers.push(() => closeHttp(app, config.limits.shutdownTimeoutMs));
    // A crashed upload leaves a version folder with no manifest; sweep those without holding up start-up.
    void registry.sweepIncomplete().then(
      (swept) => swept.length && storeLog.info({ swept }, 'removed incomplete uploads'),
      (err) => storeLog.warn({ err }, 'sweeping incomplete uploads failed'),
    );
    return { app, log: logger, deps, close: () => closeAll(closers), busyNativeThreads: () => executor.busyNativeThreads() };
  } catch (e) {
    await closeAll(closers);
    throw e;
  }
}

/** Where the models live, for the start-up line (never the S3 credentials). */
function describeStore(config: Readonly<Config>, store: ObjectStore): Record<string, string> {
  const s = config.store;
  return s.kind === 's3' ? { kind: store.kind, endpoint: s.endpoint, bucket: s.bucket } : { kind: store.kind, root: s.root };
}

async function closeAll(closers: (() => Promise<void>)[]): Promise<void> {
  for (const close of closers.splice(0).reverse()) {
    await close().catch(() => {});
  }
}

/**
 * Stops accepting, lets requests in flight finish for up to `deadlineMs` (SHUTDOWN_TIMEOUT_MS), then closes every
 * connection still open (a trickling upload, a long inference), so a shutdown never waits on a client.
 */
async function closeHttp(app: FastifyInstance, deadlineMs: number): Promise<void> {
  const timer = setTimeout(() => {
    app.log.warn(`requests still in flight after SHUTDOWN_TIMEOUT_MS (${deadlineMs} ms): closing every connection`);
    app.server.closeAllConnections();
  }, deadlineMs);
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
}

async function sweepStaging(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  for (const name of await fs.readdir(dir)) {
    const full = path.join(dir, name);
    const st = await fs.stat(full).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > STALE_STAGING_MS) await fs.rm(full, { recursive: true, force: true });
  }
}
