// Client JSON as jobs see it: its nesting depth, measured without recursion (JSON.parse takes any depth, but
// JSON.stringify and recursive decoders overflow the stack a few thousand levels down, so rows are refused past
// MAX_ROW_DEPTH first), and a bounded way to show a client's value back in an error message.

import { MAX_JSON_DEPTH } from '../core/v2-codec.ts';

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
  return String(v).slice(0, SHOWN_CHARS);
}
