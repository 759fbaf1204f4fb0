// PathScrubber: the server's folders become placeholders and errno paths are never echoed.
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { PathScrubber } from '../../gateway/scrub-paths.ts';

const data = '/srv/hearth/data';
const cache = '/srv/hearth/data/cache';
const scrubber = new PathScrubber({ [data]: '<data>', [cache]: '<cache>' });

it('replaces the deepest known folder first', () => {
  expect(scrubber.scrub(`cannot read ${cache}/artifacts/ab/model.onnx nor ${data}/store/x`)).toBe(
    'cannot read <cache>/artifacts/ab/model.onnx nor <data>/store/x',
  );
});

it('never echoes the path of an errno message, wherever it points', () => {
  expect(scrubber.scrub('fs store put "k": ENOTDIR: not a directory, mkdir \'/elsewhere/models/blocked/1\'')).toBe(
    'fs store put "k": ENOTDIR: not a directory, mkdir \'<path>\'',
  );
  expect(scrubber.scrub("ENOENT: no such file or directory, rename '/a/b.part' -> '/a/c'")).toBe(
    "ENOENT: no such file or directory, rename '<path>' -> '<path>'",
  );
});

it('removes the path an errno error in the cause chain carries, even when the message lost its quotes', () => {
  const errno = Object.assign(new Error('ENAMETOOLONG: name too long'), {
    code: 'ENAMETOOLONG',
    syscall: 'mkdir',
    path: '/var/stage/d/d/d',
  });
  const wrapped = new Error('upload failed', { cause: errno });
  expect(scrubber.scrub('upload failed at /var/stage/d/d/d', wrapped)).toBe('upload failed at <path>');
});

it('covers the install folder and the temp folder', () => {
  const install = path.resolve(import.meta.dirname, '../..');
  expect(scrubber.scrub(`at ${install}/gateway/app.ts and ${os.tmpdir()}/x`)).toBe('at <install>/gateway/app.ts and <tmp>/x');
});

it('leaves URL paths and ordinary quotes alone', () => {
  const m = "no route for POST /v2/models/x/infer; Content-Type 'application/json'";
  expect(scrubber.scrub(m)).toBe(m);
});
