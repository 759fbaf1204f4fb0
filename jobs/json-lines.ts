// JSON Lines as Hearth's datasets and results use them: a row is a line that is not blank, numbered from 0.
// Both the dataset upload and the chunk reader share this definition, so row i means the same line everywhere.
// Both hold at most `maxLineBytes` of a partial line, so a body without newlines cannot fill memory.
import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import { hearthError } from '../core/index.ts';

const NEWLINE = 0x0a;

export interface LineLimits {
  /** Longest line (without its line break) held whole; MAX_LINE_BYTES. */
  maxLineBytes: number;
}

export interface ReadRowsOptions extends LineLimits {
  /** Yield the first maxLineBytes of a longer line instead of failing (for reading the head of result lines). */
  truncate?: boolean;
}

function lineTooLong(line: number, max: number): Error {
  return hearthError('PAYLOAD_TOO_LARGE', `line ${line} is longer than MAX_LINE_BYTES (${max} bytes)`);
}

/**
 * Yields every row (non-blank line, without its line break) of a stream, in order. A line longer than
 * `maxLineBytes` fails with PAYLOAD_TOO_LARGE as soon as its first byte past the limit arrives (or, with
 * `truncate`, is yielded cut to the limit, the rest of it skipped). Returning early (a `break`, or return() on the
 * iterator) closes the stream, also before the first row was asked for: a bare generator would then leave the
 * stream, and the file it holds open, to the garbage collector.
 */
export function readRows(stream: Readable, opts: ReadRowsOptions): AsyncGenerator<string> {
  const rows = rowsOf(stream, opts);
  const close = rows.return.bind(rows);
  rows.return = async (value) => {
    try {
      return await close(value);
    } finally {
      stream.destroy();
    }
  };
  return rows;
}

async function* rowsOf(stream: Readable, opts: ReadRowsOptions): AsyncGenerator<string> {
  const max = opts.maxLineBytes;
  let tail: Buffer[] = [];
  let tailBytes = 0;
  // With `truncate`: the current line passed the limit; its head is held, the rest is dropped up to the newline.
  let skipping = false;
  let line = 0;
  const emit = (pieces: Buffer[]): string | undefined => {
    const text = stripCr(Buffer.concat(pieces).toString('utf8'));
    return text.trim() === '' ? undefined : text;
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, from);
      const end = nl < 0 ? chunk.length : nl;
      if (!skipping && tailBytes + (end - from) > max) {
        if (!opts.truncate) throw lineTooLong(line + 1, max);
        tail.push(chunk.subarray(from, from + (max - tailBytes)));
        tailBytes = max;
        skipping = true;
      } else if (!skipping && end > from) {
        tail.push(chunk.subarray(from, end));
        tailBytes += end - from;
      }
      if (nl < 0) break;
      line++;
      const text = emit(tail);
      tail = [];
      tailBytes = 0;
      skipping = false;
      from = nl + 1;
      if (text !== undefined) yield text;
    }
  }
  if (tailBytes) {
    const text = emit(tail);
    if (text !== undefined) yield text;
  }
}

function stripCr(s: string): string {
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}

export interface RowCounterLimits extends LineLimits {
  /** Most bytes the whole stream may hold; MAX_DATASET_BYTES. */
  maxBytes: number;
}

/**
 * A pass-through that counts bytes, rows and rows that are not JSON objects as the bytes flow by, so an upload can be
 * streamed into the store and described in the same pass. It holds at most one partial line of at most
 * `maxLineBytes`, and fails with PAYLOAD_TOO_LARGE (passing none of the offending chunk on) at the first byte
 * past either limit.
 */
export class RowCounter extends Transform {
  bytes = 0;
  rows = 0;
  invalidLines = 0;
  /** 1-based line numbers of the first few lines that are not JSON objects, for the response. */
  readonly invalidLineNumbers: number[] = [];
  readonly #limits: RowCounterLimits;
  #line = 0;
  #tail: Buffer[] = [];
  #tailBytes = 0;

  constructor(limits: RowCounterLimits) {
    super();
    this.#limits = limits;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const { maxBytes, maxLineBytes } = this.#limits;
    if (this.bytes + chunk.length > maxBytes) {
      return cb(hearthError('PAYLOAD_TOO_LARGE', `the dataset is larger than MAX_DATASET_BYTES (${maxBytes} bytes)`));
    }
    this.bytes += chunk.length;
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, from);
      const end = nl < 0 ? chunk.length : nl;
      if (this.#tailBytes + (end - from) > maxLineBytes) return cb(lineTooLong(this.#line + 1, maxLineBytes));
      if (nl < 0) break;
      const piece = chunk.subarray(from, nl);
      this.#check(this.#tail.length ? Buffer.concat([...this.#tail, piece]) : piece);
      this.#tail = [];
      this.#tailBytes = 0;
      from = nl + 1;
    }
    if (from < chunk.length) {
      this.#tail.push(chunk.subarray(from));
      this.#tailBytes += chunk.length - from;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#tail.length) this.#check(Buffer.concat(this.#tail));
    this.#tail = [];
    this.#tailBytes = 0;
    cb();
  }

  #check(line: Buffer): void {
    this.#line++;
    const text = stripCr(line.toString('utf8'));
    if (text.trim() === '') return;
    this.rows++;
    // A row is an Open Inference Protocol request body: a JSON object. A number, a string, null or an array would
    // fail as a row when run, so it is counted here.
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.invalidLines++;
      if (this.invalidLineNumbers.length < 20) this.invalidLineNumbers.push(this.#line);
    }
  }
}
