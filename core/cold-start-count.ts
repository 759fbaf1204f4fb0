// Counts cold starts once per instance start, not once per request. Every request that waited for a cold start
// is flagged coldStart, and all of those served by the instance's first (batch) run carry the same coldStartMs
// and end time, so a repeat of (model, at, coldStartMs) is the same cold start seen again.
import type { RequestDoneEvent as Done } from './observer.ts';

export class ColdStartCounter {
  #last = new Map<string, { at: number; ms: number }>();

  /** The duration of a new cold start this request reveals, or undefined when it reveals none. */
  newColdStart(e: Done): number | undefined {
    if (!e.coldStart || e.coldStartMs === undefined) return undefined;
    const key = `${e.name}@${e.version}`;
    const last = this.#last.get(key);
    if (last && last.at === e.at && last.ms === e.coldStartMs) return undefined;
    this.#last.set(key, { at: e.at, ms: e.coldStartMs });
    return e.coldStartMs;
  }
}
