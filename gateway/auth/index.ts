// gateway/auth: API keys, their store, the auth rule of every route, the hooks that apply them and /v1/keys.
export {
  installAuth,
  bodyCapError,
  checkModelAccess,
  visibleModels,
  ownerOf,
  type Identity,
  type AuthCounters,
  type AuthOptions,
} from './auth-plugin.ts';
export { openKeyStore, RedisKeyStore, ObjectKeyStore, MAX_KEYS, KEYS_PREFIX, type KeyStore } from './key-store.ts';
export { keysRoutes, bootstrapAdminKey } from './keys-routes.ts';
export { ROUTE_RULES, ruleFor, type RouteRule } from './route-rules.ts';
export {
  SCOPES,
  SCOPE_DEFAULTS,
  effectiveLimits,
  hashToken,
  modelAllowed,
  newToken,
  parseKeyRequest,
  parseToken,
  tokenMatches,
  type KeyRecord,
  type Scope,
} from './keys.ts';
