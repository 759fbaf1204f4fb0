// The SDK's one way to call Hearth: fetch with the base URL, the API key and the error mapping of errors.ts.
import { errorFromResponse, HearthError, transportError } from './errors.ts';

export interface ClientOptions {
  /** Base URL of the Hearth node, e.g. http://127.0.0.1:8080. */
  url: string;
  /** API key (hk_...), sent as `Authorization: Bearer`; needed when the node runs with AUTH on. */
  key?: string;
  /** A fetch of your own (a proxy agent, a test); defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Extra headers on every call. */
  headers?: Record<string, string>;
}

export interface CallOptions {
  query?: Record<string, string | number | undefined>;
  /** A JSON body (sent with Content-Type: application/json). */
  json?: unknown;
  body?: BodyInit | ReadableStream<Uint8Array>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export class Transport {
  readonly url: string;
  readonly #key?: string;
  readonly #fetch: typeof fetch;
  readonly #headers: Record<string, string>;

  constructor(opts: ClientOptions) {
    if (!opts.url) throw new HearthError(0, 'INVALID_INPUT', 'no Hearth URL given');
    this.url = opts.url.replace(/\/+$/, '');
    if (opts.key) this.#key = opts.key;
    this.#fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.#headers = opts.headers ?? {};
  }

  /** The answer to one call; a status of 400 and above becomes a HearthError with the server's code. */
  async call(method: string, path: string, o: CallOptions = {}): Promise<Response> {
    let url = `${this.url}${path}`;
    const q = Object.entries(o.query ?? {}).filter(([, v]) => v !== undefined && v !== '');
    if (q.length) url += `?${new URLSearchParams(q.map(([k, v]) => [k, String(v)])).toString()}`;
    const headers: Record<string, string> = { ...this.#headers, ...o.headers };
    if (this.#key) headers.authorization = `Bearer ${this.#key}`;
    let body = o.body;
    if (o.json !== undefined) {
      body = JSON.stringify(o.json);
      headers['content-type'] = 'application/json';
    }
    const init: RequestInit & { duplex?: 'half' } = { method, headers };
    if (body !== undefined) init.body = body as BodyInit;
    // A stream body needs half duplex (Node's fetch refuses it otherwise).
    if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) init.duplex = 'half';
    if (o.signal) init.signal = o.signal;
    let res: Response;
    try {
      res = await this.#fetch(url, init);
    } catch (e) {
      throw transportError(e, `${method} ${url}`, o.signal);
    }
    if (res.status >= 400) throw await errorFromResponse(res);
    return res;
  }

  async json<T>(method: string, path: string, o: CallOptions = {}): Promise<T> {
    const res = await this.call(method, path, o);
    const text = await res.text();
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new HearthError(res.status, 'BAD_RESPONSE', `${method} ${path}: the answer is not JSON: ${text.slice(0, 200)}`, { cause: e });
    }
  }
}

/** One path segment, escaped. */
export function seg(s: string | number): string {
  return encodeURIComponent(String(s));
}
