// The upload pipeline: each incoming file streams to the store (under its version's files/ folder) and, on the
// same pass, to a local staging folder, hashed and counted against MAX_MODEL_BYTES and MAX_ARCHIVE_FILES. The
// staged copy is inspected (loaded once); only then is the manifest written. Every stream of the pipeline has its
// errors handled, and any failure, including a client that goes away, removes everything the upload wrote.
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { finished, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import {
  hearthError,
  isHearthError,
  systemClock,
  type HearthError,
  type Clock,
  type Manifest,
  type ManifestFile,
  type ModelFormat,
  type TensorSpec,
} from '../core/index.ts';
import { artifactId, MAX_PATH_BYTES, MAX_PATH_DEPTH, MAX_SEGMENT_BYTES } from './manifest-check.ts';
import type { ModelRegistry } from './registry.ts';

/**
 * Loads a staged model once and reports its signature; throws HearthError MODEL_INVALID for anything unloadable
 * (OVERLOADED when too many wait). `signal` aborts when the client has gone: the inspection may stop.
 */
export type ModelInspector = (
  dir: string,
  format: ModelFormat,
  signal?: AbortSignal,
) => Promise<{ inputs: TensorSpec[]; outputs: TensorSpec[] }>;

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
  /** Most files in one upload, and most folder entries in one archive (config.limits.maxArchiveFiles). Default 1000. */
  maxArchiveFiles?: number;
  clock?: Clock;
}

const CONVERT_HINT =
  'this is a TensorFlow SavedModel; Hearth runs TF.js without tfjs-node here. Convert it first: ' +
  'tensorflowjs_converter --input_format=tf_saved_model --output_format=tfjs_graph_model <saved_model_dir> <out_dir>, then upload the folder as .tar.gz';

/** Bytes per element of the weight dtypes TF.js reads (a quantized weight counts its quantization dtype). */
const WEIGHT_DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

/** Tar entry types an upload may hold: regular files and folders (links, devices, fifos are refused). */
const ACCEPTED_ENTRY_TYPES = new Set(['file', 'contiguous-file', 'directory']);

/** A TF.js model.json is topology and a weight list; one larger than this is not read into memory. */
const MAX_MODEL_JSON_BYTES = 64 * 1024 * 1024;
/**
 * Decompressed bytes a tar may hold beyond its files' declared sizes: per entry (header, long-name header,
 * padding), plus a fixed allowance for the end blocks and for what the reader buffers ahead of the entry loop.
 */
const TAR_BYTES_PER_ENTRY = 4096;
const TAR_BYTES_FIXED = 1024 * 1024;

export class ModelUploader {
  readonly #registry: ModelRegistry;
  readonly #inspector: ModelInspector;
  readonly #stagingDir: string;
  readonly #limits: UploadLimits;
  readonly #clock: Clock;

  constructor(opts: UploaderOptions) {
    this.#registry = opts.registry;
    this.#inspector = opts.inspector;
    this.#stagingDir = path.resolve(opts.stagingDir);
    this.#limits = { maxBytes: opts.maxModelBytes, maxFiles: opts.maxArchiveFiles ?? 1000 };
    this.#clock = opts.clock ?? systemClock;
  }

  get stagingDir(): string {
    return this.#stagingDir;
  }

  /** The file-count limit, for parsers in front of the uploader (multipart) to set theirs just above it. */
  get maxArchiveFiles(): number {
    return this.#limits.maxFiles;
  }

  /**
   * Uploads a model as `version`, or as the next version when omitted. Resolves with the written manifest.
   * `declaredBytes` (Content-Length) lets an oversized body be refused before any byte is read. `signal` aborts
   * the upload when the client goes away after its body arrived (during inspection): no manifest is written then.
   */
  async upload(
    name: string,
    version: number | undefined,
    body: UploadBody,
    declaredBytes?: number,
    signal?: AbortSignal,
  ): Promise<Manifest> {
    if (declaredBytes !== undefined && declaredBytes > this.#limits.maxBytes) throw tooLarge(this.#limits.maxBytes);
    const reservation = await this.#registry.reserveVersion(name, version);
    const run = new UploadRun(this.#registry, name, reservation.version, path.join(this.#stagingDir, randomUUID()), this.#limits);
    try {
      await fs.mkdir(run.stagingDir, { recursive: true });
      await run.receive(body);
      const format = await run.detectFormat();
      let signature: { inputs: TensorSpec[]; outputs: TensorSpec[] };
      try {
        const inspected = await this.#inspector(run.stagingDir, format, signal);
        signature = { inputs: inspected.inputs, outputs: inspected.outputs };
      } catch (e) {
        if (signal?.aborted) throw clientGone(signal.reason);
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

interface UploadLimits {
  maxBytes: number;
  maxFiles: number;
}

/** Maps an error of a file's source (the request body, a multipart part, a tar entry) to the answer. */
type SourceError = (e: unknown) => HearthError;

/** One upload in flight: the files received so far, their hashes, and every store key it started writing. */
class UploadRun {
  readonly stagingDir: string;
  readonly #registry: ModelRegistry;
  readonly #name: string;
  readonly #version: number;
  readonly #limits: UploadLimits;
  readonly #files = new Map<string, ManifestFile>();
  /** Paths taken so far (including the file being received) and the folders they imply: a path may not be both. */
  readonly #taken = new Set<string>();
  readonly #folders = new Set<string>();
  #folderEntries = 0;
  /** Every store key this upload has started writing, for cleanup. */
  readonly keys: string[] = [];
  #totalBytes = 0;

  constructor(registry: ModelRegistry, name: string, version: number, stagingDir: string, limits: UploadLimits) {
    this.#registry = registry;
    this.#name = name;
    this.#version = version;
    this.stagingDir = stagingDir;
    this.#limits = limits;
  }

  async receive(body: UploadBody): Promise<void> {
    if (body.kind === 'onnx') {
      this.#claim('model.onnx', 'INVALID_REQUEST');
      await this.#receiveFile('model.onnx', bodyChunks(body.stream), clientGone);
    } else if (body.kind === 'tar.gz') {
      await this.#receiveTar(body.stream);
    } else {
      for await (const f of body.files) {
        const rel = checkUploadPath(f.filename ?? '', 'INVALID_REQUEST');
        // Whatever the client called its ONNX file, it is stored as model.onnx, where the runtimes look for it.
        const target = rel.toLowerCase().endsWith('.onnx') ? 'model.onnx' : rel;
        this.#claim(target, 'INVALID_REQUEST');
        await this.#receiveFile(target, bodyChunks(f.stream), clientGone);
      }
    }
    if (this.#totalBytes === 0) throw hearthError('EMPTY_BODY', 'the upload holds no bytes');
  }

  /** Takes `rel` for the next file: within MAX_ARCHIVE_FILES, not twice, and never both a file and a folder. */
  #claim(rel: string, code: 'UNSAFE_ARCHIVE' | 'INVALID_REQUEST'): void {
    if (this.#taken.size >= this.#limits.maxFiles) throw tooManyFiles(this.#limits.maxFiles);
    if (this.#taken.has(rel)) throw hearthError('MODEL_INVALID', `the upload holds "${show(rel)}" twice`);
    if (this.#folders.has(rel)) throw hearthError(code, `"${show(rel)}" is both a file and a folder in the upload`);
    const segs = rel.split('/');
    const parents: string[] = [];
    for (let i = 1; i < segs.length; i++) {
      const folder = segs.slice(0, i).join('/');
      if (this.#taken.has(folder)) throw hearthError(code, `"${show(folder)}" is both a file and a folder in the upload`);
      parents.push(folder);
    }
    this.#taken.add(rel);
    for (const p of parents) this.#folders.add(p);
  }

  /** Counts bytes against MAX_MODEL_BYTES before they are written anywhere. */
  #count(n: number): void {
    this.#totalBytes += n;
    if (this.#totalBytes > this.#limits.maxBytes) throw tooLarge(this.#limits.maxBytes);
  }

  /**
   * Streams one claimed file to the store and to staging at once, hashing and counting on the way. `source` is
   * read through an iterator that does not destroy it on failure: the request body belongs to the HTTP layer,
   * which still has to answer on that connection.
   */
  async #receiveFile(rel: string, source: AsyncIterable<Buffer>, sourceError: SourceError): Promise<void> {
    const stagedPath = path.join(this.stagingDir, ...rel.split('/'));
    try {
      await fs.mkdir(path.dirname(stagedPath), { recursive: true });
    } catch (e) {
      throw stagingError(rel, e);
    }
    const tee = new StagingTee(stagedPath, rel, (n) => this.#count(n));
    // Every failure of the tee reaches this method through `fed` or `put`; the listener keeps a late one (after
    // both have settled) from being an unhandled 'error' event that would end the process.
    tee.on('error', () => {});
    const key = this.#registry.fileKey({ name: this.#name, version: this.#version, layout: 'files' }, rel);
    this.keys.push(key);
    // A store that fails stops the tee, so the feeding side never waits on a reader that is gone.
    const put = this.#registry.store.put(key, tee).catch((e) => {
      tee.destroy(e instanceof Error ? e : new Error(String(e)));
      throw e;
    });
    const fed = pipeline(source, tee);
    // Both settle before this returns, so the cleanup of a failed upload never races a put still writing.
    const [fedResult, putResult] = await Promise.allSettled([fed, put]);
    if (fedResult.status === 'rejected') throw isHearthError(fedResult.reason) ? fedResult.reason : sourceError(fedResult.reason);
    if (putResult.status === 'rejected') throw putResult.reason;
    this.#files.set(rel, { path: rel, sizeBytes: tee.sizeBytes, sha256: tee.sha256() });
  }

  /**
   * Unpacks a .tar.gz as it arrives: request body -> gunzip -> a count of decompressed bytes -> tar reader, whose
   * entries are received one at a time. Each limit stops the upload at the first byte or entry past it.
   */
  async #receiveTar(source: Readable): Promise<void> {
    const { maxBytes, maxFiles } = this.#limits;
    const extract = tar.extract();
    // The first failure is the answer: a broken feed destroys the reader, which then fails the entry loop too.
    let failure: HearthError | undefined;
    // Decompressed bytes the entries seen so far account for. Files are capped by MAX_MODEL_BYTES and entries by
    // MAX_ARCHIVE_FILES, so this never passes MAX_MODEL_BYTES plus framing; and zeros or junk after the last
    // entry (a gzip bomb with no file in it) are refused once they pass the fixed allowance, not the model limit.
    let accounted = TAR_BYTES_FIXED;
    const toReader = async (inflated: AsyncIterable<Buffer>): Promise<void> => {
      let n = 0;
      for await (const chunk of inflated) {
        n += chunk.length;
        if (n > accounted) {
          throw hearthError(
            'MODEL_TOO_LARGE',
            `the archive unpacks to more bytes than its files and tar framing account for (MAX_MODEL_BYTES is ${maxBytes} bytes)`,
          );
        }
        if (!extract.write(chunk)) await drained(extract);
      }
      extract.end(null); // streamx: ends the input without a last chunk
    };
    const feed = pipeline(bodyChunks(source), createGunzip(), toReader).catch((e: unknown) => {
      if (e !== READER_CLOSED) failure ??= feedError(e);
      extract.destroy(failure);
    });
    // `tar czf m.tgz folder` puts "folder/" first: its contents are the model, so that prefix is stripped.
    let strip: string | undefined;
    let first = true;
    try {
      for await (const entry of extract) {
        const h = entry.header;
        accounted += TAR_BYTES_PER_ENTRY;
        const raw = h.name;
        const type = h.type ?? 'file';
        if (type === 'symlink' || type === 'link')
          throw hearthError('UNSAFE_ARCHIVE', `archive entry "${show(raw)}" is a ${type}; links are not accepted`);
        // Whatever its name (even "." or the top folder): devices, fifos and the rest are refused, never skipped.
        if (!ACCEPTED_ENTRY_TYPES.has(type))
          throw hearthError('UNSAFE_ARCHIVE', `archive entry "${show(raw)}" is a ${show(type)}; only files and folders are accepted`);
        const rel = checkUploadPath(raw, 'UNSAFE_ARCHIVE');
        if (first && type === 'directory' && rel !== '' && !rel.includes('/')) strip = rel + '/';
        first = false;
        if (type === 'directory') {
          if (++this.#folderEntries > maxFiles) throw tooManyFiles(maxFiles, 'folder entries');
          entry.resume();
          continue;
        }
        if (rel === '') throw hearthError('UNSAFE_ARCHIVE', `archive entry "${show(raw)}" is a file named as a folder`);
        let target = rel;
        if (strip !== undefined) {
          if (!rel.startsWith(strip))
            throw hearthError('MODEL_INVALID', `archive entry "${show(raw)}" lies outside the archive's top folder "${show(strip)}"`);
          target = rel.slice(strip.length);
        }
        this.#claim(target, 'UNSAFE_ARCHIVE');
        // The header says how many bytes follow: a file that cannot fit is refused before any of them is read.
        const size = h.size ?? 0;
        if (this.#totalBytes + size > maxBytes) throw tooLarge(maxBytes);
        accounted += size;
        await this.#receiveFile(target, entryChunks(entry as AsyncIterable<Buffer>), tarError);
      }
    } catch (e) {
      failure ??= isHearthError(e) ? e : tarError(e);
    }
    if (failure) extract.destroy(failure);
    await feed;
    if (failure) throw failure;
  }

  async detectFormat(): Promise<ModelFormat> {
    const names = [...this.#files.keys()];
    if (names.includes('model.onnx')) return 'onnx';
    if (names.some((n) => n === 'saved_model.pb' || n.endsWith('/saved_model.pb'))) throw hearthError('MODEL_INVALID', CONVERT_HINT);
    if (!names.includes('model.json')) {
      const onnx = names.filter((n) => n.endsWith('.onnx'));
      if (onnx.length)
        throw hearthError(
          'MODEL_INVALID',
          `found ${onnx.slice(0, 10).map(show).join(', ')}: an ONNX model in an archive must be named model.onnx, at the archive root`,
        );
      throw hearthError('MODEL_INVALID', `no model.onnx or model.json in the upload (got: ${names.slice(0, 10).map(show).join(', ')})`);
    }
    const jsonBytes = this.#files.get('model.json')!.sizeBytes;
    if (jsonBytes > MAX_MODEL_JSON_BYTES)
      throw hearthError(
        'MODEL_INVALID',
        `model.json is ${jsonBytes} bytes; a TF.js model.json over ${MAX_MODEL_JSON_BYTES} bytes is not accepted`,
      );
    let json: { format?: unknown; modelTopology?: Record<string, unknown>; weightsManifest?: { paths?: unknown }[] };
    try {
      json = JSON.parse(await fs.readFile(path.join(this.stagingDir, 'model.json'), 'utf8')) as typeof json;
    } catch (e) {
      throw hearthError('MODEL_INVALID', `model.json is not valid JSON: ${(e as Error).message}`);
    }
    if (!json || typeof json !== 'object' || !json.modelTopology)
      throw hearthError('MODEL_INVALID', 'model.json has no modelTopology: not a TF.js model');
    let format: ModelFormat;
    if (json.format === 'layers-model') format = 'tfjs-layers';
    else if (json.format === 'graph-model') format = 'tfjs-graph';
    else if ('node' in json.modelTopology) format = 'tfjs-graph';
    else if ('class_name' in json.modelTopology || 'model_config' in json.modelTopology || 'config' in json.modelTopology)
      format = 'tfjs-layers';
    else
      throw hearthError(
        'MODEL_INVALID',
        `model.json: cannot tell a layers model from a graph model (format ${JSON.stringify(json.format)})`,
      );
    const missing: string[] = [];
    for (const group of Array.isArray(json.weightsManifest) ? json.weightsManifest : []) {
      for (const p of Array.isArray(group?.paths) ? group.paths : []) {
        const rel = path.posix.normalize(String(p).replace(/^\.\//, ''));
        if (!this.#files.has(rel)) missing.push(show(String(p)));
      }
    }
    if (missing.length)
      throw hearthError('MODEL_INVALID', `model.json names weight shards that are not in the upload: ${missing.slice(0, 10).join(', ')}`);
    await this.#checkWeightBytes(json.weightsManifest);
    return format;
  }

  /**
   * Each weights-manifest group's shards hold exactly the bytes its weight specs need (dtype size × elements, each
   * shape a list of whole numbers); string weights are walked through their 4-byte length prefixes. A manifest that
   * disagrees is refused here, not left to a runtime that would misread the weights.
   */
  async #checkWeightBytes(groups: unknown): Promise<void> {
    if (groups === undefined) return;
    if (!Array.isArray(groups)) throw hearthError('MODEL_INVALID', "model.json's weightsManifest is not a list");
    for (const [g, group] of (groups as { paths?: unknown; weights?: unknown }[]).entries()) {
      const where = `model.json's weightsManifest group ${g + 1}`;
      if (!group || typeof group !== 'object' || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
        throw hearthError('MODEL_INVALID', `${where} lacks paths or weights`);
      }
      let need = 0;
      let strings = false;
      // Bytes per weight in order: a number, or 'string' (its size is read from the shards).
      const layout: (number | { strings: number; name: string })[] = [];
      for (const w of group.weights as { name?: unknown; shape?: unknown; dtype?: unknown; quantization?: { dtype?: unknown } }[]) {
        const name = show(String(w?.name));
        const shape = w?.shape;
        if (!Array.isArray(shape) || shape.length > 64 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
          throw hearthError(
            'MODEL_INVALID',
            `${where}: weight "${name}" has shape ${show(JSON.stringify(shape) ?? String(shape))}; expected a list of whole numbers >= 0`,
          );
        }
        const elements = (shape as number[]).reduce((a, b) => a * b, 1);
        const dtype = w.quantization?.dtype ?? w.dtype;
        if (dtype === 'string') {
          strings = true;
          need += 4 * elements;
          layout.push({ strings: elements, name });
          continue;
        }
        const size = typeof dtype === 'string' ? WEIGHT_DTYPE_BYTES[dtype] : undefined;
        if (size === undefined)
          throw hearthError('MODEL_INVALID', `${where}: weight "${name}" has dtype ${show(String(dtype))}, which TF.js cannot read`);
        need += elements * size;
        layout.push(elements * size);
      }
      const shards = (group.paths as unknown[]).map((p) => path.posix.normalize(String(p).replace(/^\.\//, '')));
      const have = shards.reduce((n, rel) => n + (this.#files.get(rel)?.sizeBytes ?? 0), 0);
      if (strings ? have < need : have !== need) {
        throw hearthError(
          'MODEL_INVALID',
          `${where}: its shards hold ${have} bytes but its weight specs need ${strings ? 'at least ' : ''}${need} (dtype size × shape)`,
        );
      }
      if (strings) await this.#walkStringWeights(where, shards, layout, have);
    }
  }

  /** Reads the length prefixes of a group's string weights: every string must lie inside the shards, which end with the last weight. */
  async #walkStringWeights(
    where: string,
    shards: string[],
    layout: (number | { strings: number; name: string })[],
    have: number,
  ): Promise<void> {
    const reader = new ShardReader(
      shards.map((rel) => ({ file: path.join(this.stagingDir, ...rel.split('/')), size: this.#files.get(rel)!.sizeBytes })),
    );
    try {
      let at = 0;
      for (const w of layout) {
        if (typeof w === 'number') {
          at += w;
          continue;
        }
        for (let i = 0; i < w.strings; i++) {
          const len = at + 4 <= have ? await reader.uint32At(at) : -1;
          if (len < 0 || at + 4 + len > have)
            throw hearthError('MODEL_INVALID', `${where}: string weight "${w.name}" runs past the end of its shards`);
          at += 4 + len;
        }
      }
      if (at !== have) throw hearthError('MODEL_INVALID', `${where}: its shards hold ${have} bytes but its weights take ${at}`);
    } finally {
      await reader.close();
    }
  }

  manifest(format: ModelFormat, signature: { inputs: TensorSpec[]; outputs: TensorSpec[] }, createdAt: string): Manifest {
    const files = [...this.#files.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
    return {
      name: this.#name,
      version: this.#version,
      format,
      files,
      sha256: artifactId(files),
      sizeBytes: files.reduce((s, f) => s + f.sizeBytes, 0),
      createdAt,
      inputs: signature.inputs,
      outputs: signature.outputs,
      layout: 'files',
    };
  }
}

/**
 * Passes bytes through to the store while writing the same bytes to a staging file and hashing them. Bytes are
 * counted before they go anywhere. The callback waits on the staging file's back-pressure, so neither side makes
 * memory grow. A staging file failure fails the tee with a HearthError that names the upload path, not the disk path.
 */
class StagingTee extends Transform {
  sizeBytes = 0;
  readonly #hash = createHash('sha256');
  readonly #file: ReturnType<typeof createWriteStream>;
  readonly #count: (n: number) => void;

  constructor(stagedPath: string, rel: string, count: (n: number) => void) {
    super();
    this.#count = count;
    // 'wx': a path the upload already holds is a clash, never an overwrite.
    this.#file = createWriteStream(stagedPath, { flags: 'wx' });
    this.#file.on('error', (e) => this.destroy(stagingError(rel, e)));
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
    // Staged means written and closed: the inspector reads the file next.
    this.#file.end();
    finished(this.#file, (err) => cb(err ? (this.errored ?? err) : null));
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#file.destroy();
    cb(err);
  }

  sha256(): string {
    return this.#hash.digest('hex');
  }
}

/** Little-endian uint32s read at offsets of several files taken as one, through a 64 KiB window. */
class ShardReader {
  readonly #files: { file: string; size: number; start: number; handle?: fs.FileHandle }[] = [];
  #window = Buffer.alloc(0);
  #windowAt = 0;

  constructor(files: { file: string; size: number }[]) {
    let start = 0;
    for (const f of files) {
      this.#files.push({ ...f, start });
      start += f.size;
    }
  }

  async uint32At(at: number): Promise<number> {
    const bytes = Buffer.alloc(4);
    for (let i = 0; i < 4; i++) bytes[i] = await this.#byteAt(at + i);
    return bytes.readUInt32LE(0);
  }

  async #byteAt(at: number): Promise<number> {
    if (at < this.#windowAt || at >= this.#windowAt + this.#window.length) {
      const f = this.#files.find((x) => at >= x.start && at < x.start + x.size)!;
      f.handle ??= await fs.open(f.file, 'r');
      const buf = Buffer.alloc(Math.min(64 * 1024, f.start + f.size - at));
      const { bytesRead } = await f.handle.read(buf, 0, buf.length, at - f.start);
      this.#window = buf.subarray(0, bytesRead);
      this.#windowAt = at;
    }
    return this.#window[at - this.#windowAt] ?? 0;
  }

  async close(): Promise<void> {
    for (const f of this.#files) await f.handle?.close().catch(() => {});
  }
}

/** A stream read as an async iterator that leaves the stream alone when the reader stops early or fails. */
function bodyChunks(stream: Readable): AsyncIterable<Buffer> {
  return stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>;
}

/** A tar entry (a streamx stream) as a plain async iterable, so that stream.pipeline treats it as one. */
async function* entryChunks(entry: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  for await (const chunk of entry) yield chunk;
}

/** Thrown into the feed when the tar reader has closed: the reader's own failure is the answer. */
const READER_CLOSED = new Error('the tar reader closed');

/** Resolves when the tar reader wants more input; rejects with READER_CLOSED when it has closed instead. */
function drained(extract: ReturnType<typeof tar.extract>): Promise<void> {
  if (extract.destroyed || extract.destroying) return Promise.reject(READER_CLOSED);
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      extract.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      extract.off('drain', onDrain);
      reject(READER_CLOSED);
    };
    extract.once('drain', onDrain);
    extract.once('close', onClose);
  });
}

/** A failure of the compressed feed: bad gzip, a limit, or the request body breaking off. */
function feedError(e: unknown): HearthError {
  if (isHearthError(e)) return e;
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && code.startsWith('Z_'))
    return hearthError('CORRUPT_ARCHIVE', `the body is not valid gzip: ${(e as Error).message}`);
  return clientGone(e);
}

function tarError(e: unknown): HearthError {
  if (isHearthError(e)) return e;
  return hearthError('CORRUPT_ARCHIVE', `the body is not a valid tar archive: ${(e as Error)?.message ?? String(e)}`);
}

/** A staging write that failed. Name clashes or lengths the checks did not foresee are the upload's fault; the rest is the node's. */
function stagingError(rel: string, e: unknown): HearthError {
  const code = (e as NodeJS.ErrnoException)?.code ?? 'unknown';
  if (['ENAMETOOLONG', 'EISDIR', 'ENOTDIR', 'EEXIST', 'EINVAL', 'ELOOP'].includes(code)) {
    return hearthError('INVALID_REQUEST', `upload path "${show(rel)}" cannot be stored (${code})`, { cause: e });
  }
  // The system message names the absolute staging path: only its code goes into the answer.
  return hearthError('INTERNAL', `staging upload path "${show(rel)}" failed (${code})`, { cause: e });
}

function tooLarge(max: number) {
  return hearthError('MODEL_TOO_LARGE', `the upload is larger than MAX_MODEL_BYTES (${max} bytes)`);
}

function tooManyFiles(max: number, what = 'files') {
  return hearthError('PAYLOAD_TOO_LARGE', `the upload holds more than MAX_ARCHIVE_FILES (${max}) ${what}`);
}

function clientGone(cause?: unknown) {
  return hearthError(
    'INVALID_REQUEST',
    'the upload body broke off before it was complete (the client closed the connection or sent a truncated body)',
    { cause },
  );
}

/**
 * An upload path (a tar entry or a multipart file name) as a relative "/"-path: not absolute, no backslash, no
 * control character, no "..", at most MAX_PATH_DEPTH segments of at most MAX_SEGMENT_BYTES, MAX_PATH_BYTES in
 * all. "." segments and "./" prefixes are dropped. `code` is the answer otherwise.
 */
export function checkUploadPath(raw: string, code: 'UNSAFE_ARCHIVE' | 'INVALID_REQUEST'): string {
  if (typeof raw !== 'string' || raw === '') throw hearthError(code, 'a file in the upload has no name');
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (raw.startsWith('/') || /^[a-zA-Z]:[\\/]/.test(raw) || raw.includes('\\') || /[\x00-\x1f\x7f]/.test(raw)) {
    throw hearthError(code, `path "${show(raw)}" is absolute or holds a backslash or control character`);
  }
  const segs = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segs.includes('..')) throw hearthError(code, `path "${show(raw)}" climbs out of its folder with ".."`);
  if (segs.length > MAX_PATH_DEPTH) throw hearthError(code, `path "${show(raw)}" is ${segs.length} levels deep; at most ${MAX_PATH_DEPTH}`);
  const long = segs.find((s) => Buffer.byteLength(s) > MAX_SEGMENT_BYTES);
  if (long !== undefined)
    throw hearthError(code, `path "${show(raw)}" has a name of ${Buffer.byteLength(long)} bytes; at most ${MAX_SEGMENT_BYTES}`);
  const rel = segs.join('/');
  if (Buffer.byteLength(rel) > MAX_PATH_BYTES)
    throw hearthError(code, `path "${show(raw)}" is ${Buffer.byteLength(rel)} bytes long; at most ${MAX_PATH_BYTES}`);
  return rel;
}

/** A client-given name for an error message, shortened so that a hostile one cannot make the message huge. */
function show(s: string): string {
  return s.length > 100 ? `${s.slice(0, 100)}…` : s;
}
