// Callbacks as BullMQ jobs: one delivery per finished job, retried with back-off, each attempt recorded on the
// job's record. The POST itself (and what it may reach) is callback-delivery.ts.
import { UnrecoverableError, type Job } from 'bullmq';
import { CallbackSender } from './callback-delivery.ts';
import type { JobContext } from './job-context.ts';
import type { JobRecord } from './job-records.ts';
import { jobStatus } from './job-status.ts';
import type { RedisLink } from './redis-link.ts';

export class CallbackQueue {
  readonly #ctx: JobContext;
  readonly #link: RedisLink;
  readonly #sender: CallbackSender;

  constructor(ctx: JobContext, link: RedisLink) {
    this.#ctx = ctx;
    this.#link = link;
    this.#sender = new CallbackSender(ctx.config.callbacks);
  }

  /** Queues the job's callback if it has one. */
  async enqueue(rec: JobRecord): Promise<void> {
    if (!rec.callbackUrl) return;
    // One delivery per job: the fixed jobId makes a second enqueue (cancel, then finalize) a no-op.
    await this.#link.callbacks.add(
      'callback',
      { id: rec.id },
      {
        jobId: `${rec.id}.callback`,
        attempts: this.#ctx.tuning.callbackAttempts,
        backoff: { type: 'exponential', delay: this.#ctx.tuning.callbackBackoffMs },
        removeOnComplete: true,
        // The job's record keeps every attempt; BullMQ keeps only the latest failures.
        removeOnFail: { count: 1000 },
      },
    );
  }

  /** The callbacks queue's processor: one delivery attempt. */
  async deliver(job: Job<{ id: string }>): Promise<void> {
    const r = this.#link.worker;
    const records = this.#ctx.records;
    const rec = await records.get(r, job.data.id);
    if (!rec?.callbackUrl) return;
    const status = await jobStatus(this.#ctx, r, rec);
    delete status.callback;
    const at = new Date().toISOString();
    const out = await this.#sender.send(rec.callbackUrl, JSON.stringify(status), {
      'content-type': 'application/json',
      'x-hearth-job-id': rec.id,
      'x-hearth-delivery-attempt': String(job.attemptsMade + 1),
    });
    await records.addCallbackAttempt(r, rec.id, {
      at,
      ok: out.ok,
      ...(out.status !== undefined ? { status: out.status } : {}),
      ...(out.error ? { error: out.error } : {}),
    });
    // An outgoing call made for a key: the audit trail names the key it runs as (null with AUTH off).
    this.#ctx.log.info(
      {
        audit: {
          key: rec.owner !== undefined ? { id: rec.owner } : null,
          action: 'job callback',
          job: rec.id,
          origin: originOf(rec.callbackUrl),
          status: out.status ?? null,
          outcome: out.ok ? 'done' : 'failed',
        },
      },
      `audit job callback ${rec.id} ${out.ok ? 'delivered' : 'failed'}`,
    );
    if (out.ok) return;
    const why = out.error ?? `answered ${out.status}`;
    // A refused address stays refused: no more attempts.
    if (out.final) throw new UnrecoverableError(why);
    throw new Error(`callback failed: ${why}`);
  }

  close(): void {
    this.#sender.close();
  }
}

/** Scheme, host and port of a callback URL: its path and query may carry the client's own tokens. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '?';
  }
}
