// buildApp: the fastify instance with every route group registered, not yet listening.
// Each route group is a plugin in its own file; they all share one error shape: { error, code }.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { cut, HearthError, isHearthError, MAX_ERROR_MESSAGE_CHARS, shown, type Clock, type Config, type ErrorCode } from '../core/index.ts';
import type { Executor } from '../executor/index.ts';
import type { ModelRegistry, ModelUploader, ObjectStore } from '../model-store/index.ts';
import { configRoutes } from './config-routes.ts';
import { healthRoutes } from './health-routes.ts';
import { modelsRoutes } from './models-routes.ts';
import { ManifestCache, v2Routes } from './v2-routes.ts';
import { jobsRoutes } from './jobs-routes.ts';
import { datasetsRoutes } from './datasets-routes.ts';
import type { Jobs } from '../jobs/index.ts';
import type { Autoscaler, PoolControl } from '../scaling/index.ts';
import type { CostLedger } from '../ledger/index.ts';
import type { HearthMetrics } from './ops-metrics.ts';
import { opsRoutes } from './ops-routes.ts';
import { BodyBudget, registerBufferedParsers, trackBodyResponses } from './request-body.ts';
import { PathScrubber } from './scrub-paths.ts';
import { bodyCapError, installAuth, keysRoutes, type KeyStore } from './auth/index.ts';
import type { EventsHub } from './events.ts';
import { eventsRoutes } from './events-routes.ts';
import { uiRoutes } from './ui-routes.ts';

/** Everything the routes need, built by main.ts (or by a test) and passed in. */
export interface AppDeps {
  config: Readonly<Config>;
  clock: Clock;
  store?: ObjectStore;
  registry?: ModelRegistry;
  uploader?: ModelUploader;
  executor?: Executor;
  /** Batch jobs and datasets (routes under /v1/jobs and /v1/datasets). */
  jobs?: Jobs;
  /** Operations: the autoscaler and cost ledger behind /v1/status and /v1/costs, the metrics behind /metrics. */
  autoscaler?: Autoscaler;
  ledger?: CostLedger;
  metrics?: HearthMetrics;
  /** The executor's control surface: the node's slots and memory, for health and status. */
  poolControl?: PoolControl;
  /** API keys (Redis or the object store); required when AUTH is on. */
  keys?: KeyStore;
  /** Where the audit trail goes: one line per write. */
  audit?: Pick<FastifyBaseLogger, 'info'>;
  /** The dashboard's live feed (GET /v1/events, GET /v1/models/{name}/requests). */
  events?: EventsHub;
  /** The dashboard's built files; default dist/ui. */
  uiDir?: string;
}

export interface BuildAppOptions {
  /** The node's logger (fastify logs requests through it), or true for a new one at LOG_LEVEL; none by default. */
  logger?: FastifyBaseLogger | boolean;
  /** Serve HTTPS with this certificate and key (TLS_CERT_FILE, TLS_KEY_FILE, read by createHearth). */
  https?: { cert: Buffer; key: Buffer };
}

export async function buildApp(deps: AppDeps, opts: BuildAppOptions = {}): Promise<FastifyInstance> {
  const { limits } = deps.config;
  // (The HTTPS server answers the same events as the HTTP one; fastify types them apart.)
  const app = Fastify({
    ...(typeof opts.logger === 'object'
      ? { loggerInstance: opts.logger }
      : { logger: opts.logger ? { level: deps.config.logLevel } : false }),
    ...(opts.https ? { https: opts.https } : {}),
    // Every buffered body goes through request-body.ts, which enforces the same limit; this covers anything else.
    bodyLimit: limits.maxRequestBytes,
    // The whole request (headers and body) must arrive within REQUEST_TIMEOUT_MS, checked this often (Node's
    // default check runs every 30 s); headers alone within the same bound, or Node's 60 s if that is shorter.
    requestTimeout: limits.requestTimeoutMs,
    http: {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: Math.min(60_000, limits.requestTimeoutMs),
      connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(limits.requestTimeoutMs / 10))),
    },
    // Socket inactivity; see keepAnswering below for requests whose answer is being computed.
    connectionTimeout: limits.connectionTimeoutMs,
    // Model names are lower case; paths are matched exactly as the Open Inference Protocol spells them.
    routerOptions: { ignoreTrailingSlash: true },
    // The router's own refusals (a path parameter over 100 characters, bad percent-encoding) in Hearth's shape.
    frameworkErrors: (err, _req, reply) => {
      const e =
        err.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? new HearthError('URI_TOO_LONG', 'a path parameter of the URL is longer than 100 characters')
          : toHearthError(err);
      (reply as FastifyReply).code(e.statusCode).type('application/json').send(e.toJSON());
    },
    clientErrorHandler: (err, socket) => answerClientError(err, socket, limits.requestTimeoutMs),
    // During a shutdown the onRequest hook below answers in Hearth's shape (fastify's own 503 body has no code).
    return503OnClosing: false,
  });
  keepAnswering(app.server);
  answerExpectations(app.server);

  // Set once close() has begun (the server accepts no new connection then, but a request may still arrive on a
  // connection already open): such a request is refused at once and its connection closed.
  let shuttingDown = false;
  app.addHook('preClose', (done) => {
    shuttingDown = true;
    done();
  });
  app.addHook('onRequest', (_req, _reply, done) => {
    done(
      shuttingDown
        ? new HearthError('SHUTTING_DOWN', 'this node is shutting down; send the request to another node', {
            headers: { connection: 'close' },
          })
        : undefined,
    );
  });

  const scrubber = new PathScrubber({ [deps.config.dataDir]: '<data>', [deps.config.cacheDir]: '<cache>' });
  app.setErrorHandler((err, req, reply) => {
    const e = bodyCapError(req) ?? toHearthError(err, req);
    if (e.statusCode >= 500) req.log.error({ err }, e.message);
    if (e.headers) reply.headers(e.headers);
    if (!req.raw.complete) lingerAfter(req, reply, shuttingDown);
    // Scrubbed whole, then cut: a cut first could leave half a server path that the scrubber no longer recognises.
    const message = cut(scrubber.scrub(e.message, e.cause ?? err), MAX_ERROR_MESSAGE_CHARS);
    reply.code(e.statusCode).type('application/json').send({ error: message, code: e.code });
  });
  app.setNotFoundHandler((req, reply) => {
    const url = req.url.length > 200 ? `${req.url.slice(0, 200)}...` : req.url;
    reply.code(404).send({ error: `no route for ${req.method} ${url}`, code: 'NOT_FOUND' });
  });

  // Bodies read whole: JSON and plain text here, everything on the V2 routes (their own parser); all of them
  // within MAX_REQUEST_BYTES and the node's MAX_BODY_BYTES_IN_FLIGHT.
  const bodies = { maxBytes: limits.maxRequestBytes, budget: new BodyBudget(limits.maxBodyBytesInFlight) };
  trackBodyResponses(app);
  registerBufferedParsers(app, bodies);

  // Identity before any route: every route registered from here on gets its auth rule or stops the start.
  await installAuth(app, {
    config: deps.config,
    clock: deps.clock,
    keys: deps.keys,
    counters: deps.metrics,
    audit: deps.audit ?? { info: () => {} },
  });
  if (deps.config.auth.enabled && deps.keys) await app.register(keysRoutes, { keys: deps.keys, clock: deps.clock });

  await app.register(healthRoutes, { store: deps.store, scrubber, node: nodeView(deps.poolControl) });
  if (deps.registry && deps.uploader) {
    await app.register(modelsRoutes, {
      registry: deps.registry,
      uploader: deps.uploader,
      maxModelBytes: deps.config.maxModelBytes,
      executor: deps.executor,
    });
    await app.register(configRoutes, { registry: deps.registry, executor: deps.executor });
    // The V2 infer path caches manifests; any successful change under /v1/models clears that cache at once.
    const manifests = new ManifestCache(deps.registry, deps.clock);
    app.addHook('onSend', async (req, reply, payload) => {
      if (req.method !== 'GET' && req.method !== 'HEAD' && req.url.startsWith('/v1/models/') && reply.statusCode < 400) manifests.clear();
      return payload;
    });
    await app.register(v2Routes, {
      registry: deps.registry,
      executor: deps.executor,
      clock: deps.clock,
      manifests,
      deferJsonBytes: deps.config.deferJsonBytes,
      bodies,
      scrubber,
    });
  }
  if (deps.autoscaler || deps.ledger || deps.metrics) {
    await app.register(opsRoutes, {
      autoscaler: deps.autoscaler,
      ledger: deps.ledger,
      metrics: deps.metrics,
      node: nodeView(deps.poolControl),
    });
  }
  if (deps.events) await app.register(eventsRoutes, { hub: deps.events, maxClients: limits.eventsMaxClients });
  await app.register(uiRoutes, { auth: deps.config.auth.enabled, ...(deps.uiDir ? { dir: deps.uiDir } : {}) });
  if (deps.jobs) {
    await app.register(jobsRoutes, { jobs: deps.jobs });
    await app.register(datasetsRoutes, { datasets: deps.jobs.datasets });
  }

  return app;
}

/** The node's budget as the health and status routes read it, when there is an executor. */
function nodeView(control: PoolControl | undefined): (() => ReturnType<PoolControl['node']>) | undefined {
  return control ? () => control.node() : undefined;
}

/** The upload routes: a 413 from their multipart reader is about the model, not a request body. */
const UPLOAD_ROUTES = new Set(['/v1/models/:name', '/v1/models/:name/versions/:version']);

/** Maps anything thrown inside a route to the registry: fastify's own 4xx become the matching code. */
export function toHearthError(err: unknown, req?: FastifyRequest): HearthError {
  if (isHearthError(err)) return err;
  const e = err as { statusCode?: number; code?: string; message?: string };
  if (e && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 413) {
      const upload = req !== undefined && (req.method === 'POST' || req.method === 'PUT') && UPLOAD_ROUTES.has(req.routeOptions.url ?? '');
      return new HearthError(upload ? 'MODEL_TOO_LARGE' : 'PAYLOAD_TOO_LARGE', e.message ?? 'body too large');
    }
    const code: ErrorCode =
      e.statusCode === 408
        ? 'REQUEST_TIMEOUT'
        : e.statusCode === 414
          ? 'URI_TOO_LONG'
          : e.statusCode === 415
            ? 'UNSUPPORTED_MEDIA_TYPE'
            : 'INVALID_REQUEST';
    return new HearthError(code, e.message ?? 'bad request');
  }
  return new HearthError('INTERNAL', (e && e.message) || 'internal error', { cause: err });
}

/**
 * CONNECTION_TIMEOUT_MS is socket inactivity. A request whose body has arrived and whose answer is not started
 * is being computed (an inference may run for its model's timeoutMs, up to an hour): its silent socket is kept.
 * Every other silent socket is closed: a body that stopped arriving, an answer the client stopped reading, an
 * idle connection. Node skips its own destroy when the server has a 'timeout' listener.
 */
function keepAnswering(server: http.Server): void {
  server.on('timeout', (socket: Socket) => {
    // _httpMessage is the response Node is writing on this socket (no public accessor exists).
    const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (res && !res.headersSent && !res.writableEnded && res.req?.complete) return;
    socket.destroy();
  });
}

/** How long a client refused in the middle of its body may go on sending (read and dropped) after the answer... */
const LINGER_MS = 2000;
/** ...and how much of it is read and dropped at most: above what socket buffers hold in flight (a few MB). */
const LINGER_BYTES = 64 * 1024 * 1024;

/**
 * An answer sent before the body has all arrived (413, 503, a refused upload): closing at once would reset a
 * client still sending, which may then never read the answer. The connection stays open while the rest of the
 * body is read and dropped (as nginx's lingering close); past LINGER_BYTES, or if the body has not ended
 * LINGER_MS after the answer, the connection is closed. A client that asked for Connection: close gets its close
 * once its body has ended.
 */
function lingerAfter(req: FastifyRequest, reply: FastifyReply, shuttingDown: boolean): void {
  // fastify asks for a close after any parser error, and Node closes right after the answer when the client
  // asked to: both would cut the client off mid-body. A node shutting down closes after the answer all the same.
  if (shuttingDown) return;
  const res = reply.raw;
  // A client waiting for 100 Continue has sent no body and gets no 100 now: nothing to read and drop. Node closes
  // the connection after the answer (the client could still send the body).
  if ((res as ContinueResponse)[AWAITING_CONTINUE]) {
    (res as ContinueResponse)[AWAITING_CONTINUE] = false;
    return;
  }
  reply.removeHeader('connection');
  const clientClose = !res.shouldKeepAlive;
  res.shouldKeepAlive = true;
  const raw = req.raw;
  // (app.inject's requests have a stand-in socket that cannot be ended.)
  const socket = typeof raw.socket?.destroy === 'function' ? raw.socket : undefined;
  let dropped = 0;
  const close = () => {
    if (raw.complete) return;
    if (res.writableFinished) socket?.destroy();
    else res.once('finish', () => socket?.destroy());
  };
  // A route that stopped reading (a refused upload) leaves the rest unread: read it on and drop it.
  raw.on('data', (c: Buffer) => {
    dropped += c.length;
    if (dropped > LINGER_BYTES) close();
  });
  raw.resume();
  res.once('finish', () => {
    if (raw.complete) {
      if (clientClose) socket?.end();
      return;
    }
    const timer = setTimeout(close, LINGER_MS);
    timer.unref();
    raw.once('end', () => {
      clearTimeout(timer);
      if (clientClose) socket?.end();
    });
  });
}

/**
 * `Expect: 100-continue`: the 100 goes out only when a route starts reading the body, so a request refused from its
 * headers (a Content-Length over MAX_REQUEST_BYTES, an unknown model) gets its final answer instead and the client
 * never sends the body (Node would send the 100 first). Any other expectation answers 417 EXPECTATION_FAILED in
 * Hearth's shape (Node's own 417 has an empty body).
 */
const AWAITING_CONTINUE = Symbol('awaitingContinue');
type ContinueResponse = ServerResponse & { [AWAITING_CONTINUE]?: boolean };

function answerExpectations(server: http.Server): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    (res as ContinueResponse)[AWAITING_CONTINUE] = true;
    // An own _read for the first read only; deleting it puts IncomingMessage's own back.
    req._read = (size: number) => {
      Reflect.deleteProperty(req, '_read');
      // Not after an answer has begun (Node reads and drops an unread body after it).
      if ((res as ContinueResponse)[AWAITING_CONTINUE] && !res.headersSent) res.writeContinue();
      (res as ContinueResponse)[AWAITING_CONTINUE] = false;
      req._read(size);
    };
    server.emit('request', req, res);
  });
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const e = new HearthError(
      'EXPECTATION_FAILED',
      `Expect: ${JSON.stringify(shown(String(req.headers.expect)))} is not supported; only 100-continue is`,
    );
    const body = JSON.stringify(e.toJSON());
    // The body, if one follows, is never read: the connection closes after the answer.
    res.writeHead(e.statusCode, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    res.end(body);
  });
}

/** A request line longer than this, in a request that overflowed the header limit, answers 414 rather than 431. */
const LONG_REQUEST_LINE = 8 * 1024;

/**
 * Errors Node's HTTP parser raises before fastify sees a request (request time-out, headers over the 16 KiB
 * limit, malformed HTTP), answered in Hearth's shape and followed by a close, as Node's own answer is.
 */
function answerClientError(err: Error & { code?: string; rawPacket?: unknown }, socket: Socket, requestTimeoutMs: number): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let e: HearthError;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    e = new HearthError('REQUEST_TIMEOUT', `the request did not arrive whole within REQUEST_TIMEOUT_MS (${requestTimeoutMs} ms)`);
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    // The packet that overflowed: if it starts a request whose first line has not ended, the URL is what is long.
    const raw = Buffer.isBuffer(err.rawPacket) ? err.rawPacket : undefined;
    const lineEnd = raw ? raw.indexOf('\r\n') : -1;
    const longUrl =
      raw !== undefined && /^[A-Z]+ \S/.test(raw.subarray(0, 16).toString('latin1')) && (lineEnd < 0 || lineEnd > LONG_REQUEST_LINE);
    e = longUrl
      ? new HearthError('URI_TOO_LONG', 'the URL is longer than the HTTP parser accepts (16 KiB with the headers)')
      : new HearthError('HEADERS_TOO_LARGE', 'the request headers are larger than the HTTP parser accepts (16 KiB in all)');
  } else {
    e = new HearthError('INVALID_REQUEST', 'the request is not valid HTTP/1.1');
  }
  // Never after an answer already begun on this socket (a refusal lingering while its body is dropped).
  const answering = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage?.headersSent === true;
  if (socket.writable && !answering) {
    const body = JSON.stringify(e.toJSON());
    socket.write(
      `HTTP/1.1 ${e.statusCode} ${http.STATUS_CODES[e.statusCode]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}
