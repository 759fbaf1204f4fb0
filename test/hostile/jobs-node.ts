// Shared by the jobs hostile suites: a real Hearth process with a private redis-server (REDIS_URL in its env) and a
// job API that answers, plus small helpers to post jobs and wait for them.
import { expect } from 'vitest';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { request, sileroRequestBody, startNode, type HostileNode, type RawResponse } from './rig.ts';

export { startTestRedis, type TestRedis };

/** Starts a node on `redis` with its own queue prefix and waits until GET /v1/jobs answers 200. */
export async function startJobsNode(redis: TestRedis, env: Record<string, string> = {}): Promise<HostileNode> {
  const node = await startNode({ env: { REDIS_URL: redis.url, JOBS_PREFIX: uniquePrefix('hostile'), ...env } });
  await waitFor(async () => ((await request(node, { path: '/v1/jobs' })).status === 200 ? true : undefined), 'the job API');
  return node;
}

/** One silero row (a V2 request body as an object). */
export function sileroRow(): Record<string, unknown> {
  return JSON.parse(sileroRequestBody()) as Record<string, unknown>;
}

export function postJob(node: HostileNode, body: unknown): Promise<RawResponse> {
  return request(node, {
    method: 'POST',
    path: '/v1/jobs',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export async function jobStatus(node: HostileNode, id: string): Promise<any> {
  const res = await request(node, { path: `/v1/jobs/${id}` });
  expect(res.status, res.body.toString()).toBe(200);
  return res.json;
}

/** Waits for a job to reach a terminal state. */
export function finished(node: HostileNode, id: string): Promise<any> {
  return waitFor(async () => {
    const s = await jobStatus(node, id);
    return ['completed', 'failed', 'cancelled'].includes(s.state) ? s : undefined;
  }, `job ${id} to finish`);
}

export async function waitFor<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 45_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
