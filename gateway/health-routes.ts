// Open Inference Protocol health: 200 with an empty body means true; "ready" also needs the object store to answer.
import type { FastifyInstance } from 'fastify';
import type { ObjectStore } from '../model-store/index.ts';
import type { PathScrubber } from './scrub-paths.ts';

export interface HealthRoutesOptions {
  store?: ObjectStore;
  /** How long the readiness probe waits for the store. Default 2000 ms. */
  probeTimeoutMs?: number;
  /** The reason header names no server path (an fs store's errno message would). */
  scrubber?: PathScrubber;
}

export async function healthRoutes(app: FastifyInstance, opts: HealthRoutesOptions): Promise<void> {
  const timeoutMs = opts.probeTimeoutMs ?? 2000;

  app.get('/v2/health/live', async (_req, reply) => {
    reply.code(200).send();
  });

  app.get('/v2/health/ready', async (req, reply) => {
    const failure = opts.store ? await probe(opts.store, timeoutMs) : undefined;
    const reason = failure !== undefined && opts.scrubber ? opts.scrubber.scrub(failure) : failure;
    if (reason === undefined) return reply.code(200).send();
    // The protocol answers "false" with a 4xx and an empty body; the reason travels in a header for operators.
    req.log.warn({ reason }, 'not ready');
    reply.code(400).header('hearth-not-ready', reason.replace(/[\r\n]+/g, ' ').slice(0, 200)).send();
  });
}

/** undefined when the store answers in time, else why not. */
async function probe(store: ObjectStore, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      store.stat('health/probe'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`object store did not answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return undefined;
  } catch (e) {
    return `object store (${store.kind}) unreachable: ${(e as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}
