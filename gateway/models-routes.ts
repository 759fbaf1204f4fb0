// /v1/models: upload (POST next version, PUT explicit version), list, get, delete.
// Upload bodies are never buffered: the content-type parsers below hand fastify's raw request stream to the uploader.
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hearthError, isHearthError, shown } from '../core/index.ts';
import type { Executor } from '../executor/index.ts';
import { checkModelName, parseVersion, type ModelRegistry, type ModelUploader, type UploadBody } from '../model-store/index.ts';
import type { Readable } from 'node:stream';
import { visibleModels } from './auth/index.ts';

export interface ModelsRoutesOptions {
  registry: ModelRegistry;
  uploader: ModelUploader;
  maxModelBytes: number;
  /** When present, deleting a model or version also removes its pools and instances from the executor. */
  executor?: Pick<Executor, 'remove'>;
}

const GZIP_TYPES = [
  'application/gzip',
  'application/x-gzip',
  'application/tar+gzip',
  'application/x-tar+gzip',
  'application/x-compressed-tar',
];
/** Multipart framing around the files: a body this much over MAX_MODEL_BYTES is refused before it is read. */
const MULTIPART_SLACK = 1024 * 1024;
/** Plain (non-file) fields a multipart upload may carry; they are ignored. */
const MAX_FIELDS = 100;

export async function modelsRoutes(app: FastifyInstance, opts: ModelsRoutesOptions): Promise<void> {
  const { registry, uploader, maxModelBytes, executor } = opts;

  // Registered inside this plugin only: the V2 binary tensor extension parses octet-stream its own way.
  const passThrough = (_req: FastifyRequest, payload: NodeJS.ReadableStream, done: (err: Error | null, body?: unknown) => void) =>
    done(null, payload);
  app.addContentTypeParser('application/octet-stream', passThrough);
  app.addContentTypeParser(GZIP_TYPES, passThrough);
  // Hearth counts bytes (MODEL_TOO_LARGE) and files (MAX_ARCHIVE_FILES) itself; busboy's own limits sit one above
  // them so they never fire first.
  const maxFiles = uploader.maxArchiveFiles;
  await app.register(multipart, {
    limits: {
      fileSize: maxModelBytes + 1,
      files: maxFiles + 1,
      fields: MAX_FIELDS,
      parts: maxFiles + 1 + MAX_FIELDS,
      fieldSize: 1024 * 1024,
    },
  });

  const upload = async (req: FastifyRequest, reply: FastifyReply, name: string, version: number | undefined) => {
    checkModelName(name);
    // A connection that closes before the answer is written means the client is gone: do not publish the version.
    const gone = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableEnded) gone.abort(new Error('connection closed'));
    });
    const signal = gone.signal;
    const declared = Number(req.headers['content-length'] ?? NaN);
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (declared === 0 || (req.body === undefined && !req.isMultipart())) throw hearthError('EMPTY_BODY', 'the upload holds no bytes');
    let body: UploadBody;
    let declaredBytes: number | undefined;
    if (req.isMultipart()) {
      body = { kind: 'files', files: multipartFiles(req) };
      if (Number.isFinite(declared) && declared > maxModelBytes + MULTIPART_SLACK) declaredBytes = declared;
    } else if (type === 'application/octet-stream') {
      body = { kind: 'onnx', stream: req.body as Readable };
      if (Number.isFinite(declared)) declaredBytes = declared;
    } else if (GZIP_TYPES.includes(type)) {
      body = { kind: 'tar.gz', stream: req.body as Readable };
      if (Number.isFinite(declared) && declared > maxModelBytes + MULTIPART_SLACK) declaredBytes = declared;
    } else {
      throw hearthError(
        'UNSUPPORTED_MEDIA_TYPE',
        `Content-Type "${shown(type)}": expected application/octet-stream (.onnx), application/gzip (.tar.gz) or multipart/form-data`,
      );
    }
    return uploader.upload(name, version, body, declaredBytes, signal);
  };

  app.post<{ Params: { name: string } }>('/v1/models/:name', async (req, reply) => {
    reply.code(201).send(await upload(req, reply, req.params.name, undefined));
  });

  app.put<{ Params: { name: string; version: string } }>('/v1/models/:name/versions/:version', async (req, reply) => {
    checkModelName(req.params.name);
    reply.code(201).send(await upload(req, reply, req.params.name, parseVersion(req.params.version)));
  });

  app.get('/v1/models', async (req) => ({ models: visibleModels(req, await registry.listModels(), (m) => m.name) }));

  app.get<{ Params: { name: string } }>('/v1/models/:name', async (req) => registry.getModel(req.params.name));

  app.get<{ Params: { name: string; version: string } }>('/v1/models/:name/versions/:version', async (req) => {
    checkModelName(req.params.name);
    return registry.getManifest(req.params.name, parseVersion(req.params.version));
  });

  app.delete<{ Params: { name: string; version: string } }>('/v1/models/:name/versions/:version', async (req) => {
    checkModelName(req.params.name);
    const version = parseVersion(req.params.version);
    await registry.deleteVersion(req.params.name, version);
    await executor?.remove(req.params.name, version);
    return { name: req.params.name, deleted: [version] };
  });

  app.delete<{ Params: { name: string } }>('/v1/models/:name', async (req) => {
    const deleted = await registry.deleteModel(req.params.name);
    await executor?.remove(req.params.name);
    return { name: req.params.name, deleted };
  });
}

/** The file parts of a multipart body, one at a time; plain fields are ignored. Parser failures become Hearth errors. */
async function* multipartFiles(req: FastifyRequest): AsyncIterable<{ filename: string; stream: Readable }> {
  const parts = req.parts()[Symbol.asyncIterator]();
  for (;;) {
    let next: Awaited<ReturnType<typeof parts.next>>;
    try {
      next = await parts.next();
    } catch (e) {
      throw multipartError(e);
    }
    if (next.done) return;
    const part = next.value;
    if (part.type === 'file') yield { filename: part.filename, stream: part.file };
  }
}

function multipartError(e: unknown) {
  if (isHearthError(e)) return e;
  const err = e as { statusCode?: number; code?: string; message?: string };
  // busboy's part, file and field limits: set just above Hearth's own (see the plugin options above).
  if (err?.statusCode === 413)
    return hearthError('PAYLOAD_TOO_LARGE', `the multipart body has too many parts (${err.code ?? err.message})`, { cause: e });
  return hearthError('INVALID_REQUEST', `the multipart body is malformed: ${err?.message ?? String(e)}`, { cause: e });
}
