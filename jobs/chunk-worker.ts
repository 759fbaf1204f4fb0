// The chunks queue's processor. Each chunk reads its rows from the store, runs them through the executor at batch
// priority and writes its results as one object, overwritten whole on a retry: the results never hold a duplicate
// or a missing row. On shutdown a running chunk stops at its next row and goes back to the queue untouched.
import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import { isHearthError, settleWithin, type Manifest } from '../core/index.ts';
import type { CallbackQueue } from './callback-queue.ts';
import { shownMessage } from './client-json.ts';
import { dropUnstarted } from './job-cleanup.ts';
import { inputKey, resultKey, type ChunkData, type JobContext } from './job-context.ts';
import { TERMINAL_STATES, type ChunkProgress } from './job-records.ts';
import { readRows } from './json-lines.ts';
import { ObjectWriter } from './object-writer.ts';
import type { RedisLink } from './redis-link.ts';

export class ChunkWorker {
  readonly #ctx: JobContext;
  readonly #link: RedisLink;
  readonly #callbacks: CallbackQueue;
  #closing = false;
  /** Chunks running on this node, so stop() can hand them back. */
  #running = new Set<Promise<unknown>>();

  constructor(ctx: JobContext, link: RedisLink, callbacks: CallbackQueue) {
    this.#ctx = ctx;
    this.#link = link;
    this.#callbacks = callbacks;
  }

  /** The chunks queue's processor. */
  run(
    job: Job<ChunkData>,
    token: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ rows: number; failed: number } | { skipped: string }> {
    return this.#track(this.#runChunk(job, token, signal));
  }

  /**
   * Running chunks stop at their next row and go back to the queue; resolves when they have, or after `ms` (with
   * Redis away the hand-back cannot happen: those chunks are left to the stalled check of the nodes that remain).
   */
  async stop(ms: number): Promise<void> {
    this.#closing = true;
    await settleWithin([...this.#running], ms);
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#running.add(p);
    const done = () => this.#running.delete(p);
    p.then(done, done);
    return p;
  }

  async #runChunk(
    job: Job<ChunkData>,
    token: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ rows: number; failed: number } | { skipped: string }> {
    const r = this.#link.worker;
    const { id, chunk, start, end } = job.data;
    const rec = await this.#ctx.records.get(r, id);
    if (!rec) return { skipped: 'job record gone' };
    if (TERMINAL_STATES.includes(rec.state)) return { skipped: rec.state };
    await this.#ctx.records.markRunning(r, id, Date.now());

    let manifest: Manifest;
    try {
      manifest = await this.#ctx.registry.getManifest(rec.model, rec.version);
    } catch (e) {
      if (isHearthError(e) && (e.code === 'MODEL_NOT_FOUND' || e.code === 'VERSION_NOT_FOUND')) {
        // The job cannot run at all: fail it and drop the chunks nobody started.
        await this.#ctx.records.finish(r, id, 'failed', Date.now(), `model ${rec.model} version ${rec.version} is gone: ${e.message}`);
        await dropUnstarted(this.#link.parents, this.#ctx.store, id, this.#ctx.log).catch((err: unknown) =>
          this.#ctx.log.warn({ err, job: id }, 'the unstarted chunks of a failed job were not removed'),
        );
        await this.#callbacks.enqueue(rec).catch((err: unknown) => this.#ctx.log.warn({ err, job: id }, 'callback not queued'));
        throw new UnrecoverableError(e.message);
      }
      throw e;
    }

    // Rows stream in from the chunk's input and results stream out to the store in input order: at most
    // rowConcurrency rows and their result lines are held, whatever the chunk's size.
    const want = end - start;
    const rows = readRows(await this.#ctx.store.get(inputKey(id, chunk)), { maxLineBytes: this.#ctx.config.limits.maxLineBytes })[
      Symbol.asyncIterator
    ]();
    const results = new ObjectWriter(this.#ctx.store, resultKey(id, chunk));
    const inFlight: Promise<string>[] = [];
    const progress: ChunkProgress = { done: 0, failed: 0, billedMs: 0, requests: 0 };
    let stop: 'cancelled' | 'failed' | 'closing' | undefined;
    let taken = 0;
    // A poll that fails is repeated by the next one (and the final counts are written at the end): log it once per run.
    let pollFailed = false;
    const pollError = (e: unknown) => {
      if (!pollFailed)
        this.#ctx.log.warn({ err: e, job: id, chunk }, 'chunk progress not published or cancellation not read; retrying at the next poll');
      pollFailed = true;
    };
    // Cancellation and progress are polled, not per row: one Redis round trip per poll, not per row.
    const poll = setInterval(() => {
      this.#ctx.records.setChunk(r, id, chunk, progress).catch(pollError);
      this.#ctx.records.state(r, id).then((s) => {
        if (s === 'cancelled' || s === 'failed') stop ??= s;
      }, pollError);
    }, this.#ctx.tuning.pollMs);
    try {
      for (;;) {
        if (this.#closing) stop = 'closing';
        else if (signal?.aborted) stop = 'cancelled';
        if (stop) break;
        const step = await rows.next();
        if (step.done) break;
        if (taken === want) throw new Error(`input of chunk ${chunk} holds more than the ${want} rows expected`);
        inFlight.push(
          this.#runRow(manifest, start + taken++, step.value, progress).then((line) => {
            progress.done++;
            return line;
          }),
        );
        // The oldest row's line goes out first, so lines leave in input order while the others run.
        if (inFlight.length >= this.#ctx.tuning.rowConcurrency) await results.write(await inFlight.shift()!);
      }
      if (!stop) {
        while (inFlight.length) await results.write(await inFlight.shift()!);
        if (taken !== want) throw new Error(`input of chunk ${chunk} holds ${taken} rows, expected ${want}`);
        await results.end();
      }
    } catch (e) {
      await this.#abandon(inFlight, rows, results);
      throw e;
    } finally {
      clearInterval(poll);
    }
    if (stop) await this.#abandon(inFlight, rows, results);
    if (stop === 'closing') {
      // Hand the chunk back untouched, without spending an attempt; another node (or this one after a restart) redoes it.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    if (stop) return { skipped: stop };
    await this.#ctx.records.setChunk(r, id, chunk, { ...progress, final: true });
    return { rows: taken, failed: progress.failed };
  }

  /** A chunk that stops early: its rows in flight finish (their lines dropped), its input closes, no result is stored. */
  async #abandon(inFlight: Promise<string>[], rows: AsyncIterator<string>, results: ObjectWriter): Promise<void> {
    await Promise.allSettled(inFlight);
    inFlight.length = 0;
    await rows.return?.(undefined).catch((err: unknown) => this.#ctx.log.warn({ err }, "a stopped chunk's input did not close"));
    await results.abort();
  }

  /** One row → one result line; a bad row becomes an error line and never fails the chunk. */
  async #runRow(manifest: Manifest, index: number, text: string, progress: ChunkProgress): Promise<string> {
    let rowId: string | undefined;
    const head = () => (rowId === undefined ? `{"index":${index}` : `{"index":${index},"id":${JSON.stringify(rowId)}`);
    try {
      const row = this.#ctx.codec.decode(text, manifest);
      rowId = row.id;
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await this.#ctx.executor.infer({
            manifest,
            inputs: row.inputs,
            ...(row.outputs ? { outputs: row.outputs } : {}),
            priority: 0,
            source: 'batch',
          });
          progress.requests++;
          progress.billedMs += Math.max(1, Math.ceil(res.computeMs / Math.max(1, res.batchSize)));
          return `${head()},"outputs":[${res.outputs.map((t) => this.#ctx.codec.encodeOutput(t)).join(',')}]}\n`;
        } catch (e) {
          // Load shedding is not the row's fault: wait and try again, so batch work yields to online traffic.
          if (
            isHearthError(e) &&
            (e.code === 'QUEUE_FULL' || e.code === 'OVERLOADED') &&
            attempt < this.#ctx.tuning.rowRetries &&
            !this.#closing
          ) {
            await sleep(Math.min(50 * 2 ** attempt, 2000));
            continue;
          }
          throw e;
        }
      }
    } catch (e) {
      progress.failed++;
      // The decoder may have stopped before the id: read it from the row if the row is JSON at all.
      if (rowId === undefined) rowId = idOf(text);
      // The message may quote the row's values (a name, a number): each is cut, so a row cannot make its line grow.
      const msg = shownMessage(isHearthError(e) ? `${e.code}: ${e.message}` : String((e as Error)?.message));
      return `${head()},"error":${JSON.stringify(msg)}}\n`;
    }
  }
}

function idOf(text: string): string | undefined {
  try {
    const v = JSON.parse(text) as { id?: unknown };
    return v && typeof v.id === 'string' ? v.id : undefined;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
