// Hostile job callbacks (issue 13, item 5): a callbackUrl must not reach inside the network. Every address here is
// loopback; private, link-local and metadata addresses are covered by the unit tests of the address check
// (test/jobs/callback-address.test.ts), with no connection attempted.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseline, expectError, expectIntact, request, uploadSilero, type HostileNode } from './rig.ts';
import { finished, jobStatus, postJob, sileroRow, startJobsNode, startTestRedis, waitFor, type TestRedis } from './jobs-node.ts';

let redis: TestRedis;

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  await redis?.close();
});

/** True while `name` has a warm instance on the node (the repository index says so). */
async function warm(node: HostileNode, name = 'vad'): Promise<boolean> {
  const res = await request(node, {
    method: 'POST',
    path: '/v2/repository/index',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  expect(res.status).toBe(200);
  const entry = (res.json as unknown as { name: string; reason: string }[]).find((m) => m.name === name);
  return /^warm/.test(entry?.reason ?? '');
}

/** A loopback listener that records each request and answers with `answer`. */
async function listener(
  answer: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => answer(req, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Waits until the job's callback has `n` recorded attempts. */
function attempts(node: HostileNode, id: string, n = 1): Promise<any[]> {
  return waitFor(async () => {
    const s = await jobStatus(node, id);
    return (s.callback?.attempts?.length ?? 0) >= n ? s.callback.attempts : undefined;
  }, `callback attempt ${n} of job ${id}`);
}

describe('callbacks on a node without CALLBACK_ALLOW_PRIVATE', () => {
  let node: HostileNode;

  beforeAll(async () => {
    node = await startJobsNode(redis);
    await uploadSilero(node);
  });

  afterAll(async () => {
    await node?.stop();
  });

  it('refuses a job whose callbackUrl is a loopback literal (its own unload route) with 400, queueing nothing', async () => {
    const base = await baseline(node);
    for (const host of ['127.0.0.1', '[::1]', '[::ffff:127.0.0.1]', '2130706433', '0x7f.0.0.1', '0.0.0.0']) {
      const res = await postJob(node, {
        model: 'vad',
        rows: [sileroRow()],
        callbackUrl: `http://${host}:${node.port}/v2/repository/models/vad/unload`,
      });
      expectError(res, 400, 'INVALID_REQUEST', node);
      expect(res.json!.error).toMatch(/callbackUrl.*(loopback|unspecified).*CALLBACK_ALLOW_PRIVATE/);
    }
    const creds = await postJob(node, { model: 'vad', rows: [sileroRow()], callbackUrl: 'http://user:secret@example.com/done' });
    expectError(creds, 400, 'INVALID_REQUEST', node);
    expect(creds.json!.error).not.toContain('secret');
    const list = await request(node, { path: '/v1/jobs' });
    expect((list.json!.jobs as unknown[]).length).toBe(0);
    expect(await warm(node)).toBe(true);
    await expectIntact(node, base);
  });

  it('a name that resolves to loopback (localhost) is refused when the delivery connects; the model stays loaded', async () => {
    const base = await baseline(node);
    const res = await postJob(node, {
      model: 'vad',
      rows: [sileroRow()],
      callbackUrl: `http://localhost:${node.port}/v2/repository/models/vad/unload`,
    });
    expect(res.status, res.body.toString()).toBe(202);
    const id = res.json!.id as string;
    await finished(node, id);
    const [attempt] = await attempts(node, id);
    expect(attempt).toMatchObject({ ok: false, error: expect.stringMatching(/refused.*loopback.*CALLBACK_ALLOW_PRIVATE/) });
    expect(attempt.status).toBeUndefined();
    // Refused for good: no further attempt is queued.
    const s = await jobStatus(node, id);
    expect(s.callback).toMatchObject({ delivered: false });
    expect(await warm(node)).toBe(true);
    expect(node.logs()).not.toMatch(/"url":"\/v2\/repository\/models\/vad\/unload"/);
    await expectIntact(node, base);
  });
});

describe('callbacks on a node with CALLBACK_ALLOW_PRIVATE=true', () => {
  let node: HostileNode;

  beforeAll(async () => {
    node = await startJobsNode(redis, { CALLBACK_ALLOW_PRIVATE: 'true', CALLBACK_TIMEOUT_MS: '1000' });
    await uploadSilero(node);
  });

  afterAll(async () => {
    await node?.stop();
  });

  it('delivers to a loopback listener', async () => {
    const base = await baseline(node);
    const target = await listener((_req, res) => res.end('thanks'));
    try {
      const res = await postJob(node, { model: 'vad', rows: [sileroRow()], callbackUrl: `${target.url}/done` });
      expect(res.status, res.body.toString()).toBe(202);
      const id = res.json!.id as string;
      const [attempt] = await attempts(node, id);
      expect(attempt).toMatchObject({ ok: true, status: 200 });
      expect(attempt.error).toBeUndefined();
      expect(target.hits).toEqual(['POST /done']);
      await expectIntact(node, base);
    } finally {
      await target.close();
    }
  });

  it('does not follow a redirect: a 302 is a failed attempt and its target never sees a request', async () => {
    const base = await baseline(node);
    const second = await listener((_req, res) => res.end('should not be reached'));
    const first = await listener((_req, res) => {
      res.writeHead(302, { location: `${second.url}/v2/repository/models/vad/unload` });
      res.end();
    });
    try {
      const res = await postJob(node, { model: 'vad', rows: [sileroRow()], callbackUrl: `${first.url}/hook` });
      expect(res.status, res.body.toString()).toBe(202);
      const id = res.json!.id as string;
      const [attempt] = await attempts(node, id);
      expect(attempt).toMatchObject({ ok: false, status: 302, error: expect.stringMatching(/redirect.*not followed/) });
      expect(first.hits).toEqual(['POST /hook']);
      expect(second.hits).toEqual([]);
      expect(JSON.stringify(attempt)).not.toContain(second.url);
      await expectIntact(node, base);
    } finally {
      await first.close();
      await second.close();
    }
  });

  it('stores a short, safe record of each attempt: no callee body, bounded read of a huge answer, a deadline on a silent one', async () => {
    const base = await baseline(node);
    const secret = 'SECRET-BODY-'.repeat(100);
    const failing = await listener((_req, res) => {
      res.statusCode = 500;
      res.end(secret);
    });
    // Answers 200 and then streams without end: only a little of it may be read.
    const endless = await listener((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const block = Buffer.alloc(1024 * 1024, 0x61);
      const pump = () => {
        while (!res.destroyed && res.write(block));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    // Accepts the request and never answers.
    const silent = await listener(() => {});
    try {
      const ids: Record<string, string> = {};
      for (const [name, l] of Object.entries({ failing, endless, silent })) {
        const res = await postJob(node, { model: 'vad', rows: [sileroRow()], callbackUrl: `${l.url}/${name}` });
        expect(res.status, res.body.toString()).toBe(202);
        ids[name] = res.json!.id as string;
      }
      const [fail] = await attempts(node, ids.failing);
      expect(fail).toMatchObject({ ok: false, status: 500 });
      expect(JSON.stringify(await jobStatus(node, ids.failing))).not.toContain('SECRET-BODY');
      const [big] = await attempts(node, ids.endless);
      expect(big).toMatchObject({ ok: true, status: 200 });
      const [hang] = await attempts(node, ids.silent);
      expect(hang).toMatchObject({ ok: false, error: expect.stringMatching(/no answer within 1000 ms/) });
      expect(hang.status).toBeUndefined();
      await expectIntact(node, base);
    } finally {
      await failing.close();
      await endless.close();
      await silent.close();
    }
  });
});
