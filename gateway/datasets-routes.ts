// Datasets: PUT /v1/datasets/{name} streams a JSON Lines body (plain, gzip or deflate) into the store; they need only
// the store, so they keep working without Redis.
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { hearthError } from '../core/index.ts';
import type { Datasets } from '../jobs/index.ts';
import { bodyDecoder } from './request-body.ts';
import { ownerOf } from './auth/index.ts';

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
    const upload = await datasets.put(
      req.params.name,
      body,
      {
        ...(Number.isSafeInteger(declared) ? { declaredBytes: declared } : {}),
        ...(inflater ? { inflater, encoding } : {}),
      },
      ownerOf(req),
    );
    reply.code(201).header('location', `/v1/datasets/${req.params.name}`).send(upload);
  });

  app.get('/v1/datasets', async (req) => ({ datasets: await datasets.list(ownerOf(req)) }));

  // ?owner=<key id>: an admin reaching another key's dataset (for anyone else it is not found).
  app.get<{ Params: { name: string }; Querystring: { owner?: string } }>('/v1/datasets/:name', async (req) =>
    datasets.stat(req.params.name, ownerOf(req), ownerParam(req.query)),
  );

  app.delete<{ Params: { name: string }; Querystring: { owner?: string } }>('/v1/datasets/:name', async (req, reply) => {
    await datasets.delete(req.params.name, ownerOf(req), ownerParam(req.query));
    reply.code(204).send();
  });
}

function ownerParam(q: { owner?: unknown } | undefined): string | undefined {
  const owner = q?.owner;
  if (owner === undefined) return undefined;
  if (typeof owner !== 'string' || !/^[a-z0-9]{4,32}$/.test(owner)) throw hearthError('INVALID_REQUEST', '"owner": expected one key id');
  return owner;
}
