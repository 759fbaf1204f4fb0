// executor/churn-map: a Map that starts over after many deletions must still behave exactly like a Map.
import { describe, expect, it } from 'vitest';
import { ChurnMap } from '../../executor/churn-map.ts';

describe('ChurnMap', () => {
  it('matches a Map through 10,000 random sets and deletes, in content and insertion order', () => {
    const m = new ChurnMap<number, string>();
    const ref = new Map<number, string>();
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    let id = 0;
    for (let step = 0; step < 10_000; step++) {
      if (ref.size === 0 || rand() < 0.55) {
        const k = rand() < 0.1 && ref.size > 0 ? [...ref.keys()][Math.floor(rand() * ref.size)] : ++id;
        m.set(k, `v${step}`);
        ref.set(k, `v${step}`);
      } else {
        const k = [...ref.keys()][Math.floor(rand() * ref.size)];
        expect(m.delete(k)).toBe(ref.delete(k));
        expect(m.delete(k)).toBe(false);
      }
      expect(m.size).toBe(ref.size);
    }
    expect([...m]).toEqual([...ref]);
    expect([...m.keys()]).toEqual([...ref.keys()]);
    expect([...m.values()]).toEqual([...ref.values()]);
    for (const k of ref.keys()) {
      expect(m.has(k)).toBe(true);
      expect(m.get(k)).toBe(ref.get(k));
    }
    expect(m.get(-1)).toBeUndefined();
  });

  it('a loop that deletes every entry while iterating visits each one once', () => {
    const m = new ChurnMap<number, number>();
    // Enough churn first that the next set() would start a fresh Map.
    for (let i = 0; i < 500; i++) {
      m.set(i, i);
      m.delete(i);
    }
    for (let i = 0; i < 100; i++) m.set(1000 + i, i);
    const seen: number[] = [];
    for (const [k, v] of m) {
      seen.push(v);
      m.delete(k);
    }
    expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(m.size).toBe(0);
  });
});
