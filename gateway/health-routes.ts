// Open Inference Protocol health: 200 with an empty body means true; "ready" also needs the object store to answer.
// Both are false when every CPU slot is held by a run stuck in native code: nothing can run, and only a restart
// of the process frees those threads, so a supervisor's liveness probe should restart the node.
import type { FastifyInstance } from 'fastify';
import type { NodeBudget } from '../scaling/index.ts';
import type { ObjectStore } from '../model-store/index.ts';
import type { PathScrubber } from './scrub-paths.ts';

export interface HealthRoutesOptions {
  store?: ObjectStore;
  /** The executor's slots and stuck runs. */
  node?: () => NodeBudget;
  /** How long the readiness probe waits for the store. Default 2000 ms. */
  probeTimeoutMs?: number;
  /** The reason header names no server path (an fs store's errno message would). */
  scrubber?: PathScrubber;
}

export async function healthRoutes(app: FastifyInstance, opts: HealthRoutesOptions): Promise<void> {
  const timeoutMs = opts.probeTimeoutMs ?? 2000;

  /** Why nothing can run, when every slot is held by a stuck run. */
  const allStuck = (): string | undefined => {
    const n = opts.node?.();
    const stuck = n?.stuckRuns?.length ?? 0;
    if (!n || stuck === 0 || stuck < n.slots) return undefined;
    return `all ${n.slots} CPU slots are held by runs stuck in native code (${n.stuckRuns!.map((r) => `${r.model}@${r.version}`).join(', ')}); only a restart frees them`;
  };

  app.get('/v2/health/live', async (req, reply) => {
    const stuck = allStuck();
    if (stuck === undefined) return reply.code(200).send();
    req.log.warn({ reason: stuck }, 'not live');
    reply.code(400).header('hearth-not-live', stuck.slice(0, 200)).send();
  });

  app.get('/v2/health/ready', async (req, reply) => {
    const failure = allStuck() ?? (opts.store ? await probe(opts.store, timeoutMs) : undefined);
    const reason = failure !== undefined && opts.scrubber ? opts.scrubber.scrub(failure) : failure;
    if (reason === undefined) return reply.code(200).send();
    // The protocol answers "false" with a 4xx and an empty body; the reason travels in a header for operators.
    req.log.warn({ reason }, 'not ready');
    reply
      .code(400)
      .header('hearth-not-ready', reason.replace(/[\r\n]+/g, ' ').slice(0, 200))
      .send();
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
