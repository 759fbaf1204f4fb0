// The SDK's one error type: every failure of a call (an answer of 4xx/5xx, an unreachable server, a body that is
// not what the route promises) is a HearthError with the HTTP status, the server's `code` and its message.

export class HearthError extends Error {
  /** The HTTP status; 0 when no answer came (the server could not be reached, or the call was aborted). */
  readonly status: number;
  /** The server's error code (MODEL_NOT_FOUND, UNAUTHENTICATED, ...); UNREACHABLE, ABORTED or HTTP_<status> otherwise. */
  readonly code: string;
  /** Seconds from the Retry-After header (QUEUE_FULL, RATE_LIMITED, OVERLOADED), when the server sent one. */
  readonly retryAfter?: number;
  constructor(status: number, code: string, message: string, opts: { retryAfter?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HearthError';
    this.status = status;
    this.code = code;
    if (opts.retryAfter !== undefined) this.retryAfter = opts.retryAfter;
  }
}

export function isHearthError(e: unknown): e is HearthError {
  return e instanceof HearthError;
}

/** The HearthError of a response that is not ok: `{error, code}` when the server wrote one, else its status line. */
export async function errorFromResponse(res: Response): Promise<HearthError> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    // The body broke off: the status still says what happened.
  }
  let message = text.trim().slice(0, 2048) || res.statusText || `HTTP ${res.status}`;
  let code = `HTTP_${res.status}`;
  try {
    const body = JSON.parse(text) as { error?: unknown; code?: unknown; message?: unknown };
    if (typeof body.code === 'string') code = body.code;
    if (typeof body.error === 'string') message = body.error;
    else if (typeof body.message === 'string') message = body.message;
  } catch {
    // Not JSON (a proxy's page): the text is the message.
  }
  const ra = Number(res.headers.get('retry-after') ?? NaN);
  return new HearthError(res.status, code, message, Number.isFinite(ra) ? { retryAfter: ra } : {});
}

/** A failure of fetch itself (no answer) as a HearthError. */
export function transportError(e: unknown, url: string, signal?: AbortSignal): HearthError {
  if (signal?.aborted || (e as { name?: string })?.name === 'AbortError') {
    return new HearthError(0, 'ABORTED', `the call to ${url} was aborted`, { cause: e });
  }
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  const why = cause?.code ?? cause?.message ?? (e as Error)?.message ?? String(e);
  return new HearthError(0, 'UNREACHABLE', `cannot reach ${url}: ${why}`, { cause: e });
}
