// A Map for keys that come and go all the time (queued and running requests by id), started afresh after a bounded
// number of deletions: V8 links a Map's obsolete tables to their successors, so once one reached the old generation
// every later entry survived each scavenge. Why and what it cost: docs/performance/lab-notes.md,
// "A second GC retention, through the queues' Maps".
export class ChurnMap<K, V> implements Iterable<[K, V]> {
  #map = new Map<K, V>();
  #deletes = 0;

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  set(key: K, value: V): this {
    // Only here, never in delete(): a loop that deletes while it iterates keeps iterating one Map.
    if (this.#deletes >= 64 + 2 * this.#map.size) {
      this.#map = new Map(this.#map);
      this.#deletes = 0;
    }
    this.#map.set(key, value);
    return this;
  }

  delete(key: K): boolean {
    if (!this.#map.delete(key)) return false;
    this.#deletes++;
    return true;
  }

  values(): IterableIterator<V> {
    return this.#map.values();
  }

  keys(): IterableIterator<K> {
    return this.#map.keys();
  }

  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.#map.entries();
  }
}
