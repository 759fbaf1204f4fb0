// TLS_CERT_FILE and TLS_KEY_FILE: a node serves HTTPS with that certificate (a self-signed one made here with openssl
// for 127.0.0.1 and localhost), a client trusting it gets answers, one that does not is refused, and plain HTTP to
// the same port gets no answer. One of the two settings alone is a configuration error naming the other.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../core/index.ts';
import { startNode, type HostileNode } from '../../hostile/rig.ts';
import { logLines, startOnFreePort, TOKEN_IN_TEXT } from './slow-rig.ts';

const OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
if (!OPENSSL) console.warn('tls.slow.test.ts: `openssl` is not on PATH, so no certificate can be made: the HTTPS cases are skipped');

interface Answer {
  status: number;
  body: string;
  /** sha256 fingerprint of the certificate the server presented. */
  fingerprint: string;
}

function httpsGet(port: number, urlPath: string, opts: { ca?: Buffer; token?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        agent: false,
        ...(opts.ca ? { ca: opts.ca } : {}),
        headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
        timeout: 10_000,
      },
      (res) => {
        const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer to https ${urlPath} within 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Plain HTTP to the port: what came back (a status) or the error. */
function httpGet(port: number, urlPath: string): Promise<{ status?: number; error?: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (error) => resolve({ error }));
    req.end();
  });
}

describe('TLS settings', () => {
  it('only one of TLS_CERT_FILE and TLS_KEY_FILE is a ConfigError naming the missing one', () => {
    const error = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (e) {
        return e;
      }
      throw new Error('loadConfig accepted it');
    };
    for (const [env, missing] of [
      [{ TLS_CERT_FILE: 'cert.pem' }, 'TLS_KEY_FILE'],
      [{ TLS_KEY_FILE: 'key.pem' }, 'TLS_CERT_FILE'],
      [{ TLS_CERT_FILE: 'cert.pem', TLS_KEY_FILE: ' ' }, 'TLS_KEY_FILE'],
    ] as const) {
      const e = error(env);
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).variable).toBe(missing);
      expect((e as ConfigError).message).toMatch(new RegExp(`^${missing}: `));
    }
    expect(loadConfig({}).tls).toBeUndefined();
    expect(loadConfig({ TLS_CERT_FILE: 'c.pem', TLS_KEY_FILE: 'k.pem' }).tls).toEqual({
      certFile: path.resolve('c.pem'),
      keyFile: path.resolve('k.pem'),
    });
  });

  it('a node given only TLS_CERT_FILE does not start, and says which setting is missing', async () => {
    const started = startNode({ env: { TLS_CERT_FILE: '/nonexistent/cert.pem' } });
    await expect(started).rejects.toThrow(/exited before it listened:\s*hearth: invalid configuration: TLS_KEY_FILE: /);
  });
});

describe.skipIf(!OPENSSL)('HTTPS with a self-signed certificate', () => {
  let dir: string;
  let cert: Buffer;
  let certFile: string;
  let keyFile: string;
  let node: HostileNode;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-tls-'));
    certFile = path.join(dir, 'cert.pem');
    keyFile = path.join(dir, 'key.pem');
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(made.status, made.stderr).toBe(0);
    cert = await fs.readFile(certFile);
    // AUTH on and no admin key: the first-key line must name https and the real port.
    node = await startOnFreePort({ env: { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, AUTH: 'on' } });
  });
  afterAll(async () => {
    await node?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('answers over https with the configured certificate to a client that trusts it', async () => {
    expect(node.url).toBe(`https://127.0.0.1:${node.port}`);
    const ready = await httpsGet(node.port, '/v2/health/ready', { ca: cert });
    expect(ready.status, ready.body).toBe(200);
    expect(ready.fingerprint).toBe(new X509Certificate(cert).fingerprint256);

    // The first admin key's curl line is an https URL on this port, and the key works over https.
    const line = logLines(node).find((l) => l.msg.includes('created the first admin key'));
    expect(line, node.logs()).toBeDefined();
    const token = (line!.msg.match(TOKEN_IN_TEXT) ?? [])[0];
    expect(line!.msg).toContain(`curl -H "Authorization: Bearer ${token}" https://127.0.0.1:${node.port}/v1/keys`);
    expect((await httpsGet(node.port, '/v1/keys', { ca: cert, token })).status).toBe(200);
    expect((await httpsGet(node.port, '/v1/keys', { ca: cert })).status).toBe(401);
  });

  it('a client that does not trust the certificate is refused by its own TLS check', async () => {
    await expect(httpsGet(node.port, '/v2/health/ready')).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });

  it('plain http to the same port gets no HTTP answer', async () => {
    const res = await httpGet(node.port, '/v2/health/ready');
    expect(res.status).toBeUndefined();
    expect(res.error?.code ?? res.error?.message).toMatch(/ECONNRESET|socket hang up|HPE_/);
    // The node is still serving https.
    expect((await httpsGet(node.port, '/v2/health/live', { ca: cert })).status).toBe(200);
  });
});
