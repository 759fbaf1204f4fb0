// The node's two budgets: CPU slots (runs at once, EXECUTOR_SLOTS) and memory (EXECUTOR_MEMORY_MB, reserved
// per instance from its model's footprint, instanceMemoryMb). Pure bookkeeping; the engine decides who gets them.
import { hearthError } from '../core/index.ts';

export class NodeResources {
  readonly slots: number;
  readonly memoryMb: number;
  #busySlots = 0;
  /** Slots whose core is held by a worker still inside a native call after its instance ended (engine.ts, holds). */
  #heldSlots = 0;
  #reservedMb = 0;
  /** Highest number of runs ever in flight at once (tests assert it never passes `slots`). */
  #peakSlots = 0;

  constructor(opts: { slots: number; memoryMb: number }) {
    this.slots = opts.slots;
    this.memoryMb = opts.memoryMb;
  }

  /** Slots a run may take now; below 0 for a moment when a held core outlasts the run that had its slot. */
  get freeSlots(): number {
    return this.slots - this.#busySlots - this.#heldSlots;
  }

  get busySlots(): number {
    return this.#busySlots;
  }

  get heldSlots(): number {
    return this.#heldSlots;
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
    if (this.freeSlots <= 0) throw hearthError('INTERNAL', `no free CPU slot (${this.slots} in use)`);
    this.#busySlots++;
    if (this.#busySlots > this.#peakSlots) this.#peakSlots = this.#busySlots;
  }

  releaseSlot(): void {
    if (this.#busySlots > 0) this.#busySlots--;
  }

  /** A core in use outside any run (a worker that cannot be stopped): no run may take its slot until unhold(). */
  holdSlot(): void {
    this.#heldSlots++;
  }

  unholdSlot(): void {
    if (this.#heldSlots > 0) this.#heldSlots--;
  }

  reserve(mb: number): boolean {
    if (mb > this.freeMb) return false;
    this.#reservedMb += mb;
    return true;
  }

  release(mb: number): void {
    this.#reservedMb = Math.max(0, this.#reservedMb - mb);
  }

  /** Changes a held reservation to what the instance was measured to take; it may go past the budget (it is in use). */
  resize(fromMb: number, toMb: number): void {
    this.#reservedMb = Math.max(0, this.#reservedMb + toMb - fromMb);
  }
}

/** Default memory reservation of an instance from its model's size: room for the weights, the session's copy and the arena. */
export function defaultMemoryMb(sizeBytes: number): number {
  return Math.max(64, Math.ceil((3 * sizeBytes) / 1024 ** 2) + 32);
}

/**
 * What one instance reserves: the model's footprint (the estimate from its file size, or the RSS growth measured
 * when an instance of it loaded on this node, whichever is larger), or more when its config declares more. A
 * declared memoryMb below the footprint is not obeyed: a client's claim cannot shrink the node's accounting
 * (16 MB for silero let 750 instances "fit" a 12 GB budget).
 */
export function instanceMemoryMb(sizeBytes: number, declaredMb: number | undefined, measuredMb: number | undefined): number {
  return Math.max(declaredMb ?? 0, defaultMemoryMb(sizeBytes), Math.ceil(measuredMb ?? 0));
}
