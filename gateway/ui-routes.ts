// The dashboard's static files: GET / (index.html) and GET /ui/{file} from dist/ui (built by `npm run build`,
// scripts/build-ui.mjs). The folder is listed once at start-up and a request is a lookup in that list, so no path
// can reach outside it. The files hold no data: every figure comes from the API, with the caller's key.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { hearthError } from '../core/index.ts';

export interface UiRoutesOptions {
  /** Where the built files are; default dist/ui next to the compiled gateway (or under the repository's dist/). */
  dir?: string;
  /** AUTH is on: index.html tells the dashboard to ask for a key before its first call. */
  auth: boolean;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
};

/** At most this many files, each at most this large, are served (the build writes a handful of small ones). */
const MAX_FILES = 200;
const MAX_FILE_BYTES = 8 * 1024 * 1024;
/** How often a miss may list the folder again. */
const RELIST_MS = 1000;
/** Built names carry a content hash (main-ABCD1234.js): they never change and may be cached for a year. */
const HASHED = /-[A-Z0-9]{8}\.[a-z]+$/;

const CSP =
  "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** dist/ui, found from this file whether it runs compiled (dist/gateway/) or from the sources (gateway/). */
export function defaultUiDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const up = path.dirname(here);
  return path.basename(up) === 'dist' ? path.join(up, 'ui') : path.join(up, 'dist', 'ui');
}

export async function uiRoutes(app: FastifyInstance, opts: UiRoutesOptions): Promise<void> {
  const dir = opts.dir ?? defaultUiDir();
  let files = listFiles(dir);
  let listedAt = Date.now();
  // A rebuild under a running node writes new names: a missing name lists the folder again, at most once a second.
  const lookup = (name: string) => {
    if (!files.has(name) && Date.now() - listedAt >= RELIST_MS) {
      files = listFiles(dir);
      listedAt = Date.now();
    }
    return files.get(name);
  };

  const send = (name: string, reply: FastifyReply) => {
    const f = lookup(name);
    if (!f)
      throw hearthError(
        'NOT_FOUND',
        files.size ? `no dashboard file ${JSON.stringify(name.slice(0, 100))}` : `the dashboard is not built: run npm run build`,
      );
    reply
      .header('content-type', f.type)
      .header('cache-control', HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', CSP)
      .header('referrer-policy', 'no-referrer');
    const body = fs.readFileSync(f.full);
    // The only thing index.html learns from the server: whether to ask for a key (a 401 would say as much).
    return reply.send(name === 'index.html' ? body.toString('utf8').replace('%AUTH%', opts.auth ? 'on' : 'off') : body);
  };

  app.get('/', async (_req, reply) => send('index.html', reply));
  app.get<{ Params: { '*': string } }>('/ui/*', async (req, reply) => send(req.params['*'], reply));
}

/** The built files by name (flat: the build writes no folders). */
function listFiles(dir: string): Map<string, { full: string; type: string }> {
  const out = new Map<string, { full: string; type: string }>();
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    if (out.size >= MAX_FILES) break;
    const full = path.join(dir, name);
    const type = TYPES[path.extname(name)];
    const st = fs.statSync(full);
    if (!type || !st.isFile() || st.size > MAX_FILE_BYTES) continue;
    out.set(name, { full, type });
  }
  return out;
}
