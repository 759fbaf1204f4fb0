// The row definition shared by datasets and chunks: non-blank lines, split wherever the bytes happen to break.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readRows, RowCounter } from '../../jobs/index.ts';

/** The text cut into pieces of `size` bytes, so lines straddle chunk boundaries. */
function pieces(text: string, size: number): Readable {
  const b = Buffer.from(text);
  const parts: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) parts.push(b.subarray(i, i + size));
  return Readable.from(parts);
}

const TEXT = '{"a":1}\r\n\n  \n{"b":"é€"}\nnot json\n{"c":[1,2,3]}';

describe('JSON Lines rows', () => {
  for (const size of [1, 2, 3, 7, 1000]) {
    it(`reads the same rows whatever the piece size (${size} bytes)`, async () => {
      const rows: string[] = [];
      for await (const r of readRows(pieces(TEXT, size))) rows.push(r);
      expect(rows).toEqual(['{"a":1}', '{"b":"é€"}', 'not json', '{"c":[1,2,3]}']);
    });

    it(`counts bytes, rows and lines that are not JSON, passing every byte through (${size} bytes)`, async () => {
      const counter = new RowCounter();
      const out: Buffer[] = [];
      await pipeline(pieces(TEXT, size), counter, new Writable({ write: (c, _e, cb) => (out.push(c), cb()) }));
      expect(Buffer.concat(out).toString()).toBe(TEXT);
      expect([counter.bytes, counter.rows, counter.invalidLines, counter.invalidLineNumbers]).toEqual([Buffer.byteLength(TEXT), 4, 1, [5]]);
    });
  }
});
