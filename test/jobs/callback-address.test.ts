// The callback address check as pure functions: every refused class, IPv6 and IPv4-mapped forms included, and the
// connect-time lookup with a fake resolver. No name is resolved and no connection is attempted here.
import { describe, expect, it } from 'vitest';
import { checkCallbackUrl, classifyAddress, ipv6Groups, MAX_CALLBACK_URL_CHARS } from '../../jobs/callback-address.ts';
import { CallbackSender, guardedLookup, type Resolver } from '../../jobs/callback-delivery.ts';

const REFUSED: [string, string][] = [
  // IPv4
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['10.0.0.1', 'private'],
  ['10.255.255.255', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.1.1', 'private'],
  ['100.64.0.1', 'shared (CGNAT)'],
  ['100.127.255.255', 'shared (CGNAT)'],
  ['169.254.0.1', 'link-local'],
  ['169.254.169.254', 'metadata'],
  ['169.254.170.2', 'metadata'],
  ['100.100.100.200', 'metadata'],
  ['192.0.0.192', 'metadata'],
  ['192.0.0.8', 'reserved'],
  ['192.0.2.1', 'reserved'],
  ['198.18.0.1', 'reserved'],
  ['198.51.100.7', 'reserved'],
  ['203.0.113.9', 'reserved'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'broadcast'],
  // IPv6
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['fc00::1', 'private'],
  ['fd12:3456:789a::1', 'private'],
  ['fd00:ec2::254', 'metadata'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local'],
  ['febf:ffff::1', 'link-local'],
  ['fec0::1', 'private'],
  ['ff02::1', 'multicast'],
  ['ff05::2', 'multicast'],
  ['::7f00:1', 'reserved'],
  ['100::1', 'reserved'],
  ['2001:db8::1', 'reserved'],
  ['2001:0:4136:e378::1', 'reserved'],
  ['3fff::1', 'reserved'],
  ['64:ff9b:1::a00:1', 'reserved'],
  // IPv4 inside IPv6: judged by the IPv4 address
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['0:0:0:0:0:ffff:7f00:1', 'loopback'],
  ['::ffff:10.1.2.3', 'private'],
  ['::ffff:169.254.169.254', 'metadata'],
  ['::ffff:a9fe:a9fe', 'metadata'],
  ['::ffff:0.0.0.0', 'unspecified'],
  ['::ffff:100.64.1.1', 'shared (CGNAT)'],
  ['::ffff:0:127.0.0.1', 'loopback'],
  ['64:ff9b::127.0.0.1', 'loopback'],
  ['64:ff9b::a9fe:a9fe', 'metadata'],
  ['2002:7f00:1::1', 'loopback'],
  ['2002:c0a8:101::1', 'private'],
];

const PUBLIC = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.216.34',
  '100.63.255.255',
  '100.128.0.0',
  '172.15.255.255',
  '172.32.0.0',
  '169.253.255.255',
  '192.0.3.1',
  '223.255.255.255',
  '2606:4700:4700::1111',
  '2a00:1450:4001:80b::200e',
  '::ffff:8.8.8.8',
  '64:ff9b::808:808',
  '2002:808:808::1',
];

describe('classifyAddress', () => {
  it.each(REFUSED)('refuses %s as %s', (ip, cls) => {
    expect(classifyAddress(ip)).toBe(cls);
  });

  it.each(PUBLIC)('lets %s through', (ip) => {
    expect(classifyAddress(ip)).toBeUndefined();
  });

  it('refuses what is not an address at all', () => {
    expect(classifyAddress('not-an-ip')).toBe('reserved');
    expect(classifyAddress('')).toBe('reserved');
  });

  it('reads every IPv6 spelling into eight groups', () => {
    expect(ipv6Groups('::')).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(ipv6Groups('1::')).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(ipv6Groups('1:2:3:4:5:6:7:8')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(ipv6Groups('1:2:3:4:5:6:1.2.3.4')).toEqual([1, 2, 3, 4, 5, 6, 0x102, 0x304]);
    expect(ipv6Groups('::ffff:1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x102, 0x304]);
    expect(ipv6Groups('::1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0, 0x102, 0x304]);
    expect(ipv6Groups('fe80::1%lo')).toEqual([0xfe80, 0, 0, 0, 0, 0, 0, 1]);
    expect(ipv6Groups('1.2.3.4')).toBeUndefined();
  });
});

describe('checkCallbackUrl (at job creation)', () => {
  const refused = (url: unknown, allowPrivate = false) => {
    try {
      checkCallbackUrl(url, allowPrivate);
    } catch (e) {
      return e as { code: string; message: string };
    }
    return undefined;
  };

  it('refuses literal addresses of every class, however the URL spells them', () => {
    for (const host of [
      '127.0.0.1',
      '127.1',
      '2130706433',
      '0x7f000001',
      '0177.0.0.1',
      '[::1]',
      '[::ffff:127.0.0.1]',
      '[::ffff:7f00:1]',
      '0.0.0.0',
      '0',
      '10.1.2.3',
      '192.168.0.10',
      '172.20.0.1',
      '100.64.0.1',
      '169.254.169.254',
      '[fe80::1]',
      '[fd00:ec2::254]',
      '[fc00::5]',
      '224.0.0.1',
      '[ff02::1]',
    ]) {
      const e = refused(`http://${host}:8080/hook`);
      expect(e, host).toMatchObject({
        code: 'INVALID_REQUEST',
        message: expect.stringMatching(/"callbackUrl": .* address; .*CALLBACK_ALLOW_PRIVATE=true/),
      });
    }
  });

  it('refuses metadata names, credentials, other schemes and overlong URLs', () => {
    expect(refused('http://metadata.google.internal/computeMetadata/v1/')?.message).toMatch(/metadata/);
    expect(refused('http://METADATA.GOOGLE.INTERNAL./')?.message).toMatch(/metadata/);
    expect(refused('http://instance-data/latest')?.message).toMatch(/metadata/);
    const creds = refused('https://alice:hunter2@example.com/hook');
    expect(creds?.message).toMatch(/credentials/);
    expect(creds?.message).not.toContain('hunter2');
    expect(refused('https://alice:hunter2@example.com/hook', true)?.message).toMatch(/credentials/);
    for (const bad of ['ftp://example.com/x', 'file:///etc/passwd', 'gopher://example.com', 'javascript:alert(1)', 'not a url', 42, null]) {
      expect(refused(bad)?.code, String(bad)).toBe('INVALID_REQUEST');
    }
    expect(refused(`https://example.com/${'a'.repeat(MAX_CALLBACK_URL_CHARS)}`)?.message).toMatch(/at most 2048/);
  });

  it('accepts public literals and names (names are checked when the delivery connects)', () => {
    for (const url of [
      'https://example.com/hook',
      'http://8.8.8.8/x',
      'http://[2606:4700:4700::1111]/x',
      'http://localhost:9/x',
      'http://internal.corp/x',
    ]) {
      expect(refused(url), url).toBeUndefined();
    }
  });

  it('accepts private literals when CALLBACK_ALLOW_PRIVATE is set', () => {
    expect(refused('http://127.0.0.1:9/x', true)).toBeUndefined();
    expect(refused('http://[::1]:9/x', true)).toBeUndefined();
  });
});

/** A resolver that answers from a table and never touches DNS. */
function fakeResolver(table: Record<string, string[]>, seen: string[] = []): Resolver {
  return (hostname, _options, cb) => {
    seen.push(hostname);
    const ips = table[hostname];
    if (!ips) return cb(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }), []);
    cb(
      null,
      ips.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
}

function lookupOnce(
  lookup: ReturnType<typeof guardedLookup>,
  host: string,
  all: boolean,
): Promise<{ err: Error | null; address: unknown; family?: number }> {
  return new Promise((resolve) => {
    (lookup as (h: string, o: object, cb: (err: Error | null, address: unknown, family?: number) => void) => void)(
      host,
      { all },
      (err, address, family) => resolve({ err, address, family }),
    );
  });
}

describe('guardedLookup (at connect time)', () => {
  const table = {
    'rebind.test': ['127.0.0.1'],
    'mixed.test': ['93.184.216.34', '10.0.0.7'],
    'v6.test': ['::ffff:169.254.169.254'],
    'ula.test': ['fd00::1'],
    'public.test': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
  };

  it('refuses a name when any of its addresses is not public, naming the class but not the address', async () => {
    const lookup = guardedLookup(fakeResolver(table));
    for (const [host, cls] of [
      ['rebind.test', 'loopback'],
      ['mixed.test', 'private'],
      ['v6.test', 'metadata'],
      ['ula.test', 'private'],
    ]) {
      const { err } = await lookupOnce(lookup, host, true);
      expect(err?.message, host).toMatch(
        new RegExp(`^refused: ${host.replace('.', '\\.')} .*${cls.replace(/[()]/g, '.')} address.*CALLBACK_ALLOW_PRIVATE`),
      );
      expect(err?.message).not.toMatch(/127\.0\.0\.1|10\.0\.0\.7|169\.254|fd00/);
    }
  });

  it('refuses metadata names without resolving them', async () => {
    const seen: string[] = [];
    const { err } = await lookupOnce(guardedLookup(fakeResolver(table, seen)), 'metadata.google.internal', true);
    expect(err?.message).toMatch(/metadata/);
    expect(seen).toEqual([]);
  });

  it('passes public addresses through in both callback forms', async () => {
    const lookup = guardedLookup(fakeResolver(table));
    const all = await lookupOnce(lookup, 'public.test', true);
    expect(all.err).toBeNull();
    expect(all.address).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
    ]);
    const one = await lookupOnce(lookup, 'public.test', false);
    expect([one.err, one.address, one.family]).toEqual([null, '93.184.216.34', 4]);
  });

  it('passes a resolver error through', async () => {
    const { err } = await lookupOnce(guardedLookup(fakeResolver(table)), 'missing.test', true);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOTFOUND');
  });
});

describe('CallbackSender refusals (no connection attempted)', () => {
  const settings = { allowPrivate: false, connectTimeoutMs: 200, responseTimeoutMs: 200 };

  // Only loopback literals here: were the guard broken, send() would open a socket to the host it names. Private,
  // link-local and mapped literals are checked by classifyAddress and checkCallbackUrl above, with no socket at all.
  it('refuses loopback literals, metadata names and bad URLs before any request, for good', async () => {
    const seen: string[] = [];
    const sender = new CallbackSender(settings, fakeResolver({}, seen));
    try {
      for (const url of [
        'http://127.0.0.1:9/x',
        'http://[::1]:9/x',
        'http://[::ffff:127.0.0.1]:9/x',
        'http://metadata.google.internal/x',
        'ftp://example.com/x',
        'http://u:p@example.com/x',
      ]) {
        const out = await sender.send(url, '{}', {});
        expect(out, url).toMatchObject({ ok: false, final: true, error: expect.stringMatching(/^refused/) });
      }
      expect(seen).toEqual([]);
    } finally {
      sender.close();
    }
  });

  it('refuses a name that resolves to a private address when it connects, for good', async () => {
    const sender = new CallbackSender(settings, fakeResolver({ 'hook.test': ['192.168.0.20'] }));
    try {
      expect(await sender.send('https://hook.test/done', '{}', {})).toEqual({
        ok: false,
        final: true,
        error:
          'refused: hook.test is or resolves to a private address; callbacks reach only public addresses unless CALLBACK_ALLOW_PRIVATE=true',
      });
    } finally {
      sender.close();
    }
  });

  it('gives up on a name lookup that never answers after connectTimeoutMs, and may retry', async () => {
    const hang: Resolver = () => {};
    const sender = new CallbackSender(settings, hang);
    try {
      expect(await sender.send('http://slow.test/done', '{}', {})).toEqual({ ok: false, error: 'could not connect within 200 ms' });
    } finally {
      sender.close();
    }
  });
});
