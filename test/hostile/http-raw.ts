// Raw HTTP/1.1 exchanges for the HTTP-surface cases: a request head with any Content-Length, a body sent in
// parts (or never), and the answer read off the socket, or the fact that the server closed it without one.
import net from 'node:net';
import type { RawResponse } from './rig.ts';

export interface RawAnswer extends RawResponse {
  /** The server closed the connection before a whole answer arrived (status is then 0). */
  closed: boolean;
  /** No answer and no close within the wait (status is then 0). */
  timedOut: boolean;
}

export interface RawExchange {
  socket: net.Socket;
  /** Writes part of the body; resolves once the bytes left this process, or when the server has closed. */
  send(bytes: Buffer | string): Promise<void>;
  /** The server's answer, its close, or a time-out after `waitMs`. */
  answer: Promise<RawAnswer>;
}

/**
 * Opens a connection and writes one request head. `headers` go out as given (a Content-Length that the body
 * never reaches is the point of several cases); the body is then written with send().
 */
export function openRequest(
  node: { port: number },
  opts: { method?: string; path: string; headers?: Record<string, string | number>; waitMs?: number },
): RawExchange {
  const socket = net.connect(node.port, '127.0.0.1');
  socket.on('error', () => {}); // EPIPE / ECONNRESET when the server closes first: the answer says what happened
  const head = [`${opts.method ?? 'POST'} ${opts.path} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [k, v] of Object.entries(opts.headers ?? {})) head.push(`${k}: ${v}`);
  socket.write(head.join('\r\n') + '\r\n\r\n');
  const answer = new Promise<RawAnswer>((resolve) => {
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (a: Omit<RawAnswer, 'json'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(a.body.toString('utf8'));
      } catch {
        json = undefined;
      }
      resolve({ ...a, json });
    };
    const parse = (): boolean => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] ?? NaN);
      if (!Number.isFinite(length) || buf.length - end - 4 < length) return false;
      finish({ status, headers, body: buf.subarray(end + 4, end + 4 + length), closed: false, timedOut: false });
      return true;
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      parse();
    });
    socket.on('close', () => {
      if (!parse()) finish({ status: 0, headers: {}, body: buf, closed: true, timedOut: false });
    });
    const timer = setTimeout(() => {
      finish({ status: 0, headers: {}, body: buf, closed: false, timedOut: true });
      socket.destroy();
    }, opts.waitMs ?? 30_000);
  });
  return {
    socket,
    answer,
    send: (bytes) =>
      new Promise<void>((resolve) => {
        if (socket.destroyed || socket.writableEnded) return resolve();
        socket.write(bytes, () => resolve());
        socket.once('close', () => resolve());
      }),
  };
}

/** `n` bytes of JSON-looking filler (spaces), which no route can read as a valid request. */
export function filler(n: number): Buffer {
  return Buffer.alloc(n, 0x20);
}
