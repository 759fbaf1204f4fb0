// Reading the bodies that routes hold whole (inference, repository, config, jobs JSON): each has a size limit
// (MAX_REQUEST_BYTES, counted after decompression), and the node caps the bytes of such bodies it holds at once
// (MAX_BODY_BYTES_IN_FLIGHT). Uploads and datasets stream and keep their own limits; they never come through here.
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hearthError, shown, type HearthError } from '../core/index.ts';

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
  return hearthError(
    'OVERLOADED',
    `this node already holds MAX_BODY_BYTES_IN_FLIGHT (${budget.maxBytes} bytes) of request bodies; retry shortly`,
    {
      headers: { 'Retry-After': String(RETRY_AFTER_S) },
    },
  );
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
export function readBody(
  req: FastifyRequest,
  payload: Readable,
  opts: BodyReadOptions,
  done: (err: Error | null, body?: Buffer) => void,
): void {
  const { maxBytes, budget } = opts;
  const declared = Number(req.headers['content-length']);
  if (declared > maxBytes) return done(tooLarge(maxBytes));
  if (declared > 0 && !budget.fits(declared)) return done(overloaded(budget));
  let decoder: BodyDecoder = { encoding: 'identity' };
  if (opts.inflate) {
    try {
      decoder = bodyDecoder(req.headers['content-encoding']);
    } catch (e) {
      return done(e as Error);
    }
  }
  new BodyRead(payload, decoder.inflater, decoder.encoding, req.bodyResponse, opts, done);
}

export interface BodyDecoder {
  /** The Content-Encoding, lower case ('identity' when none). */
  encoding: string;
  /** The stream that decompresses it; none for identity. */
  inflater?: zlib.Gunzip | zlib.Inflate;
}

/**
 * The decompressor for a Content-Encoding (gzip or deflate, as Triton's clients send), shared by the buffered
 * bodies and the streamed datasets; 415 UNSUPPORTED_MEDIA_TYPE naming the accepted ones for anything else.
 */
export function bodyDecoder(header: string | string[] | undefined): BodyDecoder {
  const encoding = header === undefined ? 'identity' : String(header).trim().toLowerCase();
  if (encoding === 'gzip' || encoding === 'x-gzip') return { encoding, inflater: zlib.createGunzip() };
  if (encoding === 'deflate') return { encoding, inflater: zlib.createInflate() };
  if (encoding === 'identity' || encoding === '') return { encoding: 'identity' };
  throw hearthError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding "${shown(encoding)}" is not supported; use gzip, deflate or none`);
}

/**
 * One body being read. A class with bound methods rather than closures: tsx (esbuild keepNames) gives every
 * named closure an Object.defineProperty call each time it is created, which showed in the HTTP thread's profile.
 */
class BodyRead {
  readonly #payload: Readable;
  readonly #source: Readable;
  readonly #inflater: zlib.Gunzip | zlib.Inflate | undefined;
  readonly #encoding: string;
  readonly #res: ServerResponse | null;
  readonly #maxBytes: number;
  readonly #budget: BodyBudget;
  readonly #done: (err: Error | null, body?: Buffer) => void;
  readonly #chunks: Buffer[] = [];
  #received = 0;
  #held = 0;
  #watching = false;
  #settled = false;
  readonly #onData = this.#data.bind(this);
  readonly #onEnd = this.#end.bind(this);
  readonly #onSourceError = this.#sourceError.bind(this);
  readonly #onPayloadError = this.#payloadError.bind(this);
  readonly #release = this.#giveBack.bind(this);

  constructor(
    payload: Readable,
    inflater: zlib.Gunzip | zlib.Inflate | undefined,
    encoding: string,
    res: ServerResponse | null,
    opts: BodyReadOptions,
    done: (err: Error | null, body?: Buffer) => void,
  ) {
    this.#payload = payload;
    this.#inflater = inflater;
    this.#encoding = encoding;
    this.#res = res;
    this.#maxBytes = opts.maxBytes;
    this.#budget = opts.budget;
    this.#done = done;
    if (inflater) {
      payload.on('error', this.#onPayloadError);
      payload.pipe(inflater);
    }
    const source = (this.#source = inflater ?? payload);
    source.on('data', this.#onData);
    source.on('end', this.#onEnd);
    // A client that goes away mid-body shows as an 'error' ("aborted") on the request.
    source.on('error', this.#onSourceError);
    source.resume();
  }

  #data(chunk: Buffer): void {
    this.#received += chunk.length;
    if (this.#received > this.#maxBytes) {
      return this.#fail(tooLarge(this.#maxBytes, this.#inflater ? `the decompressed ${this.#encoding} body` : 'the request body'));
    }
    if (!this.#budget.take(chunk.length)) return this.#fail(overloaded(this.#budget));
    const res = this.#res;
    if (!this.#watching && res) {
      if (res.destroyed) {
        this.#budget.give(chunk.length);
        return this.#fail(hearthError('INVALID_REQUEST', 'the client closed the connection'));
      }
      this.#watching = true;
      res.on('close', this.#release); // a response closes once
    }
    this.#held += chunk.length;
    this.#chunks.push(chunk);
  }

  #end(): void {
    if (this.#settled) return;
    this.#stop();
    // Without a response to watch (a parser used outside buildApp), the bytes count only while they arrive.
    if (!this.#res) this.#giveBack();
    // Always a copy (as fastify's own reader makes), never a view of a socket read buffer.
    this.#done(null, Buffer.concat(this.#chunks, this.#received));
  }

  #sourceError(err: Error): void {
    if (this.#inflater) this.#fail(hearthError('INVALID_REQUEST', `the ${this.#encoding} body could not be decompressed: ${err.message}`));
    else this.#payloadError(err);
  }

  #payloadError(err: Error): void {
    this.#fail(hearthError('INVALID_REQUEST', `the request body could not be read (${err.message})`));
  }

  #giveBack(): void {
    this.#budget.give(this.#held);
    this.#held = 0;
  }

  #fail(err: Error): void {
    if (this.#settled) return;
    this.#stop();
    this.#chunks.length = 0;
    this.#giveBack();
    this.#done(err);
  }

  #stop(): void {
    this.#settled = true;
    const source = this.#source;
    source.removeListener('data', this.#onData);
    source.removeListener('end', this.#onEnd);
    source.removeListener('error', this.#onSourceError);
    if (this.#inflater) {
      this.#payload.removeListener('error', this.#onPayloadError);
      this.#payload.unpipe(this.#inflater);
      this.#inflater.destroy();
      // The rest of the compressed body is read and dropped until the answer closes the connection.
      this.#payload.resume();
    }
  }
}

/**
 * fastify's JSON and plain-text parsers, reading through readBody: same parsing (prototype poisoning refused),
 * with the limit and the node's budget.
 */
export function registerBufferedParsers(app: FastifyInstance, opts: BodyReadOptions): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  // Callback-style parsers (block bodies, no returned value): fastify treats a parser that returns a promise as async.
  app.addContentTypeParser('application/json', (req, payload, done) => {
    readBody(req, payload, opts, (err, body) => {
      if (err) done(err);
      else void json(req, body!.toString('utf8'), done); // the default parser answers through done
    });
  });
  app.addContentTypeParser('text/plain', (req, payload, done) => {
    readBody(req, payload, opts, (err, body) => (err ? done(err) : done(null, body!.toString('utf8'))));
  });
}
