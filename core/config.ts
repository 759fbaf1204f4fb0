// Hearth's configuration: one typed schema, read once from the environment, validated strictly
// and frozen. No other module reads process.env.
import os from 'node:os';
import path from 'node:path';

export interface Prices {
  /** USD per GB-second of billed compute (AWS Lambda x86, us-east-1). */
  computePerGbSecond: number;
  /** USD per request. */
  perRequest: number;
  /** USD per GB-second of warm, idle instances (Lambda provisioned concurrency). */
  idlePerGbSecond: number;
  /** USD per GB-month of stored model bytes (S3 Standard). */
  storagePerGbMonth: number;
}

export interface Config {
  /** HTTP port. */
  port: number;
  /** Interface to bind. */
  host: string;
  /** Root of the embedded fs store and of node-local state. */
  dataDir: string;
  /** Node-local artifact cache, keyed by sha256. */
  cacheDir: string;
  /** Upper bound of the artifact cache; least recently used entries are evicted past it. */
  cacheMaxBytes: number;
  /** Object store: 'fs' under dataDir unless S3_ENDPOINT is set. */
  store:
    { kind: 'fs'; root: string } | { kind: 's3'; endpoint: string; accessKey: string; secretKey: string; bucket: string; region: string };
  /** Redis for the job queue and the cost ledger. */
  redisUrl: string;
  /** Largest accepted model upload, in bytes. */
  maxModelBytes: number;
  /**
   * JSON `data` arrays of at least this many bytes are parsed on the instance thread instead of the HTTP thread;
   * smaller ones are parsed as the request arrives, while the instance runs the batch before. Default 16 KiB;
   * docs/performance/decisions.md has the measurements behind it.
   */
  deferJsonBytes: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  executor: {
    /** Model-less workers spawned ahead of need, so a cold start skips the thread spawn. */
    prewarmWorkers: number;
    /** Most inferences running at once on this node. */
    slots: number;
    /** Memory budget for all instances on this node. */
    memoryMb: number;
    /** Default idle time before an instance is retired. */
    keepAliveMs: number;
  };
  autoscaler: {
    tickMs: number;
    /** Arrival-rate averaging window (Knative KPA stable-window). */
    stableWindowMs: number;
    /** Short window that scales up at once on a burst (KPA panic window). */
    panicWindowMs: number;
    /** Share of an instance's concurrency the sizing aims to use. */
    targetUtilization: number;
    /** A pool shrinks only after its desired size stayed lower for this long. */
    scaleDownDelayMs: number;
  };
  jobs: {
    prefix: string;
    /** Most inline `rows` in one job request. */
    maxInlineRows: number;
    /** Most chunks one job may be cut into (each is a store object and a queue entry). */
    maxChunks: number;
    /** Most bytes of rows in one chunk (a single longer row makes a chunk of its own); bounds what a chunk holds. */
    maxChunkBytes: number;
    /** How long a finished job (its record and results) is kept; 0 keeps jobs for ever. */
    retentionMs: number;
  };
  /** Bounds on what one client can make a node hold or do (docs: limits). Every one is a setting. */
  limits: Limits;
  /** Job completion callbacks (POST to a client's URL). */
  callbacks: {
    /** Allow loopback, private, link-local and metadata addresses (tests reach their own listener). Default false. */
    allowPrivate: boolean;
    /** Longest a callback may take to connect. */
    connectTimeoutMs: number;
    /** Longest a callback may take from connect to the end of the answer. */
    responseTimeoutMs: number;
  };
  prices: Prices;
  /** Who may call: API keys with scopes (docs/security.md). */
  auth: {
    /** AUTH: on unless HOST is a loopback address. */
    enabled: boolean;
    /** HEARTH_ADMIN_KEY: an admin key (`hk_<id>_<secret>`) to install at start-up; never logged. */
    adminKey?: string;
    /** METRICS_PUBLIC: /metrics answers without a key. */
    metricsPublic: boolean;
  };
  /** TLS_CERT_FILE and TLS_KEY_FILE: serve HTTPS with this certificate and key (PEM files). */
  tls?: { certFile: string; keyFile: string };
}

export interface Limits {
  /** Largest request body on every route but uploads and datasets (after decompression). */
  maxRequestBytes: number;
  /** Bytes of buffered request bodies held at once by this node; past it new bodies get 503 OVERLOADED. */
  maxBodyBytesInFlight: number;
  /** Most files in one model upload (archive entries or multipart parts). */
  maxArchiveFiles: number;
  /** Largest dataset upload. */
  maxDatasetBytes: number;
  /** Longest line of a dataset (one request body). */
  maxLineBytes: number;
  /** Longest a client may take to send a whole request (headers and body). */
  requestTimeoutMs: number;
  /** Longest a connection may stay silent (no bytes either way) before it is closed. */
  connectionTimeoutMs: number;
  /** Longest a shutdown waits for requests in flight before it closes every connection. */
  shutdownTimeoutMs: number;
  /** Longest one object-store call may go without progress. */
  storeTimeoutMs: number;
  /** Largest output data of one inference response (JSON text, or bytes of binary outputs). */
  maxResponseBytes: number;
  /** Longest the inspection of an upload (loading it once in a child process) may take, child start included. */
  inspectTimeoutMs: number;
  /** Most resident memory an inspection's child process may reach, in MB; never more than executor.memoryMb. */
  inspectMaxRssMb: number;
  /** Inspections running at once on this node. */
  inspectConcurrency: number;
  /** Dashboard event streams (GET /v1/events) open at once on this node; past it 503 OVERLOADED. */
  eventsMaxClients: number;
  /** Uploads waiting for an inspection slot; past it 503 OVERLOADED. */
  inspectQueueSize: number;
}

export const DEFAULT_PRICES: Readonly<Prices> = Object.freeze({
  computePerGbSecond: 0.0000166667,
  perRequest: 0.0000002,
  idlePerGbSecond: 0.0000041667,
  storagePerGbMonth: 0.023,
});

export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  const v = Number(raw.trim());
  if (v < min || v > max) throw new ConfigError(name, `expected a value in [${min}, ${max}], got ${v}`);
  return v;
}

function bool(env: Env, name: string, def: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return def;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConfigError(name, `expected true or false, got "${env[name]}"`);
}

function num(env: Env, name: string, def: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) throw new ConfigError(name, `expected a non-negative number, got "${raw}"`);
  return v;
}

function url(env: Env, name: string, def: string | undefined, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(name, `expected a URL such as ${protocols[0]}//127.0.0.1, got "${raw}"`);
  }
  if (!protocols.includes(u.protocol)) throw new ConfigError(name, `expected a ${protocols.join(' or ')} URL, got "${raw}"`);
  return raw;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Builds the frozen config from an environment; throws ConfigError naming the variable at fault. */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  const dataDir = path.resolve(env.DATA_DIR || './data');
  const cacheDir = path.resolve(env.CACHE_DIR || path.join(dataDir, 'cache'));
  const port = int(env, 'PORT', 8080, 0, 65535);
  const host = env.HOST || '127.0.0.1';
  const s3Endpoint = url(env, 'S3_ENDPOINT', undefined, ['http:', 'https:']);
  const bucket = env.S3_BUCKET || 'hearth';
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new ConfigError('S3_BUCKET', `"${bucket}" is not a valid bucket name`);
  const store: Config['store'] = s3Endpoint
    ? {
        kind: 's3',
        endpoint: s3Endpoint,
        accessKey: env.S3_ACCESS_KEY ?? '',
        secretKey: env.S3_SECRET_KEY ?? '',
        bucket,
        region: env.S3_REGION || 'us-east-1',
      }
    : { kind: 'fs', root: path.join(dataDir, 'store') };
  if (store.kind === 's3' && (!store.accessKey || !store.secretKey)) {
    throw new ConfigError(store.accessKey ? 'S3_SECRET_KEY' : 'S3_ACCESS_KEY', 'required when S3_ENDPOINT is set');
  }
  const logLevel = (env.LOG_LEVEL || 'info') as Config['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('LOG_LEVEL', `expected one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);

  const targetUtilization = num(env, 'AUTOSCALER_TARGET_UTILIZATION', 0.7);
  if (!(targetUtilization > 0 && targetUtilization <= 1)) {
    throw new ConfigError('AUTOSCALER_TARGET_UTILIZATION', `expected a share in (0, 1], got ${targetUtilization}`);
  }
  const stableWindowMs = int(env, 'AUTOSCALER_STABLE_WINDOW_MS', 60_000, 1000);
  const panicWindowMs = int(env, 'AUTOSCALER_PANIC_WINDOW_MS', 6_000, 100);
  if (panicWindowMs > stableWindowMs) {
    throw new ConfigError(
      'AUTOSCALER_PANIC_WINDOW_MS',
      `${panicWindowMs} exceeds AUTOSCALER_STABLE_WINDOW_MS ${stableWindowMs}; the panic window is the shorter one`,
    );
  }

  const executorMemoryMb = int(env, 'EXECUTOR_MEMORY_MB', Math.floor((os.totalmem() / 1024 ** 2) * 0.5), 64);

  const config: Config = {
    port,
    host,
    dataDir,
    cacheDir,
    cacheMaxBytes: int(env, 'CACHE_MAX_BYTES', 10 * 1024 ** 3, 1),
    store,
    redisUrl: url(env, 'REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:'])!,
    maxModelBytes: int(env, 'MAX_MODEL_BYTES', 2 * 1024 ** 3, 1),
    deferJsonBytes: int(env, 'DEFER_JSON_BYTES', 16 * 1024, 1),
    logLevel,
    executor: {
      prewarmWorkers: int(env, 'EXECUTOR_PREWARM_WORKERS', 1, 0, 64),
      slots: int(env, 'EXECUTOR_SLOTS', os.availableParallelism(), 1, 1024),
      memoryMb: executorMemoryMb,
      keepAliveMs: int(env, 'KEEP_ALIVE_MS', 600_000, 0),
    },
    autoscaler: {
      tickMs: int(env, 'AUTOSCALER_TICK_MS', 1000, 10),
      stableWindowMs,
      panicWindowMs,
      targetUtilization,
      scaleDownDelayMs: int(env, 'AUTOSCALER_SCALE_DOWN_DELAY_MS', 30_000, 0),
    },
    jobs: {
      prefix: env.JOBS_PREFIX || 'hearth',
      maxInlineRows: int(env, 'MAX_INLINE_ROWS', 100_000, 1),
      maxChunks: int(env, 'MAX_JOB_CHUNKS', 10_000, 1),
      maxChunkBytes: int(env, 'MAX_CHUNK_BYTES', 16 * 1024 ** 2, 1),
      retentionMs: int(env, 'JOB_RETENTION_MS', 7 * 24 * 3600 * 1000, 0),
    },
    limits: {
      maxRequestBytes: int(env, 'MAX_REQUEST_BYTES', 16 * 1024 ** 2, 1024),
      maxBodyBytesInFlight: int(env, 'MAX_BODY_BYTES_IN_FLIGHT', 256 * 1024 ** 2, 1024),
      maxArchiveFiles: int(env, 'MAX_ARCHIVE_FILES', 1000, 1, 1_000_000),
      maxDatasetBytes: int(env, 'MAX_DATASET_BYTES', 1024 ** 3, 1),
      maxLineBytes: int(env, 'MAX_LINE_BYTES', 16 * 1024 ** 2, 64),
      requestTimeoutMs: int(env, 'REQUEST_TIMEOUT_MS', 300_000, 100),
      connectionTimeoutMs: int(env, 'CONNECTION_TIMEOUT_MS', 120_000, 100),
      shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0),
      storeTimeoutMs: int(env, 'STORE_TIMEOUT_MS', 30_000, 100),
      maxResponseBytes: int(env, 'MAX_RESPONSE_BYTES', 64 * 1024 ** 2, 1024),
      inspectTimeoutMs: int(env, 'INSPECT_TIMEOUT_MS', 120_000, 100),
      // Clamped to the node's memory budget: an inspection may not take more than every instance together.
      inspectMaxRssMb: Math.min(int(env, 'INSPECT_MAX_RSS_MB', 2048, 128), executorMemoryMb),
      inspectConcurrency: int(env, 'INSPECT_CONCURRENCY', 1, 1, 64),
      inspectQueueSize: int(env, 'INSPECT_QUEUE_SIZE', 32, 0, 10_000),
      eventsMaxClients: int(env, 'EVENTS_MAX_CLIENTS', 32, 1, 10_000),
    },
    callbacks: {
      allowPrivate: bool(env, 'CALLBACK_ALLOW_PRIVATE', false),
      connectTimeoutMs: int(env, 'CALLBACK_CONNECT_TIMEOUT_MS', 5_000, 1),
      responseTimeoutMs: int(env, 'CALLBACK_TIMEOUT_MS', 10_000, 1),
    },
    prices: {
      computePerGbSecond: num(env, 'PRICE_COMPUTE_PER_GB_SECOND', DEFAULT_PRICES.computePerGbSecond),
      perRequest: num(env, 'PRICE_PER_REQUEST', DEFAULT_PRICES.perRequest),
      idlePerGbSecond: num(env, 'PRICE_IDLE_PER_GB_SECOND', DEFAULT_PRICES.idlePerGbSecond),
      storagePerGbMonth: num(env, 'PRICE_STORAGE_PER_GB_MONTH', DEFAULT_PRICES.storagePerGbMonth),
    },
    auth: authSettings(env, host),
  };
  const tls = tlsSettings(env);
  if (tls) config.tls = tls;
  return deepFreeze(config);
}

/** An address only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** `hk_<id>_<secret>`: the id public (lower-case letters and digits), the secret at least 32 URL-safe characters. */
export const API_KEY_PATTERN = /^hk_([a-z0-9]{4,32})_([A-Za-z0-9_-]{32,128})$/;

function authSettings(env: Env, host: string): Config['auth'] {
  const raw = env.AUTH?.trim().toLowerCase();
  if (raw !== undefined && raw !== '' && raw !== 'on' && raw !== 'off')
    throw new ConfigError('AUTH', `expected on or off, got "${env.AUTH}"`);
  const enabled = raw === 'on' || ((raw === undefined || raw === '') && !isLoopbackHost(host));
  const adminKey = env.HEARTH_ADMIN_KEY?.trim() || undefined;
  if (adminKey !== undefined && !API_KEY_PATTERN.test(adminKey)) {
    // The value itself is a secret: never echoed.
    throw new ConfigError(
      'HEARTH_ADMIN_KEY',
      'expected hk_<id>_<secret> (id: 4-32 lower-case letters or digits; secret: 32-128 of A-Z a-z 0-9 _ -), e.g. hk_admin_$(openssl rand -hex 32)',
    );
  }
  return { enabled, ...(adminKey ? { adminKey } : {}), metricsPublic: bool(env, 'METRICS_PUBLIC', false) };
}

function tlsSettings(env: Env): Config['tls'] {
  const certFile = env.TLS_CERT_FILE?.trim();
  const keyFile = env.TLS_KEY_FILE?.trim();
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile)
    throw new ConfigError(certFile ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE', 'TLS needs both TLS_CERT_FILE and TLS_KEY_FILE');
  return { certFile: path.resolve(certFile), keyFile: path.resolve(keyFile) };
}

function deepFreeze<T>(o: T): Readonly<T> {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
