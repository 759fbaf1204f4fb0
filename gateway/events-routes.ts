// GET /v1/events (the dashboard's Server-Sent Events stream) and GET /v1/models/{name}/requests (a model's recent
// requests, cold against warm). The stream is bounded per node (EVENTS_MAX_CLIENTS, then 503 OVERLOADED), coalesced
// (EventsHub), and ended when its client goes or the node shuts down.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { hearthError } from '../core/index.ts';
import { checkModelName } from '../model-store/index.ts';
import { ownerOf } from './auth/index.ts';
import type { EventsHub, JobsAccess } from './events.ts';

export interface EventsRoutesOptions {
  hub: EventsHub;
  maxClients: number;
}

/** Seconds a client refused for the bound should wait. */
const RETRY_AFTER_S = 5;

export async function eventsRoutes(app: FastifyInstance, opts: EventsRoutesOptions): Promise<void> {
  const { hub, maxClients } = opts;

  // A shutdown ends every stream first, so that closing the server does not wait on them.
  app.addHook('preClose', (done) => {
    hub.close();
    done();
  });

  app.get('/v1/events', async (req, reply) => {
    if (Object.keys(req.query ?? {}).length > 0) throw hearthError('INVALID_REQUEST', 'GET /v1/events takes no query parameters');
    if (hub.clients >= maxClients) {
      throw hearthError('OVERLOADED', `this node already streams events to EVENTS_MAX_CLIENTS (${maxClients}) clients; retry shortly`, {
        headers: { 'retry-after': String(RETRY_AFTER_S) },
      });
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // nginx would otherwise buffer the stream.
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    // A reconnecting client waits this long (EventSource reads it; the dashboard's reader too).
    res.write(`retry: 2000\n\n`);
    res.socket?.setNoDelay(true);
    hub.add(res, jobsAccess(req));
  });

  app.get<{ Params: { name: string } }>('/v1/models/:name/requests', async (req) => {
    checkModelName(req.params.name);
    return { name: req.params.name, requests: hub.recent(req.params.name) };
  });
}

/** The jobs a stream carries: every job with AUTH off or for admin, the key's own with the jobs scope, else none. */
function jobsAccess(req: FastifyRequest): JobsAccess {
  const key = req.identity?.key;
  if (key && !key.scopes.includes('admin') && !key.scopes.includes('jobs')) return undefined;
  return ownerOf(req);
}
