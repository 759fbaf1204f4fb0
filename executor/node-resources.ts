// The node's two budgets: CPU slots (runs at once, EXECUTOR_SLOTS) and memory (EXECUTOR_MEMORY_MB, reserved
// per instance from its model's memoryMb). Pure bookkeeping; the engine decides who gets them.
import { hearthError } from '../core/index.ts';

export class NodeResources {
  readonly slots: number;
  readonly memoryMb: number;
  #busySlots = 0;
  #reservedMb = 0;
  /** Highest number of runs ever in flight at once (tests assert it never passes `slots`). */
  #peakSlots = 0;

  constructor(opts: { slots: number; memoryMb: number }) {
    this.slots = opts.slots;
    this.memoryMb = opts.memoryMb;
  }

  get freeSlots(): number {
    return this.slots - this.#busySlots;
  }

  get busySlots(): number {
    return this.#busySlots;
  }

  get peakSlots(): number {
    return this.#peakSlots;
  }

  get reservedMb(): number {
    return this.#reservedMb;
  }

  get freeMb(): number {
    return this.memoryMb - this.#reservedMb;
  }

  takeSlot(): void {
    if (this.#busySlots >= this.slots) throw hearthError('INTERNAL', `no free CPU slot (${this.slots} in use)`);
    this.#busySlots++;
    if (this.#busySlots > this.#peakSlots) this.#peakSlots = this.#busySlots;
  }

  releaseSlot(): void {
    if (this.#busySlots > 0) this.#busySlots--;
  }

  reserve(mb: number): boolean {
    if (mb > this.freeMb) return false;
    this.#reservedMb += mb;
    return true;
  }

  release(mb: number): void {
    this.#reservedMb = Math.max(0, this.#reservedMb - mb);
  }
}

/** Default memory reservation of an instance from its model's size: room for the weights, the session's copy and the arena. */
export function defaultMemoryMb(sizeBytes: number): number {
  return Math.max(64, Math.ceil((3 * sizeBytes) / 1024 ** 2) + 32);
}
