// Jobs: the caller's batch jobs, live from the event stream: state, a progress bar per job, rows done and failed,
// cancel, and the results (fetched with the key, then saved).
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, authOn, download } from '../api.ts';
import { useLive } from '../live.ts';
import type { JobStatus } from '../types.ts';
import { ErrorNote } from './common.tsx';

export function JobsPage() {
  const live = useLive();
  const [listed, setListed] = useState<JobStatus[] | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  // The stream carries jobs only for keys that may see them; ask once to show why when it does not.
  useEffect(() => {
    api<{ jobs: JobStatus[] }>('/v1/jobs?limit=20').then(
      (r) => setListed(r.jobs),
      (e: ApiError) => setError(e),
    );
  }, []);
  const jobs = live.jobs ?? listed ?? [];
  const act = async (f: () => Promise<unknown>) => {
    try {
      setError(undefined);
      await f();
    } catch (e) {
      setError(e as ApiError);
    }
  };
  return (
    <section aria-labelledby="jobs-h">
      <h1 id="jobs-h">Jobs</h1>
      <p class="muted">
        Batch jobs (newest first), live. Start one with <code>POST /v1/jobs</code>.
      </p>
      {error && <ErrorNote error={error} />}
      <div class="table-wrap">
        <table class="jobs">
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Model</th>
              <th scope="col">State</th>
              <th scope="col">Progress</th>
              <th scope="col">Done</th>
              <th scope="col">Failed</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {jobs.length === 0 && (
              <tr>
                <td colSpan={7} class="muted">
                  No jobs.
                </td>
              </tr>
            )}
            {jobs.map((j) => {
              const p = j.progress;
              const ended = p.doneRows + p.failedRows;
              const running = j.state === 'queued' || j.state === 'running';
              return (
                <tr data-testid={`job-${j.id}`} key={j.id}>
                  <th scope="row">
                    <code>{j.id.slice(0, 12)}</code>
                  </th>
                  <td>
                    {j.model} v{j.version}
                  </td>
                  <td data-testid="job-state">{j.state}</td>
                  <td>
                    <progress
                      data-testid="job-progress"
                      max={Math.max(1, p.totalRows)}
                      value={Math.min(ended, p.totalRows)}
                      aria-label={`job ${j.id} progress`}
                    />
                  </td>
                  <td class="num" data-testid="job-done">
                    {p.doneRows} / {p.totalRows}
                  </td>
                  <td class="num">{p.failedRows}</td>
                  <td>
                    {running && (
                      <button class="secondary" onClick={() => void act(() => api(`/v1/jobs/${j.id}`, { method: 'DELETE' }))}>
                        Cancel
                      </button>
                    )}
                    {j.state === 'completed' &&
                      (authOn ? (
                        <button class="link" onClick={() => void act(() => download(`/v1/jobs/${j.id}/results`, `${j.id}.jsonl`))}>
                          Results
                        </button>
                      ) : (
                        <a href={`/v1/jobs/${j.id}/results`} download={`${j.id}.jsonl`}>
                          Results
                        </a>
                      ))}
                    {j.error && <span class="error">{j.error}</span>}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}
