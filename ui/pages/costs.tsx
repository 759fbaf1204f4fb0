// Costs: compute, requests, idle and storage per model version over a chosen range, as stacked bars and a table,
// with the always-on comparison (the same traffic on provisioned instances) and what scaling to zero saved.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api.ts';
import { StackedBars } from '../charts.tsx';
import { useLive } from '../live.ts';
import type { CostReport } from '../types.ts';
import { ErrorNote, fmtUsd } from './common.tsx';

const RANGES: [string, number][] = [
  ['last hour', 3_600_000],
  ['last 24 hours', 86_400_000],
  ['last 7 days', 7 * 86_400_000],
  ['last 30 days', 30 * 86_400_000],
];

export function CostsPage() {
  const live = useLive();
  const [range, setRange] = useState(1);
  const [report, setReport] = useState<CostReport | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  const [width] = useState(() => Math.max(300, Math.min(900, document.documentElement.clientWidth - 48)));
  // Refreshed every 5 s at most while the page is open (a status arrives every 500 ms or 5 s).
  const tick = Math.floor((live.status?.at ?? 0) / 5000);
  useEffect(() => {
    const from = new Date(Date.now() - RANGES[range][1]).toISOString();
    api<CostReport>(`/v1/costs?from=${encodeURIComponent(from)}`).then(
      (r) => {
        setReport(r);
        setError(undefined);
      },
      (e: ApiError) => setError(e),
    );
  }, [range, tick]);
  const rows = (report?.models ?? []).map((m) => ({
    label: `${m.name} v${m.version}`,
    parts: [
      { label: 'compute', value: m.computeCost },
      { label: 'requests', value: m.requestCost },
      { label: 'idle', value: m.idleCost },
      { label: 'storage', value: m.storageCost },
    ],
    marker: m.alwaysOn.cost,
  }));
  const saved = (report?.models ?? []).reduce((a, m) => a + m.alwaysOn.savings, 0);
  return (
    <section aria-labelledby="costs-h">
      <h1 id="costs-h">Costs</h1>
      <div class="row">
        <label for="range">Range</label>
        <select id="range" value={range} onChange={(e) => setRange(Number((e.target as HTMLSelectElement).value))}>
          {RANGES.map(([label], i) => (
            <option value={i}>{label}</option>
          ))}
        </select>
        {report && (
          <span data-testid="costs-total">
            total {fmtUsd(report.total.totalCost)} · scale-to-zero saved <strong>{fmtUsd(saved)}</strong> against always-on
          </span>
        )}
      </div>
      {error && <ErrorNote error={error} />}
      {report && rows.length === 0 && <p class="muted">No costs recorded in this range.</p>}
      {rows.length > 0 && (
        <div class="card">
          <StackedBars rows={rows} width={width} />
        </div>
      )}
      {report && rows.length > 0 && (
        <div class="table-wrap">
          <table data-testid="costs-table">
            <caption>
              Per model version, in {report.currency}; always-on prices the same traffic on instances kept warm the whole range
            </caption>
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Requests</th>
                <th scope="col">Cold starts</th>
                <th scope="col">Compute</th>
                <th scope="col">Requests</th>
                <th scope="col">Idle</th>
                <th scope="col">Storage</th>
                <th scope="col">Total</th>
                <th scope="col">Always-on</th>
                <th scope="col">Saved</th>
              </tr>
            </thead>
            <tbody>
              {report.models.map((m) => (
                <tr>
                  <th scope="row">
                    {m.name} v{m.version}
                  </th>
                  <td class="num">{m.invocations}</td>
                  <td class="num">{m.coldStarts}</td>
                  <td class="num">{fmtUsd(m.computeCost)}</td>
                  <td class="num">{fmtUsd(m.requestCost)}</td>
                  <td class="num">{fmtUsd(m.idleCost)}</td>
                  <td class="num">{fmtUsd(m.storageCost)}</td>
                  <td class="num">{fmtUsd(m.totalCost)}</td>
                  <td class="num">{fmtUsd(m.alwaysOn.cost)}</td>
                  <td class="num">{fmtUsd(m.alwaysOn.savings)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
