// Datasets: PUT /v1/datasets/{name} streams a JSON Lines body into the store; they need only the store, so they
// keep working without Redis.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Datasets } from '../jobs/index.ts';

/**
 * After a refused upload, the most of its body read on (and dropped) while the client reads the answer: above what
 * socket buffers hold in flight (a few MB), so a client still writing sees the answer before the connection goes...
 */
const DISCARD_BYTES = 64 * 1024 * 1024;
/** ...and for how long after the answer (as nginx's lingering close), before the connection is closed. */
const DISCARD_MS = 3_000;

export interface DatasetsRoutesOptions {
  datasets: Datasets;
}

export async function datasetsRoutes(app: FastifyInstance, opts: DatasetsRoutesOptions): Promise<void> {
  const datasets = opts.datasets;
  // Any body type passes through unparsed (this plugin's scope only), so a large dataset is never buffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.put<{ Params: { name: string } }>('/v1/datasets/:name', async (req, reply) => {
    const body = req.body as NodeJS.ReadableStream | undefined;
    const declared = Number(req.headers['content-length']);
    try {
      const upload = await datasets.put(req.params.name, (body ?? req.raw) as import('node:stream').Readable, Number.isSafeInteger(declared) ? declared : undefined);
      reply.code(201).header('location', `/v1/datasets/${req.params.name}`).send(upload);
    } catch (e) {
      if (!req.raw.complete) discardThenClose(req.raw, reply.raw);
      throw e;
    }
  });

  app.get('/v1/datasets', async () => ({ datasets: await datasets.list() }));

  app.get<{ Params: { name: string } }>('/v1/datasets/:name', async (req) => datasets.stat(req.params.name));

  app.delete<{ Params: { name: string } }>('/v1/datasets/:name', async (req, reply) => {
    await datasets.delete(req.params.name);
    reply.code(204).send();
  });
}

/**
 * The rest of a refused body may still be on its way. Closing at once would reset the connection under a client
 * still writing, which then often never reads the answer; reading on without end would let it send for ever. So
 * the answer goes out on an open connection (even when the client asked for "Connection: close", which would make
 * Node close it the moment the answer is written), the body is read on and dropped, and the connection is closed
 * once DISCARD_BYTES more arrived or DISCARD_MS passed after the answer (a body that ends first closes nothing).
 */
function discardThenClose(req: IncomingMessage, res: ServerResponse): void {
  res.shouldKeepAlive = true;
  let bytes = 0;
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  const destroy = () => {
    if (!ended) req.socket?.destroy?.();
  };
  const close = () => {
    clearTimeout(timer);
    if (res.writableFinished) destroy();
    else res.once('finish', destroy);
  };
  req.on('data', (c: Buffer) => {
    bytes += c.length;
    if (bytes > DISCARD_BYTES) {
      req.pause();
      close();
    }
  });
  req.once('end', () => {
    ended = true;
    clearTimeout(timer);
  });
  req.resume();
  res.once('finish', () => {
    if (!ended && !req.complete) timer = setTimeout(close, DISCARD_MS).unref();
  });
}
