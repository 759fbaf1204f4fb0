// The Open Inference Protocol surface (KServe V2 / Triton REST) beyond health: server and model metadata,
// model readiness, inference (JSON and the binary tensor extension), the model repository extension and the
// statistics extension.
//
// Readiness: Hearth loads models on demand, and a version's manifest exists only after the upload loaded it once
// in a throwaway instance. So an existing version is "ready" (it can serve: the first call waits for its cold
// start instead of failing), unless its last load on this node failed; `hearth-warm` tells whether an instance
// is up right now. The repository index uses the same rule: READY, or UNAVAILABLE with the load error as reason.
// An explicit unload (Triton's model control) makes the model's versions not ready on this node, UNAVAILABLE
// "unloaded" in the index, until a load, or any request or job that starts an instance of it again.
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  defaultModelConfig,
  hearthError,
  isHearthError,
  mergeModelConfig,
  platformOf,
  shown,
  type Clock,
  type Manifest,
  type ModelConfig,
  type PrintedTensor,
  type Tensor,
} from '../core/index.ts';
import type { Executor, InferResult, ModelStats } from '../executor/index.ts';
import { binaryOutputSelector, encodeInferResponse, manifestSignature, scanInferRequest, validateInputs } from '../protocol/index.ts';
import { checkModelName, parseVersion, type ModelRegistry } from '../model-store/index.ts';
import { ClientGone } from './client-gone.ts';
import { PACKAGE_VERSION } from './package-info.ts';
import { readBody, type BodyReadOptions } from './request-body.ts';
import type { PathScrubber } from './scrub-paths.ts';
import { visibleModels } from './auth/index.ts';
import { compressResponse } from './response-compression.ts';
import { patchFromTritonConfig, toTritonConfig } from './triton-config.ts';

export interface V2RoutesOptions {
  registry: Pick<ModelRegistry, 'getManifest' | 'getModel' | 'listModels'> &
    Partial<Pick<ModelRegistry, 'getServingConfig' | 'putServingConfig'>>;
  executor?: Executor;
  clock: Clock;
  /** The infer path's manifest cache; buildApp shares it with a hook that clears it when /v1/models changes. */
  manifests?: ManifestCache;
  /**
   * Flat numeric JSON `data` arrays of at least this many bytes stay text until the instance thread parses them
   * (scanInferRequest's deferAbove): Config.deferJsonBytes, set by DEFER_JSON_BYTES.
   */
  deferJsonBytes: number;
  /** MAX_REQUEST_BYTES and the node's budget of bodies in flight (buildApp's, shared with the other routes). */
  bodies: Omit<BodyReadOptions, 'inflate'>;
  /** Load failures are shown to clients (readiness header, repository index) without server paths. */
  scrubber?: PathScrubber;
}

/**
 * Resolved manifests (and which version is latest) for the infer path, which would otherwise read the store on
 * every request (about 1-2 ms for "latest" on the fs store). Versions are immutable; the TTL bounds how long an
 * upload or delete made on another node takes to show here. On this node, clear() runs after every change
 * through /v1/models. Failed lookups are never cached.
 */
export class ManifestCache {
  readonly #registry: Pick<ModelRegistry, 'getManifest'>;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #entries = new Map<string, { at: number; manifest: Promise<Manifest> }>();

  constructor(registry: Pick<ModelRegistry, 'getManifest'>, clock: Clock, ttlMs = 1000) {
    this.#registry = registry;
    this.#clock = clock;
    this.#ttlMs = ttlMs;
  }

  get(name: string, version?: number): Promise<Manifest> {
    if (this.#ttlMs <= 0) return this.#registry.getManifest(name, version);
    const key = `${name}@${version ?? 'latest'}`;
    const now = this.#clock.now();
    const hit = this.#entries.get(key);
    if (hit && now - hit.at < this.#ttlMs) return hit.manifest;
    const manifest = this.#registry.getManifest(name, version);
    if (this.#entries.size >= 10_000) this.#entries.clear();
    const entry = { at: now, manifest };
    this.#entries.set(key, entry);
    manifest.catch(() => {
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
    });
    return manifest;
  }

  clear(): void {
    this.#entries.clear();
  }
}

export const V2_EXTENSIONS = ['binary_tensor_data', 'model_configuration', 'model_repository', 'statistics'] as const;

const SERVER_VERSION = PACKAGE_VERSION;

interface ModelParams {
  name: string;
  version?: string;
}

function fmtMs(ms: number): string {
  return String(Math.round(ms * 1000) / 1000);
}

/** `acquire=1.2;fetch=3.4;source=cache;load=20.1;first-run=0.9` */
export function breakdownHeader(b: NonNullable<InferResult['breakdown']>): string {
  return `acquire=${fmtMs(b.acquireMs)};fetch=${fmtMs(b.fetchMs)};source=${b.fetchSource};load=${fmtMs(b.loadMs)};first-run=${fmtMs(b.firstRunMs)}`;
}

function parsePriority(v: unknown, where: string): number {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 9) {
    throw hearthError('INVALID_REQUEST', `${where}: expected an integer from 0 to 9, got ${JSON.stringify(v)}`);
  }
  return n;
}

function parseHeaderLength(raw: string | string[] | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const s = Array.isArray(raw) ? raw[0] : raw;
  if (!/^\s*\d+\s*$/.test(s))
    throw hearthError('INVALID_REQUEST', `Inference-Header-Content-Length: expected a byte count, got "${shown(s)}"`);
  return Number(s);
}

/** The body as read by the plugin's parser (already decompressed: readBody inflates gzip and deflate). */
function bodyBytes(req: FastifyRequest): Buffer {
  const b = req.body;
  if (b === undefined || b === null) return Buffer.alloc(0);
  if (!Buffer.isBuffer(b)) throw hearthError('INVALID_REQUEST', 'unexpected body type');
  return b;
}

/** Small JSON bodies of the repository endpoints: empty means {}. */
function smallJson(req: FastifyRequest): Record<string, unknown> {
  const b = bodyBytes(req);
  if (b.length === 0 || b.toString('utf8').trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(b.toString('utf8'));
  } catch (e) {
    throw hearthError('INVALID_REQUEST', `body is not valid JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw hearthError('INVALID_REQUEST', 'body must be a JSON object');
  return v as Record<string, unknown>;
}

/** One upload of a version: the same bytes uploaded again after a delete are another upload. */
function uploadOf(m: Manifest): string {
  return `${m.sha256}@${m.createdAt}`;
}

function zeroStats(name: string, version: number): ModelStats {
  const z = () => ({ count: 0, ns: 0 });
  return {
    name,
    version,
    lastInference: 0,
    inferenceCount: 0,
    executionCount: 0,
    success: z(),
    fail: z(),
    queue: z(),
    computeInfer: z(),
    computeInput: z(),
    computeOutput: z(),
    coldStarts: 0,
    coldStartNs: 0,
  };
}

/** Triton's $model_stat, plus Hearth's cold starts as an extra member. */
function tritonStat(s: ModelStats) {
  const zero = { count: 0, ns: 0 };
  return {
    name: s.name,
    version: String(s.version),
    last_inference: Math.round(s.lastInference),
    inference_count: s.inferenceCount,
    execution_count: s.executionCount,
    inference_stats: {
      success: s.success,
      fail: s.fail,
      queue: s.queue,
      // compute_input / compute_output: the instance thread parsing JSON inputs and printing JSON outputs (for
      // a batch, the whole run's time, counted once per request as Triton does); compute_infer: the rest of the
      // run as the host saw it, thread hop included.
      compute_input: s.computeInput,
      compute_infer: s.computeInfer,
      compute_output: s.computeOutput,
      cache_hit: zero,
    },
    batch_stats: [],
    cold_start: { count: s.coldStarts, ns: s.coldStartNs },
  };
}

export async function v2Routes(app: FastifyInstance, opts: V2RoutesOptions): Promise<void> {
  const { registry, executor, clock } = opts;
  const deferAbove = opts.deferJsonBytes;
  const manifests = opts.manifests ?? new ManifestCache(registry, clock);
  /** Last load failure per `${name}@${version}` on this node; cleared by a successful load or run. */
  const loadFailures = new Map<string, string>();

  // Every body in this plugin is read whole: infer bodies are JSON or JSON + binary tensors, which the codec
  // scans as bytes (no JSON.parse of big data arrays, no string copy); the repository bodies are tiny.
  // Triton's clients may compress request bodies (Content-Encoding gzip or deflate): they are inflated as they
  // stream, within the same limit; the Inference-Header-Content-Length then counts decompressed bytes.
  const bodies: BodyReadOptions = { ...opts.bodies, inflate: true };
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (req, payload, done) => readBody(req, payload as Readable, bodies, done));
  const failed = (key: string, message: string) => loadFailures.set(key, opts.scrubber ? opts.scrubber.scrub(message) : message);
  // Responses of this plugin honour Accept-Encoding gzip / deflate, as Triton's do.
  app.addHook('onSend', compressResponse);

  /**
   * `${name}@${version}` unloaded explicitly on this node and not started since, with the identity (sha256 and time)
   * of the upload that was unloaded (a version deleted and uploaded again is another upload, and ready). An instance up now
   * (a job, a request that cold-started it) clears the mark too.
   */
  const unloaded = new Map<string, string>();
  const unloadedNow = (manifest: Manifest): boolean => {
    const key = `${manifest.name}@${manifest.version}`;
    const upload = unloaded.get(key);
    if (upload === undefined) return false;
    if (upload !== uploadOf(manifest) || executor?.isLoaded(manifest.name, manifest.version)) {
      unloaded.delete(key);
      return false;
    }
    return true;
  };
  /** The same for the repository index, which lists versions without their manifests: read only for marked ones. */
  const unloadedVersion = async (name: string, version: number): Promise<boolean> => {
    if (!unloaded.has(`${name}@${version}`)) return false;
    try {
      return unloadedNow(await manifests.get(name, version));
    } catch {
      unloaded.delete(`${name}@${version}`);
      return false;
    }
  };
  const forgetUnload = (name: string) => {
    for (const key of [...unloaded.keys()]) if (key.startsWith(`${name}@`)) unloaded.delete(key);
  };

  const needExecutor = (): Executor => {
    if (!executor) throw hearthError('INTERNAL', 'this node runs no executor');
    return executor;
  };

  const versionOf = (p: ModelParams): number | undefined => (p.version === undefined ? undefined : parseVersion(p.version));

  const metadata = async (p: ModelParams) => {
    const manifest = await registry.getManifest(p.name, versionOf(p));
    const { versions } = await registry.getModel(p.name);
    return {
      name: manifest.name,
      versions: versions.map(String),
      platform: platformOf(manifest.format),
      inputs: manifest.inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
      outputs: manifest.outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    };
  };

  /** The serving config as this node applies it (clamped to its cores, slots and memory), as GET /v1/models/{m}/config answers. */
  const servingConfig = async (manifest: Manifest): Promise<ModelConfig> => {
    const stored = registry.getServingConfig ? await registry.getServingConfig(manifest.name) : defaultModelConfig();
    return executor?.fitConfig ? executor.fitConfig(manifest, stored).config : stored;
  };

  const tritonConfig = async (req: FastifyRequest<{ Params: ModelParams }>) => {
    const manifest = await registry.getManifest(req.params.name, versionOf(req.params));
    return toTritonConfig(manifest, await servingConfig(manifest));
  };

  const ready = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const manifest = await registry.getManifest(req.params.name, versionOf(req.params));
    const failure =
      loadFailures.get(`${manifest.name}@${manifest.version}`) ??
      (unloadedNow(manifest) ? `unloaded: POST /v2/repository/models/${manifest.name}/load or a request loads it again` : undefined);
    reply.header('hearth-warm', String(executor?.isLoaded(manifest.name, manifest.version) ?? false));
    if (!executor || failure) {
      // The protocol says "not ready" with a 4xx and an empty body; the reason goes in a header.
      reply.header('hearth-not-ready', (failure ?? 'this node runs no executor').replace(/[^\x20-\x7e]+/g, ' ').slice(0, 200));
      return reply.code(400).send();
    }
    return reply.code(200).send();
  };

  const infer = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    // The model first (404 before 400, as Triton answers), then the body, then the body against the model.
    const manifest = await manifests.get(req.params.name, versionOf(req.params));
    const decoded = scanInferRequest(bodyBytes(req), {
      headerLength: parseHeaderLength(req.headers['inference-header-content-length']),
      deferAbove,
    });
    const outputNames = decoded.outputs?.map((o) => o.name);
    validateInputs(manifestSignature(manifest), decoded.inputs, outputNames);
    const exec = needExecutor();

    let priority: number | undefined;
    if (decoded.parameters?.priority !== undefined) priority = parsePriority(decoded.parameters.priority, 'parameter "priority"');
    else if (req.headers['hearth-priority'] !== undefined)
      priority = parsePriority(req.headers['hearth-priority'], 'header hearth-priority');

    // A client that goes away takes its request out of the queue.
    const gone = new ClientGone(reply.raw);
    // Outputs in the order the client asked for them, else in the model's order. Those that go back as JSON are
    // printed by the instance thread (printOutputs), so this thread does not format their numbers.
    const order = outputNames ?? manifest.outputs.map((o) => o.name);
    const binary = binaryOutputSelector(decoded);
    const printOutputs = order.filter((n) => !binary(n));
    let result: InferResult;
    try {
      result = await exec.infer({
        manifest,
        inputs: decoded.inputs,
        ...(outputNames ? { outputs: outputNames } : {}),
        ...(printOutputs.length > 0 ? { printOutputs } : {}),
        ...(priority !== undefined ? { priority } : {}),
        signal: gone,
        source: 'online',
      });
      loadFailures.delete(`${manifest.name}@${manifest.version}`);
      unloaded.delete(`${manifest.name}@${manifest.version}`);
    } catch (e) {
      if (isHearthError(e) && e.code === 'MODEL_INVALID') failed(`${manifest.name}@${manifest.version}`, e.message);
      throw e;
    } finally {
      gone.release();
    }

    const byName = new Map<string, Tensor | PrintedTensor>(result.outputs.map((t) => [t.name, t]));
    for (const p of result.printed ?? []) byName.set(p.name, p);
    const outputs = order.map((n) => byName.get(n)).filter((t) => t !== undefined);
    for (const t of result.outputs) if (!order.includes(t.name)) outputs.push(t);

    const encoded = encodeInferResponse(
      { modelName: manifest.name, modelVersion: manifest.version, ...(decoded.id !== undefined ? { id: decoded.id } : {}), outputs },
      binary,
    );
    reply.header('hearth-cold-start', String(result.coldStart));
    reply.header('hearth-queue-ms', fmtMs(result.queueMs));
    reply.header('hearth-compute-ms', fmtMs(result.computeMs));
    reply.header('hearth-batch-size', String(result.batchSize));
    if (result.coldStart) {
      if (result.coldStartMs !== undefined) reply.header('hearth-cold-start-ms', fmtMs(result.coldStartMs));
      if (result.breakdown) reply.header('hearth-cold-start-breakdown', breakdownHeader(result.breakdown));
    }
    if (encoded.headerLength !== undefined) reply.header('inference-header-content-length', String(encoded.headerLength));
    return reply.code(200).type(encoded.contentType).send(encoded.body);
  };

  const stats = async (req: FastifyRequest<{ Params: Partial<ModelParams> }>) => {
    const exec = needExecutor();
    const { name } = req.params;
    const version = req.params.version === undefined ? undefined : parseVersion(req.params.version);
    // Triton lists every known model version, with zeros for those never called.
    const known: { name: string; version: number }[] = [];
    if (name === undefined) {
      for (const m of await registry.listModels()) for (const v of m.versions) known.push({ name: m.name, version: v });
    } else if (version === undefined) {
      for (const v of (await registry.getModel(name)).versions) known.push({ name, version: v });
    } else {
      await registry.getManifest(name, version); // 404s
      known.push({ name, version });
    }
    const live = new Map(
      exec
        .stats(name === undefined ? {} : { name, ...(version !== undefined ? { version } : {}) })
        .map((s) => [`${s.name}@${s.version}`, s]),
    );
    return { model_stats: known.map((k) => tritonStat(live.get(`${k.name}@${k.version}`) ?? zeroStats(k.name, k.version))) };
  };

  app.get('/v2', async () => ({ name: 'hearth', version: SERVER_VERSION, extensions: [...V2_EXTENSIONS] }));

  app.get<{ Params: ModelParams }>('/v2/models/:name', async (req) => metadata(req.params));
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version', async (req) => metadata(req.params));
  app.get<{ Params: ModelParams }>('/v2/models/:name/config', tritonConfig);
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version/config', tritonConfig);
  app.get<{ Params: ModelParams }>('/v2/models/:name/ready', ready);
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version/ready', ready);
  app.post<{ Params: ModelParams }>('/v2/models/:name/infer', infer);
  app.post<{ Params: ModelParams }>('/v2/models/:name/versions/:version/infer', infer);

  app.get('/v2/models/stats', stats);
  app.get<{ Params: Partial<ModelParams> }>('/v2/models/:name/stats', stats);
  app.get<{ Params: Partial<ModelParams> }>('/v2/models/:name/versions/:version/stats', stats);

  app.post('/v2/repository/index', async (req) => {
    const body = smallJson(req);
    if (body.ready !== undefined && typeof body.ready !== 'boolean') throw hearthError('INVALID_REQUEST', '"ready" must be a boolean');
    const out: { name: string; version: string; state: 'READY' | 'UNAVAILABLE'; reason: string }[] = [];
    for (const m of visibleModels(req, await registry.listModels(), (x) => x.name)) {
      for (const v of m.versions) {
        const failure =
          loadFailures.get(`${m.name}@${v}`) ??
          (executor ? undefined : 'this node runs no executor') ??
          ((await unloadedVersion(m.name, v)) ? 'unloaded' : undefined);
        if (failure) {
          if (!body.ready) out.push({ name: m.name, version: String(v), state: 'UNAVAILABLE', reason: failure });
          continue;
        }
        const warm = executor!.isLoaded(m.name, v);
        out.push({
          name: m.name,
          version: String(v),
          state: 'READY',
          reason: warm ? 'warm: an instance is up' : 'cold: loads on the first request',
        });
      }
    }
    return out;
  });

  app.post<{ Params: { name: string } }>('/v2/repository/models/:name/load', async (req, reply) => {
    const exec = needExecutor();
    const body = smallJson(req);
    const params = body.parameters;
    if (params !== undefined && (params === null || typeof params !== 'object' || Array.isArray(params))) {
      throw hearthError('INVALID_REQUEST', '"parameters" must be an object');
    }
    for (const k of Object.keys(params ?? {})) {
      // Triton's "file:<path>" parameters carry model files; Hearth's uploads go through POST /v1/models/{name}.
      if (k !== 'config') throw hearthError('INVALID_REQUEST', `parameter ${JSON.stringify(k)} is not supported (only "config")`);
    }
    const { name } = req.params;
    checkModelName(name);
    let manifest: Manifest;
    try {
      manifest = await registry.getManifest(name);
    } catch (e) {
      // Triton's wording for a load of a model the repository does not hold.
      if (isHearthError(e) && e.code === 'MODEL_NOT_FOUND') {
        throw hearthError('MODEL_NOT_FOUND', `failed to load '${name}', it is not in the model repository`);
      }
      throw e;
    }
    const config = (params as Record<string, unknown> | undefined)?.config;
    if (config !== undefined) {
      // Triton's "config" parameter: what maps onto the serving config is stored (for every node) and applied here.
      if (!registry.getServingConfig || !registry.putServingConfig) throw hearthError('INTERNAL', 'this node cannot store serving configs');
      const patch = patchFromTritonConfig(config, manifest, await servingConfig(manifest));
      if (Object.keys(patch).length > 0) {
        if (exec.checkConfig) exec.checkConfig(mergeModelConfig(await registry.getServingConfig(name), patch));
        exec.setConfig(name, await registry.putServingConfig(name, patch));
      }
    }
    const key = `${manifest.name}@${manifest.version}`;
    try {
      await exec.load(manifest);
      loadFailures.delete(key);
      forgetUnload(name);
    } catch (e) {
      if (isHearthError(e) && (e.code === 'MODEL_INVALID' || e.code === 'INSTANCE_FAILED' || e.code === 'TIMEOUT')) failed(key, e.message);
      throw e;
    }
    return reply.code(200).send();
  });

  app.post<{ Params: { name: string } }>('/v2/repository/models/:name/unload', async (req, reply) => {
    const exec = needExecutor();
    smallJson(req);
    const { versions } = await registry.getModel(req.params.name); // 404s
    const uploads = await Promise.all(versions.map((v) => manifests.get(req.params.name, v).catch(() => undefined)));
    await exec.unload(req.params.name);
    for (const m of uploads) if (m) unloaded.set(`${m.name}@${m.version}`, uploadOf(m));
    return reply.code(200).send();
  });
}
