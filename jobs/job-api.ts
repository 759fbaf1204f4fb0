// The job API behind /v1/jobs: create (check the request, cut the rows into one store object per chunk, queue a
// BullMQ flow of one parent over one child per chunk), get, list, cancel and the results. Every call answers 503
// JOBS_UNAVAILABLE while Redis is away.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { hearthError, isHearthError, type Config } from '../core/index.ts';
import { isNotFound } from '../model-store/index.ts';
import { checkCallbackUrl } from './callback-address.ts';
import type { CallbackQueue } from './callback-queue.ts';
import { MAX_ROW_DEPTH, shown, valueDeeperThan } from './client-json.ts';
import { ANYONE, resolveDatasetKey, type Caller } from './datasets.ts';
import { dropInputs, dropObjects, dropUnstarted } from './job-cleanup.ts';
import { inputKey, resultKey, type ChunkData, type JobContext } from './job-context.ts';
import { TERMINAL_STATES, type JobRecord, type JobState } from './job-records.ts';
import { jobStatus, type JobStatus, type ServingConfigs } from './job-status.ts';
import { readRows } from './json-lines.ts';
import { ObjectWriter } from './object-writer.ts';
import { CHUNKS, PARENTS, type RedisLink } from './redis-link.ts';

export interface CreateJobBody {
  model: string;
  version?: number;
  input?: string;
  rows?: unknown[];
  chunkSize?: number;
  priority?: number;
  callbackUrl?: string;
}

const DEFAULT_CHUNK = 256;
const MAX_CHUNK = 100_000;

export class JobApi {
  readonly #ctx: JobContext;
  readonly #link: RedisLink;
  readonly #callbacks: CallbackQueue;

  constructor(ctx: JobContext, link: RedisLink, callbacks: CallbackQueue) {
    this.#ctx = ctx;
    this.#link = link;
    this.#callbacks = callbacks;
  }

  async create(body: CreateJobBody, caller: Caller = ANYONE): Promise<{ id: string; state: 'queued' }> {
    const req = checkCreateBody(body, this.#ctx.config);
    this.#link.need();
    const manifest = await this.#ctx.registry.getManifest(req.model, req.version);
    const id = newJobId();
    const chunkSize = req.chunkSize;
    let input: string;
    let split: { totalRows: number; starts: number[] };
    // The rows are cut into one store object per chunk now, in one streaming pass, so each chunk later reads
    // only its own rows (a range read of one big object would need the store to support ranges).
    if (req.lines) {
      input = 'inline';
      split = await this.#splitInput(id, chunkSize, req.lines, '"rows": the rows');
    } else {
      input = resolveDatasetKey(req.input!, caller);
      if (!(await this.#ctx.store.stat(input))) throw hearthError('DATASET_NOT_FOUND', `"input": no dataset at key ${input}`);
      const rows = readRows(await this.#ctx.store.get(input), { maxLineBytes: this.#ctx.config.limits.maxLineBytes });
      split = await this.#splitInput(id, chunkSize, rows, `"input": dataset ${input}`).catch((e) => {
        // A dataset stored under a larger limit than this node's: name it.
        throw isHearthError(e) && e.code === 'PAYLOAD_TOO_LARGE'
          ? hearthError('PAYLOAD_TOO_LARGE', `"input": dataset ${input}: ${e.message}`)
          : e;
      });
      if (split.totalRows === 0) throw hearthError('INVALID_REQUEST', `"input": dataset ${input} holds no rows`);
    }
    const { totalRows, starts } = split;
    const chunks = starts.length;
    const rec: JobRecord = {
      id,
      model: manifest.name,
      version: manifest.version,
      sizeBytes: manifest.sizeBytes,
      state: 'queued',
      totalRows,
      chunkSize,
      chunks,
      input,
      priority: req.priority,
      createdAt: Date.now(),
      ...(req.callbackUrl ? { callbackUrl: req.callbackUrl } : {}),
      ...(caller.owner !== undefined ? { owner: caller.owner } : {}),
    };
    const cleanupInputs = (e: unknown) =>
      this.#dropInputs(id).then(() => {
        throw e;
      });
    await this.#link
      .call(async (r) => {
        await this.#ctx.records.create(r, rec, starts);
        // BullMQ: lower numbers go first; Hearth: 9 is the most urgent.
        const bullPriority = 10 - req.priority;
        const children = [];
        for (let n = 0; n < chunks; n++) {
          const data: ChunkData = { id, chunk: n, start: starts[n], end: n + 1 < chunks ? starts[n + 1] : totalRows };
          children.push({
            name: 'chunk',
            queueName: CHUNKS,
            data,
            opts: {
              jobId: `${id}.${n}`,
              priority: bullPriority,
              attempts: this.#ctx.tuning.attempts,
              backoff: { type: 'exponential', delay: this.#ctx.tuning.backoffMs },
              // A chunk that fails for good must not block the job: the parent marks its rows failed.
              ignoreDependencyOnFailure: true,
              // The parent keeps each failure's reason (getIgnoredChildrenFailures); the failed set keeps recent ones.
              removeOnComplete: true,
              removeOnFail: { count: 1000 },
            },
          });
        }
        try {
          await this.#link.flow.add({
            name: 'finalize',
            queueName: PARENTS,
            data: { id },
            opts: {
              jobId: id,
              attempts: this.#ctx.tuning.attempts,
              backoff: { type: 'exponential', delay: this.#ctx.tuning.backoffMs },
              removeOnComplete: true,
              removeOnFail: { count: 1000 },
            },
            children,
          });
        } catch (e) {
          await this.#ctx.records
            .finish(r, id, 'failed', Date.now(), `could not enqueue: ${(e as Error).message}`)
            .catch((err: unknown) => this.#ctx.log.warn({ err, job: id }, 'a job that could not be queued was not marked failed'));
          throw e;
        }
      })
      .catch(cleanupInputs);
    return { id, state: 'queued' };
  }

  /**
   * Streams rows into `jobs/{id}/input/{chunk}.jsonl` objects, one open at a time: a chunk closes at `chunkSize`
   * rows or before a row that would take it past MAX_CHUNK_BYTES (a longer row makes a chunk of its own). Resolves
   * with the row count and each chunk's first row. More than MAX_JOB_CHUNKS chunks fail (400) at the first row past
   * them.
   */
  async #splitInput(
    id: string,
    chunkSize: number,
    rows: AsyncIterable<string> | Iterable<string>,
    what: string,
  ): Promise<{ totalRows: number; starts: number[] }> {
    const { maxChunks, maxChunkBytes } = this.#ctx.config.jobs;
    const starts: number[] = [];
    let writer: ObjectWriter | undefined;
    let chunkRows = 0;
    let total = 0;
    try {
      for await (const row of rows) {
        const line = `${row}\n`;
        const bytes = Buffer.byteLength(line);
        if (writer && (chunkRows === chunkSize || writer.bytes + bytes > maxChunkBytes)) {
          await writer.end();
          writer = undefined;
        }
        if (!writer) {
          if (starts.length === maxChunks) {
            throw hearthError(
              'INVALID_REQUEST',
              `${what} would make more than ${maxChunks} chunks (each at most ${chunkSize} rows and MAX_CHUNK_BYTES, ${maxChunkBytes} bytes); at most ${maxChunks} (MAX_JOB_CHUNKS): use a larger chunkSize`,
            );
          }
          writer = new ObjectWriter(this.#ctx.store, inputKey(id, starts.length));
          starts.push(total);
          chunkRows = 0;
        }
        await writer.write(line);
        chunkRows++;
        total++;
      }
      await writer?.end();
    } catch (e) {
      // A store or read failure part-way: the chunks written so far belong to a job that will never exist.
      await writer?.abort();
      await this.#dropInputs(id);
      throw e;
    }
    return { totalRows: total, starts };
  }

  async get(id: string, caller: Caller = ANYONE): Promise<JobStatus> {
    return this.#link.call(async (r) => {
      const rec = visibleTo(await this.#ctx.records.get(r, checkJobId(id)), caller);
      if (!rec) throw hearthError('JOB_NOT_FOUND', `no job "${id}"`);
      return jobStatus(this.#ctx, r, rec);
    });
  }

  async list(
    opts: { limit?: number; cursor?: string },
    caller: Caller = ANYONE,
  ): Promise<{ jobs: JobStatus[]; nextCursor: string | null }> {
    const limit = opts.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw hearthError('INVALID_REQUEST', `"limit": expected a whole number in [1, 1000], got ${shown(opts.limit)}`);
    let cursor: { createdAt: number; id: string } | undefined;
    if (opts.cursor !== undefined) {
      // `${createdAt}:${jobId}` as page() makes it; anything else (a repeated parameter arrives as an array) is refused.
      const m = typeof opts.cursor === 'string' ? /^(\d{1,15}):(j[0-9a-z]{6,16}[0-9a-f]{8})$/.exec(opts.cursor) : null;
      if (!m) throw hearthError('INVALID_REQUEST', `"cursor": ${shown(opts.cursor)} is not a cursor this API returned`);
      cursor = { createdAt: Number(m[1]), id: m[2] };
    }
    return this.#link.call(async (r) => {
      // A key sees its own jobs (an index of their own); admin, or anyone with AUTH off, sees every job.
      const page = await this.#ctx.records.page(r, limit, cursor, caller.admin ? undefined : caller.owner);
      const jobs: JobStatus[] = [];
      // A page usually holds many jobs of few models: read each model's serving config once.
      const configs: ServingConfigs = new Map();
      for (const jid of page.ids) {
        const rec = await this.#ctx.records.get(r, jid);
        if (rec) jobs.push(await jobStatus(this.#ctx, r, rec, configs));
      }
      return { jobs, nextCursor: page.next ?? null };
    });
  }

  /** Cancels: queued chunks are removed, running chunks stop at their next row. */
  async cancel(id: string, caller: Caller = ANYONE): Promise<JobStatus> {
    return this.#link.call(async (r) => {
      const rec = visibleTo(await this.#ctx.records.get(r, checkJobId(id)), caller);
      if (!rec) throw hearthError('JOB_NOT_FOUND', `no job "${id}"`);
      if (!TERMINAL_STATES.includes(rec.state)) {
        await this.#ctx.records.finish(r, id, 'cancelled', Date.now());
        await dropUnstarted(this.#link.parents, this.#ctx.store, id, this.#ctx.log);
        await this.#callbacks.enqueue(rec);
      }
      return jobStatus(this.#ctx, r, (await this.#ctx.records.get(r, id))!);
    });
  }

  /** Deletes the input objects of a job that will never run; a failure is logged, not raised (the caller's error is the answer). */
  async #dropInputs(id: string): Promise<void> {
    await dropInputs(this.#ctx.store, id).catch((err: unknown) =>
      this.#ctx.log.warn({ err, job: id }, 'the input objects of a refused job were not deleted'),
    );
  }

  /** The results so far, as JSON Lines in input order: every finished chunk up to the first unfinished one. */
  async results(id: string, caller: Caller = ANYONE): Promise<{ state: JobState; totalRows: number; stream: Readable }> {
    const rec = visibleTo(await this.#link.call(async (r) => this.#ctx.records.get(r, checkJobId(id))), caller);
    if (!rec) throw hearthError('JOB_NOT_FOUND', `no job "${id}"`);
    const store = this.#ctx.store;
    async function* lines(): AsyncGenerator<Buffer> {
      for (let n = 0; n < rec!.chunks; n++) {
        let body: Readable;
        try {
          body = await store.get(resultKey(rec!.id, n));
        } catch (e) {
          if (isNotFound(e)) return; // the first chunk not finished yet
          throw e;
        }
        for await (const b of body) yield b as Buffer;
      }
    }
    return { state: rec.state, totalRows: rec.totalRows, stream: Readable.from(lines()) };
  }

  /** Test and admin helper: every Redis key and store object of a job. */
  async purge(id: string): Promise<void> {
    await this.#link.call((r) => this.#ctx.records.remove(r, checkJobId(id)));
    await dropObjects(this.#ctx.store, id);
  }
}

type CheckedBody = Required<Pick<CreateJobBody, 'model' | 'chunkSize' | 'priority'>> & CreateJobBody & { lines?: string[] };

/** Checks a job request before anything is read, written or queued; inline rows come back as JSON Lines. */
function checkCreateBody(body: CreateJobBody, config: Readonly<Config>): CheckedBody {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw hearthError('INVALID_REQUEST', 'body: expected a JSON object { model, input | rows, ... }');
  const known = new Set(['model', 'version', 'input', 'rows', 'chunkSize', 'priority', 'callbackUrl']);
  for (const k of Object.keys(body)) if (!known.has(k)) throw hearthError('INVALID_REQUEST', `body: unknown field ${shown(k)}`);
  if (typeof body.model !== 'string' || body.model === '') throw hearthError('INVALID_REQUEST', '"model": expected a model name');
  let version: number | undefined;
  if (body.version !== undefined && body.version !== null) {
    version = typeof body.version === 'string' && /^\d+$/.test(body.version) ? Number(body.version) : body.version;
    if (!Number.isInteger(version) || version < 1)
      throw hearthError('INVALID_REQUEST', `"version": expected a positive whole number, got ${shown(body.version)}`);
  }
  const hasInput = body.input !== undefined;
  const hasRows = body.rows !== undefined;
  if (hasInput === hasRows)
    throw hearthError('INVALID_REQUEST', 'body: give exactly one of "input" (a dataset key) and "rows" (an array of inference requests)');
  if (hasInput && typeof body.input !== 'string')
    throw hearthError('INVALID_REQUEST', '"input": expected a dataset key such as "datasets/name.jsonl"');
  if (hasRows && (!Array.isArray(body.rows) || body.rows.length === 0))
    throw hearthError('INVALID_REQUEST', '"rows": expected a non-empty array of inference requests');
  const chunkSize = body.chunkSize ?? DEFAULT_CHUNK;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK)
    throw hearthError('INVALID_REQUEST', `"chunkSize": expected a whole number in [1, ${MAX_CHUNK}], got ${shown(body.chunkSize)}`);
  const priority = body.priority ?? 0;
  if (!Number.isInteger(priority) || priority < 0 || priority > 9)
    throw hearthError('INVALID_REQUEST', `"priority": expected a whole number in [0, 9], got ${shown(body.priority)}`);
  if (body.callbackUrl !== undefined) checkCallbackUrl(body.callbackUrl, config.callbacks.allowPrivate);
  if (!hasRows) return { ...body, version, chunkSize, priority };
  const chunks = Math.ceil(body.rows!.length / chunkSize);
  if (chunks > config.jobs.maxChunks) {
    throw hearthError(
      'INVALID_REQUEST',
      `"chunkSize": ${body.rows!.length} rows in chunks of ${chunkSize} make ${chunks} chunks; at most ${config.jobs.maxChunks} (MAX_JOB_CHUNKS): use a larger chunkSize`,
    );
  }
  return { ...body, version, chunkSize, priority, lines: inlineLines(body.rows!, config) };
}

/**
 * Inline rows as the JSON Lines their chunks will hold, bounded like a dataset: at most MAX_INLINE_ROWS rows, each
 * nested at most MAX_ROW_DEPTH deep (checked before JSON.stringify, which would overflow the stack) and at most
 * MAX_LINE_BYTES long, all of them at most MAX_REQUEST_BYTES (numbers can take more room written out than sent).
 */
function inlineLines(rows: unknown[], config: Readonly<Config>): string[] {
  const { maxInlineRows } = config.jobs;
  const { maxLineBytes, maxRequestBytes } = config.limits;
  if (rows.length > maxInlineRows)
    throw hearthError(
      'INVALID_REQUEST',
      `"rows": ${rows.length} rows; at most ${maxInlineRows} (MAX_INLINE_ROWS): upload a dataset for more`,
    );
  const lines: string[] = new Array<string>(rows.length);
  let total = 0;
  for (let i = 0; i < rows.length; i++) {
    if (valueDeeperThan(rows[i], MAX_ROW_DEPTH))
      throw hearthError('INVALID_REQUEST', `"rows[${i}]": nested deeper than ${MAX_ROW_DEPTH} levels`);
    const line = JSON.stringify(rows[i]) ?? 'null';
    const bytes = Buffer.byteLength(line);
    if (bytes > maxLineBytes)
      throw hearthError('INVALID_REQUEST', `"rows[${i}]": ${bytes} bytes as JSON, longer than MAX_LINE_BYTES (${maxLineBytes} bytes)`);
    total += bytes + 1;
    if (total > maxRequestBytes)
      throw hearthError(
        'INVALID_REQUEST',
        `"rows": the rows take more than MAX_REQUEST_BYTES (${maxRequestBytes} bytes) as JSON Lines; upload a dataset for more`,
      );
    lines[i] = line;
  }
  return lines;
}

const JOB_ID = /^j[0-9a-z]{6,16}[0-9a-f]{8}$/;

function newJobId(): string {
  return `j${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

function checkJobId(id: string): string {
  if (!JOB_ID.test(id)) throw hearthError('JOB_NOT_FOUND', `no job "${id}"`);
  return id;
}

/** A job is seen by the key that created it and by admin (with AUTH off, by everyone); to others it does not exist. */
function visibleTo(rec: JobRecord | undefined, caller: Caller): JobRecord | undefined {
  return rec && (caller.admin || rec.owner === caller.owner) ? rec : undefined;
}
