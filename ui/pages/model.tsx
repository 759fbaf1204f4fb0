// Model: versions and manifest, the serving config (edited as JSON, validated by the server, its error shown), the
// keep-alive picture (idle-time histogram with the pre-warm and keep-alive windows), cold against warm requests,
// and a "try it" panel that sends one inference with generated inputs of the manifest's shapes.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api.ts';
import { ColdWarmChart, KeepAliveHistogram } from '../charts.tsx';
import { useLive } from '../live.ts';
import type { KeepAliveView, Manifest, RecentRequest, TensorSpec } from '../types.ts';
import { ErrorNote, fmtMs } from './common.tsx';

/** Chart width: the page's, bounded (fixed once mounted, so figures do not jump). */
function chartWidth(): number {
  return Math.max(280, Math.min(720, document.documentElement.clientWidth - 48));
}

/** A value of each datatype that every model accepts as a shape test (zeros, and a plausible sample rate for a scalar int). */
function sampleValue(dt: string, scalar: boolean, i: number): number | boolean | string {
  if (dt === 'BOOL') return false;
  if (dt === 'BYTES') return 'hello';
  if (dt.startsWith('INT') || dt.startsWith('UINT')) return scalar ? 16000 : 0;
  return Math.round(Math.sin(i / 7) * 1000) / 10000;
}

/** One inference request for the manifest: dynamic dimensions become 1 (the batch) or 512 (a later dynamic one). */
export function generatedRequest(inputs: TensorSpec[]): { inputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[] } {
  return {
    inputs: inputs.map((s) => {
      const shape = s.shape.map((d, i) =>
        d >= 0 ? d : i === 0 ? 1 : s.shape.slice(0, i).some((x) => x < 0) && s.shape.length === 2 ? 512 : 1,
      );
      const n = shape.reduce((a, b) => a * b, 1);
      return {
        name: s.name,
        datatype: s.datatype,
        shape,
        data: Array.from({ length: n }, (_, i) => sampleValue(s.datatype, shape.length === 0, i)),
      };
    }),
  };
}

function TensorTable({ title, specs }: { title: string; specs: TensorSpec[] }) {
  return (
    <table class="specs">
      <caption>{title}</caption>
      <thead>
        <tr>
          <th scope="col">name</th>
          <th scope="col">datatype</th>
          <th scope="col">shape</th>
        </tr>
      </thead>
      <tbody>
        {specs.map((s) => (
          <tr>
            <td>
              <code>{s.name}</code>
            </td>
            <td>{s.datatype}</td>
            <td>
              <code>[{s.shape.join(', ')}]</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ConfigEditor({ name }: { name: string }) {
  const [text, setText] = useState('');
  const [error, setError] = useState<ApiError | undefined>();
  const [note, setNote] = useState('');
  const load = () =>
    api<unknown>(`/v1/models/${encodeURIComponent(name)}/config`).then(
      (c) => setText(JSON.stringify(c, null, 2)),
      (e: ApiError) => setError(e),
    );
  useEffect(() => {
    void load();
  }, [name]);
  const save = async () => {
    setError(undefined);
    setNote('');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      setError(new ApiError(`not JSON: ${(e as Error).message}`, 0, 'CLIENT'));
      return;
    }
    try {
      const saved = await api<unknown>(`/v1/models/${encodeURIComponent(name)}/config`, { method: 'PUT', body });
      setText(JSON.stringify(saved, null, 2));
      setNote('Saved: the server applied it to the running pools.');
    } catch (e) {
      setError(e as ApiError);
    }
  };
  return (
    <section class="card" aria-labelledby="config-h">
      <h2 id="config-h">Serving config</h2>
      <p class="muted">Edit and save: the server validates it and answers the config as this node applies it.</p>
      <label for="config-text" class="sr-only">
        serving config (JSON)
      </label>
      <textarea
        id="config-text"
        data-testid="config"
        rows={14}
        spellcheck={false}
        value={text}
        onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
      />
      <div class="row">
        <button onClick={() => void save()} data-testid="config-save">
          Save config
        </button>
        <button class="secondary" onClick={() => void load()}>
          Reload
        </button>
        <span class="ok" role="status" data-testid="config-note">
          {note}
        </span>
      </div>
      {error && <ErrorNote error={error} />}
    </section>
  );
}

function KeepAlivePanel({ name, watch, width }: { name: string; watch: number; width: number }) {
  const [view, setView] = useState<KeepAliveView | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  useEffect(() => {
    api<KeepAliveView>(`/v1/models/${encodeURIComponent(name)}/keep-alive`).then(setView, (e: ApiError) => setError(e));
  }, [name, watch]);
  return (
    <section class="card" aria-labelledby="ka-h" data-testid="keep-alive">
      <h2 id="ka-h">Keep-alive</h2>
      <p class="muted">
        Idle times between requests (bars). The shaded band is when the pool keeps a warm instance after its last request; before it
        (hatched, the pre-warm window) the pool holds nothing. An idle time inside the band finds a warm instance; outside it, a cold start.
      </p>
      {error && <ErrorNote error={error} />}
      {view && view.pools.length === 0 && <p class="muted">No pool of this model on this node yet: send it a request.</p>}
      {view?.pools.map((p) => (
        <div class="ka" data-testid={`ka-v${p.version}`}>
          <h3>
            v{p.version}: <span data-testid="ka-policy">{p.decision.policy}</span>
          </h3>
          <p data-testid="ka-decision">
            pre-warm at {fmtMs(p.decision.prewarmMs)}, keep warm until {fmtMs(p.decision.warmUntilMs)} · {p.histogram.samples} idle times in
            range, {p.histogram.outOfRange} beyond {fmtMs(p.histogram.rangeMs)}
            {p.decision.cv !== undefined && <> · cv {p.decision.cv}</>}
            {p.decision.reason && <> · {p.decision.reason}</>}
          </p>
          <KeepAliveHistogram
            bins={p.histogram.bins}
            binMs={p.histogram.binMs}
            rangeMs={p.histogram.rangeMs}
            prewarmMs={p.decision.prewarmMs}
            warmUntilMs={p.decision.warmUntilMs}
            idleForMs={p.decision.idleForMs}
            width={width}
          />
        </div>
      ))}
    </section>
  );
}

function ColdWarmPanel({ name, watch, width }: { name: string; watch: number; width: number }) {
  const [reqs, setReqs] = useState<RecentRequest[]>([]);
  useEffect(() => {
    api<{ requests: RecentRequest[] }>(`/v1/models/${encodeURIComponent(name)}/requests`).then(
      (r) => setReqs(r.requests),
      () => {},
    );
  }, [name, watch]);
  const cold = reqs.filter((r) => r.coldStart);
  const warm = reqs.filter((r) => !r.coldStart);
  const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : 0);
  return (
    <section class="card" aria-labelledby="cw-h">
      <h2 id="cw-h">Cold against warm</h2>
      <p data-testid="coldwarm-summary">
        {cold.length} cold (median {fmtMs(median(cold.map((r) => r.totalMs)))}), {warm.length} warm (median{' '}
        {fmtMs(median(warm.map((r) => r.totalMs)))}) of the last {reqs.length} requests
      </p>
      <ColdWarmChart width={width} points={reqs.map((r) => ({ at: r.at, ms: Math.max(0.01, r.totalMs), cold: r.coldStart }))} />
    </section>
  );
}

function TryIt({ name, manifest }: { name: string; manifest: Manifest }) {
  const [text, setText] = useState(() => JSON.stringify(generatedRequest(manifest.inputs)));
  const [result, setResult] = useState<string>('');
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  useEffect(() => setText(JSON.stringify(generatedRequest(manifest.inputs))), [manifest]);
  const send = async () => {
    setBusy(true);
    setError(undefined);
    setResult('');
    const started = performance.now();
    try {
      const r = await api<{ outputs: { name: string; shape: number[]; data: unknown[] }[] }>(
        `/v2/models/${encodeURIComponent(name)}/versions/${manifest.version}/infer`,
        { method: 'POST', body: JSON.parse(text) },
      );
      const ms = performance.now() - started;
      setResult(
        `${Math.round(ms)} ms · ` +
          r.outputs
            .map((o) => `${o.name} [${o.shape.join(', ')}]: ${o.data.slice(0, 4).map(String).join(', ')}${o.data.length > 4 ? ', …' : ''}`)
            .join(' · '),
      );
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError((e as Error).message, 0, 'CLIENT'));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card" aria-labelledby="try-h">
      <h2 id="try-h">Try it</h2>
      <p class="muted">
        One inference of v{manifest.version} with generated inputs of the manifest's shapes (dynamic dimensions filled in); edit before
        sending.
      </p>
      <label for="try-body" class="sr-only">
        request body
      </label>
      <textarea id="try-body" rows={4} spellcheck={false} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
      <div class="row">
        <button onClick={() => void send()} disabled={busy} data-testid="try-send">
          Send one inference
        </button>
        <span role="status" data-testid="try-result" class="result">
          {result}
        </span>
      </div>
      {error && <ErrorNote error={error} />}
    </section>
  );
}

export function ModelPage({ name }: { name: string }) {
  const live = useLive();
  const [info, setInfo] = useState<{ versions: number[]; latest: number } | undefined>();
  const [version, setVersion] = useState<number | undefined>();
  const [manifest, setManifest] = useState<Manifest | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  const [width] = useState(chartWidth);
  useEffect(() => {
    setInfo(undefined);
    setManifest(undefined);
    api<{ versions: number[]; latest: number }>(`/v1/models/${encodeURIComponent(name)}`).then(
      (r) => {
        setInfo(r);
        setVersion(r.latest);
      },
      (e: ApiError) => setError(e),
    );
  }, [name]);
  useEffect(() => {
    if (version === undefined) return;
    api<Manifest>(`/v1/models/${encodeURIComponent(name)}/versions/${version}`).then(setManifest, (e: ApiError) => setError(e));
  }, [name, version]);
  // Refetch the keep-alive and request views when this model's pools change (at most every status, 500 ms apart).
  const mine = live.status?.models.filter((p) => p.name === name) ?? [];
  const watch = mine.reduce(
    (a, p) => a + p.requests + p.failures + p.coldStarts * 1000 + p.instances.idle * 7 + p.instances.starting * 13,
    0,
  );
  return (
    <section aria-labelledby="model-h">
      <h1 id="model-h">
        Model <code>{name}</code>
      </h1>
      {error && <ErrorNote error={error} />}
      {info && (
        <div class="card">
          <h2>Versions</h2>
          <div class="row" role="group" aria-label="versions">
            {info.versions.map((v) => (
              <button
                class={v === version ? '' : 'secondary'}
                aria-pressed={v === version}
                onClick={() => setVersion(v)}
                data-testid={`version-${v}`}
              >
                v{v}
                {v === info.latest ? ' (latest)' : ''}
              </button>
            ))}
          </div>
          {manifest && (
            <div class="manifest" data-testid="manifest">
              <p>
                {manifest.format} · {(manifest.sizeBytes / 1024).toFixed(0)} KiB · uploaded {new Date(manifest.createdAt).toLocaleString()}{' '}
                · sha256 <code>{manifest.sha256.slice(0, 12)}</code>
              </p>
              <div class="two">
                <TensorTable title="Inputs" specs={manifest.inputs} />
                <TensorTable title="Outputs" specs={manifest.outputs} />
              </div>
            </div>
          )}
        </div>
      )}
      {manifest && <TryIt name={name} manifest={manifest} />}
      <ConfigEditor name={name} />
      <KeepAlivePanel name={name} watch={watch} width={width} />
      <ColdWarmPanel name={name} watch={watch} width={width} />
    </section>
  );
}
