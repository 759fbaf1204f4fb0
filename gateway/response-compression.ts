// Compressed responses for the Open Inference Protocol routes, as Triton answers them: `Accept-Encoding: gzip` or
// `deflate` (zlib format, which is what HTTP calls deflate and what Triton's clients inflate) on a body of at least
// COMPRESS_MIN_BYTES. Binary infer responses are compressed whole; their Inference-Header-Content-Length keeps
// counting the uncompressed JSON header, which is what a client reads after it has inflated the body.
// The work runs on libuv's thread pool (zlib's async API), not on the event loop.
import { promisify } from 'node:util';
import { deflate, gzip } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Bodies smaller than this go as they are: compressing them would cost more than it saves. */
export const COMPRESS_MIN_BYTES = 1024;

const gzipAsync = promisify(gzip);
const deflateAsync = promisify(deflate);

export type ResponseEncoding = 'gzip' | 'deflate';

/** The encoding to answer with for an Accept-Encoding header: gzip or deflate by q-value (gzip on a tie), else none. */
export function pickEncoding(header: string | string[] | undefined): ResponseEncoding | undefined {
  if (header === undefined) return undefined;
  const q: Record<string, number> = {};
  for (const part of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const [token, ...params] = part.trim().toLowerCase().split(';');
    if (!token) continue;
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/.exec(p);
      if (m) weight = Number(m[1]);
    }
    if (Number.isFinite(weight)) q[token] = weight;
  }
  const weightOf = (enc: ResponseEncoding) => q[enc] ?? q['*'] ?? 0;
  const g = weightOf('gzip');
  const d = weightOf('deflate');
  if (g <= 0 && d <= 0) return undefined;
  return g >= d ? 'gzip' : 'deflate';
}

/** An onSend hook: compresses string and Buffer bodies the client accepts compressed. */
export async function compressResponse(req: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
  if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) return payload;
  if (reply.hasHeader('content-encoding') || req.method === 'HEAD') return payload;
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size < COMPRESS_MIN_BYTES) return payload;
  // Whether the answer would be compressed depends on this header: caches must key on it.
  const vary = reply.getHeader('vary');
  if (vary === undefined) reply.header('vary', 'accept-encoding');
  else if (!/accept-encoding/i.test(String(vary))) reply.header('vary', `${String(vary)}, accept-encoding`);
  const encoding = pickEncoding(req.headers['accept-encoding']);
  if (!encoding) return payload;
  const out = encoding === 'gzip' ? await gzipAsync(payload) : await deflateAsync(payload);
  reply.header('content-encoding', encoding);
  reply.removeHeader('content-length');
  return out;
}
