// The rules a manifest meets before anything trusts it: it names the version it is stored as, its file paths stay
// inside their folder, its hashes are hex digests and its sha256 is the artifact id computed from its files.
// The registry checks every manifest it reads; the artifact cache checks every manifest it is handed.
import { createHash } from 'node:crypto';
import { hearthError, isDatatype, MODEL_FORMATS, type Manifest, type ManifestFile, type TensorSpec } from '../core/index.ts';

const SHA256 = /^[0-9a-f]{64}$/;

/** Upload path bounds: a segment as long as a file name may be (NAME_MAX), a whole path and a folder depth. */
export const MAX_SEGMENT_BYTES = 255;
export const MAX_PATH_BYTES = 1024;
export const MAX_PATH_DEPTH = 32;

/** The artifact id: the file's sha256 for one file, else the sha256 of "path sha256\n" lines sorted by path. */
export function artifactId(files: readonly Pick<ManifestFile, 'path' | 'sha256'>[]): string {
  if (files.length === 1) return files[0].sha256;
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return createHash('sha256')
    .update(sorted.map((f) => `${f.path} ${f.sha256}\n`).join(''))
    .digest('hex');
}

/** Why a file list cannot be trusted, or undefined: unsafe or clashing paths, bad sizes or hashes. */
export function filesProblem(files: unknown): string | undefined {
  if (!Array.isArray(files) || files.length === 0) return 'it lists no files';
  const seen = new Set<string>();
  const folders = new Set<string>();
  for (const f of files as unknown[]) {
    if (!f || typeof f !== 'object') return 'a file entry is not an object';
    const { path: p, sizeBytes, sha256 } = f as Record<string, unknown>;
    if (typeof p !== 'string' || !isSafeRelativePath(p)) return `file path ${show(p)} is not a safe relative path`;
    if (!Number.isSafeInteger(sizeBytes) || (sizeBytes as number) < 0) return `file "${show(p)}" has size ${show(sizeBytes)}`;
    if (typeof sha256 !== 'string' || !SHA256.test(sha256)) return `file "${show(p)}" has sha256 ${show(sha256)}, not a hex digest`;
    if (seen.has(p) || folders.has(p)) return `file path "${show(p)}" is listed twice or is also a folder`;
    seen.add(p);
    const segs = p.split('/');
    for (let i = 1; i < segs.length; i++) {
      const folder = segs.slice(0, i).join('/');
      if (seen.has(folder)) return `file path "${show(p)}" lies inside the file "${show(folder)}"`;
      folders.add(folder);
    }
  }
  return undefined;
}

/**
 * The manifest read from models/{name}/{version}/manifest.json, checked; MODEL_INVALID naming the version as
 * broken otherwise. A manifest that fails is never used, whatever it says.
 */
export function checkManifest(raw: unknown, at: { name: string; version: number }): Manifest {
  const problem = manifestProblem(raw, at);
  if (problem) throw brokenVersion(at, problem);
  return raw as Manifest;
}

/** The error for a version whose manifest cannot be trusted; `problem` completes "its manifest ...". */
export function brokenVersion(at: { name: string; version: number }, problem: string) {
  return hearthError(
    'MODEL_INVALID',
    `model "${at.name}" version ${at.version} is broken: its manifest ${problem}; delete the version and upload it again`,
  );
}

function manifestProblem(raw: unknown, at: { name: string; version: number }): string | undefined {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return 'is not a JSON object';
  const m = raw as Record<string, unknown>;
  if (m.name !== at.name) return `names model ${show(m.name)}`;
  if (m.version !== at.version) return `names version ${show(m.version)}`;
  if (!(MODEL_FORMATS as readonly unknown[]).includes(m.format)) return `has format ${show(m.format)}`;
  const files = filesProblem(m.files);
  if (files) return files;
  const list = m.files as ManifestFile[];
  if (typeof m.sha256 !== 'string' || m.sha256 !== artifactId(list))
    return `has sha256 ${show(m.sha256)}, which is not the id of its files`;
  if (m.sizeBytes !== list.reduce((n, f) => n + f.sizeBytes, 0)) return `has sizeBytes ${show(m.sizeBytes)}, not the sum of its files`;
  if (typeof m.createdAt !== 'string') return 'has no createdAt';
  if (m.layout !== undefined && m.layout !== 'files') return `has layout ${show(m.layout)}`;
  for (const side of ['inputs', 'outputs'] as const) {
    const specs = m[side];
    if (!Array.isArray(specs) || !specs.every(isTensorSpec)) return `has malformed ${side}`;
  }
  return undefined;
}

function isTensorSpec(s: unknown): s is TensorSpec {
  if (!s || typeof s !== 'object') return false;
  const { name, datatype, shape } = s as Record<string, unknown>;
  return typeof name === 'string' && isDatatype(datatype) && Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= -1);
}

/** Relative, "/"-separated, no empty, "." or ".." segment, no backslash or control character. */
function isSafeRelativePath(p: string): boolean {
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (p === '' || p.length > 4096 || p.startsWith('/') || p.includes('\\') || /[\x00-\x1f]/.test(p)) return false;
  return p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

/** A value for an error message: strings shortened, so a hostile manifest cannot make the message huge. */
function show(v: unknown): string {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}
