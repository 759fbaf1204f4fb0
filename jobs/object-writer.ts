// One store object written as a stream of text: a job's chunk inputs and results go to the store as they are made,
// so a chunk is never held whole. The object appears only on end(); abort() (or a failed write) leaves nothing.
import { PassThrough } from 'node:stream';
import type { ObjectStore } from '../model-store/index.ts';

export class ObjectWriter {
  readonly #out = new PassThrough();
  readonly #stored: Promise<{ sizeBytes: number }>;
  readonly #settledOnce: Promise<void>;
  #settled = false;
  #bytes = 0;

  constructor(store: ObjectStore, key: string) {
    // The store may fail the object before anyone awaits it: note the settlement, never leave it unhandled.
    this.#out.on('error', () => {});
    this.#stored = store.put(key, this.#out);
    this.#settledOnce = this.#stored.then(
      () => void (this.#settled = true),
      () => void (this.#settled = true),
    );
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Writes `text`; waits while the store is behind (back-pressure), so at most about one write is buffered. Rejects
   * with the store's error once the store has failed the object.
   */
  async write(text: string): Promise<void> {
    if (this.#out.destroyed || this.#settled) return this.#failed();
    this.#bytes += Buffer.byteLength(text);
    if (this.#out.write(text)) return;
    let done = () => {};
    const drained = new Promise<void>((resolve) => {
      done = () => {
        this.#out.off('drain', done);
        this.#out.off('close', done);
        resolve();
      };
      this.#out.on('drain', done);
      this.#out.on('close', done);
    });
    // A store that fails stops reading: no 'drain' will come then, whether or not it destroyed its source.
    await Promise.race([drained, this.#settledOnce]);
    done();
    if (this.#out.destroyed || this.#settled) return this.#failed();
  }

  /** Ends the text and waits until the store holds the object. */
  async end(): Promise<{ sizeBytes: number }> {
    this.#out.end();
    return this.#stored;
  }

  /** Discards what was written: the store keeps no object (and an earlier one at the key stays as it was). */
  async abort(reason: Error = new Error('aborted')): Promise<void> {
    this.#out.destroy(reason);
    await this.#stored.catch(() => {});
  }

  async #failed(): Promise<never> {
    this.#out.destroy();
    await this.#stored;
    throw new Error('the store stopped reading the object before its end');
  }
}
