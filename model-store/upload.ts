// The upload pipeline: each incoming file streams to the store and, on the same pass, to a local staging folder,
// hashed and counted against MAX_MODEL_BYTES. The staged copy is inspected (loaded once); only then is the
// manifest written. Any failure, including a client that goes away, removes everything the upload wrote.
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { finished, Readable, Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import {
  hearthError,
  isHearthError,
  systemClock,
  type Clock,
  type Manifest,
  type ManifestFile,
  type ModelFormat,
  type TensorSpec,
} from '../core/index.ts';
import type { ModelRegistry } from './registry.ts';

/** Loads a staged model once and reports its signature; throws HearthError MODEL_INVALID for anything unloadable. */
export type ModelInspector = (dir: string, format: ModelFormat) => Promise<{ inputs: TensorSpec[]; outputs: TensorSpec[] }>;

/** An upload body, by Content-Type. */
export type UploadBody =
  /** application/octet-stream: one raw .onnx file. */
  | { kind: 'onnx'; stream: Readable }
  /** application/gzip: a .tar.gz of a model folder. */
  | { kind: 'tar.gz'; stream: Readable }
  /** multipart/form-data: files in the order they arrive; each stream must be consumed before the next is asked for. */
  | { kind: 'files'; files: AsyncIterable<{ filename: string; stream: Readable }> };

export interface UploaderOptions {
  registry: ModelRegistry;
  inspector: ModelInspector;
  /** Local folder for staged copies (config.cacheDir/staging); one sub-folder per upload, removed afterwards. */
  stagingDir: string;
  maxModelBytes: number;
  clock?: Clock;
}

const CONVERT_HINT =
  'this is a TensorFlow SavedModel; Hearth runs TF.js without tfjs-node here. Convert it first: ' +
  'tensorflowjs_converter --input_format=tf_saved_model --output_format=tfjs_graph_model <saved_model_dir> <out_dir>, then upload the folder as .tar.gz';

export class ModelUploader {
  readonly #registry: ModelRegistry;
  readonly #inspector: ModelInspector;
  readonly #stagingDir: string;
  readonly #maxBytes: number;
  readonly #clock: Clock;

  constructor(opts: UploaderOptions) {
    this.#registry = opts.registry;
    this.#inspector = opts.inspector;
    this.#stagingDir = path.resolve(opts.stagingDir);
    this.#maxBytes = opts.maxModelBytes;
    this.#clock = opts.clock ?? systemClock;
  }

  get stagingDir(): string {
    return this.#stagingDir;
  }

  /**
   * Uploads a model as `version`, or as the next version when omitted. Resolves with the written manifest.
   * `declaredBytes` (Content-Length) lets an oversized body be refused before any byte is read. `signal` aborts
   * the upload when the client goes away after its body arrived (during inspection): no manifest is written then.
   */
  async upload(name: string, version: number | undefined, body: UploadBody, declaredBytes?: number, signal?: AbortSignal): Promise<Manifest> {
    if (declaredBytes !== undefined && declaredBytes > this.#maxBytes) throw tooLarge(this.#maxBytes);
    const reservation = await this.#registry.reserveVersion(name, version);
    const run = new UploadRun(this.#registry, name, reservation.version, path.join(this.#stagingDir, randomUUID()), this.#maxBytes);
    try {
      await fs.mkdir(run.stagingDir, { recursive: true });
      try {
        await run.receive(body);
      } finally {
        // Every store write must have settled before cleanup, or a late put could land after the delete.
        await run.settle();
      }
      const format = await run.detectFormat();
      let signature: { inputs: TensorSpec[]; outputs: TensorSpec[] };
      try {
        const inspected = await this.#inspector(run.stagingDir, format);
        signature = { inputs: inspected.inputs, outputs: inspected.outputs };
      } catch (e) {
        if (isHearthError(e)) throw e;
        throw hearthError('MODEL_INVALID', `the ${format} model could not be loaded: ${(e as Error)?.message ?? e}`, { cause: e });
      }
      if (signal?.aborted) throw clientGone(signal.reason);
      const manifest = run.manifest(format, signature, new Date(this.#clock.now()).toISOString());
      await this.#registry.writeManifest(manifest);
      await this.#registry.store.delete(reservation.claimKey).catch(() => {});
      return manifest;
    } catch (e) {
      // Only what this upload wrote: never the prefix, which another writer's files could share after a lost race.
      for (const key of [...run.keys, reservation.claimKey]) await this.#registry.store.delete(key).catch(() => {});
      throw e;
    } finally {
      reservation.release();
      await fs.rm(run.stagingDir, { recursive: true, force: true }).catch(() => {});
    }
  }
}

/** One upload in flight: the files received so far, their hashes, and the store writes still running. */
class UploadRun {
  readonly stagingDir: string;
  readonly #registry: ModelRegistry;
  readonly #name: string;
  readonly #version: number;
  readonly #maxBytes: number;
  readonly #files = new Map<string, ManifestFile>();
  readonly #pending: Promise<unknown>[] = [];
  /** Every store key this upload has started writing, for cleanup. */
  readonly keys: string[] = [];
  #totalBytes = 0;

  constructor(registry: ModelRegistry, name: string, version: number, stagingDir: string, maxBytes: number) {
    this.#registry = registry;
    this.#name = name;
    this.#version = version;
    this.stagingDir = stagingDir;
    this.#maxBytes = maxBytes;
  }

  async receive(body: UploadBody): Promise<void> {
    if (body.kind === 'onnx') {
      await this.#receiveFile('model.onnx', body.stream);
    } else if (body.kind === 'tar.gz') {
      await this.#receiveTar(body.stream);
    } else {
      for await (const f of body.files) {
        const rel = checkUploadName(f.filename);
        // Whatever the client called its ONNX file, it is stored as model.onnx, where the runtimes look for it.
        await this.#receiveFile(rel.toLowerCase().endsWith('.onnx') ? 'model.onnx' : rel, f.stream);
      }
    }
    if (this.#totalBytes === 0) throw hearthError('EMPTY_BODY', 'the upload holds no bytes');
  }

  async settle(): Promise<void> {
    await Promise.allSettled(this.#pending);
  }

  /** Streams one file to the store and to staging at once, hashing and counting on the way. */
  async #receiveFile(rel: string, source: Readable): Promise<void> {
    if (this.#files.has(rel)) throw hearthError('MODEL_INVALID', `the upload holds "${rel}" twice`);
    const stagedPath = path.join(this.stagingDir, ...rel.split('/'));
    await fs.mkdir(path.dirname(stagedPath), { recursive: true });
    const tee = new StagingTee(stagedPath, (n) => {
      this.#totalBytes += n;
      if (this.#totalBytes > this.#maxBytes) throw tooLarge(this.#maxBytes);
    });
    finished(source, { writable: false }, (err) => {
      if (err) tee.destroy(clientGone(err));
    });
    source.on('aborted', () => tee.destroy(clientGone()));
    source.pipe(tee);
    const key = this.#registry.fileKey({ name: this.#name, version: this.#version }, rel);
    this.keys.push(key);
    const put = this.#registry.store.put(key, tee);
    this.#pending.push(put);
    await put;
    await tee.staged;
    this.#files.set(rel, { path: rel, sizeBytes: tee.sizeBytes, sha256: tee.sha256() });
  }

  async #receiveTar(source: Readable): Promise<void> {
    let failure: unknown;
    const gunzip = createGunzip();
    const extract = tar.extract();
    finished(source, { writable: false }, (err) => {
      if (!err) return;
      failure ??= clientGone(err);
      gunzip.destroy(failure as Error);
    });
    gunzip.on('error', (e) => {
      failure ??= hearthError('CORRUPT_ARCHIVE', `the body is not valid gzip: ${e.message}`);
      extract.destroy(failure as Error);
    });
    extract.on('error', (e) => (failure ??= isHearthError(e) ? e : hearthError('CORRUPT_ARCHIVE', `the body is not a valid tar archive: ${e.message}`)));
    source.pipe(gunzip).pipe(extract);
    // `tar czf m.tgz folder` puts "folder/" first: its contents are the model, so that prefix is stripped.
    let strip: string | undefined;
    let first = true;
    try {
      for await (const entry of extract) {
        const h = entry.header;
        const raw = h.name;
        const type = h.type ?? 'file';
        if (type === 'symlink' || type === 'link') throw hearthError('UNSAFE_ARCHIVE', `archive entry "${raw}" is a ${type}; links are not accepted`);
        const rel = checkArchivePath(raw);
        if (first && type === 'directory' && rel !== '' && !rel.includes('/')) strip = rel + '/';
        first = false;
        if (type === 'directory' || rel === '') {
          entry.resume();
          continue;
        }
        if (type !== 'file' && type !== 'contiguous-file') throw hearthError('UNSAFE_ARCHIVE', `archive entry "${raw}" is a ${type}; only files and folders are accepted`);
        let target = rel;
        if (strip !== undefined) {
          if (!rel.startsWith(strip)) throw hearthError('MODEL_INVALID', `archive entry "${raw}" lies outside the archive's top folder "${strip}"`);
          target = rel.slice(strip.length);
        }
        // tar-stream's entries are streamx streams; wrapping them gives Node stream semantics (errors, finished()).
        await this.#receiveFile(target, Readable.from(entry as AsyncIterable<Buffer>, { objectMode: false }));
      }
    } catch (e) {
      extract.destroy();
      gunzip.destroy();
      throw failure ?? e;
    }
    if (failure) throw failure;
  }

  async detectFormat(): Promise<ModelFormat> {
    const names = [...this.#files.keys()];
    if (names.includes('model.onnx')) return 'onnx';
    if (names.some((n) => n === 'saved_model.pb' || n.endsWith('/saved_model.pb'))) throw hearthError('MODEL_INVALID', CONVERT_HINT);
    if (!names.includes('model.json')) {
      const onnx = names.filter((n) => n.endsWith('.onnx'));
      if (onnx.length) throw hearthError('MODEL_INVALID', `found ${onnx.join(', ')}: an ONNX model in an archive must be named model.onnx, at the archive root`);
      throw hearthError('MODEL_INVALID', `no model.onnx or model.json in the upload (got: ${names.slice(0, 10).join(', ')})`);
    }
    let json: { format?: unknown; modelTopology?: Record<string, unknown>; weightsManifest?: { paths?: unknown }[] };
    try {
      json = JSON.parse(await fs.readFile(path.join(this.stagingDir, 'model.json'), 'utf8'));
    } catch (e) {
      throw hearthError('MODEL_INVALID', `model.json is not valid JSON: ${(e as Error).message}`);
    }
    if (!json || typeof json !== 'object' || !json.modelTopology) throw hearthError('MODEL_INVALID', 'model.json has no modelTopology: not a TF.js model');
    let format: ModelFormat;
    if (json.format === 'layers-model') format = 'tfjs-layers';
    else if (json.format === 'graph-model') format = 'tfjs-graph';
    else if ('node' in json.modelTopology) format = 'tfjs-graph';
    else if ('class_name' in json.modelTopology || 'model_config' in json.modelTopology || 'config' in json.modelTopology) format = 'tfjs-layers';
    else throw hearthError('MODEL_INVALID', `model.json: cannot tell a layers model from a graph model (format ${JSON.stringify(json.format)})`);
    const missing: string[] = [];
    for (const group of json.weightsManifest ?? []) {
      for (const p of Array.isArray(group.paths) ? group.paths : []) {
        const rel = path.posix.normalize(String(p).replace(/^\.\//, ''));
        if (!this.#files.has(rel)) missing.push(String(p));
      }
    }
    if (missing.length) throw hearthError('MODEL_INVALID', `model.json names weight shards that are not in the upload: ${missing.join(', ')}`);
    return format;
  }

  manifest(format: ModelFormat, signature: { inputs: TensorSpec[]; outputs: TensorSpec[] }, createdAt: string): Manifest {
    const files = [...this.#files.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
    const sha256 =
      files.length === 1
        ? files[0].sha256
        : createHash('sha256')
            .update(files.map((f) => `${f.path} ${f.sha256}\n`).join(''))
            .digest('hex');
    return {
      name: this.#name,
      version: this.#version,
      format,
      files,
      sha256,
      sizeBytes: files.reduce((s, f) => s + f.sizeBytes, 0),
      createdAt,
      inputs: signature.inputs,
      outputs: signature.outputs,
    };
  }
}

/**
 * Passes bytes through to the store while writing the same bytes to a staging file and hashing them.
 * The callback waits on the staging file's back-pressure, so neither side makes memory grow.
 */
class StagingTee extends Transform {
  readonly staged: Promise<void>;
  sizeBytes = 0;
  readonly #hash = createHash('sha256');
  readonly #file: ReturnType<typeof createWriteStream>;
  readonly #count: (n: number) => void;

  constructor(stagedPath: string, count: (n: number) => void) {
    super();
    this.#count = count;
    this.#file = createWriteStream(stagedPath);
    this.staged = new Promise((resolve, reject) => {
      this.#file.once('finish', resolve);
      this.#file.once('error', reject);
    });
    this.staged.catch(() => {});
    this.#file.on('error', (e) => this.destroy(e));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.#count(chunk.length);
    } catch (e) {
      return cb(e as Error);
    }
    this.sizeBytes += chunk.length;
    this.#hash.update(chunk);
    if (this.#file.write(chunk)) cb(null, chunk);
    else this.#file.once('drain', () => cb(null, chunk));
  }

  override _flush(cb: TransformCallback): void {
    this.#file.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#file.destroy();
    cb(err);
  }

  sha256(): string {
    return this.#hash.digest('hex');
  }
}

function tooLarge(max: number) {
  return hearthError('MODEL_TOO_LARGE', `the upload is larger than MAX_MODEL_BYTES (${max} bytes)`);
}

function clientGone(cause?: unknown) {
  return hearthError('INVALID_REQUEST', 'the client closed the connection before the upload finished', { cause });
}

/** A multipart file name: one plain file name, or a relative path without "..". */
function checkUploadName(name: string): string {
  if (!name) throw hearthError('INVALID_REQUEST', 'a multipart file part has no filename');
  return checkArchivePath(name, 'INVALID_REQUEST');
}

/** A relative "/"-path with no ".." and no leading "/" (UNSAFE_ARCHIVE otherwise); "./" prefixes are dropped. */
function checkArchivePath(raw: string, code: 'UNSAFE_ARCHIVE' | 'INVALID_REQUEST' = 'UNSAFE_ARCHIVE'): string {
  if (raw.startsWith('/') || /^[a-zA-Z]:[\\/]/.test(raw) || raw.includes('\\') || raw.includes('\0')) {
    throw hearthError(code, `path "${raw}" is absolute or uses backslashes`);
  }
  const segs = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segs.includes('..')) throw hearthError(code, `path "${raw}" climbs out of its folder with ".."`);
  return segs.join('/');
}

