// What the CLI prints: aligned tables, sizes and durations, colour only when stdout is a terminal (and NO_COLOR is
// unset), and the one-line error form `hearth: CODE: message`.
import { isHearthError } from '../client/index.ts';

const useColour = (stream: NodeJS.WriteStream) => Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== 'dumb';

function paint(code: number, stream: NodeJS.WriteStream = process.stdout) {
  return (s: string) => (useColour(stream) ? `\x1b[${code}m${s}\x1b[0m` : s);
}
export const green = paint(32);
export const yellow = paint(33);
export const red = paint(31);
export const dim = paint(2);
export const bold = paint(1);
export const redErr = paint(31, process.stderr);

/** Visible width of a string (colour escapes do not count). */
function width(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/** An aligned table; numbers-looking columns are right-aligned. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => width(r[i] ?? ''))));
  const numeric = headers.map((_, i) => cells.length > 0 && cells.every((r) => /^[-+]?[\d.,]+( ?[a-zA-Z%$]+)?$|^-$/.test(r[i] ?? '')));
  const line = (r: string[]) =>
    r
      .map((c, i) => {
        const pad = ' '.repeat(Math.max(0, widths[i] - width(c)));
        return numeric[i] ? pad + c : c + pad;
      })
      .join('  ')
      .trimEnd();
  return [bold(line(headers)), ...cells.map(line)].join('\n');
}

export function fmtBytes(n: number): string {
  if (!Number.isFinite(n)) return '-';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(ms < 100 ? 1 : 0)} ms`;
}

export function fmtUsd(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return `$${v < 0.01 && v !== 0 ? v.toExponential(2) : v.toFixed(4)}`;
}

export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2)}\n`);
}

/** A usage mistake: exit code 2. */
export class UsageError extends Error {}

/** The one line an error prints as, with the server's code when there is one. */
export function errorLine(e: unknown): string {
  if (isHearthError(e)) return `${e.code}: ${e.message.replace(/\s*\n\s*/g, ' ')}${e.status ? ` (HTTP ${e.status})` : ''}`;
  return (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ');
}
