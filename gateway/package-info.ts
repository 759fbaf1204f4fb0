// The installed package's folder and version. Found by walking up from this file, because it runs both from the
// sources (gateway/) and from the build (dist/gateway/).
import fs from 'node:fs';
import path from 'node:path';

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(start, '..');
  }
}

/** The folder holding Hearth's package.json (and node_modules). */
export const PACKAGE_ROOT = findPackageRoot(import.meta.dirname);

/** Hearth's version from package.json, as /v2 metadata reports it. */
export const PACKAGE_VERSION = (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;
