// Error messages go to clients without the server's absolute paths: the data, cache and install folders become
// placeholders, and the path an errno error names (ENOENT: ..., open '/...') is never echoed. Logs keep them.
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT as INSTALL_DIR } from './package-info.ts';

/**
 * `E...: <text>, <syscall> '<path>'` and `'<path>' -> '<dest>'`, as Node words errno messages. Found in two linear
 * steps, the quoted path first, then its `CODE: ` looked for only back to the previous quote or line: one regex
 * with a lazy middle (`CODE: [^'\n]*?, syscall '`) backtracked over the whole line from every `CODE: `, quadratic
 * in a message echoing a client's value (300 KB took 10 s).
 */
const SYSCALL_PATH = /, [a-z_]+ '[^']*'(?: -> '[^']*')?/g;
const ERRNO_CODE = /\b[A-Z][A-Z0-9_]+: /;

export class PathScrubber {
  readonly #roots: { dir: string; label: string }[];

  /** `roots`: folders and their placeholders; the install folder and the temp folder are always added. */
  constructor(roots: Record<string, string>) {
    const all: Record<string, string> = { [os.tmpdir()]: '<tmp>', [INSTALL_DIR]: '<install>', ...roots };
    this.#roots = Object.entries(all)
      .filter(([dir]) => path.isAbsolute(dir) && dir !== path.parse(dir).root)
      .map(([dir, label]) => ({ dir: path.resolve(dir), label }))
      // The deepest folder first: the cache folder usually sits inside the data folder.
      .sort((a, b) => b.dir.length - a.dir.length);
  }

  /** `message` with errno paths replaced by '<path>' and every known folder by its placeholder. */
  scrub(message: string, cause?: unknown): string {
    let out = scrubErrnoPaths(message);
    // Paths an errno error carries in its fields, wherever the message quoted them.
    for (let e = cause, depth = 0; e && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
      for (const field of ['path', 'dest'] as const) {
        const p = (e as Record<string, unknown>)[field];
        if (typeof p === 'string' && path.isAbsolute(p) && p.length > 1) out = out.split(p).join('<path>');
      }
    }
    for (const { dir, label } of this.#roots) {
      if (out.includes(dir)) out = out.split(dir).join(label);
    }
    return out;
  }
}

/** `message` with the path (and destination) of every errno-style `CODE: text, syscall '<path>'` replaced. */
export function scrubErrnoPaths(message: string): string {
  const parts: string[] = [];
  let done = 0;
  let prevEnd = 0;
  SYSCALL_PATH.lastIndex = 0;
  for (let m = SYSCALL_PATH.exec(message); m !== null; m = SYSCALL_PATH.exec(message)) {
    const at = m.index;
    // The text an errno code may sit in: back to the previous quote or line break (a code before them is not this
    // path's), never before the previous match. Each stretch is scanned once.
    let from = at;
    while (from > prevEnd && message.charCodeAt(from - 1) !== 0x27 && message.charCodeAt(from - 1) !== 0x0a) from--;
    prevEnd = at + m[0].length;
    if (!ERRNO_CODE.test(message.slice(from, at))) continue;
    const syscall = m[0].slice(0, m[0].indexOf("'"));
    parts.push(message.slice(done, at), `${syscall}'<path>'${m[0].includes("' -> '") ? " -> '<path>'" : ''}`);
    done = prevEnd;
  }
  if (done === 0) return message;
  parts.push(message.slice(done));
  return parts.join('');
}
