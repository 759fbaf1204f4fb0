// Progress on stderr while the benchmark runs: which suite, which step, and an estimate of the time left.
// The estimate for the running suite comes from its own pace; suites not yet started use their planned
// duration, scaled by how far the finished suites were off their plan.

export interface SuitePlan {
  name: string;
  /** Planned duration, used until the suite has a pace of its own. */
  estimateMs: number;
}

export interface ProgressSink {
  write(line: string): void;
}

const stderrSink: ProgressSink = { write: (line) => process.stderr.write(line + '\n') };

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(s % 60).padStart(2, '0')}s`;
}

export class Progress {
  #plans: SuitePlan[];
  #sink: ProgressSink;
  #now: () => number;
  #startedAt: number;
  #current = -1;
  #suiteStartedAt = 0;
  #stepsTotal = 1;
  #stepsDone = 0;
  /** Sum of actual / planned over finished suites, to correct the plans of the ones still to come. */
  #finishedActualMs = 0;
  #finishedPlannedMs = 0;
  #quiet: boolean;

  constructor(plans: SuitePlan[], opts: { sink?: ProgressSink; now?: () => number; quiet?: boolean } = {}) {
    this.#plans = plans;
    this.#sink = opts.sink ?? stderrSink;
    this.#now = opts.now ?? (() => performance.now());
    this.#startedAt = this.#now();
    this.#quiet = opts.quiet ?? false;
  }

  /** Starts the named suite with its number of steps (a guess is fine; it is only for the estimate). */
  beginSuite(name: string, steps: number): void {
    this.#finishCurrent();
    this.#current = this.#plans.findIndex((p) => p.name === name);
    this.#suiteStartedAt = this.#now();
    this.#stepsTotal = Math.max(1, steps);
    this.#stepsDone = 0;
    this.#log(
      `[${name}] start (${this.#plans.length ? `${this.#current + 1}/${this.#plans.length}` : ''}) — ETA ${formatDuration(this.etaMs())}`,
    );
  }

  /** Reports the step now starting; counts the previous one as done. */
  step(label: string, opts: { count?: boolean } = {}): void {
    const name = this.#plans[this.#current]?.name ?? '?';
    this.#log(
      `[${name} ${Math.min(this.#stepsDone + 1, this.#stepsTotal)}/${this.#stepsTotal}] ${label} — ETA ${formatDuration(this.etaMs())}`,
    );
    if (opts.count !== false) this.#stepsDone++;
  }

  /** A note that is not a step (a skipped model, a missing component). */
  note(message: string): void {
    this.#log(`  note: ${message}`);
  }

  endSuite(): void {
    const name = this.#plans[this.#current]?.name;
    this.#finishCurrent();
    if (name) this.#log(`[${name}] done — ETA ${formatDuration(this.etaMs())}`);
  }

  /** Estimated time left for the whole run, in ms. */
  etaMs(): number {
    const drift = this.#finishedPlannedMs > 0 ? this.#finishedActualMs / this.#finishedPlannedMs : 1;
    let left = 0;
    if (this.#current >= 0) {
      const plan = this.#plans[this.#current];
      const elapsed = this.#now() - this.#suiteStartedAt;
      if (this.#stepsDone > 0) left += (elapsed / this.#stepsDone) * (this.#stepsTotal - this.#stepsDone);
      else if (plan) left += Math.max(0, plan.estimateMs * drift - elapsed);
    }
    for (let i = this.#current + 1; i < this.#plans.length; i++) left += this.#plans[i].estimateMs * drift;
    return left;
  }

  elapsedMs(): number {
    return this.#now() - this.#startedAt;
  }

  #finishCurrent(): void {
    if (this.#current < 0) return;
    const plan = this.#plans[this.#current];
    if (plan) {
      this.#finishedActualMs += this.#now() - this.#suiteStartedAt;
      this.#finishedPlannedMs += plan.estimateMs;
    }
    this.#current = this.#plans.length; // past the end until the next beginSuite
    this.#stepsDone = 0;
  }

  #log(line: string): void {
    if (!this.#quiet) this.#sink.write(`${formatDuration(this.elapsedMs()).padStart(6)} ${line}`);
  }
}
