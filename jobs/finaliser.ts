// The parents queue's processor. A job's parent runs exactly once, when every chunk has finished (whatever node
// ran them): it writes error lines for the chunks that failed for good, ends the job and queues its callback.
// The same queue carries the cluster's retention sweep, which deletes jobs finished more than JOB_RETENTION_MS ago.
import type { Job } from 'bullmq';
import { isHearthError } from '../core/index.ts';
import type { CallbackQueue } from './callback-queue.ts';
import { shownMessage } from './client-json.ts';
import { dropInputs, dropObjects } from './job-cleanup.ts';
import { resultKey, type JobContext } from './job-context.ts';
import { TERMINAL_STATES } from './job-records.ts';
import { readRows } from './json-lines.ts';
import { ObjectWriter } from './object-writer.ts';
import type { RedisLink } from './redis-link.ts';

/** The parents queue's periodic job that deletes jobs older than JOB_RETENTION_MS. */
const SWEEP = 'retention-sweep';
/** Index entries one sweep looks at, at most (jobs still running are stepped over). */
const SWEEP_MAX = 1000;

export class Finaliser {
  readonly #ctx: JobContext;
  readonly #link: RedisLink;
  readonly #callbacks: CallbackQueue;

  constructor(ctx: JobContext, link: RedisLink, callbacks: CallbackQueue) {
    this.#ctx = ctx;
    this.#link = link;
    this.#callbacks = callbacks;
  }

  /** The parents queue's processor: a job's finalisation or the retention sweep. */
  run(job: Job<{ id: string }>): Promise<void> {
    return job.name === SWEEP ? this.#sweep() : this.#finalize(job);
  }

  /** One sweep per interval for the whole cluster (a BullMQ job scheduler; every node upserts the same one). */
  scheduleSweep(): void {
    const { retentionMs } = this.#ctx.config.jobs;
    if (retentionMs > 0) {
      const every = Math.min(Math.max(Math.floor(retentionMs / 10), 1000), 3_600_000);
      this.#link.parents
        .upsertJobScheduler(
          SWEEP,
          { every },
          { name: SWEEP, data: { id: '' }, opts: { removeOnComplete: true, removeOnFail: { count: 10 } } },
        )
        .catch((e: unknown) => this.#ctx.log.warn({ err: e }, 'jobs retention sweep not scheduled'));
    }
  }

  /**
   * Runs once every chunk has finished. Its last attempt, if it fails too, ends the job `failed` with the reason,
   * so a job never stays `running` after its parent gave up.
   */
  async #finalize(job: Job<{ id: string }>): Promise<void> {
    try {
      await this.#finalizeOnce(job);
    } catch (e) {
      if (job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) {
        const r = this.#link.worker;
        const msg = isHearthError(e) ? `${e.code}: ${e.message}` : (e as Error)?.message;
        const id = job.data.id;
        const log = this.#ctx.log;
        // The reason is rethrown below, so BullMQ records it; what fails here is only logged.
        const moved = await this.#ctx.records
          .finish(r, id, 'failed', Date.now(), `could not finish the job after ${job.attemptsMade + 1} attempts: ${msg}`)
          .catch((err: unknown) => {
            log.error({ err, job: id }, 'a job whose finalisation failed could not be marked failed');
            return false;
          });
        const rec = moved
          ? await this.#ctx.records
              .get(r, id)
              .catch((err: unknown) => void log.warn({ err, job: id }, 'job record not read; its callback is not queued'))
          : undefined;
        if (rec) await this.#callbacks.enqueue(rec).catch((err: unknown) => log.warn({ err, job: id }, 'callback not queued'));
      }
      throw e;
    }
  }

  /** Fills in chunks that failed for good, then ends the job. */
  async #finalizeOnce(job: Job<{ id: string }>): Promise<void> {
    const r = this.#link.worker;
    const id = job.data.id;
    const rec = await this.#ctx.records.get(r, id);
    if (!rec) return;
    if (!TERMINAL_STATES.includes(rec.state)) {
      const failures = await job.getIgnoredChildrenFailures();
      const reasons = new Map<number, string>();
      for (const [k, v] of Object.entries(failures)) {
        const m = /\.(\d+)$/.exec(k);
        if (m) reasons.set(Number(m[1]), v);
      }
      const progress = await this.#ctx.records.chunks(r, id);
      let ranges: [number, number][] | undefined;
      for (let n = 0; n < rec.chunks; n++) {
        if (await this.#ctx.store.stat(resultKey(id, n))) {
          // The object is the truth: if the attempt that wrote it could not record its counts, count them here.
          if (!progress.get(n)?.final) {
            let done = 0;
            let failed = 0;
            // Only each line's head is needed (outputs can be large): a line longer than a row is cut.
            const heads = readRows(await this.#ctx.store.get(resultKey(id, n)), {
              maxLineBytes: this.#ctx.config.limits.maxLineBytes + 64,
              truncate: true,
            });
            for await (const head of heads) {
              done++;
              if (isErrorLine(head)) failed++;
            }
            await this.#ctx.records.setChunk(r, id, n, {
              done,
              failed,
              billedMs: progress.get(n)?.billedMs ?? 0,
              requests: progress.get(n)?.requests ?? 0,
              final: true,
            });
          }
          continue;
        }
        ranges ??= await this.#ctx.records.chunkRanges(r, rec);
        const [start, end] = ranges[n];
        const reason = `chunk ${n} failed after ${this.#ctx.tuning.attempts} attempts: ${shownMessage(reasons.get(n) ?? 'no result was written')}`;
        // One error line per row, streamed: a chunk may hold up to 100000 rows.
        const out = new ObjectWriter(this.#ctx.store, resultKey(id, n));
        try {
          for (let i = start; i < end; i++) await out.write(`${JSON.stringify({ index: i, error: reason })}\n`);
          await out.end();
        } catch (e) {
          await out.abort();
          throw e;
        }
        await this.#ctx.records.setChunk(r, id, n, { done: end - start, failed: end - start, billedMs: 0, requests: 0, final: true });
      }
      await this.#ctx.records.finish(r, id, 'completed', Date.now());
    }
    await this.#callbacks.enqueue(rec);
    // Every chunk has finished, so no one reads the job's copy of its input any more.
    await dropInputs(this.#ctx.store, id);
  }

  /**
   * Deletes the jobs that finished more than JOB_RETENTION_MS ago, oldest first: their store objects (results, any
   * inputs left), then their Redis keys and index entry. Jobs not yet finished are kept whatever their age.
   */
  async #sweep(): Promise<void> {
    const r = this.#link.worker;
    const cutoff = Date.now() - this.#ctx.config.jobs.retentionMs;
    let kept = 0;
    for (let seen = 0; seen < SWEEP_MAX;) {
      const ids = await this.#ctx.records.createdBefore(r, cutoff, kept, 100);
      if (ids.length === 0) return;
      seen += ids.length;
      for (const id of ids) {
        const rec = await this.#ctx.records.get(r, id);
        if (rec && (!TERMINAL_STATES.includes(rec.state) || (rec.finishedAt ?? rec.createdAt) > cutoff)) {
          kept++;
          continue;
        }
        await dropObjects(this.#ctx.store, id);
        await this.#ctx.records.remove(r, id);
      }
    }
  }
}

/**
 * True for a result line that records a failed row: `{"index":N` and the row's optional `"id"` (a JSON string no
 * longer than its row), then `"error"`. Reads only the head, so a cut line is judged the same as a whole one.
 */
export function isErrorLine(head: string): boolean {
  const m = /^\{"index":\d+/.exec(head);
  if (!m) return false;
  let i = m[0].length;
  if (head.startsWith(',"id":"', i)) {
    for (i += 7; i < head.length && head[i] !== '"'; i++) if (head[i] === '\\') i++;
    i++;
  }
  return head.startsWith(',"error":', i);
}
