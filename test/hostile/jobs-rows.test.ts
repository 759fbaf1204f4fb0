// Hostile job rows (issue 13, item 7): inline rows nested deep, too many or too large are refused with 400
// INVALID_REQUEST naming the bound before anything is queued; a dataset line nested deep fails only its own row;
// client values quoted in a row's error line are cut to about 100 characters;
// hostile job ids and cursors get 400 or 404, never a 500 or a Redis error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseline, expectError, expectIntact, request, storeKeys, uploadSilero, type HostileNode } from './rig.ts';
import { finished, postJob, sileroRow, startJobsNode, startTestRedis, type TestRedis } from './jobs-node.ts';

const DEPTH = 100_000;

let redis: TestRedis;
let node: HostileNode;

beforeAll(async () => {
  redis = await startTestRedis();
  node = await startJobsNode(redis, {
    MAX_REQUEST_BYTES: String(1024 * 1024),
    MAX_LINE_BYTES: String(512 * 1024),
    MAX_INLINE_ROWS: '1000',
    MAX_JOB_CHUNKS: '50',
  });
  await uploadSilero(node);
});

afterAll(async () => {
  await node?.stop();
  await redis?.close();
});

/** Jobs the node lists, and store keys of job inputs and results: both must stay empty after a refusal. */
async function nothingQueued(): Promise<void> {
  const list = await request(node, { path: '/v1/jobs?limit=1000' });
  expect(list.status).toBe(200);
  expect(list.json!.jobs).toEqual([]);
  expect(storeKeys(node).filter((k) => k.startsWith('jobs/'))).toEqual([]);
}

const deepArray = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

describe('inline rows', () => {
  it('a row nested 100k deep is refused with 400 naming the depth bound, not a 500 from JSON.stringify', async () => {
    const base = await baseline(node);
    const res = await postJob(node, `{"model":"vad","rows":[${deepArray(DEPTH)}]}`);
    expectError(res, 400, 'INVALID_REQUEST', node);
    expect(res.json!.error).toMatch(/"rows\[0\]": nested deeper than 64 levels/);
    // Deep inside an otherwise ordinary request.
    const row = JSON.stringify(sileroRow()).replace('"data":[16000]', `"data":[16000],"parameters":{"x":${deepArray(DEPTH)}}`);
    const inner = await postJob(node, `{"model":"vad","rows":[${JSON.stringify(sileroRow())},${row}]}`);
    expectError(inner, 400, 'INVALID_REQUEST', node);
    expect(inner.json!.error).toMatch(/"rows\[1\]": nested deeper than 64 levels/);
    // The other fields are shown back in their messages: never by walking what the client sent.
    for (const field of ['version', 'chunkSize', 'priority', 'callbackUrl', 'input', 'model']) {
      const res = await postJob(
        node,
        `{"model":"vad","rows":[{}],"${field}":${deepArray(DEPTH)}}`.replace('"model":"vad","rows":[{}],"input"', '"model":"vad","input"'),
      );
      expectError(res, 400, 'INVALID_REQUEST', node);
      expect(res.json!.error, field).toMatch(new RegExp(`^"${field}": `));
    }
    await nothingQueued();
    await expectIntact(node, base);
  });

  it('more rows than MAX_INLINE_ROWS, a row past MAX_LINE_BYTES and rows past MAX_REQUEST_BYTES in all are refused with 400', async () => {
    const base = await baseline(node);
    const many = await postJob(node, { model: 'vad', rows: Array.from({ length: 1001 }, () => ({})) });
    expectError(many, 400, 'INVALID_REQUEST', node);
    expect(many.json!.error).toMatch(/"rows": 1001 rows; at most 1000 \(MAX_INLINE_ROWS\)/);
    const long = await postJob(node, { model: 'vad', rows: [sileroRow(), { ...sileroRow(), id: 'x'.repeat(600 * 1024) }] });
    expectError(long, 400, 'INVALID_REQUEST', node);
    expect(long.json!.error).toMatch(/"rows\[1\]": .* longer than MAX_LINE_BYTES \(524288 bytes\)/);
    // 250 KB of JSON whose rows take 1.1 MB once written out (9e20 is written 900000000000000000000).
    const numbers = `[${new Array(10_000).fill('9e20').join(',')}]`;
    const body = `{"model":"vad","rows":[${new Array(5).fill(numbers).join(',')}]}`;
    expect(body.length).toBeLessThan(1024 * 1024);
    const grown = await postJob(node, body);
    expectError(grown, 400, 'INVALID_REQUEST', node);
    expect(grown.json!.error).toMatch(/"rows": .* more than MAX_REQUEST_BYTES \(1048576 bytes\)/);
    await nothingQueued();
    await expectIntact(node, base);
  });

  it('a job of more chunks than MAX_JOB_CHUNKS is refused with 400, inline or from a dataset, leaving no input behind', async () => {
    const base = await baseline(node);
    const inline = await postJob(node, { model: 'vad', rows: Array.from({ length: 51 }, () => ({})), chunkSize: 1 });
    expectError(inline, 400, 'INVALID_REQUEST', node);
    expect(inline.json!.error).toMatch(/make 51 chunks; at most 50 \(MAX_JOB_CHUNKS\)/);
    const put = await request(node, { method: 'PUT', path: '/v1/datasets/tiny-rows', body: '{}\n'.repeat(200) });
    expect(put.status, put.body.toString()).toBe(201);
    const fromDataset = await postJob(node, { model: 'vad', input: 'datasets/tiny-rows.jsonl', chunkSize: 3 });
    expectError(fromDataset, 400, 'INVALID_REQUEST', node);
    expect(fromDataset.json!.error).toMatch(/more than 50 chunks .*MAX_JOB_CHUNKS/);
    await nothingQueued();
    await expectIntact(node, base);
  });
});

describe('dataset rows', () => {
  it('a line nested 100k deep fails only its own row; the chunk worker and the node carry on', async () => {
    const base = await baseline(node);
    const good = JSON.stringify(sileroRow());
    const bomb = (id: string, from: string, to: (deep: string) => string) =>
      JSON.stringify({ ...sileroRow(), id }).replace(from, to(deepArray(DEPTH)));
    const lines = [
      good,
      bomb('deep-shape', '"shape":[1,512]', (d) => `"shape":${d}`),
      good,
      `{"id":${deepArray(DEPTH)},"inputs":[]}`,
      bomb('deep-data', '"data":[16000]', (d) => `"data":${d}`),
      bomb('deep-inputs', '"inputs":[', (d) => `"inputs":[${d},`),
      good,
    ];
    const put = await request(node, { method: 'PUT', path: '/v1/datasets/bombs', body: `${lines.join('\n')}\n` });
    expect(put.status, put.body.toString()).toBe(201);
    expect(put.json).toMatchObject({ rows: 7, invalidLines: 0 });
    const res = await postJob(node, { model: 'vad', input: 'bombs', chunkSize: 2 });
    expect(res.status, res.body.toString()).toBe(202);
    const s = await finished(node, res.json!.id as string);
    expect(s).toMatchObject({ state: 'completed', progress: { totalRows: 7, doneRows: 7, failedRows: 4 } });
    const results = await request(node, { path: `/v1/jobs/${res.json!.id as string}/results` });
    const out = results.body
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(out.map((l) => l.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(out.map((l) => ('outputs' in l ? 'ok' : 'error'))).toEqual(['ok', 'error', 'ok', 'error', 'error', 'error', 'ok']);
    // The same answer as online: INVALID_TENSOR for data, INVALID_REQUEST for the envelope.
    for (const i of [1, 3]) expect(out[i].error).toMatch(/^INVALID_REQUEST: .*nested deeper than 64 levels/);
    expect(out[4].error).toMatch(/^INVALID_TENSOR: .*nested deeper than 64 levels/);
    expect(out[5].error).toMatch(/^INVALID_REQUEST: inputs\[0\] must be an object/);
    expect([out[1].id, out[3].id, out[4].id, out[5].id]).toEqual(['deep-shape', undefined, 'deep-data', 'deep-inputs']);
    await expectIntact(node, base);
  });
});

describe('values shown back in row errors', () => {
  it('a 400-digit number or a 400-character name in a row comes back cut to 100 characters in its error line', async () => {
    const base = await baseline(node);
    const digits = '9'.repeat(400);
    const name = 'n'.repeat(400);
    const spaced = 'a b '.repeat(100);
    const row = (edit: (text: string) => string) => edit(JSON.stringify(sileroRow()));
    const rows = [
      row((t) => t.replace('"data":[16000]', `"data":[${digits}]`)),
      row((t) => t.replace('"name":"sr"', `"name":"${name}"`)),
      row((t) => t.replace('"name":"sr"', `"name":"${spaced}"`)),
      row((t) => t.replace('"shape":[1,512]', `"shape":[1,${digits}]`)),
      row((t) => t.replace('"datatype":"INT64"', `"datatype":"${name}"`)),
    ];
    const check = (lines: Record<string, any>[], fromDataset: boolean) => {
      expect(lines).toHaveLength(rows.length);
      for (const [i, line] of lines.entries()) {
        expect(line.index).toBe(i);
        expect(typeof line.error, JSON.stringify(line).slice(0, 300)).toBe('string');
        expect(line.error, `row ${i}`).not.toMatch(/9{101}|n{101}|(a b ){26}/);
        expect(line.error.length, `row ${i}: ${line.error}`).toBeLessThanOrEqual(403);
      }
      // Inline rows are parsed as JSON first, where 400 digits become Infinity (written back as null).
      if (fromDataset) expect(lines[0].error).toMatch(new RegExp(`^INVALID_TENSOR: input "sr": data element 0 is 9{100}\\.\\.\\.`));
      expect(lines[1].error).toContain(`"${'n'.repeat(100)}..."`);
    };
    const put = await request(node, { method: 'PUT', path: '/v1/datasets/long-values', body: `${rows.join('\n')}\n` });
    expect(put.status, put.body.toString()).toBe(201);
    const fromDataset = await postJob(node, { model: 'vad', input: 'long-values' });
    const inline = await postJob(node, `{"model":"vad","rows":[${rows.join(',')}]}`);
    for (const [res, isDataset] of [
      [fromDataset, true],
      [inline, false],
    ] as const) {
      expect(res.status, res.body.toString().slice(0, 300)).toBe(202);
      const s = await finished(node, res.json!.id as string);
      expect(s).toMatchObject({ state: 'completed', progress: { totalRows: rows.length, doneRows: rows.length, failedRows: rows.length } });
      const results = await request(node, { path: `/v1/jobs/${res.json!.id as string}/results` });
      check(
        results.body
          .toString()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
        isDataset,
      );
    }
    await expectIntact(node, base);
  });
});

describe('job ids and cursors', () => {
  it('a hostile id gets 404 JOB_NOT_FOUND and a hostile cursor or limit 400 INVALID_REQUEST, never a 500', async () => {
    const base = await baseline(node);
    const ids = [
      '%00',
      'j%0d%0aFLUSHALL',
      `j${'a'.repeat(90)}`,
      'jzzzzzzzz00000000%20',
      '*',
      '..%2f..%2fetc',
      'j0000000000000000000000000000',
    ];
    for (const id of ids) {
      for (const [method, suffix] of [
        ['GET', ''],
        ['DELETE', ''],
        ['GET', '/results'],
      ]) {
        const res = await request(node, { method, path: `/v1/jobs/${id}${suffix}` });
        expect(res.status, `${method} ${id}${suffix}: ${res.body.toString()}`).toBe(404);
        expect(res.json!.code).toMatch(/^(JOB_NOT_FOUND|NOT_FOUND)$/);
      }
    }
    const cursors = [
      `${'9'.repeat(400)}:jabcdefgh12345678`,
      '1:../../x',
      '1:j%0d%0aPING',
      '-1:jabc',
      '1e9:jabc',
      'Infinity:jabc',
      '1:',
      ':',
      `1:${'a'.repeat(5000)}`,
      '1:jabc&cursor=2:jdef',
    ];
    for (const cursor of cursors) {
      const res = await request(node, { path: `/v1/jobs?cursor=${encodeURIComponent(cursor)}` });
      expectError(res, 400, 'INVALID_REQUEST', node);
      expect(res.json!.error).toMatch(/^"cursor": .* is not a cursor this API returned$/);
      expect(res.body.length).toBeLessThan(1000);
    }
    const twice = await request(node, { path: '/v1/jobs?cursor=1:jabc&cursor=2:jdef' });
    expectError(twice, 400, 'INVALID_REQUEST', node);
    for (const limit of ['0', '1001', '99999999999999999999999', '-1', '1.5', '', 'abc']) {
      const res = await request(node, { path: `/v1/jobs?limit=${limit}` });
      expectError(res, 400, 'INVALID_REQUEST', node);
    }
    await expectIntact(node, base);
  });
});
