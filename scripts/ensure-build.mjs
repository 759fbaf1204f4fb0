// Builds dist/ when it is missing or older than the sources it comes from (`npm start` and the test set-up run
// this, so `npm ci && npm start` works on a fresh clone); `--force` builds regardless (`npm run build`). Plain JavaScript: it runs before anything is compiled.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildUi } from './build-ui.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = [
  'main.ts',
  'core',
  'protocol',
  'model-store',
  'functions',
  'executor',
  'scaling',
  'ledger',
  'jobs',
  'gateway',
  'ui',
  'scripts/build-ui.mjs',
  'client',
  'cli',
  'tsconfig.json',
  'tsconfig.build.json',
  'package.json',
];
const STAMP = path.join(root, 'dist', '.built');

function newestMtime(p) {
  let st;
  try {
    st = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs; // a deleted or renamed file changes its folder's mtime
  for (const name of fs.readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, name)));
  return newest;
}

export function isStale() {
  let built;
  try {
    built = fs.statSync(STAMP).mtimeMs;
  } catch {
    return true;
  }
  return SOURCES.some((s) => newestMtime(path.join(root, s)) > built);
}

export async function ensureBuild({ quiet = false, force = false } = {}) {
  if (!force && !isStale()) return false;
  if (!quiet) console.error('hearth: building dist/ (npm run build)');
  const started = Date.now();
  // A clean output: files of removed or renamed sources must not linger in dist/.
  fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], {
    cwd: root,
    stdio: quiet ? 'pipe' : 'inherit',
    encoding: 'utf8',
  });
  if (!fs.existsSync(path.join(root, 'dist', 'main.js'))) {
    throw new Error(`the build wrote no dist/main.js (tsc exit ${r.status})\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  }
  // The dashboard (ui/): bundled by esbuild into dist/ui.
  await buildUi(root);
  fs.writeFileSync(STAMP, `${new Date().toISOString()}\n`);
  if (!quiet) console.error(`hearth: built in ${Date.now() - started} ms`);
  return true;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  ensureBuild({ quiet: process.argv.includes('--quiet'), force: process.argv.includes('--force') }).catch((e) => {
    console.error(`hearth: ${e.message}`);
    process.exit(1);
  });
}
