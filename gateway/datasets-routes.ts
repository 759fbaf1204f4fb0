// Datasets: PUT /v1/datasets/{name} streams a JSON Lines body (plain, gzip or deflate) into the store; they need only
// the store, so they keep working without Redis.
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Datasets } from '../jobs/index.ts';
import { bodyDecoder } from './request-body.ts';

export interface DatasetsRoutesOptions {
  datasets: Datasets;
}

export async function datasetsRoutes(app: FastifyInstance, opts: DatasetsRoutesOptions): Promise<void> {
  const datasets = opts.datasets;
  // Any body type passes through unparsed (this plugin's scope only), so a large dataset is never buffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.put<{ Params: { name: string } }>('/v1/datasets/:name', async (req, reply) => {
    const body = (req.body ?? req.raw) as Readable;
    const declared = Number(req.headers['content-length']);
    // gzip or deflate (as Triton-style clients send) is decompressed as it streams; other encodings get 415.
    const { encoding, inflater } = bodyDecoder(req.headers['content-encoding']);
    // A refusal mid-body is answered by the app's error handler, which lets the client finish sending first.
    const upload = await datasets.put(req.params.name, body, {
      ...(Number.isSafeInteger(declared) ? { declaredBytes: declared } : {}),
      ...(inflater ? { inflater, encoding } : {}),
    });
    reply.code(201).header('location', `/v1/datasets/${req.params.name}`).send(upload);
  });

  app.get('/v1/datasets', async () => ({ datasets: await datasets.list() }));

  app.get<{ Params: { name: string } }>('/v1/datasets/:name', async (req) => datasets.stat(req.params.name));

  app.delete<{ Params: { name: string } }>('/v1/datasets/:name', async (req, reply) => {
    await datasets.delete(req.params.name);
    reply.code(204).send();
  });
}
