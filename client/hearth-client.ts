// HearthClient: Hearth's whole HTTP API as typed calls. fetch and Web streams only, so it runs in Node 20+ and in a
// browser bundle; reading files and folders from disk is client/node.ts's.
import type { Tensor } from '../core/index.ts';
import { decodeInferResponse, encodeInferRequest } from '../protocol/index.ts';
import { counted, jsonLines, multipartBody, readJsonLines, sizeOf, streamOf, type BodySource, type UploadFile } from './bodies.ts';
import { HearthError } from './errors.ts';
import { seg, Transport, type ClientOptions } from './http.ts';
import { tensorBytes, toTensors, type InferInputs } from './tensors.ts';
import {
  TERMINAL_JOB_STATES,
  type ConfigAnswer,
  type DatasetInfo,
  type DatasetUpload,
  type JobResultLine,
  type JobStatus,
  type JobSubmit,
  type KeyRequest,
  type KeyView,
  type Manifest,
  type ModelSummary,
  type ServingConfig,
} from './types.ts';

/** A model to upload: one ONNX file, a .tar.gz archive, or the files of a folder (a TF.js model.json and its shards). */
export type ModelSource =
  | BodySource
  | { kind: 'onnx'; data: BodySource; size?: number }
  | { kind: 'tar.gz'; data: BodySource; size?: number }
  | { kind: 'files'; files: UploadFile[] };

/** Upload progress: `start` (total bytes when known), `progress` as bytes go out, `sent` once all are out (the server then inspects the model), `done`. */
export type UploadEvent =
  | { type: 'start'; totalBytes?: number }
  | { type: 'progress'; sentBytes: number; totalBytes?: number }
  | { type: 'sent'; sentBytes: number }
  | { type: 'done'; sentBytes: number; manifest: Manifest };

export interface UploadOptions {
  /** An explicit version (PUT .../versions/N, 409 VERSION_EXISTS if taken); the next one otherwise. */
  version?: number;
  onProgress?: (e: UploadEvent) => void;
  signal?: AbortSignal;
}

export interface InferOptions {
  version?: number;
  /** Output names to return (all when omitted). */
  outputs?: string[];
  /** Binary tensor extension for inputs and outputs; by default, when the inputs hold at least BINARY_AUTO_BYTES. */
  binary?: boolean;
  id?: string;
  parameters?: Record<string, string | number | boolean>;
  /** Scheduling priority 0-9 (the hearth-priority header). */
  priority?: number;
  signal?: AbortSignal;
}

/** What Hearth's response headers say about one inference. */
export interface InferTiming {
  coldStart: boolean;
  /** Whole cold start, when there was one (hearth-cold-start-ms). */
  coldStartMs?: number;
  /** Its parts (hearth-cold-start-breakdown): acquire, fetch, load, first-run in ms, source of the files. */
  breakdown?: Record<string, number | string>;
  queueMs?: number;
  computeMs?: number;
  batchSize?: number;
}

export interface InferResult {
  modelName?: string;
  modelVersion?: string;
  id?: string;
  /** Outputs by name. */
  outputs: Record<string, Tensor>;
  /** Outputs in the order the server sent them. */
  outputList: Tensor[];
  timing: InferTiming;
  /** True when the answer came in the binary extension. */
  binary: boolean;
}

/** Inputs of at least this many bytes go in the binary extension unless `binary` says otherwise. */
export const BINARY_AUTO_BYTES = 16 * 1024;

/** Job watching: `progress` whenever the state or counts change, `done` at a terminal state. */
export type JobEvent = { type: 'progress'; status: JobStatus } | { type: 'done'; status: JobStatus };

export interface WatchOptions {
  onProgress?: (e: JobEvent) => void;
  signal?: AbortSignal;
  /** First and shortest poll interval (ms), used again after each change. */
  minIntervalMs?: number;
  /** Longest poll interval (ms) the back-off grows to while nothing changes. */
  maxIntervalMs?: number;
  /** Growth of the interval per unchanged poll. */
  factor?: number;
}

export interface DatasetUploadEvent {
  type: 'progress' | 'done';
  sentBytes: number;
}

export interface CostsQuery {
  /** ISO 8601 date or date-time, or epoch ms. */
  from?: string | number;
  to?: string | number;
  model?: string;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(new HearthError(0, 'ABORTED', 'aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new HearthError(0, 'ABORTED', 'aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

function normaliseSource(source: ModelSource): Exclude<ModelSource, BodySource> {
  if (typeof source === 'object' && source !== null && 'kind' in source) return source;
  return { kind: 'onnx', data: source };
}

function parseTiming(h: Headers): InferTiming {
  const num = (name: string) => {
    const v = h.get(name);
    return v === null || v === '' ? undefined : Number(v);
  };
  const t: InferTiming = { coldStart: h.get('hearth-cold-start') === 'true' };
  const set = <K extends keyof InferTiming>(k: K, v: InferTiming[K] | undefined) => {
    if (v !== undefined) t[k] = v;
  };
  set('coldStartMs', num('hearth-cold-start-ms'));
  set('queueMs', num('hearth-queue-ms'));
  set('computeMs', num('hearth-compute-ms'));
  set('batchSize', num('hearth-batch-size'));
  const b = h.get('hearth-cold-start-breakdown');
  if (b) {
    const parts: Record<string, number | string> = {};
    for (const kv of b.split(';')) {
      const [k, v] = kv.split('=');
      if (k && v !== undefined) parts[k.trim()] = Number.isFinite(Number(v)) ? Number(v) : v;
    }
    t.breakdown = parts;
  }
  return t;
}

export class HearthClient {
  readonly #t: Transport;
  readonly models: ModelsApi;
  readonly datasets: DatasetsApi;
  readonly jobs: JobsApi;
  readonly keys: KeysApi;

  constructor(opts: ClientOptions) {
    this.#t = new Transport(opts);
    this.models = new ModelsApi(this.#t);
    this.datasets = new DatasetsApi(this.#t);
    this.jobs = new JobsApi(this.#t);
    this.keys = new KeysApi(this.#t);
  }

  get url(): string {
    return this.#t.url;
  }

  /** Runs one inference. Inputs are typed arrays (or plain arrays) with a shape; outputs come back as typed arrays. */
  async infer(model: string, inputs: InferInputs, opts: InferOptions = {}): Promise<InferResult> {
    const tensors = toTensors(inputs);
    const binary = opts.binary ?? tensors.reduce((n, t) => n + tensorBytes(t), 0) >= BINARY_AUTO_BYTES;
    const parameters = { ...opts.parameters, ...(binary && !opts.outputs ? { binary_data_output: true } : {}) };
    const encoded = encodeInferRequest(
      {
        ...(opts.id !== undefined ? { id: opts.id } : {}),
        ...(Object.keys(parameters).length ? { parameters } : {}),
        ...(opts.outputs ? { outputs: opts.outputs.map((name) => (binary ? { name, parameters: { binary_data: true } } : { name })) } : {}),
        inputs: tensors,
      },
      { binaryInputs: binary },
    );
    const headers: Record<string, string> = { 'content-type': encoded.contentType };
    if (encoded.headerLength !== undefined) headers['inference-header-content-length'] = String(encoded.headerLength);
    if (opts.priority !== undefined) headers['hearth-priority'] = String(opts.priority);
    const path = `/v2/models/${seg(model)}${opts.version !== undefined ? `/versions/${seg(opts.version)}` : ''}/infer`;
    const res = await this.#t.call('POST', path, {
      body: encoded.body as Uint8Array<ArrayBuffer>,
      headers,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    const hl = res.headers.get('inference-header-content-length');
    let decoded: ReturnType<typeof decodeInferResponse>;
    try {
      decoded = decodeInferResponse(bytes, hl === null ? undefined : Number(hl));
    } catch (e) {
      throw new HearthError(res.status, 'BAD_RESPONSE', `${path}: the answer could not be decoded: ${(e as Error).message}`, { cause: e });
    }
    const outputs: Record<string, Tensor> = {};
    for (const t of decoded.outputs) outputs[t.name] = t;
    return {
      ...(decoded.model_name !== undefined ? { modelName: decoded.model_name } : {}),
      ...(decoded.model_version !== undefined ? { modelVersion: decoded.model_version } : {}),
      ...(decoded.id !== undefined ? { id: decoded.id } : {}),
      outputs,
      outputList: decoded.outputs,
      timing: parseTiming(res.headers),
      binary: hl !== null,
    };
  }

  /** A raw V2 infer request body (JSON text or object) sent as it is; the answer's JSON as it is. */
  async inferRaw(
    model: string,
    body: unknown,
    opts: { version?: number; signal?: AbortSignal } = {},
  ): Promise<{ body: unknown; timing: InferTiming }> {
    const path = `/v2/models/${seg(model)}${opts.version !== undefined ? `/versions/${seg(opts.version)}` : ''}/infer`;
    const res = await this.#t.call('POST', path, {
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { body: (await res.json()) as unknown, timing: parseTiming(res.headers) };
  }

  /** GET /v1/status: pools, instances, rates, latencies and the node's slots and memory. */
  status(): Promise<{ models: Record<string, unknown>[]; node: Record<string, unknown> }> {
    return this.#t.json('GET', '/v1/status');
  }

  /** GET /v1/costs: the cost ledger's bill over a window, with the always-on comparison. */
  costs(q: CostsQuery = {}): Promise<Record<string, unknown>> {
    return this.#t.json('GET', '/v1/costs', { query: { from: q.from, to: q.to, model: q.model } });
  }

  /** GET /metrics: the Prometheus text. */
  async metrics(): Promise<string> {
    return (await this.#t.call('GET', '/metrics')).text();
  }

  /** True when the node answers its readiness check. */
  async ready(): Promise<boolean> {
    try {
      await this.#t.call('GET', '/v2/health/ready');
      return true;
    } catch (e) {
      if (e instanceof HearthError && e.status !== 0) return false;
      throw e;
    }
  }

  /** GET /v2: the server's name, version and extensions. */
  server(): Promise<{ name: string; version: string; extensions: string[] }> {
    return this.#t.json('GET', '/v2');
  }
}

export class ModelsApi {
  readonly #t: Transport;
  constructor(t: Transport) {
    this.#t = t;
  }

  /** Uploads a model version, with progress events as its bytes go out; answers its manifest once it is inspected. */
  async upload(name: string, source: ModelSource, opts: UploadOptions = {}): Promise<Manifest> {
    const src = normaliseSource(source);
    let stream: ReadableStream<Uint8Array>;
    let contentType: string;
    let size: number | undefined;
    if (src.kind === 'files') {
      if (src.files.length === 0) throw new HearthError(0, 'INVALID_INPUT', 'a folder upload needs at least one file');
      const m = multipartBody(src.files);
      ({ stream, contentType } = m);
      size = m.size;
    } else {
      stream = streamOf(src.data);
      contentType = src.kind === 'onnx' ? 'application/octet-stream' : 'application/gzip';
      size = src.size ?? sizeOf(src.data);
    }
    const emit = opts.onProgress ?? (() => {});
    emit(size !== undefined ? { type: 'start', totalBytes: size } : { type: 'start' });
    let sent = 0;
    let sentAll = false;
    const body = counted(stream, (n) => {
      sent = n;
      emit(size !== undefined ? { type: 'progress', sentBytes: n, totalBytes: size } : { type: 'progress', sentBytes: n });
    });
    // `sent` once the stream is drained: fetch read it all, the server now inspects the model.
    const tracked = body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        flush() {
          sentAll = true;
          emit({ type: 'sent', sentBytes: sent });
        },
      }),
    );
    const headers: Record<string, string> = { 'content-type': contentType };
    if (size !== undefined) headers['content-length'] = String(size);
    const path = opts.version !== undefined ? `/v1/models/${seg(name)}/versions/${seg(opts.version)}` : `/v1/models/${seg(name)}`;
    const manifest = await this.#t.json<Manifest>(opts.version !== undefined ? 'PUT' : 'POST', path, {
      body: tracked,
      headers,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (!sentAll) emit({ type: 'sent', sentBytes: sent });
    emit({ type: 'done', sentBytes: sent, manifest });
    return manifest;
  }

  async list(): Promise<ModelSummary[]> {
    return (await this.#t.json<{ models: ModelSummary[] }>('GET', '/v1/models')).models;
  }

  /** A model's versions, or undefined when it does not exist. */
  async find(name: string): Promise<ModelSummary | undefined> {
    try {
      return await this.get(name);
    } catch (e) {
      if (e instanceof HearthError && e.code === 'MODEL_NOT_FOUND') return undefined;
      throw e;
    }
  }

  get(name: string): Promise<ModelSummary> {
    return this.#t.json('GET', `/v1/models/${seg(name)}`);
  }

  /** The manifest of one version, or of the latest. */
  async manifest(name: string, version?: number): Promise<Manifest> {
    const v = version ?? (await this.get(name)).latest;
    return this.#t.json('GET', `/v1/models/${seg(name)}/versions/${seg(v)}`);
  }

  /** Deletes a model (every version), or one version. */
  delete(name: string, version?: number): Promise<{ name: string; deleted: number[] }> {
    return this.#t.json('DELETE', version === undefined ? `/v1/models/${seg(name)}` : `/v1/models/${seg(name)}/versions/${seg(version)}`);
  }

  async getConfig(name: string): Promise<ConfigAnswer> {
    const res = await this.#t.call('GET', `/v1/models/${seg(name)}/config`);
    return configAnswer(res);
  }

  /** Changes some serving settings (a partial config, merged into the stored one). */
  async putConfig(name: string, patch: ServingConfig): Promise<ConfigAnswer> {
    const res = await this.#t.call('PUT', `/v1/models/${seg(name)}/config`, { json: patch });
    return configAnswer(res);
  }

  /** Starts an instance of the latest version now (the repository extension's load). */
  async load(name: string): Promise<void> {
    await this.#t.call('POST', `/v2/repository/models/${seg(name)}/load`, { json: {} });
  }

  /** Retires the model's instances: the next request starts cold. */
  async unload(name: string): Promise<void> {
    await this.#t.call('POST', `/v2/repository/models/${seg(name)}/unload`, { json: {} });
  }

  /** The V2 metadata (inputs and outputs) of a model. */
  metadata(
    name: string,
    version?: number,
  ): Promise<{ name: string; versions: string[]; platform: string; inputs: unknown[]; outputs: unknown[] }> {
    return this.#t.json('GET', `/v2/models/${seg(name)}${version !== undefined ? `/versions/${seg(version)}` : ''}`);
  }
}

async function configAnswer(res: Response): Promise<ConfigAnswer> {
  const config = (await res.json()) as ServingConfig;
  const clamped = res.headers.get('hearth-config-clamped');
  return clamped ? { config, clamped } : { config };
}

export class DatasetsApi {
  readonly #t: Transport;
  constructor(t: Transport) {
    this.#t = t;
  }

  /**
   * Uploads a JSON Lines dataset, streamed: bytes (a file's stream, a Blob) or rows (objects or lines, from any
   * iterable or async iterable), one V2 request body per line.
   */
  async upload(
    name: string,
    data: BodySource | AsyncIterable<unknown> | Iterable<unknown>,
    opts: { onProgress?: (e: DatasetUploadEvent) => void; signal?: AbortSignal; size?: number } = {},
  ): Promise<DatasetUpload> {
    const isBody =
      data instanceof Uint8Array ||
      data instanceof ArrayBuffer ||
      (typeof Blob !== 'undefined' && data instanceof Blob) ||
      data instanceof ReadableStream;
    const stream = isBody ? streamOf(data) : jsonLines(data as Iterable<unknown>);
    const size = opts.size ?? (isBody ? sizeOf(data) : undefined);
    let sent = 0;
    const body = counted(stream, (n) => {
      sent = n;
      opts.onProgress?.({ type: 'progress', sentBytes: n });
    });
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson' };
    if (size !== undefined) headers['content-length'] = String(size);
    const out = await this.#t.json<DatasetUpload>('PUT', `/v1/datasets/${seg(name)}`, {
      body,
      headers,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    opts.onProgress?.({ type: 'done', sentBytes: sent });
    return out;
  }

  async list(): Promise<DatasetInfo[]> {
    return (await this.#t.json<{ datasets: DatasetInfo[] }>('GET', '/v1/datasets')).datasets;
  }

  get(name: string): Promise<DatasetInfo> {
    return this.#t.json('GET', `/v1/datasets/${seg(name)}`);
  }

  async delete(name: string): Promise<void> {
    await this.#t.call('DELETE', `/v1/datasets/${seg(name)}`);
  }
}

export class JobsApi {
  readonly #t: Transport;
  constructor(t: Transport) {
    this.#t = t;
  }

  /** Queues a batch job over a dataset (or inline rows). */
  submit(job: JobSubmit): Promise<{ id: string; state: 'queued' }> {
    const { dataset, ...rest } = job;
    return this.#t.json('POST', '/v1/jobs', { json: { ...rest, ...(dataset !== undefined ? { input: dataset } : {}) } });
  }

  get(id: string): Promise<JobStatus> {
    return this.#t.json('GET', `/v1/jobs/${seg(id)}`);
  }

  /** A page of jobs, newest first; `cursor` from the previous page's answer. */
  list(q: { limit?: number; cursor?: string } = {}): Promise<{ jobs: JobStatus[]; cursor?: string | null }> {
    return this.#t.json('GET', '/v1/jobs', { query: { limit: q.limit, cursor: q.cursor } });
  }

  cancel(id: string): Promise<JobStatus> {
    return this.#t.json('DELETE', `/v1/jobs/${seg(id)}`);
  }

  /**
   * Polls the job until it ends, with back-off (minIntervalMs, growing by `factor` to maxIntervalMs while nothing
   * changes, back to minIntervalMs after a change); `progress` events on each change, `done` at the end.
   */
  async watch(id: string, opts: WatchOptions = {}): Promise<JobStatus> {
    const min = opts.minIntervalMs ?? 100;
    const max = opts.maxIntervalMs ?? 2000;
    const factor = opts.factor ?? 1.5;
    let interval = min;
    let last = '';
    for (;;) {
      const status = await this.get(id);
      const seen = `${status.state} ${status.progress.doneRows} ${status.progress.failedRows} ${status.chunks.done}`;
      const terminal = TERMINAL_JOB_STATES.includes(status.state);
      if (seen !== last) {
        last = seen;
        interval = min;
        opts.onProgress?.({ type: 'progress', status });
      } else {
        interval = Math.min(max, interval * factor);
      }
      if (terminal) {
        opts.onProgress?.({ type: 'done', status });
        return status;
      }
      await sleep(interval, opts.signal);
    }
  }

  /** The results as the server streams them (JSON Lines bytes), with the job's state and row count from the headers. */
  async resultsStream(id: string, signal?: AbortSignal): Promise<{ state: string; totalRows: number; stream: ReadableStream<Uint8Array> }> {
    const res = await this.#t.call('GET', `/v1/jobs/${seg(id)}/results`, signal ? { signal } : {});
    if (!res.body) throw new HearthError(res.status, 'BAD_RESPONSE', 'the results answer has no body');
    return {
      state: res.headers.get('hearth-job-state') ?? '',
      totalRows: Number(res.headers.get('hearth-job-total-rows') ?? NaN),
      stream: res.body,
    };
  }

  /** The result lines, parsed, one at a time as they arrive. */
  async *results(id: string, signal?: AbortSignal): AsyncGenerator<JobResultLine> {
    const { stream } = await this.resultsStream(id, signal);
    yield* readJsonLines<JobResultLine>(stream);
  }
}

export class KeysApi {
  readonly #t: Transport;
  constructor(t: Transport) {
    this.#t = t;
  }

  /** Makes a key (admin only); its token (`key`) is answered only this once. */
  create(req: KeyRequest): Promise<KeyView & { key: string }> {
    return this.#t.json('POST', '/v1/keys', { json: req });
  }

  async list(): Promise<KeyView[]> {
    return (await this.#t.json<{ keys: KeyView[] }>('GET', '/v1/keys')).keys;
  }

  get(id: string): Promise<KeyView> {
    return this.#t.json('GET', `/v1/keys/${seg(id)}`);
  }

  revoke(id: string): Promise<{ id: string; revoked: true }> {
    return this.#t.json('DELETE', `/v1/keys/${seg(id)}`);
  }
}
