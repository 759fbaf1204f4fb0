// The row definition shared by datasets and chunks: non-blank lines, split wherever the bytes happen to break; a
// line past MAX_LINE_BYTES and a body past MAX_DATASET_BYTES are refused at their first byte past the limit.
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
      for await (const r of readRows(pieces(TEXT, size), { maxLineBytes: 64 })) rows.push(r);
      expect(rows).toEqual(['{"a":1}', '{"b":"é€"}', 'not json', '{"c":[1,2,3]}']);
    });

    it(`counts bytes, rows and lines that are not JSON, passing every byte through (${size} bytes)`, async () => {
      const counter = new RowCounter({ maxLineBytes: 64, maxBytes: 1024 });
      const out: Buffer[] = [];
      await pipeline(pieces(TEXT, size), counter, new Writable({ write: (c, _e, cb) => (out.push(c), cb()) }));
      expect(Buffer.concat(out).toString()).toBe(TEXT);
      expect([counter.bytes, counter.rows, counter.invalidLines, counter.invalidLineNumbers]).toEqual([Buffer.byteLength(TEXT), 4, 1, [5]]);
    });
  }
});

/** A stream that yields `total` bytes made of `byte`, `size` at a time, and records how many it was asked for. */
function endless(byte: number, size: number, total: number, pulled: { bytes: number }): Readable {
  return new Readable({
    read() {
      if (pulled.bytes >= total) return void this.push(null);
      pulled.bytes += size;
      this.push(Buffer.alloc(size, byte));
    },
  });
}

describe('a reader stopped early closes its stream (and the file behind it)', () => {
  it('before its first row: a chunk stopped at once (cancelled, node closing)', async () => {
    const stream = pieces(TEXT, 8);
    await readRows(stream, { maxLineBytes: 64 }).return(undefined);
    expect(stream.destroyed).toBe(true);
  });

  it('after some rows: a loop that breaks', async () => {
    const stream = pieces(TEXT, 8);
    const seen: string[] = [];
    for await (const r of readRows(stream, { maxLineBytes: 64 })) {
      seen.push(r);
      break;
    }
    expect(seen).toEqual(['{"a":1}']);
    expect(stream.destroyed).toBe(true);
  });
});

describe('what counts as a row', () => {
  it('a line that is JSON but not an object (a request body is one) counts as invalid', async () => {
    const text = ['1', '"x"', 'null', '[{"inputs":[]}]', 'true', '{"inputs":[]}', '{}', 'nope'].join('\n');
    const counter = new RowCounter({ maxLineBytes: 64, maxBytes: 1024 });
    await pipeline(pieces(text, 3), counter, new Writable({ write: (_c, _e, cb) => cb() }));
    expect([counter.rows, counter.invalidLines, counter.invalidLineNumbers]).toEqual([8, 6, [1, 2, 3, 4, 5, 8]]);
  });
});

describe('line and size limits', () => {
  it('readRows fails at the first byte past maxLineBytes, holding no more than that of a partial line', async () => {
    const pulled = { bytes: 0 };
    const rows: string[] = [];
    const read = async () => {
      for await (const r of readRows(endless(0x61, 1024, 100 * 1024 * 1024, pulled), { maxLineBytes: 4096 })) rows.push(r);
    };
    await expect(read()).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: 'line 1 is longer than MAX_LINE_BYTES (4096 bytes)' });
    expect(rows).toEqual([]);
    // Stopped within a few pieces of the limit (the stream reads a little ahead), not after 100 MB.
    expect(pulled.bytes).toBeLessThan(64 * 1024);
  });

  it('readRows accepts a line of exactly maxLineBytes and names the line number of a longer one', async () => {
    const exact = `${'x'.repeat(8)}\n`;
    const rows: string[] = [];
    for await (const r of readRows(pieces(exact + '\n' + 'y'.repeat(8), 3), { maxLineBytes: 8 })) rows.push(r);
    expect(rows).toEqual(['xxxxxxxx', 'yyyyyyyy']);
    const long = async () => {
      for await (const _ of readRows(pieces(`a\n\nb\n${'z'.repeat(9)}\n`, 2), { maxLineBytes: 8 })) void _;
    };
    await expect(long()).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: expect.stringMatching(/^line 4 /) });
  });

  it('readRows with truncate yields the head of a long line and goes on with the next', async () => {
    const rows: string[] = [];
    for await (const r of readRows(pieces(`${'a'.repeat(20)}\nshort\n${'b'.repeat(9)}`, 4), { maxLineBytes: 8, truncate: true }))
      rows.push(r);
    expect(rows).toEqual(['aaaaaaaa', 'short', 'bbbbbbbb']);
  });

  it('RowCounter fails at the first byte past maxLineBytes, passing none of that piece on', async () => {
    const pulled = { bytes: 0 };
    const counter = new RowCounter({ maxLineBytes: 4096, maxBytes: 1024 ** 3 });
    let passed = 0;
    const source = endless(0x61, 1024, 100 * 1024 * 1024, pulled);
    const run = pipeline(source, counter, new Writable({ write: (c, _e, cb) => ((passed += c.length), cb()) }));
    await expect(run).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: 'line 1 is longer than MAX_LINE_BYTES (4096 bytes)' });
    expect(passed).toBeLessThanOrEqual(4096);
    // It stops pulling at once: at most the line, what the streams buffer ahead (their highWaterMarks, 16 KiB each on
    // Node 20 and 64 KiB on Node 22+) and one piece, of the 100 MiB on offer.
    const readAhead = source.readableHighWaterMark + counter.writableHighWaterMark + counter.readableHighWaterMark;
    expect(pulled.bytes).toBeLessThanOrEqual(4096 + readAhead + 1024);
  });

  it('RowCounter fails at the first byte past maxBytes, however short the lines', async () => {
    const counter = new RowCounter({ maxLineBytes: 64, maxBytes: 10_000 });
    let passed = 0;
    const pulled = { bytes: 0 };
    const lines = new Readable({
      read() {
        pulled.bytes += 1000;
        this.push(Buffer.from('{"a":1}\n'.repeat(125)));
      },
    });
    const run = pipeline(lines, counter, new Writable({ write: (c, _e, cb) => ((passed += c.length), cb()) }));
    await expect(run).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      message: 'the dataset is larger than MAX_DATASET_BYTES (10000 bytes)',
    });
    expect(passed).toBe(10_000);
    expect(counter.bytes).toBe(10_000);
  });
});
