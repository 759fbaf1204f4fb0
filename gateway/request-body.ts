// Reading the bodies that routes hold whole (inference, repository, config, jobs JSON): each has a size limit
// (MAX_REQUEST_BYTES, counted after decompression), and the node caps the bytes of such bodies it holds at once
// (MAX_BODY_BYTES_IN_FLIGHT). Uploads and datasets stream and keep their own limits; they never come through here.
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hearthError, type HearthError } from '../core/index.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The response of this request, so the body reader can give its bytes back when the answer is done. */
    bodyResponse: ServerResponse | null;
  }
}

/** Seconds a client refused for bodies in flight is asked to wait. */
const RETRY_AFTER_S = 1;

/** Bytes of buffered request bodies this node holds, from their first byte until their request ends. */
export class BodyBudget {
  readonly maxBytes: number;
  #heldBytes = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** Room for `n` more bytes right now. */
  fits(n: number): boolean {
    return this.#heldBytes + n <= this.maxBytes;
  }

  /** Takes `n` bytes if they fit; false (and nothing taken) if they do not. */
  take(n: number): boolean {
    if (this.#heldBytes + n > this.maxBytes) return false;
    this.#heldBytes += n;
    return true;
  }

  give(n: number): void {
    this.#heldBytes -= n;
  }
}

export interface BodyReadOptions {
  /** MAX_REQUEST_BYTES: the largest body, after decompression. */
  maxBytes: number;
  budget: BodyBudget;
  /** Decompress Content-Encoding gzip or deflate as the body streams (the V2 routes, as Triton's clients send). */
  inflate?: boolean;
}

export function tooLarge(maxBytes: number, what = 'the request body'): HearthError {
  return hearthError('PAYLOAD_TOO_LARGE', `${what} is larger than MAX_REQUEST_BYTES (${maxBytes} bytes)`);
}

function overloaded(budget: BodyBudget): HearthError {
  return hearthError('OVERLOADED', `this node already holds MAX_BODY_BYTES_IN_FLIGHT (${budget.maxBytes} bytes) of request bodies; retry shortly`, {
    headers: { 'Retry-After': String(RETRY_AFTER_S) },
  });
}

/**
 * Every request gets a slot for its response; the body reader (a content-type parser, which sees only the
 * request) uses it to release the body's bytes when the answer is sent or the connection closes.
 */
export function trackBodyResponses(app: FastifyInstance): void {
  app.decorateRequest('bodyResponse', null);
  app.addHook('preParsing', (req: FastifyRequest, reply: FastifyReply, payload, done) => {
    req.bodyResponse = reply.raw;
    done(null, payload);
  });
}

/**
 * Reads a whole body into one Buffer (the one copy fastify's own parser makes). Refuses a declared
 * Content-Length over the limit before reading; counts bytes as they arrive, inflated bytes when decompressing,
 * and stops at the first chunk past the limit (413) or past the node's budget (503 OVERLOADED). The bytes stay
 * counted until the request's response closes, or are given back at once when reading fails.
 */
export function readBody(req: FastifyRequest, payload: Readable, opts: BodyReadOptions, done: (err: Error | null, body?: Buffer) => void): void {
  const { maxBytes, budget } = opts;
  const declared = Number(req.headers['content-length']);
  if (declared > maxBytes) return done(tooLarge(maxBytes));
  if (declared > 0 && !budget.fits(declared)) return done(overloaded(budget));

  let source: Readable = payload;
  let inflater: zlib.Gunzip | zlib.Inflate | undefined;
  let encoding = 'identity';
  if (opts.inflate) {
    const header = req.headers['content-encoding'];
    encoding = header === undefined ? 'identity' : String(header).trim().toLowerCase();
    if (encoding === 'gzip' || encoding === 'x-gzip') inflater = zlib.createGunzip();
    else if (encoding === 'deflate') inflater = zlib.createInflate();
    else if (encoding !== 'identity' && encoding !== '') {
      return done(hearthError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding "${encoding}" is not supported; use gzip, deflate or none`));
    }
  }

  const res = req.bodyResponse;
  const chunks: Buffer[] = [];
  let received = 0;
  let held = 0;
  let watching = false;
  let settled = false;

  const release = (): void => {
    budget.give(held);
    held = 0;
  };
  const stop = (): void => {
    settled = true;
    source.removeListener('data', onData);
    source.removeListener('end', onEnd);
    source.removeListener('error', onSourceError);
    if (inflater) {
      payload.removeListener('error', onPayloadError);
      payload.unpipe(inflater);
      inflater.destroy();
      // The rest of the compressed body is read and dropped until the answer closes the connection.
      payload.resume();
    }
  };
  const fail = (err: Error): void => {
    if (settled) return;
    stop();
    chunks.length = 0;
    release();
    done(err);
  };

  function onData(chunk: Buffer): void {
    received += chunk.length;
    if (received > maxBytes) return fail(tooLarge(maxBytes, inflater ? `the decompressed ${encoding} body` : 'the request body'));
    if (!budget.take(chunk.length)) return fail(overloaded(budget));
    if (!watching && res) {
      if (res.destroyed) {
        budget.give(chunk.length);
        return fail(hearthError('INVALID_REQUEST', 'the client closed the connection'));
      }
      watching = true;
      res.on('close', release); // a response closes once
    }
    held += chunk.length;
    chunks.push(chunk);
  }
  function onEnd(): void {
    if (settled) return;
    stop();
    // Without a response to watch (a parser used outside buildApp), the bytes count only while they arrive.
    if (!res) release();
    // Always a copy (as fastify's own reader makes), never a view of a socket read buffer.
    done(null, Buffer.concat(chunks, received));
  }
  function onSourceError(err: Error): void {
    if (inflater) fail(hearthError('INVALID_REQUEST', `the ${encoding} body could not be decompressed: ${err.message}`));
    else onPayloadError(err);
  }
  function onPayloadError(err: Error): void {
    fail(hearthError('INVALID_REQUEST', `the request body could not be read (${err.message})`));
  }

  if (inflater) {
    payload.on('error', onPayloadError);
    payload.pipe(inflater);
    source = inflater;
  }
  source.on('data', onData);
  source.on('end', onEnd);
  // A client that goes away mid-body shows as an 'error' ("aborted") on the request.
  source.on('error', onSourceError);
  source.resume();
}

/**
 * fastify's JSON and plain-text parsers, reading through readBody: same parsing (prototype poisoning refused),
 * with the limit and the node's budget.
 */
export function registerBufferedParsers(app: FastifyInstance, opts: BodyReadOptions): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', (req, payload, done) =>
    readBody(req, payload as Readable, opts, (err, body) => (err ? done(err) : json(req, body!.toString('utf8'), done))),
  );
  app.addContentTypeParser('text/plain', (req, payload, done) =>
    readBody(req, payload as Readable, opts, (err, body) => (err ? done(err) : done(null, body!.toString('utf8')))),
  );
}
