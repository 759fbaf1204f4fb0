// Issue 13 follow-ups 4 and 5. `Expect: 100-continue` with a Content-Length past the limit is refused before the
// body is sent (Node sent 100 Continue first, inviting the whole body); any other expectation answers 417 in
// Hearth's shape (Node's own 417 had an empty body). A request arriving on an open connection while the node shuts
// down gets 503 SHUTTING_DOWN and Connection: close (fastify answered its own body, without a code).
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectIntact, sileroRequestBody, startNode, startNodeWithVad, type Baseline, type HostileNode } from './rig.ts';

/** Writes `text` on a fresh connection and collects every byte until the server closes it (or `waitMs`). */
function exchange(port: number, text: string, waitMs = 5000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text: out, closed: false });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: out, closed: true });
    });
    socket.write(text);
  });
}

/** Status, lower-case headers and JSON body of every response in `text` (interim ones included). */
function responses(text: string): { status: number; headers: Record<string, string>; json?: Record<string, unknown> }[] {
  const out = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    const lines = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    const length = Number(headers['content-length'] ?? 0);
    const body = rest.slice(end + 4, end + 4 + length);
    out.push({ status: Number(lines[0].slice(9, 12)), headers, json: body ? (JSON.parse(body) as Record<string, unknown>) : undefined });
    rest = rest.slice(end + 4 + length);
  }
  return out;
}

describe('Expect', () => {
  let node: HostileNode;
  let base: Baseline;
  beforeAll(async () => {
    ({ node, base } = await startNodeWithVad({ env: { MAX_MODEL_BYTES: String(3 * 1024 * 1024) } }));
  });
  afterAll(async () => {
    await node?.stop();
  });

  it('100-continue with a Content-Length past the limit -> the final 413 alone, no 100 Continue, then a close', async () => {
    for (const [path, type, length, code] of [
      ['/v2/models/vad/infer', 'application/json', 64 * 1024 * 1024, 'PAYLOAD_TOO_LARGE'],
      ['/v1/models/vad/config', 'application/json', 17 * 1024 * 1024, 'PAYLOAD_TOO_LARGE'],
      ['/v1/models/big', 'application/octet-stream', 4 * 1024 * 1024, 'MODEL_TOO_LARGE'],
    ] as const) {
      const verb = path.endsWith('config') ? 'PUT' : 'POST';
      const got = await exchange(
        node.port,
        `${verb} ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`,
      );
      const all = responses(got.text);
      expect(
        all.map((r) => r.status),
        `${path}: ${got.text}`,
      ).toEqual([413]);
      expect(all[0].json).toMatchObject({ code });
      expect(got.closed, path).toBe(true);
    }
    await expectIntact(node, base);
  });

  it('100-continue with a body that fits: 100 Continue, then the inference answers as without it', async () => {
    const body = Buffer.from(sileroRequestBody());
    const res = await new Promise<{ continued: boolean; status: number; body: string }>((resolve, reject) => {
      let continued = false;
      const req = http.request(
        {
          host: '127.0.0.1',
          port: node.port,
          method: 'POST',
          path: '/v2/models/vad/infer',
          agent: false,
          headers: { 'content-type': 'application/json', 'content-length': body.length, expect: '100-continue' },
        },
        (r) => {
          let text = '';
          r.on('data', (d) => (text += d));
          r.on('end', () => resolve({ continued, status: r.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.on('continue', () => {
        continued = true;
        req.end(body);
      });
    });
    expect(res.continued).toBe(true);
    expect(res.status, res.body).toBe(200);
    const output = (JSON.parse(res.body) as { outputs: { name: string; data: unknown }[] }).outputs.find((o) => o.name === 'output')!.data;
    expect(output).toEqual(base.answer);
  });

  it('an expectation other than 100-continue -> 417 EXPECTATION_FAILED in Hearth shape, then a close', async () => {
    for (const expectation of ['foo', '200-ok', 'x'.repeat(4000)]) {
      const got = await exchange(
        node.port,
        `POST /v2/models/vad/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: ${expectation}\r\n\r\n{}`,
      );
      const all = responses(got.text);
      expect(
        all.map((r) => r.status),
        got.text.slice(0, 300),
      ).toEqual([417]);
      expect(all[0].json).toMatchObject({ code: 'EXPECTATION_FAILED' });
      expect((all[0].json!.error as string).length).toBeLessThan(300);
      expect(got.closed).toBe(true);
    }
    await expectIntact(node, base);
  });
});

describe('shutdown', () => {
  it('a request on an open connection after SIGTERM -> 503 SHUTTING_DOWN with Connection: close; the request in flight is answered', async () => {
    const node = await startNode();
    try {
      const socket = net.connect(node.port, '127.0.0.1');
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('error', () => {});
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      // A slow request: its body stops half way, so the connection is busy when the shutdown begins.
      const body = '{"inputs":[]}';
      socket.write(
        `POST /v2/repository/index HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 4)}`,
      );
      await new Promise((r) => setTimeout(r, 300));
      const stopped = node.stop();
      await new Promise((r) => setTimeout(r, 500));
      // The rest of the body, then two more requests on the same connection.
      socket.write(`${body.slice(4)}GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n`);
      await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000))]);
      const all = responses(text);
      expect(all[0]?.status, text).toBe(200);
      expect(all[1]?.status, text).toBe(503);
      expect(all[1].json).toMatchObject({ code: 'SHUTTING_DOWN' });
      expect(typeof all[1].json!.error).toBe('string');
      expect(all[1].headers.connection, text).toBe('close');
      expect(all.length, text).toBe(2); // the connection closed after the refusal
      expect((await stopped).code).toBe(0);
    } finally {
      await node.stop();
    }
  });
});
