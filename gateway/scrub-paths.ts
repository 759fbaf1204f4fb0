// Error messages go to clients without the server's absolute paths: the data, cache and install folders become
// placeholders, and the path an errno error names (ENOENT: ..., open '/...') is never echoed. Logs keep them.
import os from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT as INSTALL_DIR } from './package-info.ts';

/** `E...: <text>, <syscall> '<path>'` and `'<path>' -> '<dest>'`, as Node words errno messages. */
const ERRNO_PATH = /(\b[A-Z][A-Z0-9_]+: [^'\n]*?, [a-z_]+ )'[^']*'( -> '[^']*')?/g;

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
    let out = message.replace(ERRNO_PATH, (_m, head: string, dest: string | undefined) => `${head}'<path>'${dest ? " -> '<path>'" : ''}`);
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
