// Client JSON as jobs see it: its nesting depth, measured without recursion (JSON.parse takes any depth, but
// JSON.stringify and recursive decoders overflow the stack a few thousand levels down, so rows are refused past
// MAX_ROW_DEPTH first), and bounded ways to show a client's value, or a message quoting one, back to the client.

import { MAX_JSON_DEPTH } from '../protocol/index.ts';

/** Deepest nesting of arrays and objects a job row may have: the decoder's own bound (a V2 request needs about ten). */
export const MAX_ROW_DEPTH = MAX_JSON_DEPTH;

/** True when a parsed JSON value nests arrays and objects deeper than `max` (a scalar is depth 0). */
export function valueDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** Longest piece of a client's string shown back in a message. */
const SHOWN_CHARS = 100;

/** A client value for an error message: short, and never a walk of a structure (which could be any depth). */
export function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > SHOWN_CHARS ? `${v.slice(0, SHOWN_CHARS)}...` : v);
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- objects are answered above; `unknown` does not narrow
  return String(v).slice(0, SHOWN_CHARS);
}

/** Longest error message written into a result line (a message quotes a few client values, each cut). */
export const MAX_ROW_ERROR_CHARS = 400;

// A quoted string (escapes included), or a run of more than SHOWN_CHARS without spaces, quotes or commas.
const QUOTED_OR_RUN = /"(?:[^"\\]|\\.)*"|[^\s",]{101,}/g;

/**
 * An error message for a row's result line, whoever wrote it (the decoder, the model checks, the executor): each
 * quoted string and each run without spaces longer than SHOWN_CHARS is cut, and the whole to MAX_ROW_ERROR_CHARS,
 * so a 400-digit number or a megabyte-long name in a row comes back as its first hundred characters.
 */
export function shownMessage(msg: string): string {
  // Only the head can survive the cuts below: never scan more of a message than that.
  const head = msg.length > 16 * MAX_ROW_ERROR_CHARS ? msg.slice(0, 16 * MAX_ROW_ERROR_CHARS) : msg;
  const cut = head.replace(QUOTED_OR_RUN, (v) => {
    if (!v.startsWith('"')) return `${v.slice(0, SHOWN_CHARS)}...`;
    return v.length > SHOWN_CHARS + 2 ? `${v.slice(0, SHOWN_CHARS + 1)}..."` : v;
  });
  return cut.length > MAX_ROW_ERROR_CHARS || head !== msg ? `${cut.slice(0, MAX_ROW_ERROR_CHARS)}...` : cut;
}
