// What the event stream brings, kept in one place for every page: the latest status, the 15-minute history of
// each pool, and the caller's jobs. Pages read it with useLive() and re-render when it changes.
import { useEffect, useState } from 'preact/hooks';
import { openEvents, type StreamState } from './api.ts';
import type { HistoryPoint, JobStatus, StatusBody } from './types.ts';

export interface LiveState {
  stream: StreamState;
  status?: StatusBody;
  history: HistoryPoint[];
  historyStepMs: number;
  jobs?: JobStatus[];
  /** Bumped on every event: pages that fetch on change watch it. */
  version: number;
}

let state: LiveState = { stream: 'connecting', history: [], historyStepMs: 10_000, version: 0 };
const listeners = new Set<(s: LiveState) => void>();
let stop: (() => void) | undefined;

function set(patch: Partial<LiveState>): void {
  state = { ...state, ...patch, version: state.version + 1 };
  for (const f of listeners) f(state);
}

/** Starts (or restarts, after a new key) the stream. */
export function startLive(): void {
  stop?.();
  stop = openEvents(
    (event, data) => {
      if (event === 'status') set({ status: data as StatusBody });
      else if (event === 'history') {
        const h = data as { stepMs: number; points: HistoryPoint[] };
        set({ history: h.points, historyStepMs: h.stepMs });
      } else if (event === 'sample') set({ history: [...state.history, data as HistoryPoint].slice(-90) });
      else if (event === 'jobs') set({ jobs: (data as { jobs: JobStatus[] }).jobs });
    },
    (stream) => set({ stream }),
  );
}

export function stopLive(): void {
  stop?.();
  stop = undefined;
}

export function useLive(): LiveState {
  const [s, setS] = useState(state);
  useEffect(() => {
    listeners.add(setS);
    setS(state);
    return () => {
      listeners.delete(setS);
    };
  }, []);
  return s;
}
