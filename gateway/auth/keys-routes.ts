// /v1/keys (admin only, registered when AUTH is on): create a key (its token answered once), list and read keys
// without secrets, revoke one (at once on every node reading the same key store).
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { API_KEY_PATTERN, hearthError, type Clock, type Config } from '../../core/index.ts';
import { hashToken, newToken, parseKeyRequest, tokenMatches, viewOf, type KeyRecord } from './keys.ts';
import { MAX_KEYS, type KeyStore } from './key-store.ts';

export interface KeysRoutesOptions {
  keys: KeyStore;
  clock: Clock;
}

const KEY_ID = /^[a-z0-9]{4,32}$/;

export async function keysRoutes(app: FastifyInstance, o: KeysRoutesOptions): Promise<void> {
  const { keys, clock } = o;

  app.post('/v1/keys', async (req, reply) => {
    const r = parseKeyRequest(req.body, clock.now());
    if (r.scopes.includes('admin') && r.models)
      throw hearthError('INVALID_REQUEST', '"models": an admin key reaches every model; drop "models" or "admin"');
    if ((await keys.list()).length >= MAX_KEYS)
      throw hearthError('INVALID_REQUEST', `this Hearth already holds ${MAX_KEYS} keys; revoke some first`);
    const { id, token } = newToken();
    const rec: KeyRecord = { id, ...r, createdAt: clock.now(), hash: hashToken(token) };
    await keys.put(rec);
    req.auditDetail = { created: { id, name: rec.name, scopes: rec.scopes } };
    reply.code(201).header('location', `/v1/keys/${id}`).header('cache-control', 'no-store');
    return { ...viewOf(rec), key: token };
  });

  app.get('/v1/keys', async () => ({ keys: (await keys.list()).sort((a, b) => a.createdAt - b.createdAt).map(viewOf) }));

  app.get<{ Params: { id: string } }>('/v1/keys/:id', async (req) => viewOf(await existing(keys, req.params.id)));

  app.delete<{ Params: { id: string } }>('/v1/keys/:id', async (req) => {
    const rec = await existing(keys, req.params.id);
    await keys.delete(rec.id);
    return { id: rec.id, revoked: true };
  });
}

async function existing(keys: KeyStore, id: string): Promise<KeyRecord> {
  const rec = KEY_ID.test(id) ? await keys.get(id) : undefined;
  if (!rec) throw hearthError('KEY_NOT_FOUND', `no API key has the id "${id.slice(0, 40)}"`);
  return rec;
}

/**
 * At start-up with AUTH on: HEARTH_ADMIN_KEY is installed (replacing an older key of the same id), or, when the key
 * store is empty and no node has done it before, a first admin key is made and logged once with a curl line.
 */
export async function bootstrapAdminKey(
  keys: KeyStore,
  config: Readonly<Config>,
  clock: Clock,
  log: Pick<Logger, 'info' | 'warn'>,
): Promise<void> {
  const given = config.auth.adminKey;
  if (given) {
    const id = API_KEY_PATTERN.exec(given)![1];
    const old = await keys.get(id);
    if (!old || !tokenMatches(given, old.hash) || !old.scopes.includes('admin') || !old.fromEnv) {
      await keys.put({
        id,
        name: 'admin (HEARTH_ADMIN_KEY)',
        scopes: ['admin'],
        createdAt: clock.now(),
        hash: hashToken(given),
        fromEnv: true,
      });
    }
    // A rotation to a new id: the key the variable held before stops working.
    for (const k of await keys.list()) {
      if (k.fromEnv && k.id !== id) {
        await keys.delete(k.id);
        log.warn({ keyId: k.id }, `revoked hk_${k.id}_..., installed from an earlier HEARTH_ADMIN_KEY`);
      }
    }
    log.info({ keyId: id }, `admin key hk_${id}_... installed from HEARTH_ADMIN_KEY`);
    return;
  }
  if ((await keys.list()).length > 0) return;
  if (!(await keys.claimBootstrap())) {
    log.warn(
      'AUTH is on and the key store holds no key, but the first admin key was made already (by another node starting now, ' +
        'look in its log, or by an earlier start whose keys were all revoked since): set HEARTH_ADMIN_KEY to get in',
    );
    return;
  }
  const { id, token } = newToken();
  await keys.put({ id, name: 'admin (first start)', scopes: ['admin'], createdAt: clock.now(), hash: hashToken(token) });
  const scheme = config.tls ? 'https' : 'http';
  const host =
    config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  // With PORT=0 the port is chosen at listen, after this line: a placeholder rather than a URL with port 0.
  const port = config.port === 0 ? '<port>' : String(config.port);
  log.warn(
    { keyId: id },
    `created the first admin key; it is shown only this once, so keep it now: ${token}\n` +
      `  try: curl -H "Authorization: Bearer ${token}" ${scheme}://${host}:${port}/v1/keys`,
  );
}
