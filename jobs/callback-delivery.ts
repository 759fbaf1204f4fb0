// One POST of a job's final status to its callbackUrl, made so that a client cannot aim it inside the network: the
// literal host is checked before the request and every resolved address when the connection is made (the lookup
// the socket itself uses, so a DNS answer cannot change between check and connect), redirects are not followed,
// connect and answer times are bounded and at most a little of the answer is read. Uses node:http, not fetch,
// because fetch offers neither a per-connection lookup nor a way to refuse redirects without reading them.
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { article, classifyAddress, isMetadataName, refusedHost, type AddressClass } from './callback-address.ts';

export interface CallbackSettings {
  /** Reach loopback, private, link-local and metadata addresses too (config.callbacks.allowPrivate). */
  allowPrivate: boolean;
  /** Longest from the start of a delivery (name lookup included) to a connected socket. */
  connectTimeoutMs: number;
  /** Longest from the connection to the end of the (bounded) answer. */
  responseTimeoutMs: number;
}

/** What one delivery attempt came to; `error` is short and never holds the callee's body. */
export interface DeliveryOutcome {
  ok: boolean;
  status?: number;
  error?: string;
  /** Refused by the address check: another attempt would be refused too. */
  final?: boolean;
}

/** dns.lookup's `all: true` form; tests pass a fake, so no name is ever resolved for real. */
export type Resolver = (
  hostname: string,
  options: dns.LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void,
) => void;

/** Bytes of the callee's answer read (and discarded) before the connection is closed. */
export const MAX_ANSWER_BYTES = 64 * 1024;

/** Raised inside the socket's lookup when a resolved address may not be reached. */
class RefusedAddress extends Error {
  constructor(
    readonly host: string,
    readonly cls: AddressClass,
  ) {
    super(refusal(host, cls));
  }
}

function refusal(host: string, cls: AddressClass): string {
  return `refused: ${host} is or resolves to ${article(cls)} ${cls} address; callbacks reach only public addresses unless CALLBACK_ALLOW_PRIVATE=true`;
}

/**
 * A lookup for the socket's connect that resolves the name and refuses it when any of its addresses is not public
 * (a name that mixes public and private answers is refused whole). Node calls it for every connection to a name.
 */
export function guardedLookup(resolve: Resolver = dns.lookup): LookupFunction {
  return (hostname, options, cb) => {
    if (isMetadataName(hostname)) return cb(new RefusedAddress(hostname, 'metadata'), '', 0);
    resolve(hostname, { family: options.family, hints: options.hints, all: true }, (err, addresses) => {
      if (err) return cb(err, '', 0);
      if (!addresses || addresses.length === 0)
        return cb(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      for (const a of addresses) {
        const cls = classifyAddress(a.address);
        if (cls) return cb(new RefusedAddress(hostname, cls), '', 0);
      }
      if (options.all) cb(null, addresses);
      else cb(null, addresses[0].address, addresses[0].family);
    });
  };
}

export class CallbackSender {
  readonly #s: CallbackSettings;
  readonly #lookup: LookupFunction | undefined;
  // Own agents without keep-alive: every delivery makes (and checks) a fresh connection.
  readonly #http = new http.Agent({ keepAlive: false });
  readonly #https = new https.Agent({ keepAlive: false });

  constructor(settings: CallbackSettings, resolve?: Resolver) {
    this.#s = settings;
    this.#lookup = settings.allowPrivate ? undefined : guardedLookup(resolve);
  }

  /** POSTs `body` to `url` once; never throws. */
  send(url: string, body: string, headers: Record<string, string>): Promise<DeliveryOutcome> {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return Promise.resolve({ ok: false, error: 'refused: not a URL', final: true });
    }
    // Records stored before these checks existed may hold anything: check again here.
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      return Promise.resolve({ ok: false, error: 'refused: only http and https URLs are called', final: true });
    if (u.username || u.password) return Promise.resolve({ ok: false, error: 'refused: credentials in the URL are not sent', final: true });
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    if (!this.#s.allowPrivate) {
      const cls = refusedHost(u.hostname);
      if (cls) return Promise.resolve({ ok: false, error: refusal(u.hostname, cls), final: true });
    }
    const secure = u.protocol === 'https:';
    const payload = Buffer.from(body);
    return new Promise<DeliveryOutcome>((resolve) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      // Set once the status line is in: a deadline that passes while the body trickles keeps it.
      let answered: DeliveryOutcome | undefined;
      const finish = (o: DeliveryOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve(o);
      };
      const options: http.RequestOptions = {
        protocol: u.protocol,
        hostname: host,
        port: u.port || (secure ? 443 : 80),
        path: `${u.pathname}${u.search}`,
        method: 'POST',
        headers: { ...headers, 'content-length': String(payload.length) },
        agent: secure ? this.#https : this.#http,
        maxHeaderSize: 16 * 1024,
        ...(this.#lookup ? { lookup: this.#lookup } : {}),
      };
      const req = (secure ? https : http).request(options, (res) => {
        const status = res.statusCode ?? 0;
        const outcome: DeliveryOutcome = (answered =
          status >= 200 && status < 300
            ? { ok: true, status }
            : status >= 300 && status < 400
              ? { ok: false, status, error: `answered ${status}: redirects are not followed` }
              : { ok: false, status });
        // The answer's body means nothing to Hearth: read a little of it so a short answer ends cleanly, then close.
        let read = 0;
        res.on('data', (c: Buffer) => {
          read += c.length;
          if (read > MAX_ANSWER_BYTES) finish(outcome);
        });
        res.on('end', () => finish(outcome));
        res.on('close', () => finish(outcome));
        res.on('error', () => finish(outcome));
      });
      timer = setTimeout(
        () => finish({ ok: false, error: `could not connect within ${this.#s.connectTimeoutMs} ms` }),
        this.#s.connectTimeoutMs,
      );
      req.on('socket', (socket) => {
        socket.once('connect', () => {
          clearTimeout(timer);
          timer = setTimeout(
            () => finish(answered ?? { ok: false, error: `no answer within ${this.#s.responseTimeoutMs} ms` }),
            this.#s.responseTimeoutMs,
          );
        });
      });
      req.on('error', (e) => finish(describe(e)));
      req.end(payload);
    });
  }

  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }
}

/** A short, safe description of a failed attempt: an error code's meaning, never addresses or the callee's words. */
function describe(e: Error): DeliveryOutcome {
  if (e instanceof RefusedAddress) return { ok: false, error: e.message, final: true };
  const code = (e as NodeJS.ErrnoException).code ?? '';
  const known: Record<string, string> = {
    ENOTFOUND: 'could not resolve the host',
    EAI_AGAIN: 'could not resolve the host (temporary DNS failure)',
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    EPIPE: 'connection closed while sending',
    ETIMEDOUT: 'connection timed out',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
  };
  if (known[code]) return { ok: false, error: known[code] };
  if (code.startsWith('HPE_')) return { ok: false, error: `the answer is not valid HTTP (${code})` };
  if (/CERT|TLS|SSL/.test(code)) return { ok: false, error: `TLS failure (${code})` };
  return { ok: false, error: `delivery failed${/^[A-Z0-9_]{1,40}$/.test(code) ? ` (${code})` : ''}` };
}
