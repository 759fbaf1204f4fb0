// Manifest checks (what the registry applies to every manifest it reads) and upload path bounds, as pure functions.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../core/index.ts';
import { artifactId, checkManifest, filesProblem } from '../../model-store/manifest-check.ts';
import { checkUploadPath } from '../../model-store/upload.ts';

const hex = (s: string) => createHash('sha256').update(s).digest('hex');

function good(fields: Partial<Manifest> = {}): Manifest {
  const files = [
    { path: 'model.json', sizeBytes: 10, sha256: hex('json') },
    { path: 'w/group1-shard1of1.bin', sizeBytes: 20, sha256: hex('weights') },
  ];
  return {
    name: 'm',
    version: 3,
    format: 'tfjs-layers',
    files,
    sha256: artifactId(files),
    sizeBytes: 30,
    createdAt: '2026-01-01T00:00:00.000Z',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
    outputs: [{ name: 'y', datatype: 'FP32', shape: [-1] }],
    layout: 'files',
    ...fields,
  };
}

describe('artifactId', () => {
  it('is the file hash for one file and the hash of sorted "path sha256" lines for several', () => {
    expect(artifactId([{ path: 'model.onnx', sha256: hex('a') }])).toBe(hex('a'));
    const lines = `a.bin ${hex('1')}\nb.bin ${hex('2')}\n`;
    expect(
      artifactId([
        { path: 'b.bin', sha256: hex('2') },
        { path: 'a.bin', sha256: hex('1') },
      ]),
    ).toBe(hex(lines));
  });
});

describe('checkManifest', () => {
  const at = { name: 'm', version: 3 };

  it('accepts a well-formed manifest of its own version, with or without the files/ layout', () => {
    expect(checkManifest(good(), at)).toEqual(good());
    const { layout: _l, ...old } = good();
    expect(checkManifest(old, at)).toEqual(old);
  });

  const broken: [string, unknown, RegExp][] = [
    ['not an object', 'text', /not a JSON object/],
    ['another model', good({ name: 'vad' }), /names model vad/],
    ['another version', good({ version: 1 }), /names version 1/],
    ['a sha256 claiming another artifact', good({ sha256: hex('someone else') }), /not the id of its files/],
    [
      'a file hash that is not hex',
      good({ files: [{ path: 'model.onnx', sizeBytes: 1, sha256: 'x' }], sha256: 'x', sizeBytes: 1 }),
      /not a hex digest/,
    ],
    [
      'a ".." path',
      good({ files: [{ path: '../victim/model.onnx', sizeBytes: 1, sha256: hex('a') }], sha256: hex('a'), sizeBytes: 1 }),
      /safe relative path/,
    ],
    [
      'an absolute path',
      good({ files: [{ path: '/etc/passwd', sizeBytes: 1, sha256: hex('a') }], sha256: hex('a'), sizeBytes: 1 }),
      /safe relative path/,
    ],
    [
      'an empty segment',
      good({ files: [{ path: 'a//b', sizeBytes: 1, sha256: hex('a') }], sha256: hex('a'), sizeBytes: 1 }),
      /safe relative path/,
    ],
    [
      'a negative size',
      good({ files: [{ path: 'model.onnx', sizeBytes: -1, sha256: hex('a') }], sha256: hex('a'), sizeBytes: -1 }),
      /has size -1/,
    ],
    ['a sizeBytes that is not the sum', good({ sizeBytes: 31 }), /sizeBytes 31/],
    ['no files', good({ files: [] }), /no files/],
    ['an unknown format', good({ format: 'pickle' as never }), /format pickle/],
    ['an unknown layout', good({ layout: '../x' as never }), /layout/],
    ['malformed inputs', good({ inputs: [{ name: 'x', datatype: 'FP99', shape: [1] }] as never }), /malformed inputs/],
  ];
  for (const [what, raw, message] of broken) {
    it(`treats ${what} as a broken version (MODEL_INVALID)`, () => {
      let err: unknown;
      try {
        checkManifest(raw, at);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'MODEL_INVALID' });
      expect((err as Error).message).toMatch(/model "m" version 3 is broken/);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('refuses a path listed twice and a file inside another file', () => {
    const f = (p: string) => ({ path: p, sizeBytes: 1, sha256: hex(p) });
    expect(filesProblem([f('a'), f('a')])).toMatch(/twice/);
    expect(filesProblem([f('a'), f('a/b')])).toMatch(/inside the file/);
    expect(filesProblem([f('a/b'), f('a')])).toMatch(/also a folder/);
    expect(filesProblem([f('a/b'), f('a/c')])).toBeUndefined();
  });

  it('keeps a hostile value out of the message at full length', () => {
    expect(() => checkManifest(good({ name: 'n'.repeat(10_000) }), at)).toThrow(/n{80}…/);
  });
});

describe('checkUploadPath', () => {
  it('normalises "./" and "." segments and keeps plain relative paths', () => {
    expect(checkUploadPath('./model.json', 'UNSAFE_ARCHIVE')).toBe('model.json');
    expect(checkUploadPath('a/./b//c.bin', 'UNSAFE_ARCHIVE')).toBe('a/b/c.bin');
    expect(checkUploadPath(`${'d/'.repeat(31)}f`, 'UNSAFE_ARCHIVE')).toBe(`${'d/'.repeat(31)}f`);
    expect(checkUploadPath(`${`${'n'.repeat(99)}/`.repeat(10)}${'n'.repeat(24)}`, 'UNSAFE_ARCHIVE')).toHaveLength(1024);
    expect(checkUploadPath('é'.repeat(127), 'INVALID_REQUEST')).toBe('é'.repeat(127)); // 254 bytes
  });

  const refused: [string, string, RegExp][] = [
    ['an absolute path', '/etc/passwd', /absolute/],
    ['a Windows drive', 'C:\\x', /absolute/],
    ['a control character', 'a\nb', /control/],
    ['".."', 'a/../../b', /climbs/],
    ['33 levels', `${'d/'.repeat(32)}f`, /33 levels deep; at most 32/],
    ['a 256-byte name', 'x'.repeat(256), /256 bytes; at most 255/],
    ['a 128-character name of 2-byte characters', 'é'.repeat(128), /256 bytes; at most 255/],
    ['a 1025-byte path', `${`${'n'.repeat(99)}/`.repeat(10)}${'n'.repeat(25)}`, /1025 bytes long; at most 1024/],
    ['an empty name', '', /no name/],
  ];
  for (const [what, raw, message] of refused) {
    it(`refuses ${what} with the given code`, () => {
      expect(() => checkUploadPath(raw, 'UNSAFE_ARCHIVE')).toThrow(message);
      expect(() => checkUploadPath(raw, 'INVALID_REQUEST')).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
    });
  }
});
