// The audit trail: one line per write (model upload, config, delete, dataset, job, key created or revoked) with the
// key's id and name, the route, the status and the outcome; none for reads or inference; refused writes too. The
// node logs through a pino logger into an array, as it would to stdout.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, uniquePrefix, type TestRedis } from '../../helpers/redis.ts';
import { sileroBytes } from '../../helpers/model-bodies.ts';
import { ADMIN_KEY, startAuthNode, type AuthNode } from './auth-rig.ts';

interface AuditLine {
  component: string;
  msg: string;
  audit: {
    key: { id: string; name: string } | null;
    method: string;
    route: string;
    params: Record<string, string>;
    status: number;
    outcome: 'done' | 'refused' | 'failed';
  };
}

const lines: Record<string, unknown>[] = [];
const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
const audits = () => lines.filter((l) => l.component === 'audit') as unknown as AuditLine[];

let redis: TestRedis;
let n: AuthNode;
let writer: { id: string; token: string };
let reader: { id: string; token: string };
let infer: { id: string; token: string };
let jobs: { id: string; token: string };

/** The audit lines after `seen`, once there are `count` of them (each is written when its answer has gone out). */
async function auditsAfter(seen: number, count: number): Promise<AuditLine['audit'][]> {
  const deadline = Date.now() + 5000;
  while (audits().length < seen + count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return audits()
    .slice(seen)
    .map((l) => l.audit);
}

beforeAll(async () => {
  redis = await startTestRedis();
  n = await startAuthNode({ redis, prefix: uniquePrefix('audit'), overrides: { logger } });
  writer = await n.createKey({ name: 'uploader', scopes: ['models:write'] });
  reader = await n.createKey({ name: 'reader', scopes: ['models:read'] });
  infer = await n.createKey({ name: 'caller', scopes: ['infer'] });
  jobs = await n.createKey({ name: 'batch', scopes: ['jobs'] });
});
afterAll(async () => {
  await n?.close();
  await redis?.close();
});

describe('audit trail', () => {
  it('logs each model write once, with the key, route, params, status and outcome', async () => {
    const seen = audits().length;
    const up = await fetch(`http://127.0.0.1:${n.port}/v1/models/vad`, {
      method: 'POST',
      headers: { authorization: `Bearer ${writer.token}`, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(sileroBytes()),
    });
    expect(up.status).toBe(201);
    expect((await n.call('PUT', '/v1/models/vad/config', { token: writer.token, body: { maxInstances: 1 } })).status).toBe(200);
    expect((await n.call('DELETE', '/v1/models/nope', { token: writer.token })).status).toBe(404);
    const key = { id: writer.id, name: 'uploader' };
    expect(await auditsAfter(seen, 3)).toEqual([
      { key, method: 'POST', route: '/v1/models/:name', params: { name: 'vad' }, status: 201, outcome: 'done' },
      { key, method: 'PUT', route: '/v1/models/:name/config', params: { name: 'vad' }, status: 200, outcome: 'done' },
      { key, method: 'DELETE', route: '/v1/models/:name', params: { name: 'nope' }, status: 404, outcome: 'failed' },
    ]);
    const line = audits()[seen];
    expect(line.msg).toBe('audit POST /v1/models/:name 201');
  });

  it('logs nothing for reads, inference or the repository index', async () => {
    const seen = audits().length;
    for (const [url, token] of [
      ['/v1/models', reader.token],
      ['/v1/models/vad', reader.token],
      ['/v1/models/vad/config', reader.token],
      ['/v2/models/vad', infer.token],
      ['/v2/models/vad/ready', infer.token],
      ['/v1/keys', ADMIN_KEY],
      ['/v1/datasets', jobs.token],
      ['/v2/health/ready', ''],
    ]) {
      expect((await n.call('GET', url, { token })).status, url).toBe(200);
    }
    expect((await n.call('POST', '/v2/repository/index', { token: reader.token, body: {} })).status).toBe(200);
    const feed = {
      inputs: [
        { name: 'input', shape: [1, 512], datatype: 'FP32', data: Array.from({ length: 512 }, (_, i) => Math.sin(i / 7) / 2) },
        { name: 'sr', shape: [], datatype: 'INT64', data: [16000] },
        { name: 'h', shape: [2, 1, 64], datatype: 'FP32', data: new Array(128).fill(0) },
        { name: 'c', shape: [2, 1, 64], datatype: 'FP32', data: new Array(128).fill(0) },
      ],
    };
    const res = await n.call('POST', '/v2/models/vad/infer', { token: infer.token, body: feed });
    expect(res.status, res.text).toBe(200);
    expect(res.json<{ outputs: unknown[] }>().outputs).toHaveLength(3);
    // A write after them: once its line is there, any line of the requests before it would be too.
    expect((await n.call('DELETE', '/v1/datasets/none', { token: jobs.token })).status).toBe(404);
    const after = await auditsAfter(seen, 1);
    expect(after.map((a) => `${a.method} ${a.route}`)).toEqual(['DELETE /v1/datasets/:name']);
  });

  it('logs a refused write as refused, naming the key that tried (403) or none (401)', async () => {
    const seen = audits().length;
    expect((await n.call('DELETE', '/v1/models/vad', { token: reader.token })).status).toBe(403);
    expect((await n.call('DELETE', '/v1/models/vad', {})).status).toBe(401);
    expect((await n.call('POST', '/v1/keys', { token: writer.token, body: { name: 'x', scopes: ['admin'] } })).status).toBe(403);
    expect(await auditsAfter(seen, 3)).toEqual([
      {
        key: { id: reader.id, name: 'reader' },
        method: 'DELETE',
        route: '/v1/models/:name',
        params: { name: 'vad' },
        status: 403,
        outcome: 'refused',
      },
      { key: null, method: 'DELETE', route: '/v1/models/:name', params: { name: 'vad' }, status: 401, outcome: 'refused' },
      { key: { id: writer.id, name: 'uploader' }, method: 'POST', route: '/v1/keys', params: {}, status: 403, outcome: 'refused' },
    ]);
    // The model is still there.
    expect((await n.call('GET', '/v1/models/vad', { token: reader.token })).status).toBe(200);
  });

  it('logs dataset and job writes, and keys created and revoked (by the admin key)', async () => {
    const seen = audits().length;
    const ds = await fetch(`http://127.0.0.1:${n.port}/v1/datasets/rows`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${jobs.token}`, 'content-type': 'application/x-ndjson' },
      body: '{"a":1}\n{"a":2}\n',
    });
    expect(ds.status).toBe(201);
    // A job the node refuses (no such model) is a failed write.
    const job = await n.call('POST', '/v1/jobs', { token: jobs.token, body: { model: 'nope', input: 'rows' } });
    expect(job.status).toBeGreaterThanOrEqual(400);
    expect((await n.call('DELETE', '/v1/datasets/rows', { token: jobs.token })).status).toBe(204);
    const created = await n.createKey({ name: 'temp', scopes: ['infer'] });
    expect((await n.call('DELETE', `/v1/keys/${created.id}`, { token: ADMIN_KEY })).status).toBe(200);
    const key = { id: jobs.id, name: 'batch' };
    const admin = { id: 'admin', name: 'admin (HEARTH_ADMIN_KEY)' };
    expect(await auditsAfter(seen, 5)).toEqual([
      { key, method: 'PUT', route: '/v1/datasets/:name', params: { name: 'rows' }, status: 201, outcome: 'done' },
      { key, method: 'POST', route: '/v1/jobs', params: {}, status: job.status, outcome: 'failed' },
      { key, method: 'DELETE', route: '/v1/datasets/:name', params: { name: 'rows' }, status: 204, outcome: 'done' },
      {
        key: admin,
        method: 'POST',
        route: '/v1/keys',
        params: {},
        // The line names the key made (never its token).
        detail: { created: { id: created.id, name: 'temp', scopes: ['infer'] } },
        status: 201,
        outcome: 'done',
      },
      { key: admin, method: 'DELETE', route: '/v1/keys/:id', params: { id: created.id }, status: 200, outcome: 'done' },
    ]);
  });

  it('no log line holds a token or a secret', () => {
    const all = JSON.stringify(lines);
    expect(lines.length).toBeGreaterThan(20);
    for (const { token } of [writer, reader, infer, jobs]) {
      expect(all).not.toContain(token);
      expect(all).not.toContain(token.slice(-43));
    }
    expect(all).not.toContain(ADMIN_KEY);
    expect(all).not.toContain('x'.repeat(40));
  });
});
