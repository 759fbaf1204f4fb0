// Operations routes: GET /v1/status (pools, instances, rates, latencies, keep-alive windows), GET
// /v1/models/{name}/keep-alive (a model's keep-alive policy, decision and idle-time histogram), GET /v1/costs (the
// cost ledger's bill, with the always-on comparison) and GET /metrics (Prometheus text).
import type { FastifyInstance } from 'fastify';
import { hearthError, shown } from '../core/index.ts';
import { checkModelName } from '../model-store/index.ts';
import type { Autoscaler, NodeBudget, PoolScalingStatus } from '../scaling/index.ts';
import type { CostLedger } from '../ledger/index.ts';
import type { HearthMetrics } from './ops-metrics.ts';

export interface OpsRoutesOptions {
  autoscaler?: Autoscaler;
  /** The node's slots and memory. */
  node?: () => NodeBudget;
  ledger?: CostLedger;
  metrics?: HearthMetrics;
}

export async function opsRoutes(app: FastifyInstance, opts: OpsRoutesOptions): Promise<void> {
  const { autoscaler, ledger, metrics, node } = opts;

  app.get('/v1/status', async (req) => {
    queryOf(req.query, []);
    return statusBody(autoscaler, node);
  });

  // Read-only: the pools of this model on this node (none until its first request here).
  app.get<{ Params: { name: string } }>('/v1/models/:name/keep-alive', async (req) => {
    queryOf(req.query, []);
    checkModelName(req.params.name);
    return { name: req.params.name, pools: autoscaler?.keepAlive(req.params.name) ?? [] };
  });

  if (ledger) {
    app.get('/v1/costs', async (req) => {
      const q = queryOf(req.query, ['from', 'to', 'model']);
      const from = parseTime('from', q.from);
      const to = parseTime('to', q.to);
      if (from !== undefined && to !== undefined && from > to)
        throw hearthError('INVALID_REQUEST', `from: ${shown(q.from)} is after to ${shown(q.to)}`);
      return ledger.report({ from, to, model: q.model || undefined });
    });
  }

  if (metrics) {
    app.get('/metrics', async (req, reply) => {
      queryOf(req.query, []);
      const { contentType, body } = await metrics.scrape();
      reply.type(contentType).send(body);
    });
  }
}

/** GET /v1/status's body (the dashboard's event stream sends the same). */
export function statusBody(
  autoscaler: Autoscaler | undefined,
  node: (() => NodeBudget) | undefined,
): { models: PoolScalingStatus[]; node: object } {
  const n = node?.();
  return {
    models: autoscaler?.snapshot() ?? [],
    // stuckRuns: threads stuck in onnxruntime past their timeout, each holding a slot and its memory.
    node: { slots: n?.slots ?? 0, memoryMb: n?.memoryMb ?? 0, memoryUsedMb: n?.memoryUsedMb ?? 0, stuckRuns: n?.stuckRuns ?? [] },
  };
}

/**
 * The query of an ops route: only `allowed` names, each at most once (fastify gives a repeated name as an array,
 * which used to be read as one odd value: from=1&from=2 became the date "1,2", 2001-01-02).
 */
function queryOf(query: unknown, allowed: readonly string[]): Record<string, string | undefined> {
  const q = (query ?? {}) as Record<string, string | string[] | undefined>;
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(q)) {
    if (!allowed.includes(k)) {
      throw hearthError(
        'INVALID_REQUEST',
        `${shown(k)}: unknown query parameter (${allowed.length ? `allowed: ${allowed.join(', ')}` : 'this route takes none'})`,
      );
    }
    if (typeof v !== 'string') throw hearthError('INVALID_REQUEST', `${k}: given more than once`);
    out[k] = v;
  }
  return out;
}

/** The last instant a JS Date holds (+275760-09-13T00:00:00Z), in ms since the epoch. */
const MAX_DATE_MS = 8.64e15;

/** `YYYY-MM-DD`, optionally `THH:MM[:SS[.fff]]` and `Z` or `±HH:MM`; a date-time without an offset is UTC. */
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * An ISO 8601 date (strictly: Date.parse also takes "1,2", "-1" and 2024-02-30, each a silently wrong window) or
 * whole milliseconds since the epoch (the clock's ms), within the range a Date holds.
 */
function parseTime(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const bad = (why: string) => hearthError('INVALID_REQUEST', `${name}: ${why}, got "${shown(raw)}"`);
  if (/^\d+$/.test(raw)) {
    const ms = Number(raw);
    if (!(ms <= MAX_DATE_MS)) throw bad(`epoch milliseconds must be at most ${MAX_DATE_MS} (+275760-09-13)`);
    return ms;
  }
  const m = ISO_DATE.exec(raw);
  if (!m) throw bad('expected an ISO 8601 date (2026-11-26 or 2026-11-26T08:00:00Z) or whole epoch milliseconds');
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', zone = 'Z'] = m;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, sec].map(Number);
  // setUTCFullYear, not Date.UTC, which reads years 0-99 as 1900-1999.
  const check = new Date(0);
  check.setUTCFullYear(year, month - 1, day);
  check.setUTCHours(hour, minute, second, Number(frac.padEnd(3, '0').slice(0, 3)));
  const utc = check.getTime();
  // A Date rolls 2024-02-30 over to March: the fields must come back as given.
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    check.getUTCHours() !== hour ||
    check.getUTCMinutes() !== minute ||
    check.getUTCSeconds() !== second
  ) {
    throw bad('not a date on the calendar');
  }
  const offset = zone === 'Z' ? 0 : (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
  if (Math.abs(offset) >= 24 * 3_600_000 || Number(zone.slice(4, 6)) > 59) throw bad('not a valid UTC offset');
  return utc - offset;
}
