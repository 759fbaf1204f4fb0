// The dashboard: a hash-routed Preact app served by Hearth at /. Pages: overview, model, costs, jobs, upload.
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { authOn, getKey, onKeyChange, setKey } from './api.ts';
import { startLive, stopLive, useLive } from './live.ts';
import { OverviewPage } from './pages/overview.tsx';
import { ModelPage } from './pages/model.tsx';
import { CostsPage } from './pages/costs.tsx';
import { JobsPage } from './pages/jobs.tsx';
import { UploadPage } from './pages/upload.tsx';

function useRoute(): string[] {
  const parse = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const f = () => setRoute(parse());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return route;
}

/** AUTH on and no key in this tab: ask for one. It lives in sessionStorage only (gone when the tab closes). */
function KeyPrompt() {
  const [value, setValue] = useState('');
  return (
    <form
      class="card key-prompt"
      onSubmit={(e) => {
        e.preventDefault();
        if (value.trim()) setKey(value.trim());
      }}
    >
      <h1>Hearth</h1>
      <p>
        This node has API keys turned on. Enter a key with the <code>models:read</code> scope (and <code>jobs</code>,{' '}
        <code>models:write</code>, <code>infer</code> for those pages). It is kept for this tab only.
      </p>
      <label for="api-key">API key</label>
      <input
        id="api-key"
        type="password"
        autocomplete="off"
        spellcheck={false}
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        placeholder="hk_…"
      />
      <button type="submit">Use this key</button>
    </form>
  );
}

function App() {
  const [key, setK] = useState(getKey());
  const route = useRoute();
  const live = useLive();
  useEffect(() => onKeyChange(() => setK(getKey())), []);
  const needKey = authOn && !key;
  useEffect(() => {
    if (needKey) stopLive();
    else startLive();
  }, [needKey, key]);
  if (needKey) return <main class="page">{<KeyPrompt />}</main>;
  const [page, arg] = route;
  const nav = [
    ['', 'Overview'],
    ['costs', 'Costs'],
    ['jobs', 'Jobs'],
    ['upload', 'Upload'],
  ];
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          Hearth
        </a>
        <nav aria-label="pages">
          {nav.map(([p, label]) => (
            <a href={`#/${p}`} aria-current={(page ?? '') === p || (p === '' && page === 'models') ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span class={`stream stream-${live.stream}`} data-testid="stream" title="the live event stream">
          {live.stream === 'open' ? 'live' : live.stream}
        </span>
        {authOn && (
          <button class="link" onClick={() => setKey(null)}>
            Forget key
          </button>
        )}
      </header>
      <main class="page">
        {page === 'models' && arg ? (
          <ModelPage name={arg} />
        ) : page === 'costs' ? (
          <CostsPage />
        ) : page === 'jobs' ? (
          <JobsPage />
        ) : page === 'upload' ? (
          <UploadPage />
        ) : (
          <OverviewPage />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
