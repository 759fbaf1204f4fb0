// Seeded fuzzing of the upload readers (tar.gz and multipart) through the real route, with a stub inspector:
// random entries with hostile names, then truncated or bit-flipped bodies. Every answer must be a Hearth error
// below 500 or a 201, the process must see no unhandled error, and nothing may be left behind.
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restingLeftovers, settledLeftovers, startTestHearth, type TestHearth } from '../helpers/app.ts';
import { multipartBody, tarBytes, type TarEntry } from '../helpers/model-bodies.ts';

const NAMES = [
  'model.onnx',
  'model.json',
  'manifest.json',
  'config.json',
  '.upload-x',
  'a',
  'a/b',
  'a/b/c',
  'dir/',
  './m',
  '.',
  '',
  '../escape',
  '/abs',
  'x'.repeat(300),
  `${'d/'.repeat(40)}f`,
  'sp ace',
  'é'.repeat(130),
  'c\\d',
  'w.bin',
];

const entry = fc.record({
  name: fc.oneof(fc.constantFrom(...NAMES), fc.string({ maxLength: 20 })),
  kind: fc.constantFrom('file', 'file', 'file', 'directory', 'symlink'),
  data: fc.uint8Array({ maxLength: 3000 }),
});

/** How a generated body is damaged before it is sent. */
const damage = fc.oneof(
  fc.constant({ kind: 'none' as const, at: 0 }),
  fc.record({ kind: fc.constantFrom('truncate' as const, 'flip' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
);

function damaged(body: Buffer, d: { kind: 'none' | 'truncate' | 'flip'; at: number }): Buffer {
  if (d.kind === 'none' || body.length === 0) return body;
  const i = Math.min(body.length - 1, Math.floor(d.at * body.length));
  if (d.kind === 'truncate') return body.subarray(0, i);
  const out = Buffer.from(body);
  out[i] ^= 0x5a;
  return out;
}

describe('upload readers under random and damaged input', () => {
  let h: TestHearth;
  beforeAll(async () => {
    h = await startTestHearth({
      env: { MAX_MODEL_BYTES: String(64 * 1024), MAX_ARCHIVE_FILES: '8' },
      overrides: { inspector: async () => ({ inputs: [], outputs: [] }) },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  const check = async (status: number, body: string) => {
    expect(status === 201 || (status >= 400 && status < 500), `${status} ${body.slice(0, 300)}`).toBe(true);
    const json = JSON.parse(body);
    if (status === 201) {
      expect((await h.app.inject({ method: 'DELETE', url: `/v1/models/fz/versions/${json.version}` })).statusCode).toBe(200);
    } else {
      expect(typeof json.error).toBe('string');
      expect(json.code).toMatch(/^[A-Z_]+$/);
      expect(body).not.toContain(h.dataDir);
    }
  };

  it('tar.gz: 150 seeded cases', async () => {
    const before = await restingLeftovers(h);
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 12 }), damage, fc.boolean(), async (entries, d, damageTar) => {
        const list: TarEntry[] = entries.map((e) =>
          e.kind === 'file'
            ? { name: e.name || 'f', data: Buffer.from(e.data) }
            : e.kind === 'directory'
              ? { name: e.name || 'd', type: 'directory' }
              : { name: e.name || 'l', type: 'symlink', linkname: '/etc/passwd' },
        );
        const tar = await tarBytes(list);
        const body = damageTar ? gzipSync(damaged(tar, d)) : damaged(gzipSync(tar), d);
        const res = await h.app.inject({
          method: 'POST',
          url: '/v1/models/fz',
          headers: { 'content-type': 'application/gzip' },
          payload: body,
        });
        await check(res.statusCode, res.body);
      }),
      { seed: 1313, numRuns: 150 },
    );
    expect(await settledLeftovers(h, before)).toEqual(before);
  });

  it('multipart: 150 seeded cases', async () => {
    const before = await restingLeftovers(h);
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 12 }), damage, async (entries, d) => {
        const mp = multipartBody(entries.map((e) => ({ filename: e.name.replace(/["\r\n]/g, '_'), data: Buffer.from(e.data) })));
        const res = await h.app.inject({
          method: 'POST',
          url: '/v1/models/fz',
          headers: { 'content-type': mp.contentType },
          payload: damaged(mp.body, d),
        });
        await check(res.statusCode, res.body);
      }),
      { seed: 2626, numRuns: 150 },
    );
    expect(await settledLeftovers(h, before)).toEqual(before);
  });
});
