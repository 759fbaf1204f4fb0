// The one registry of Hearth's error codes. Each code names its HTTP status and when it is used;
// The error table of docs/reference/errors.md is checked against this list by test/core/errors.test.ts.

export const ERROR_CODES = {
  INVALID_REQUEST: { status: 400, doc: 'The request is malformed: not JSON, a missing field, a bad parameter.' },
  INVALID_NAME: { status: 400, doc: 'A model, version or dataset name does not match the allowed pattern.' },
  INVALID_TENSOR: { status: 400, doc: 'An input tensor does not fit the model: unknown name, wrong datatype, shape or data length.' },
  INVALID_CONFIG: { status: 400, doc: 'A model serving config has an unknown key or an out-of-range value.' },
  EMPTY_BODY: { status: 400, doc: 'An upload arrived with no bytes.' },
  UNSAFE_ARCHIVE: {
    status: 400,
    doc: 'An upload path is absolute, climbs with `..`, is a link, is too long or too deep, or is both a file and a folder.',
  },
  CORRUPT_ARCHIVE: { status: 400, doc: 'A .tar.gz upload is not valid gzip or tar.' },
  UNAUTHENTICATED: {
    status: 401,
    doc: 'AUTH is on and the request has no `Authorization: Bearer` key, or its key is unknown, revoked or expired (with `WWW-Authenticate: Bearer`).',
  },
  FORBIDDEN: {
    status: 403,
    doc: 'The key is valid but lacks the scope the route needs, or may not touch this model; the message names which.',
  },
  MODEL_NOT_FOUND: {
    status: 404,
    doc: "No model has this name. The message is Triton's: `Request for unknown model: '{name}' is not found` (a repository load: `failed to load '{name}', ...`).",
  },
  VERSION_NOT_FOUND: {
    status: 404,
    doc: "The model has no such version. The message is Triton's: `Request for unknown model: '{name}' version {v} is not found`.",
  },
  JOB_NOT_FOUND: { status: 404, doc: 'No batch job has this id.' },
  DATASET_NOT_FOUND: { status: 404, doc: 'No dataset has this key.' },
  KEY_NOT_FOUND: { status: 404, doc: 'No API key has this id (it never existed or was revoked).' },
  NOT_FOUND: { status: 404, doc: 'No route matches the method and path.' },
  REQUEST_TIMEOUT: {
    status: 408,
    doc: 'The client did not send the whole request (headers and body) within REQUEST_TIMEOUT_MS; the connection is closed.',
  },
  VERSION_EXISTS: { status: 409, doc: 'An explicit version upload names a version that already exists.' },
  LENGTH_REQUIRED: {
    status: 411,
    doc: "A multipart upload sent without Content-Length by a key whose maxBodyBytes is below the node's limit (its size could not be bounded before reading).",
  },
  MODEL_TOO_LARGE: { status: 413, doc: 'A model upload is larger than MAX_MODEL_BYTES (all files, after decompression).' },
  PAYLOAD_TOO_LARGE: {
    status: 413,
    doc: 'A request body, dataset, dataset line or upload file count is past its limit (MAX_REQUEST_BYTES, MAX_DATASET_BYTES, MAX_LINE_BYTES, MAX_ARCHIVE_FILES); the message names it.',
  },
  URI_TOO_LONG: { status: 414, doc: 'The URL or one of its path parameters is longer than the router accepts.' },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    doc: "The upload Content-Type is not octet-stream, gzip or multipart/form-data, or a body's Content-Encoding is not gzip, deflate or none.",
  },
  EXPECTATION_FAILED: { status: 417, doc: 'The request has an `Expect` header other than `100-continue`.' },
  MODEL_INVALID: {
    status: 422,
    doc: 'The bytes are not a loadable model: not ONNX, truncated, missing weight shards, a format that needs a runtime not installed, or a load past INSPECT_TIMEOUT_MS or INSPECT_MAX_RSS_MB.',
  },
  RESPONSE_TOO_LARGE: {
    status: 422,
    doc: 'The request was well formed but its outputs are larger than MAX_RESPONSE_BYTES (their bytes, or their JSON text); ask for fewer or smaller outputs, or for binary outputs.',
  },
  QUEUE_FULL: { status: 429, doc: "The model's queue holds maxQueueSize requests; retry after the Retry-After header." },
  RATE_LIMITED: {
    status: 429,
    doc: 'The key is past its rate limit (requests per window, shared across nodes through Redis) or holds its maxInFlight requests at once; retry after the Retry-After header (`RateLimit-*` headers say where the key stands).',
  },
  HEADERS_TOO_LARGE: { status: 431, doc: "The request's headers are larger than the HTTP parser accepts (16 KiB in all)." },
  INSTANCE_FAILED: { status: 500, doc: 'The instance running the request threw or died; it has been replaced.' },
  INTERNAL: { status: 500, doc: 'An unexpected failure inside Hearth.' },
  OVERLOADED: {
    status: 503,
    doc: "The request's deadline passed while it waited for an instance, a CPU slot or memory, the node already holds MAX_BODY_BYTES_IN_FLIGHT of request bodies, or INSPECT_QUEUE_SIZE uploads already wait for inspection; retry after the Retry-After header.",
  },
  MODEL_UNAVAILABLE: {
    status: 503,
    doc: 'This node cannot run the model version now, and waiting in the queue would not help: a run of it is stuck in native code past its timeout (refused until that run ends or the node restarts), its serving config needs more memory than EXECUTOR_MEMORY_MB, or it was unloaded while a load was starting it (Retry-After).',
  },
  SHUTTING_DOWN: {
    status: 503,
    doc: 'The node is shutting down (SIGTERM): a request that arrived on an open connection after it began is refused and the connection closed; send it to another node.',
  },
  STORE_UNAVAILABLE: { status: 503, doc: 'The object store (filesystem or S3 endpoint) did not answer.' },
  AUTH_UNAVAILABLE: {
    status: 503,
    doc: 'The key store (Redis) did not answer and the key was not checked within the last minute, so it cannot be verified now.',
  },
  JOBS_UNAVAILABLE: { status: 503, doc: 'Redis (REDIS_URL) is unreachable, so the batch job API is down; inference still works.' },
  TIMEOUT: { status: 504, doc: "The inference ran past the model's timeoutMs; its instance was terminated and replaced." },
} as const satisfies Record<string, { status: number; doc: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class HearthError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  /** Extra response headers, e.g. Retry-After for QUEUE_FULL. */
  readonly headers?: Record<string, string>;
  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; headers?: Record<string, string> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HearthError';
    this.code = code;
    this.statusCode = ERROR_CODES[code].status;
    if (opts.headers) this.headers = opts.headers;
  }
  toJSON(): { error: string; code: ErrorCode } {
    return { error: this.message, code: this.code };
  }
}

export function hearthError(code: ErrorCode, message: string, opts?: { cause?: unknown; headers?: Record<string, string> }): HearthError {
  return new HearthError(code, message, opts);
}

export function isHearthError(e: unknown): e is HearthError {
  return e instanceof HearthError;
}

/** Most characters of one client-supplied value shown back in an error message (shown()). */
export const SHOWN_CHARS = 200;
/** Most characters of an error message sent to a client (the gateway's error handler cuts past it). */
export const MAX_ERROR_MESSAGE_CHARS = 2048;

/**
 * A client-supplied value (a tensor or model name, a header or query value) for an error message: a string as it
 * is, anything else as JSON, cut to `max` characters with an ellipsis, so a 10 MB name is never echoed whole.
 */
export function shown(value: unknown, max = SHOWN_CHARS): string {
  let text: string;
  if (typeof value === 'string') text = value;
  else {
    try {
      text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v)) ?? String(value);
    } catch {
      text = '(a value that cannot be shown)';
    }
  }
  return cut(text, max);
}

/** `text` cut to `max` characters with an ellipsis (never inside a surrogate pair). */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  const c = text.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}
