// hearth/client/node: Node-only helpers beside the SDK: a model file, archive or folder on disk as an upload
// source (streamed, never read whole), a dataset file as a body, and the artifact id (sha256) Hearth will compute
// for a model on disk, so a deploy can tell whether it changed.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { BodySource, UploadFile } from './bodies.ts';
import { HearthError } from './errors.ts';
import type { ModelSource } from './hearth-client.ts';

/** A file on disk as a Web stream (read as fetch pulls it). */
export function fileStream(file: string): ReadableStream<Uint8Array> {
  return Readable.toWeb(fs.createReadStream(file)) as ReadableStream<Uint8Array>;
}

/** The files of a folder, recursively, with paths relative to it ('/'-separated), sorted. */
async function folderFiles(dir: string): Promise<{ rel: string; abs: string; size: number }[]> {
  const out: { rel: string; abs: string; size: number }[] = [];
  const walk = async (d: string, prefix: string) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const abs = path.join(d, e.name);
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(abs, rel);
      else if (e.isFile()) out.push({ rel, abs, size: (await fsp.stat(abs)).size });
    }
  };
  await walk(dir, '');
  return out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

function isArchive(p: string): boolean {
  return /\.(tar\.gz|tgz)$/i.test(p);
}

/** A model on disk as an upload source: a folder (TF.js: model.json and shards), a .tar.gz/.tgz archive, or one ONNX file. */
export async function modelSource(p: string): Promise<Exclude<ModelSource, BodySource>> {
  const st = await fsp.stat(p).catch(() => undefined);
  if (!st) throw new HearthError(0, 'INVALID_INPUT', `${p}: no such file or folder`);
  if (st.isDirectory()) {
    const files = await folderFiles(p);
    if (files.length === 0) throw new HearthError(0, 'INVALID_INPUT', `${p}: the folder holds no files`);
    const list: UploadFile[] = files.map((f) => ({ path: f.rel, data: fileStream(f.abs), size: f.size }));
    return { kind: 'files', files: list };
  }
  return { kind: isArchive(p) ? 'tar.gz' : 'onnx', data: fileStream(p), size: st.size };
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * The artifact id Hearth gives a model on disk (its manifest's sha256): the file's sha256 for one file, else the
 * sha256 of "path sha256\n" lines sorted by path. Undefined for an archive (its files are known only unpacked).
 */
export async function localArtifactId(p: string): Promise<string | undefined> {
  const st = await fsp.stat(p);
  if (!st.isDirectory()) return isArchive(p) ? undefined : sha256File(p);
  const files = await folderFiles(p);
  if (files.length === 1) return sha256File(files[0].abs);
  const lines: string[] = [];
  for (const f of files) lines.push(`${f.rel} ${await sha256File(f.abs)}\n`);
  return createHash('sha256').update(lines.join('')).digest('hex');
}

/** A dataset file (JSON Lines) on disk as a streamed body with its size. */
export async function datasetFile(file: string): Promise<{ data: ReadableStream<Uint8Array>; size: number }> {
  const st = await fsp.stat(file).catch(() => undefined);
  if (!st?.isFile()) throw new HearthError(0, 'INVALID_INPUT', `${file}: no such file`);
  return { data: fileStream(file), size: st.size };
}
