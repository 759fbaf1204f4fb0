// Which addresses a job callback may reach: public unicast only, unless CALLBACK_ALLOW_PRIVATE. Pure functions (no
// DNS, no sockets), so every class is unit-tested without a connection; callback-delivery.ts applies them to the
// literal host before a request and to every resolved address when a connection is made.
import net from 'node:net';
import { hearthError } from '../core/index.ts';

/** Why an address is refused; undefined for a public unicast address. */
export type AddressClass =
  'loopback' | 'private' | 'shared (CGNAT)' | 'link-local' | 'metadata' | 'unspecified' | 'multicast' | 'broadcast' | 'reserved';

/** Longest callbackUrl a job may carry (it is stored and shown with the job). */
export const MAX_CALLBACK_URL_CHARS = 2048;

/** Cloud metadata endpoints, named for the message (their ranges are refused anyway). */
const METADATA_ADDRESSES = new Set(['169.254.169.254', '169.254.170.2', '100.100.100.200', '192.0.0.192', 'fd00:ec2:0:0:0:0:0:254']);

/** Names of metadata services; refused before any lookup (they resolve to refused addresses too). */
const METADATA_NAMES = new Set(['metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal']);

/** IPv4 ranges that are not public unicast, most specific first: [first octets as a number, prefix length, class]. */
const V4_RANGES: [string, number, AddressClass][] = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'shared (CGNAT)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'], // IETF protocol assignments
  ['192.0.2.0', 24, 'reserved'], // documentation
  ['192.88.99.0', 24, 'reserved'], // 6to4 relay anycast
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'], // benchmarking
  ['198.51.100.0', 24, 'reserved'], // documentation
  ['203.0.113.0', 24, 'reserved'], // documentation
  ['224.0.0.0', 4, 'multicast'],
  ['255.255.255.255', 32, 'broadcast'],
  ['240.0.0.0', 4, 'reserved'],
];

function v4Number(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

const V4_TABLE = V4_RANGES.map(([base, bits, cls]) => ({ base: v4Number(base), size: 2 ** (32 - bits), cls }));

function classifyV4(n: number): AddressClass | undefined {
  for (const r of V4_TABLE) if (n >= r.base && n < r.base + r.size) return r.cls;
  return undefined;
}

function v4Text(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The eight 16-bit groups of an IPv6 address (with any zone id removed), or undefined when it is not one. */
export function ipv6Groups(text: string): number[] | undefined {
  const ip = text.replace(/%.*$/, '');
  if (net.isIPv6(ip) === false) return undefined;
  let head = ip;
  const tailV4: number[] = [];
  // An embedded dotted IPv4 (::ffff:1.2.3.4) is the last two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (dotted) {
    const n = v4Number(dotted[1]);
    tailV4.push(n >>> 16, n & 0xffff);
    head = ip.slice(0, -dotted[1].length);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const parse = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  let groups: number[];
  if (head.includes('::')) {
    const [left, right] = head.split('::');
    const l = parse(left);
    const r = [...parse(right), ...tailV4];
    groups = [...l, ...new Array<number>(Math.max(0, 8 - l.length - r.length)).fill(0), ...r];
  } else {
    groups = [...parse(head), ...tailV4];
  }
  return groups.length === 8 ? groups : undefined;
}

/**
 * The class of an IP address that a callback may not reach, or undefined for a public unicast one. IPv6 forms that
 * carry an IPv4 address (mapped, translated, NAT64, 6to4) are judged by that IPv4 address.
 */
export function classifyAddress(ip: string): AddressClass | undefined {
  if (net.isIPv4(ip)) {
    if (METADATA_ADDRESSES.has(ip)) return 'metadata';
    return classifyV4(v4Number(ip));
  }
  const g = ipv6Groups(ip);
  if (!g) return 'reserved'; // not an address at all: never connect
  const embedded = (hi: number, lo: number) => {
    const v4 = hi * 65536 + lo;
    return METADATA_ADDRESSES.has(v4Text(v4)) ? 'metadata' : classifyV4(v4);
  };
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (METADATA_ADDRESSES.has(g.map((x) => x.toString(16)).join(':'))) return 'metadata';
  if (zeros(0, 8)) return 'unspecified';
  if (zeros(0, 7) && g[7] === 1) return 'loopback';
  if (zeros(0, 5) && g[5] === 0xffff) return embedded(g[6], g[7]); // ::ffff:a.b.c.d, IPv4-mapped
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return embedded(g[6], g[7]); // ::ffff:0:a.b.c.d, IPv4-translated
  if (zeros(0, 6)) return 'reserved'; // ::a.b.c.d, IPv4-compatible (deprecated)
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return embedded(g[6], g[7]); // 64:ff9b::/96, NAT64
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return 'reserved'; // 64:ff9b:1::/48, local-use NAT64
  if (g[0] === 0x100 && zeros(1, 4)) return 'reserved'; // 100::/64, discard-only
  if (g[0] === 0x2001 && g[1] === 0) return 'reserved'; // 2001::/32, Teredo (tunnels to an IPv4 address)
  if (g[0] === 0x2001 && g[1] === 0xdb8) return 'reserved'; // documentation
  if (g[0] === 0x2002) return embedded(g[1], g[2]); // 2002::/16, 6to4
  if (g[0] === 0x3fff && (g[1] & 0xf000) === 0) return 'reserved'; // 3fff::/20, documentation
  if ((g[0] & 0xfe00) === 0xfc00) return 'private'; // fc00::/7, unique local
  if ((g[0] & 0xffc0) === 0xfe80) return 'link-local'; // fe80::/10
  if ((g[0] & 0xffc0) === 0xfec0) return 'private'; // fec0::/10, site-local (deprecated)
  if ((g[0] & 0xff00) === 0xff00) return 'multicast'; // ff00::/8
  return undefined;
}

/** A URL's host as an IP literal (brackets removed), or undefined when it is a name. */
export function literalHost(hostname: string): string | undefined {
  const h = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return net.isIP(h.replace(/%.*$/, '')) ? h : undefined;
}

/** True for the names of cloud metadata services (case and a trailing dot ignored). */
export function isMetadataName(hostname: string): boolean {
  return METADATA_NAMES.has(hostname.toLowerCase().replace(/\.$/, ''));
}

/** Why a URL's host may not be reached without resolving it (a literal address or a metadata name), or undefined. */
export function refusedHost(hostname: string): AddressClass | undefined {
  const literal = literalHost(hostname);
  if (literal !== undefined) return classifyAddress(literal);
  return isMetadataName(hostname) ? 'metadata' : undefined;
}

/**
 * Checks a job's callbackUrl when the job is created: http or https, no credentials (they would be stored and shown),
 * bounded length, and, unless `allowPrivate`, no literal address or metadata name outside the public internet.
 * Names are resolved only at delivery, where every address is checked again as the connection is made.
 */
export function checkCallbackUrl(value: unknown, allowPrivate: boolean): string {
  if (typeof value !== 'string' || value.length > MAX_CALLBACK_URL_CHARS) {
    throw hearthError('INVALID_REQUEST', `"callbackUrl": expected an http(s) URL of at most ${MAX_CALLBACK_URL_CHARS} characters`);
  }
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw hearthError('INVALID_REQUEST', `"callbackUrl": expected an http(s) URL, got ${JSON.stringify(value)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw hearthError('INVALID_REQUEST', `"callbackUrl": expected an http(s) URL, got ${JSON.stringify(value)}`);
  if (u.username || u.password)
    throw hearthError(
      'INVALID_REQUEST',
      '"callbackUrl": credentials in the URL are not accepted (they would be stored and shown with the job)',
    );
  if (!allowPrivate) {
    const cls = refusedHost(u.hostname);
    if (cls)
      throw hearthError(
        'INVALID_REQUEST',
        `"callbackUrl": ${u.hostname} is ${article(cls)} ${cls} address; callbacks reach only public addresses unless CALLBACK_ALLOW_PRIVATE=true`,
      );
  }
  return value;
}

export function article(cls: AddressClass): string {
  return /^[aeiu]/.test(cls) ? 'an' : 'a';
}
