// Batch jobs: POST/GET/DELETE /v1/jobs. Every route answers 503 JOBS_UNAVAILABLE (naming REDIS_URL) while Redis
// is away; the rest of Hearth keeps serving.
import type { FastifyInstance } from 'fastify';
import { hearthError } from '../core/index.ts';
import type { CreateJobBody, Jobs } from '../jobs/index.ts';
import { checkModelAccess, ownerOf } from './auth/index.ts';

export interface JobsRoutesOptions {
  jobs: Jobs;
}

export async function jobsRoutes(app: FastifyInstance, opts: JobsRoutesOptions): Promise<void> {
  const jobs = opts.jobs.service;

  app.post<{ Body: CreateJobBody }>('/v1/jobs', async (req, reply) => {
    // A key limited to some models may batch only those (the job names its model in the body).
    const model = (req.body as { model?: unknown } | undefined)?.model;
    if (typeof model === 'string') checkModelAccess(req, model);
    const created = await jobs.create(req.body, ownerOf(req));
    reply.code(202).header('location', `/v1/jobs/${created.id}`).send(created);
  });

  app.get<{ Querystring: { limit?: string; cursor?: string } }>('/v1/jobs', async (req) => {
    const { limit, cursor } = req.query;
    // A repeated parameter arrives as an array: only one plain whole number is a limit.
    if (limit !== undefined && (typeof limit !== 'string' || !/^\d{1,4}$/.test(limit)))
      throw hearthError('INVALID_REQUEST', '"limit": expected a whole number in [1, 1000]');
    return jobs.list({ ...(limit !== undefined ? { limit: Number(limit) } : {}), ...(cursor ? { cursor } : {}) }, ownerOf(req));
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (req) => jobs.get(req.params.id, ownerOf(req)));

  app.delete<{ Params: { id: string } }>('/v1/jobs/:id', async (req) => jobs.cancel(req.params.id, ownerOf(req)));

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/results', async (req, reply) => {
    const { state, totalRows, stream } = await jobs.results(req.params.id, ownerOf(req));
    reply.code(200).type('application/x-ndjson').header('hearth-job-state', state).header('hearth-job-total-rows', String(totalRows));
    return reply.send(stream);
  });
}
