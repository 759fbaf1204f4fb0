// Small pieces every page uses.
import type { ApiError } from '../api.ts';

export function ErrorNote({ error }: { error: ApiError | Error }) {
  const code = (error as ApiError).code;
  return (
    <p class="error" role="alert" data-testid="error">
      {code ? <code>{code}</code> : null} {error.message}
    </p>
  );
}

export const fmtNum = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

export const fmtMs = (ms: number) =>
  ms >= 60_000 ? `${+(ms / 60_000).toFixed(1)} min` : ms >= 1000 ? `${+(ms / 1000).toFixed(2)} s` : `${+ms.toFixed(1)} ms`;

export const fmtUsd = (x: number) => (x === 0 ? '$0' : x >= 0.01 ? `$${x.toFixed(2)}` : `$${x.toPrecision(2)}`);
