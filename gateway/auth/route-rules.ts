// The auth decision of every route, in one table so it can be read (and reviewed) whole. A route registered
// without an entry here fails at start-up: a new route cannot ship without a decision.
import type { Scope } from './keys.ts';

export interface RouteRule {
  /** Open to anyone (health checks). */
  public?: true;
  /** The key needs one of these scopes ('any': any valid key); admin passes every rule. */
  scopes?: readonly Scope[] | 'any';
  /** The route names a model in its `:name` parameter: the key's model patterns must allow it. */
  model?: true;
  /** The route shows every model on the node: a key restricted to some models may not read it. */
  nodeWide?: true;
  /** A write: the audit trail logs one line for it. */
  audit?: true;
}

const READ: readonly Scope[] = ['models:read'];
const WRITE: readonly Scope[] = ['models:write'];
const READ_OR_INFER: readonly Scope[] = ['models:read', 'infer'];
const JOBS: readonly Scope[] = ['jobs'];
const ADMIN: readonly Scope[] = ['admin'];

/** `METHOD url` (HEAD follows GET) → rule. /metrics is public instead when METRICS_PUBLIC=true. */
export const ROUTE_RULES: Readonly<Record<string, RouteRule>> = {
  'GET /v2/health/live': { public: true },
  'GET /v2/health/ready': { public: true },
  'GET /v2': { scopes: 'any' },

  'GET /metrics': { scopes: READ, nodeWide: true },
  'GET /v1/status': { scopes: READ, nodeWide: true },
  'GET /v1/costs': { scopes: READ, nodeWide: true },
  // The dashboard: its static files hold no data (every figure comes from the routes below, with the key).
  'GET /': { public: true },
  'GET /ui/*': { public: true },
  'GET /v1/events': { scopes: READ, nodeWide: true },

  'GET /v1/models': { scopes: READ },
  'GET /v1/models/:name': { scopes: READ, model: true },
  'GET /v1/models/:name/versions/:version': { scopes: READ, model: true },
  'GET /v1/models/:name/config': { scopes: READ, model: true },
  'GET /v1/models/:name/keep-alive': { scopes: READ, model: true },
  'GET /v1/models/:name/requests': { scopes: READ, model: true },
  'POST /v1/models/:name': { scopes: WRITE, model: true, audit: true },
  'PUT /v1/models/:name/versions/:version': { scopes: WRITE, model: true, audit: true },
  'DELETE /v1/models/:name': { scopes: WRITE, model: true, audit: true },
  'DELETE /v1/models/:name/versions/:version': { scopes: WRITE, model: true, audit: true },
  'PUT /v1/models/:name/config': { scopes: WRITE, model: true, audit: true },

  // Triton's and KServe's clients read metadata and readiness before they infer.
  'GET /v2/models/:name': { scopes: READ_OR_INFER, model: true },
  'GET /v2/models/:name/versions/:version': { scopes: READ_OR_INFER, model: true },
  'GET /v2/models/:name/ready': { scopes: READ_OR_INFER, model: true },
  'GET /v2/models/:name/versions/:version/ready': { scopes: READ_OR_INFER, model: true },
  // Triton's model configuration extension: read before infer by some clients (perf_analyzer, model analyzers).
  'GET /v2/models/:name/config': { scopes: READ_OR_INFER, model: true },
  'GET /v2/models/:name/versions/:version/config': { scopes: READ_OR_INFER, model: true },
  'POST /v2/models/:name/infer': { scopes: ['infer'], model: true },
  'POST /v2/models/:name/versions/:version/infer': { scopes: ['infer'], model: true },
  'GET /v2/models/stats': { scopes: READ, nodeWide: true },
  'GET /v2/models/:name/stats': { scopes: READ, model: true },
  'GET /v2/models/:name/versions/:version/stats': { scopes: READ, model: true },
  'POST /v2/repository/index': { scopes: READ },
  'POST /v2/repository/models/:name/load': { scopes: WRITE, model: true, audit: true },
  'POST /v2/repository/models/:name/unload': { scopes: WRITE, model: true, audit: true },

  'POST /v1/jobs': { scopes: JOBS, audit: true },
  'GET /v1/jobs': { scopes: JOBS },
  'GET /v1/jobs/:id': { scopes: JOBS },
  'DELETE /v1/jobs/:id': { scopes: JOBS, audit: true },
  'GET /v1/jobs/:id/results': { scopes: JOBS },
  'PUT /v1/datasets/:name': { scopes: JOBS, audit: true },
  'GET /v1/datasets': { scopes: JOBS },
  'GET /v1/datasets/:name': { scopes: JOBS },
  'DELETE /v1/datasets/:name': { scopes: JOBS, audit: true },

  'POST /v1/keys': { scopes: ADMIN, audit: true },
  'GET /v1/keys': { scopes: ADMIN },
  'GET /v1/keys/:id': { scopes: ADMIN },
  'DELETE /v1/keys/:id': { scopes: ADMIN, audit: true },
};

/** The rule of a registered route; HEAD routes (fastify adds one per GET) follow their GET. */
export function ruleFor(method: string, url: string): RouteRule | undefined {
  return ROUTE_RULES[`${method === 'HEAD' ? 'GET' : method} ${url}`];
}
