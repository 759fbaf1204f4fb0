// JSON Lines as Hearth's datasets and results use them: a row is a line that is not blank, numbered from 0.
// Both the dataset upload and the chunk reader share this definition, so row i means the same line everywhere.
import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';

const NEWLINE = 0x0a;

/** Yields every row (non-blank line, without its line break) of a stream, in order. */
export async function* readRows(stream: Readable): AsyncGenerator<string> {
  let tail: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, from);
      if (nl < 0) break;
      const piece = chunk.subarray(from, nl);
      const line = tail.length ? Buffer.concat([...tail, piece]) : piece;
      tail = [];
      from = nl + 1;
      const text = stripCr(line.toString('utf8'));
      if (text.trim() !== '') yield text;
    }
    if (from < chunk.length) tail.push(chunk.subarray(from));
  }
  if (tail.length) {
    const text = stripCr(Buffer.concat(tail).toString('utf8'));
    if (text.trim() !== '') yield text;
  }
}

function stripCr(s: string): string {
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}

/**
 * A pass-through that counts bytes, rows and rows that are not JSON as the bytes flow by, so an upload can be
 * streamed into the store and described in the same pass. It holds at most one partial line.
 */
export class RowCounter extends Transform {
  bytes = 0;
  rows = 0;
  invalidLines = 0;
  /** 1-based line numbers of the first few lines that are not JSON, for the response. */
  readonly invalidLineNumbers: number[] = [];
  #line = 0;
  #tail: Buffer[] = [];

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, from);
      if (nl < 0) break;
      const piece = chunk.subarray(from, nl);
      this.#check(this.#tail.length ? Buffer.concat([...this.#tail, piece]) : piece);
      this.#tail = [];
      from = nl + 1;
    }
    if (from < chunk.length) this.#tail.push(chunk.subarray(from));
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#tail.length) this.#check(Buffer.concat(this.#tail));
    this.#tail = [];
    cb();
  }

  #check(line: Buffer): void {
    this.#line++;
    const text = stripCr(line.toString('utf8'));
    if (text.trim() === '') return;
    this.rows++;
    try {
      JSON.parse(text);
    } catch {
      this.invalidLines++;
      if (this.invalidLineNumbers.length < 20) this.invalidLineNumbers.push(this.#line);
    }
  }
}
