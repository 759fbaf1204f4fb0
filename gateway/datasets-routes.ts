// Datasets: PUT /v1/datasets/{name} streams a JSON Lines body into the store; they need only the store, so they
// keep working without Redis.
import type { FastifyInstance } from 'fastify';
import type { Datasets } from '../jobs/index.ts';

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
    // A refusal mid-body is answered by the app's error handler, which lets the client finish sending first.
    const upload = await datasets.put(req.params.name, (body ?? req.raw) as import('node:stream').Readable, Number.isSafeInteger(declared) ? declared : undefined);
    reply.code(201).header('location', `/v1/datasets/${req.params.name}`).send(upload);
  });

  app.get('/v1/datasets', async () => ({ datasets: await datasets.list() }));

  app.get<{ Params: { name: string } }>('/v1/datasets/:name', async (req) => datasets.stat(req.params.name));

  app.delete<{ Params: { name: string } }>('/v1/datasets/:name', async (req, reply) => {
    await datasets.delete(req.params.name);
    reply.code(204).send();
  });
}
