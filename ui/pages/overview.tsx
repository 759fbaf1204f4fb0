// Overview: every model on the node with its pools: instances starting/idle/busy against desired, request rate and
// p50/p99 latency over the last 15 minutes (sparklines from the event stream's history), cold starts, queue, errors.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api.ts';
import { Sparkline } from '../charts.tsx';
import { useLive } from '../live.ts';
import type { HistoryPoint, ModelSummary, PoolStatus } from '../types.ts';
import { ErrorNote, fmtMs, fmtNum } from './common.tsx';

export function useModels(watch: string): { models?: ModelSummary[]; error?: ApiError } {
  const [s, setS] = useState<{ models?: ModelSummary[]; error?: ApiError }>({});
  useEffect(() => {
    api<{ models: ModelSummary[] }>('/v1/models').then(
      (r) => setS({ models: r.models }),
      (e: ApiError) => setS({ error: e }),
    );
  }, [watch]);
  return s;
}

function series(history: HistoryPoint[], name: string, version: number) {
  const xs: number[] = [];
  const rate: (number | null)[] = [];
  const p50: (number | null)[] = [];
  const p99: (number | null)[] = [];
  for (const h of history) {
    const p = h.pools.find((q) => q.name === name && q.version === version);
    xs.push(h.at / 1000);
    rate.push(p ? p.ratePerSec : 0);
    p50.push(p && p.ratePerSec > 0 ? p.p50Ms : null);
    p99.push(p && p.ratePerSec > 0 ? p.p99Ms : null);
  }
  return { xs, rate, p50, p99 };
}

function PoolRow({ p, history }: { p: PoolStatus; history: HistoryPoint[] }) {
  const s = series(history, p.name, p.version);
  const i = p.instances;
  return (
    <tr data-testid={`pool-${p.name}-${p.version}`}>
      <th scope="row">
        <a href={`#/models/${encodeURIComponent(p.name)}`}>{p.name}</a> <span class="muted">v{p.version}</span>
      </th>
      <td data-testid="instances" class="num">
        <span title="starting">{i.starting}</span> / <span title="idle">{i.idle}</span> / <span title="busy">{i.busy}</span>
        <span class="muted"> of {p.desiredInstances}</span>
      </td>
      <td class="num">{fmtNum(p.ratePerSec)}/s</td>
      <td>
        <Sparkline label={`${p.name} requests per second, last 15 minutes`} xs={s.xs} series={[{ label: 'req/s', values: s.rate }]} />
      </td>
      <td class="num">
        {fmtMs(p.latencyMs.p50)} / {fmtMs(p.latencyMs.p99)}
      </td>
      <td>
        <Sparkline
          label={`${p.name} p50 and p99 latency, last 15 minutes`}
          xs={s.xs}
          series={[
            { label: 'p50', values: s.p50 },
            { label: 'p99', values: s.p99 },
          ]}
        />
      </td>
      <td class="num" data-testid="cold-starts">
        {p.coldStarts}
      </td>
      <td class="num" data-testid="queued">
        {p.queued}
      </td>
      <td class="num" data-testid="errors">
        {p.failures}
      </td>
      <td class="num" data-testid="requests">
        {p.requests}
      </td>
    </tr>
  );
}

export function OverviewPage() {
  const live = useLive();
  const pools = live.status?.models ?? [];
  // The model list again when a pool of a model not listed yet shows up (an upload from elsewhere).
  const unknown = pools.map((p) => p.name).join(',');
  const { models, error } = useModels(unknown);
  const withPools = new Set(pools.map((p) => p.name));
  const idleModels = (models ?? []).filter((m) => !withPools.has(m.name));
  const node = live.status?.node;
  return (
    <section aria-labelledby="overview-h">
      <h1 id="overview-h">Overview</h1>
      {node && (
        <p class="node" data-testid="node">
          Node: {node.slots} CPU slots, {node.memoryUsedMb} of {node.memoryMb} MB held by instances
          {node.stuckRuns.length > 0 && <strong> · {node.stuckRuns.length} runs stuck in native code</strong>}
        </p>
      )}
      {error && <ErrorNote error={error} />}
      {live.stream === 'stopped' && (
        <p class="error" role="alert">
          The live event stream was refused: it needs a key with <code>models:read</code> and no model patterns (it shows every model).
          Figures below are not live.
        </p>
      )}
      <div class="table-wrap">
        <table class="pools">
          <caption>Pools on this node (instances starting / idle / busy, of the autoscaler's desired count)</caption>
          {/* Fixed column widths: changing figures never move the sparklines. */}
          <colgroup>
            {[170, 130, 80, 150, 150, 150, 90, 90, 70, 100].map((w) => (
              <col style={{ width: `${w}px` }} />
            ))}
          </colgroup>
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col">Instances</th>
              <th scope="col">Rate</th>
              <th scope="col">15 min</th>
              <th scope="col">p50 / p99</th>
              <th scope="col">15 min</th>
              <th scope="col">Cold starts</th>
              <th scope="col">Queued</th>
              <th scope="col">Errors</th>
              <th scope="col">Requests</th>
            </tr>
          </thead>
          <tbody>
            {pools.map((p) => (
              <PoolRow key={`${p.name}@${p.version}`} p={p} history={live.history} />
            ))}
            {idleModels.map((m) => (
              <tr data-testid={`model-${m.name}`} key={m.name}>
                <th scope="row">
                  <a href={`#/models/${encodeURIComponent(m.name)}`}>{m.name}</a> <span class="muted">v{m.latest}</span>
                </th>
                <td data-testid="instances" class="num">
                  0 / 0 / 0<span class="muted"> of 0</span>
                </td>
                <td colSpan={8} class="muted">
                  no requests on this node yet
                </td>
              </tr>
            ))}
            {models && models.length === 0 && pools.length === 0 && (
              <tr>
                <td colSpan={10}>
                  No models yet. <a href="#/upload">Upload one</a>.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}
