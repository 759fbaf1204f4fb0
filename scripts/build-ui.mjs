// Bundles the dashboard (ui/, Preact + uPlot) into dist/ui with esbuild: one script and one stylesheet whose names
// carry a content hash (served as immutable), and index.html naming them (served no-cache). Called by
// ensure-build.mjs after tsc. Plain JavaScript: it runs before anything is compiled.
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

export async function buildUi(root) {
  const outdir = path.join(root, 'dist', 'ui');
  fs.rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['ui/main.tsx'],
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir,
    entryNames: '[name]-[hash]',
    metafile: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => path.basename(p));
  const js = outputs.find((f) => f.endsWith('.js'));
  const css = outputs.find((f) => f.endsWith('.css'));
  if (!js || !css) throw new Error(`the dashboard build wrote no script or no stylesheet: ${outputs.join(', ')}`);
  const html = fs
    .readFileSync(path.join(root, 'ui', 'index.html'), 'utf8')
    .replace('%CSS%', `/ui/${css}`)
    .replace('%JS%', `/ui/${js}`);
  fs.writeFileSync(path.join(outdir, 'index.html'), html);
  return outputs.length + 1;
}
