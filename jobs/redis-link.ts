// The node's links to Redis. Start-up never waits for Redis: the API connection connects lazily in the background
// and fails fast while Redis is away (no offline queue), so the routes can answer 503 at once; the worker-side
// connection queues commands through an outage (maxRetriesPerRequest: null), as BullMQ workers require.
import { Redis, type RedisOptions } from 'ioredis';

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
