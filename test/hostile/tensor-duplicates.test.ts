// Issue 13 follow-up 3: V2 requests with a member given twice. The scanner fills typed arrays as it reads, so
// last-wins read wrongly: a second "datatype" after "data" relabelled data already decoded as another type, and a
// second "inputs" array was added to the first (200 with both halves merged). Every duplicate member of the
// request, of a tensor object and of a "parameters" object is now refused with 400 INVALID_REQUEST naming it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { expectError, expectIntact, request, sileroRequestBody, startNodeWithVad, type Baseline, type HostileNode } from './rig.ts';

let node: HostileNode;
let base: Baseline;

beforeAll(async () => {
  ({ node, base } = await startNodeWithVad());
});
afterAll(async () => {
  await node?.stop();
});

const good = sileroRequestBody();
const inputs = (JSON.parse(good) as { inputs: unknown[] }).inputs;
const infer = (body: Buffer | string, headers: Record<string, string | number> = {}) =>
  request(node, { method: 'POST', path: '/v2/models/vad/infer', headers: { 'content-type': 'application/json', ...headers }, body });
const sr = '"name":"sr","datatype":"INT64","shape":[],"data":[16000]';

// [case, body, message]. Before: 'data' twice answered 200 (the last), 'datatype' after 'data' 400 with a confusing
// "INT64 data must be a BigInt64Array, got Float32Array", 'inputs' split in two 200 (merged), parameters 200 (last).
const cases: [string, string, string][] = [
  ['"data" twice', good.replace(sr, `${sr},"data":[8000]`), 'inputs[1]: "data" is given more than once'],
  ['"shape" twice', good.replace(sr, `${sr},"shape":[1]`), 'inputs[1]: "shape" is given more than once'],
  [
    '"datatype" after "data"',
    good.replace(sr, '"name":"sr","datatype":"FP32","shape":[],"data":[16000],"datatype":"INT64"'),
    'inputs[1]: "datatype" is given more than once',
  ],
  ['"name" twice', good.replace(sr, `${sr},"name":"h"`), 'inputs[1]: "name" is given more than once'],
  [
    '"parameters" twice in a tensor',
    good.replace(sr, `${sr},"parameters":{},"parameters":{}`),
    'inputs[1]: "parameters" is given more than once',
  ],
  [
    '"inputs" twice',
    JSON.stringify({ inputs: inputs.slice(0, 2) }).slice(0, -1) + ',' + JSON.stringify({ inputs: inputs.slice(2) }).slice(1),
    'the request: "inputs" is given more than once',
  ],
  [
    '"parameters" twice in the request',
    good.replace('{"inputs"', '{"parameters":{"a":1},"parameters":{"b":2},"inputs"'),
    'the request: "parameters" is given more than once',
  ],
  [
    '"outputs" twice',
    good.replace('"outputs":[{"name":"output"}]', '"outputs":[{"name":"nope"}],"outputs":[{"name":"output"}]'),
    'the request: "outputs" is given more than once',
  ],
  ['"id" twice', good.replace('{"inputs"', '{"id":"a","id":"b","inputs"'), 'the request: "id" is given more than once'],
  ['a parameter twice', good.replace(sr, `${sr},"parameters":{"x":1,"x":2}`), 'inputs[1]: parameter "x" is given more than once'],
];

it.each(cases)('%s -> 400 INVALID_REQUEST naming it', async (_what, body, message) => {
  expect(() => JSON.parse(body) as unknown).not.toThrow(); // valid JSON: only the duplicate is wrong
  const res = await infer(body);
  expectError(res, 400, 'INVALID_REQUEST', node);
  expect(res.json!.error).toBe(message);
});

it('two tensors of the same name -> 400 INVALID_TENSOR', async () => {
  const res = await infer(JSON.stringify({ inputs: [...inputs, inputs[1]] }));
  expectError(res, 400, 'INVALID_TENSOR', node);
  expect(res.json!.error).toBe('input "sr": given more than once');
});

it('binary extension: binary_data_size twice, or with "data" before or after it -> 400', async () => {
  const j = JSON.parse(good) as { inputs: Record<string, unknown>[] };
  const bin = Buffer.alloc(8);
  bin.writeBigInt64LE(16000n);
  const send = (header: string) =>
    infer(Buffer.concat([Buffer.from(header), bin]), {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': Buffer.byteLength(header),
    });
  j.inputs[1] = { name: 'sr', datatype: 'INT64', shape: [], parameters: { binary_data_size: 8 } };
  const header = JSON.stringify(j);
  const twice = await send(header.replace('"binary_data_size":8', '"binary_data_size":8,"binary_data_size":16'));
  expectError(twice, 400, 'INVALID_REQUEST', node);
  expect(twice.json!.error).toBe('inputs[1]: parameter "binary_data_size" is given more than once');
  for (const h of [
    header.replace('"shape":[],', '"shape":[],"data":[16000],'),
    header.replace('"binary_data_size":8}', '"binary_data_size":8},"data":[16000]'),
  ]) {
    const res = await send(h);
    expectError(res, 400, 'INVALID_REQUEST', node);
    expect(res.json!.error).toBe('input "sr": has both "data" and binary_data_size');
  }
  // The same request without the duplicate is served, with the baseline's answer.
  const ok = await send(header);
  expect(ok.status, ok.body.toString()).toBe(200);
  await expectIntact(node, base);
});

it('members Hearth does not read may repeat, and a "__proto__" parameter stays a parameter', async () => {
  const res = await infer(good.replace(sr, `${sr},"note":1,"note":2,"parameters":{"__proto__":"x"}`));
  expect(res.status, res.body.toString()).toBe(200);
  await expectIntact(node, base);
});
