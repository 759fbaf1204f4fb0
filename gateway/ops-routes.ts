// Operations routes: GET /v1/status (pools, instances, rates, latencies, keep-alive windows), GET /v1/costs (the
// cost ledger's bill, with the always-on comparison) and GET /metrics (Prometheus text).
import type { FastifyInstance } from 'fastify';
import { hearthError } from '../core/index.ts';
import type { Autoscaler, NodeBudget } from '../scaling/index.ts';
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

  app.get('/v1/status', async () => {
    const n = node?.();
    return {
      models: autoscaler?.snapshot() ?? [],
      // stuckRuns: threads stuck in onnxruntime past their timeout, each holding a slot and its memory.
      node: { slots: n?.slots ?? 0, memoryMb: n?.memoryMb ?? 0, memoryUsedMb: n?.memoryUsedMb ?? 0, stuckRuns: n?.stuckRuns ?? [] },
    };
  });

  if (ledger) {
    app.get('/v1/costs', async (req) => {
      const q = req.query as Record<string, string | undefined>;
      const from = parseTime('from', q.from);
      const to = parseTime('to', q.to);
      if (from !== undefined && to !== undefined && from > to) throw hearthError('INVALID_REQUEST', `from: ${q.from} is after to ${q.to}`);
      for (const k of Object.keys(q)) {
        if (!['from', 'to', 'model'].includes(k)) throw hearthError('INVALID_REQUEST', `${k}: unknown query parameter (allowed: from, to, model)`);
      }
      return ledger.report({ from, to, model: q.model || undefined });
    });
  }

  if (metrics) {
    app.get('/metrics', async (_req, reply) => {
      const { contentType, body } = await metrics.scrape();
      reply.type(contentType).send(body);
    });
  }
}

/** An ISO 8601 date or milliseconds since the epoch (the clock's ms). */
function parseTime(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw);
  const t = Date.parse(raw);
  if (!Number.isFinite(t)) throw hearthError('INVALID_REQUEST', `${name}: expected an ISO 8601 date or epoch milliseconds, got "${raw}"`);
  return t;
}
