// The node's links to Redis. Start-up never waits for Redis: the API connection connects lazily in the background
// and fails fast while Redis is away (no offline queue), so the routes can answer 503 at once; the worker-side
// connection queues commands through an outage (maxRetriesPerRequest: null), as BullMQ workers require.
import { FlowProducer, Queue } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { hearthError, isHearthError, settleWithin } from '../core/index.ts';
import type { JobsLog } from './job-context.ts';

/** Reconnect forever, backing off to at most 1 s, so jobs come back soon after Redis does. */
export function reconnectDelay(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 10), 1000);
}

/** The URL with any password masked, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

export function apiConnection(url: string): Redis {
  const opts: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: reconnectDelay,
  };
  return new Redis(url, opts);
}

export function workerConnection(url: string): Redis {
  const opts: RedisOptions = {
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    connectTimeout: 2000,
    retryStrategy: reconnectDelay,
  };
  return new Redis(url, opts);
}

/** BullMQ queues: one child per chunk, one parent per job (it finalises it; the retention sweep runs there too), callbacks. */
export const CHUNKS = 'chunks';
export const PARENTS = 'jobs';
export const CALLBACKS = 'callbacks';

/**
 * The node's Redis link for jobs: the API connection and the queues on it, set up when Redis first answers, and
 * the worker connection the BullMQ workers share. API calls made while Redis is away answer 503 JOBS_UNAVAILABLE.
 */
export class RedisLink {
  readonly #url: string;
  readonly #prefix: string;
  readonly #onReady: () => void;
  readonly #log: JobsLog;
  #api?: Redis;
  #worker?: Redis;
  #flow?: FlowProducer;
  #parents?: Queue;
  #callbacks?: Queue;
  #ready = false;
  #closing = false;
  #started = false;
  /** An outage was logged: its later errors are not, and the next 'ready' says Redis is back. */
  #outageLogged = false;

  /** `onReady` runs once, when Redis first answers and the queues are set up. */
  constructor(url: string, prefix: string, log: JobsLog, onReady: () => void) {
    this.#url = url;
    this.#prefix = prefix;
    this.#log = log;
    this.#onReady = onReady;
  }

  get prefix(): string {
    return this.#prefix;
  }

  /** Begins connecting in the background; never waits for Redis. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const api = apiConnection(this.#url);
    this.#api = api;
    // It reconnects on its own and availability is read from its status; an outage is logged once.
    api.on('error', (e: Error) => this.#linkError(e));
    api.on('ready', () => {
      if (this.#outageLogged) this.#log.info({ redis: redactUrl(this.#url) }, 'Redis answers again: jobs are available');
      else if (!this.#ready) this.#log.info({ redis: redactUrl(this.#url) }, 'Redis answers: jobs are available');
      this.#outageLogged = false;
      if (!this.#ready && !this.#closing) this.#init();
    });
    // A failed first connect also fires 'error' above.
    api.connect().catch(() => {});
  }

  /** True when Redis answers and the queues are set up. */
  available(): boolean {
    return this.#ready && this.#api?.status === 'ready';
  }

  #init(): void {
    const api = this.#api!;
    this.#ready = true;
    this.#flow = new FlowProducer({ connection: api, prefix: this.#prefix });
    this.#parents = new Queue(PARENTS, { connection: api, prefix: this.#prefix });
    this.#callbacks = new Queue(CALLBACKS, { connection: api, prefix: this.#prefix });
    this.#flow.on('error', (e) => this.#linkError(e));
    this.#parents.on('error', (e) => this.#linkError(e));
    this.#callbacks.on('error', (e) => this.#linkError(e));
    this.#onReady();
  }

  /** The flow producer, parents and callbacks queues; set once available() has been true. */
  get flow(): FlowProducer {
    return this.#flow!;
  }
  get parents(): Queue {
    return this.#parents!;
  }
  get callbacks(): Queue {
    return this.#callbacks!;
  }

  /** Opens the connection the BullMQ workers share (commands queue through an outage). */
  openWorkerConnection(): Redis {
    const w = workerConnection(this.#url);
    w.on('error', (e: Error) => this.#linkError(e));
    this.#worker = w;
    return w;
  }

  /** The workers' connection; set once openWorkerConnection() ran. */
  get worker(): Redis {
    return this.#worker!;
  }

  /** Logs an error of a connection or queue; while Redis is away (retried every second) only the first one. */
  #linkError(e: Error): void {
    if (this.#closing) return;
    const outage = isConnectionError(e) || this.#api?.status !== 'ready';
    if (outage && this.#outageLogged) return;
    if (outage) this.#outageLogged = true;
    this.#log.warn(
      { err: e, redis: redactUrl(this.#url) },
      outage ? 'Redis does not answer: jobs answer 503 JOBS_UNAVAILABLE until it does' : 'jobs Redis error',
    );
  }

  /** The Redis client for API calls, or 503 JOBS_UNAVAILABLE naming REDIS_URL. */
  need(): Redis {
    if (!this.available()) throw this.#unavailable();
    return this.#api!;
  }
  #unavailable(cause?: unknown): Error {
    return hearthError(
      'JOBS_UNAVAILABLE',
      `the job queue is unavailable: Redis at REDIS_URL=${redactUrl(this.#url)} does not answer; inference still works`,
      { cause },
    );
  }
  /** Runs a Redis-backed API call; a connection failure mid-call is a 503 too. */
  async call<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
    const r = this.need();
    try {
      return await fn(r);
    } catch (e) {
      if (isHearthError(e)) throw e;
      if (!this.available() || isConnectionError(e)) throw this.#unavailable(e);
      throw e;
    }
  }

  /** From now on a late first answer from Redis sets nothing up. */
  markClosing(): void {
    this.#closing = true;
  }

  /** Closes the queues and both connections (the workers must be closed first). */
  async close(): Promise<void> {
    this.#closing = true;
    await settleWithin([this.#flow?.close(), this.#parents?.close(), this.#callbacks?.close()], 2_000);
    this.#worker?.disconnect();
    this.#api?.disconnect();
  }
}

function isConnectionError(e: unknown): boolean {
  const m = (e as Error)?.message ?? '';
  return /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|enableOfflineQueue|MaxRetriesPerRequest|Reached the max retries/i.test(
    m,
  );
}
