// Request bodies the SDK streams: any of bytes, a Blob or a ReadableStream, counted as fetch pulls them (for upload
// progress events), and a folder of files framed as multipart/form-data without holding the files in memory.
// Web APIs only (ReadableStream, Blob, TextEncoder), so this runs in a browser as in Node.

/** Bytes to send: held in memory, a Blob (a browser File), or a stream. */
export type BodySource = Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array>;

/** Pieces a body in memory is cut into, so progress has a grain finer than the whole body. */
const PIECE_BYTES = 64 * 1024;

/** The byte length of a source when it is known without reading it. */
export function sizeOf(source: BodySource): number | undefined {
  if (source instanceof Uint8Array) return source.byteLength;
  if (source instanceof ArrayBuffer) return source.byteLength;
  if (typeof Blob !== 'undefined' && source instanceof Blob) return source.size;
  return undefined;
}

/** A source as a stream of Uint8Array pieces. */
export function streamOf(source: BodySource): ReadableStream<Uint8Array> {
  if (typeof Blob !== 'undefined' && source instanceof Blob) return source.stream();
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
    const bytes = source instanceof ArrayBuffer ? new Uint8Array(source) : source;
    let at = 0;
    return new ReadableStream<Uint8Array>({
      pull(c) {
        if (at >= bytes.byteLength) return c.close();
        const end = Math.min(bytes.byteLength, at + PIECE_BYTES);
        c.enqueue(bytes.subarray(at, end));
        at = end;
      },
    });
  }
  return source as ReadableStream<Uint8Array>;
}

/** Streams `parts` one after another. */
export function concatStreams(parts: (() => ReadableStream<Uint8Array>)[]): ReadableStream<Uint8Array> {
  let i = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      for (;;) {
        if (!reader) {
          if (i >= parts.length) return c.close();
          reader = parts[i++]().getReader();
        }
        const { done, value } = await reader.read();
        if (done) {
          reader = undefined;
          continue;
        }
        if (value.byteLength > 0) return c.enqueue(value);
      }
    },
    async cancel(reason) {
      await reader?.cancel(reason);
    },
  });
}

/** `stream`, calling `onBytes(total so far)` as each piece is pulled (by fetch, as it sends). */
export function counted(stream: ReadableStream<Uint8Array>, onBytes: (sent: number) => void): ReadableStream<Uint8Array> {
  let sent = 0;
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      const { done, value } = await reader.read();
      if (done) return c.close();
      sent += value.byteLength;
      c.enqueue(value);
      onBytes(sent);
    },
    async cancel(reason) {
      await reader.cancel(reason);
    },
  });
}

/** One file of a folder upload: its path inside the model folder (`model.json`, `group1-shard1of1.bin`) and bytes. */
export interface UploadFile {
  path: string;
  data: BodySource;
  /** Needed for a stream, so the whole body's length is known (Content-Length); read from bytes or a Blob otherwise. */
  size?: number;
}

const encoder = new TextEncoder();

/** A multipart/form-data body of `files` (one part each, field "file", filename = path) with its exact length. */
export function multipartBody(files: readonly UploadFile[]): { stream: ReadableStream<Uint8Array>; contentType: string; size?: number } {
  const boundary = `----hearth${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const heads = files.map((f) =>
    encoder.encode(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${f.path.replace(/["\r\n\\]/g, '_')}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    ),
  );
  const crlf = encoder.encode('\r\n');
  const tail = encoder.encode(`--${boundary}--\r\n`);
  let size: number | undefined = tail.byteLength;
  files.forEach((f, i) => {
    const n = f.size ?? sizeOf(f.data);
    size = size === undefined || n === undefined ? undefined : size + heads[i].byteLength + n + crlf.byteLength;
  });
  const parts: (() => ReadableStream<Uint8Array>)[] = [];
  files.forEach((f, i) =>
    parts.push(
      () => streamOf(heads[i]),
      () => streamOf(f.data),
      () => streamOf(crlf),
    ),
  );
  parts.push(() => streamOf(tail));
  return {
    stream: concatStreams(parts),
    contentType: `multipart/form-data; boundary=${boundary}`,
    ...(size !== undefined ? { size } : {}),
  };
}

/** Rows as JSON Lines: objects are written with JSON.stringify, strings as they are (one line each). */
export function jsonLines(rows: AsyncIterable<unknown> | Iterable<unknown>): ReadableStream<Uint8Array> {
  // for await takes both kinds of iterable.
  const it = (async function* () {
    for await (const row of rows) yield row;
  })();
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      // A few rows per piece, so a large dataset is not one enqueue per row.
      let text = '';
      while (text.length < PIECE_BYTES) {
        const { done, value } = await it.next();
        if (done) {
          if (text) c.enqueue(encoder.encode(text));
          return c.close();
        }
        const line = typeof value === 'string' ? value : JSON.stringify(value);
        text += line.endsWith('\n') ? line : `${line}\n`;
      }
      c.enqueue(encoder.encode(text));
    },
    async cancel() {
      await it.return(undefined);
    },
  });
}

/** The lines of a JSON Lines stream, parsed. */
export async function* readJsonLines<T>(stream: ReadableStream<Uint8Array>): AsyncGenerator<T> {
  const reader = stream.pipeThrough(new TextDecoderStream() as unknown as ReadableWritablePair<string, Uint8Array>).getReader();
  let rest = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += value;
      let nl: number;
      while ((nl = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, nl).trim();
        rest = rest.slice(nl + 1);
        if (line) yield JSON.parse(line) as T;
      }
    }
    if (rest.trim()) yield JSON.parse(rest) as T;
  } finally {
    // A caller that stops early (break) lets go of the rest of the answer.
    await reader.cancel().catch(() => {});
  }
}
