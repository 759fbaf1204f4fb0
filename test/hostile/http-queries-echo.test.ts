// Issue 13 follow-ups 1 and 2: the ops routes' query strings (overflowing, out-of-range, repeated or unknown values
// answer 400 INVALID_REQUEST naming the parameter, never a 500 or a silently wrong window), and client values echoed
// in error messages (cut to 200 characters; the whole message to 2048; the path scrubber linear on long messages).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hearthError, loadConfig, SHOWN_CHARS, shown, systemClock } from '../../core/index.ts';
import { buildApp } from '../../gateway/app.ts';
import { PathScrubber, scrubErrnoPaths } from '../../gateway/scrub-paths.ts';
import { expectError, expectIntact, request, sileroRequestBody, startNodeWithVad, type Baseline, type HostileNode } from './rig.ts';

let node: HostileNode;
let base: Baseline;

beforeAll(async () => {
  ({ node, base } = await startNodeWithVad());
});
afterAll(async () => {
  await node?.stop();
});

describe('ops routes refuse queries they cannot read exactly', () => {
  // [query, parameter the message must name]; each answered 200 with a wrong window, or 500, before.
  const cases: [string, string][] = [
    ['from=1e400', 'from'],
    ['to=-99999999999999999999', 'to'],
    ['from=99999999999999999999999', 'from'], // was 500 INTERNAL "Invalid time value"
    ['to=8640000000000001', 'to'],
    ['from=275760-09-14', 'from'],
    ['from=2024-02-30', 'from'], // Date.parse rolled it over to 2024-03-01
    ['to=2024-01-01T23:60:00Z', 'to'],
    ['from=-1', 'from'], // Date.parse read "-1" as 2001-01-01
    ['from=1,2', 'from'],
    ['from=1&from=2', 'from'], // read as the date "1,2": 2001-01-02
    ['model=a&model=b', 'model'],
    ['to=0x10', 'to'],
    ['form=1', 'form'],
  ];
  it.each(cases)('GET /v1/costs?%s -> 400 INVALID_REQUEST naming %s', async (query, param) => {
    const res = await request(node, { path: `/v1/costs?${query}` });
    expectError(res, 400, 'INVALID_REQUEST', node);
    expect(res.json!.error).toMatch(new RegExp(`^${param}: `));
  });

  it('GET /v1/status and /metrics take no query: an unknown parameter -> 400 naming it', async () => {
    for (const p of ['/v1/status?verbose=1', '/metrics?name[]=x']) {
      const res = await request(node, { path: p });
      expectError(res, 400, 'INVALID_REQUEST', node);
      expect(res.json!.error).toMatch(/^(verbose|name\[\]): unknown query parameter/);
    }
  });

  it('well-formed windows still answer, each instant read exactly', async () => {
    for (const [query, from, to] of [
      ['from=2026-01-01&to=2026-01-02T00:00:00Z', '2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z'],
      ['from=2026-01-01T02:00:00%2B02:00&to=1767225600001', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.001Z'],
      ['from=0000-01-01T00:00:00.5Z&to=8640000000000000', '0000-01-01T00:00:00.500Z', '+275760-09-13T00:00:00.000Z'],
    ]) {
      const res = await request(node, { path: `/v1/costs?${query}&model=vad` });
      expect(res.status, res.body.toString()).toBe(200);
      expect([res.json!.from, res.json!.to], query).toEqual([from, to]);
    }
    expect((await request(node, { path: '/v1/status' })).status).toBe(200);
    expect((await request(node, { path: '/metrics' })).status).toBe(200);
    await expectIntact(node, base);
  });
});

describe('client values in error messages are cut', () => {
  const infer = (body: string, headers: Record<string, string> = {}) =>
    request(node, { method: 'POST', path: '/v2/models/vad/infer', headers: { 'content-type': 'application/json', ...headers }, body });

  it('shown() cuts at 200 characters with an ellipsis and never splits a surrogate pair', () => {
    expect(shown('a'.repeat(SHOWN_CHARS))).toBe('a'.repeat(SHOWN_CHARS));
    expect(shown('a'.repeat(5000))).toBe(`${'a'.repeat(SHOWN_CHARS)}…`);
    expect(shown(`${'a'.repeat(SHOWN_CHARS - 1)}😀`)).toBe(`${'a'.repeat(SHOWN_CHARS - 1)}…`);
    expect(shown([1, 2n])).toBe('[1,"2"]');
  });

  it('a 1 MB input name, output name, datatype, query value or key is cut (the input name was echoed whole)', async () => {
    const long = 'x'.repeat(1024 * 1024);
    const good = JSON.parse(sileroRequestBody()) as { inputs: { name: string; datatype: string }[]; outputs: { name: string }[] };
    const badInput = structuredClone(good);
    badInput.inputs[0].name = long;
    const badOutput = structuredClone(good);
    badOutput.outputs[0].name = long;
    const badType = structuredClone(good);
    badType.inputs[0].datatype = long;
    for (const [what, res, code] of [
      ['input name', await infer(JSON.stringify(badInput)), 'INVALID_TENSOR'],
      ['output name', await infer(JSON.stringify(badOutput)), 'INVALID_REQUEST'],
      ['datatype', await infer(JSON.stringify(badType)), 'INVALID_TENSOR'],
      ['from', await request(node, { path: `/v1/costs?from=${'z'.repeat(8000)}` }), 'INVALID_REQUEST'],
      ['query key', await request(node, { path: `/v1/costs?${'k'.repeat(8000)}=1` }), 'INVALID_REQUEST'],
      ['Content-Encoding', await infer('{}', { 'content-encoding': 'y'.repeat(8000) }), 'UNSUPPORTED_MEDIA_TYPE'],
      [
        'Inference-Header-Content-Length',
        await infer('{}', { 'inference-header-content-length': `${'1'.repeat(10)}x${'1'.repeat(8000)}` }),
        'INVALID_REQUEST',
      ],
    ] as const) {
      expect(res.status, what).toBeGreaterThanOrEqual(400);
      expectError(res, res.status, code, node);
      const message = res.json!.error as string;
      expect(message.length, `${what}: ${message.slice(0, 300)}`).toBeLessThan(SHOWN_CHARS + 200);
      expect(message, what).toContain('…');
    }
    await expectIntact(node, base);
  });

  it('the path scrubber is linear: 1 MB messages built to make a backtracking regex quadratic come back scrubbed exactly', () => {
    // The old single regex took 10 s on a 300 KB input name ('EA: x, ab ' repeated) and blocked the node's event loop.
    const scrubber = new PathScrubber({ '/srv/hearth-data': '<data>' });
    const mb = (unit: string) => unit.repeat(Math.ceil((1024 * 1024) / unit.length));
    for (const unit of ['EA: x, ab ', 'AB: , a ', 'E: ', "E: x, open '", "E: x, open 'p' -> '"]) {
      const m = mb(unit);
      expect(scrubber.scrub(m), unit).toBe(m);
    }
    const hits = mb("ENOENT: x, open '/srv/other/f' ");
    expect(scrubber.scrub(hits)).toBe(hits.replaceAll("'/srv/other/f'", "'<path>'"));
    const folder = mb('at /srv/hearth-data/store ');
    expect(scrubber.scrub(folder)).toBe(folder.replaceAll('/srv/hearth-data', '<data>'));
  });

  it('scrubErrnoPaths agrees with the old regex on short messages (its reference)', () => {
    const reference = (m: string) =>
      m.replace(
        /(\b[A-Z][A-Z0-9_]+: [^'\n]*?, [a-z_]+ )'[^']*'( -> '[^']*')?/g,
        (_x, head: string, dest: string | undefined) => `${head}'<path>'${dest ? " -> '<path>'" : ''}`,
      );
    const pieces = ['ENOENT: ', 'EA: ', 'x', ', open ', ', rename ', "'", "'/a/b'", ' -> ', '\n', ' ', 'a,', 'Ab: ', '"q"'];
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed / 0x7fffffff);
    for (let i = 0; i < 5000; i++) {
      let m = '';
      for (let j = 0, n = 1 + Math.floor(rand() * 14); j < n; j++) m += pieces[Math.floor(rand() * pieces.length)];
      expect(scrubErrnoPaths(m), JSON.stringify(m)).toBe(reference(m));
    }
  });

  it('the error handler cuts any message at 2048 characters, after scrubbing it whole', async () => {
    // No route builds such a message from client values any more; the cap holds whatever a later one does.
    const app = await buildApp({ config: loadConfig({ DATA_DIR: node.dataDir }), clock: systemClock });
    app.get('/long', { config: { auth: { public: true } } }, () => {
      throw hearthError('INVALID_REQUEST', `${'m'.repeat(2040)} ${node.dataDir}/store/x ${'q'.repeat(10_000)}`);
    });
    const res = await app.inject('/long');
    await app.close();
    expect(res.statusCode).toBe(400);
    const { error, code } = res.json<{ error: string; code: string }>();
    expect(code).toBe('INVALID_REQUEST');
    expect(error).toBe(`${'m'.repeat(2040)} <data>/…`);
  });
});
