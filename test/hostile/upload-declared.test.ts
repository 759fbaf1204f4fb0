// Uploads whose own declarations do not hold: signature dimensions a manifest cannot keep (past 2^53, negative other
// than -1), tar entries that are not regular files or folders, and TF.js weight manifests whose shard bytes disagree
// with their weight specs. Each is refused at upload with a 4xx naming what is wrong, and the node carries on.
// Before: an ONNX input of 2^60 was published with a rounded size that every later read refused as a broken manifest
// (the version poisoned); a fifo named "./" in a tar was skipped; a string weight over float bytes was published.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { concat, fBytes, fInt, FLOAT, node as onnxNode } from '../fixtures/make-large-onnx.ts';
import { FIXTURES_DIR } from '../fixtures/golden.ts';
import { tarGz, type TarEntry } from '../helpers/model-bodies.ts';
import { expectError, expectIntact, expectNoUploadLeftovers, request, startNodeWithVad, type Baseline, type HostileNode } from './rig.ts';

let node: HostileNode;
let base: Baseline;
beforeAll(async () => {
  ({ node, base } = await startNodeWithVad());
});
afterAll(async () => {
  await node?.stop();
});

async function survived(name: string): Promise<void> {
  await expectIntact(node, base);
  await expectNoUploadLeftovers(node);
  expect((await request(node, { path: `/v1/models/${name}` })).status).toBe(404);
}

/** x FP32 `dims` -> Identity -> y FP32 `dims`; dims are written as int64 dim_value, so any value can be declared. */
function identityOnnx(dims: bigint[]): Buffer {
  const valueInfo = (name: string) => {
    const shape = concat(dims.map((d) => fBytes(1, fInt(1, d))));
    return concat([fBytes(1, name), fBytes(2, fBytes(1, concat([fInt(1, FLOAT), fBytes(2, shape)])))]);
  };
  const graph = concat([
    fBytes(1, onnxNode('Identity', ['x'], ['y'], 'id')),
    fBytes(2, 'dims'),
    fBytes(11, valueInfo('x')),
    fBytes(12, valueInfo('y')),
  ]);
  return Buffer.from(concat([fInt(1, 8), fBytes(7, graph), fBytes(8, concat([fBytes(1, ''), fInt(2, 17)]))]));
}

/** The parts of the fixture's model.json these cases edit. */
interface GraphJson {
  signature: { outputs: { y: { tensorShape: { dim: { size: string }[] } } } };
  weightsManifest: unknown;
}

const postOnnx = (name: string, body: Buffer) =>
  request(node, { method: 'POST', path: `/v1/models/${name}`, headers: { 'content-type': 'application/octet-stream' }, body });
const postTar = async (name: string, entries: TarEntry[]) =>
  request(node, {
    method: 'POST',
    path: `/v1/models/${name}`,
    headers: { 'content-type': 'application/gzip' },
    body: await tarGz(entries),
  });

describe('signature dimensions', () => {
  for (const [label, dims] of [
    ['2^60', [2n ** 60n, 1n]],
    ['2^53 + 1', [2n ** 53n + 1n]],
  ] as const) {
    it(`an ONNX input of ${label}: 422 MODEL_INVALID naming the dimension`, async () => {
      const res = await postOnnx('dims', identityOnnx([...dims]));
      expectError(res, 422, 'MODEL_INVALID', node);
      expect(res.json!.error).toMatch(/input "x" has dimension \d+: a size must be a whole number from 0 to 2\^53-1/);
      await survived('dims');
    });
  }

  it('an ONNX input of -5 is dynamic (onnxruntime reports it unknown, as -1)', async () => {
    const res = await postOnnx('neg', identityOnnx([-5n, 2n]));
    expect(res.status, res.body.toString()).toBe(201);
    expect(res.json!.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 2] }]);
    expect((await request(node, { method: 'DELETE', path: '/v1/models/neg' })).status).toBeLessThan(300);
  });

  const graphModel = async (edit: (json: GraphJson) => void): Promise<TarEntry[]> => {
    const json = JSON.parse(await fs.readFile(path.join(FIXTURES_DIR, 'tfjs-graph', 'model.json'), 'utf8')) as GraphJson;
    edit(json);
    return [
      { name: 'model.json', data: Buffer.from(JSON.stringify(json)) },
      { name: 'group1-shard1of1.bin', data: await fs.readFile(path.join(FIXTURES_DIR, 'tfjs-graph', 'group1-shard1of1.bin')) },
    ];
  };

  for (const size of ['99999999999999999999', '-5', 'many']) {
    it(`a TF.js graph output of size "${size}": 422 MODEL_INVALID`, async () => {
      const res = await postTar('tfdims', await graphModel((j) => (j.signature.outputs.y.tensorShape.dim[1].size = size)));
      expectError(res, 422, 'MODEL_INVALID', node);
      expect(res.json!.error).toMatch(/output "y" has dimension/);
      await survived('tfdims');
    });
  }

  it('the unedited TF.js graph model is accepted (the cases above differ only in their edit)', async () => {
    const res = await postTar('tfok', await graphModel(() => {}));
    expect(res.status, res.body.toString()).toBe(201);
    expect((await request(node, { method: 'DELETE', path: '/v1/models/tfok' })).status).toBeLessThan(300);
  });
});

describe('tar entries that are not regular files or folders: 400 UNSAFE_ARCHIVE', () => {
  const model = { name: 'model.onnx', data: Buffer.from('not read') };
  const cases: [string, TarEntry][] = [
    ['a symlink', { name: 'weights.bin', type: 'symlink', linkname: '/etc/passwd' }],
    ['a hardlink', { name: 'weights.bin', type: 'link', linkname: 'model.onnx' }],
    ['a fifo', { name: 'weights.bin', type: 'fifo' }],
    ['a character device', { name: 'weights.bin', type: 'character-device' }],
    ['a block device', { name: 'weights.bin', type: 'block-device' }],
    ['a fifo named "./" (the archive root)', { name: './', type: 'fifo' }],
    ['a character device named "."', { name: '.', type: 'character-device' }],
  ];
  for (const [label, entry] of cases) {
    it(label, async () => {
      const res = await postTar('links', [model, entry]);
      expectError(res, 400, 'UNSAFE_ARCHIVE', node);
      await survived('links');
    });
  }
});

describe('TF.js weight manifests whose shards disagree with their specs: 422 MODEL_INVALID at upload', () => {
  const shard = () => fs.readFile(path.join(FIXTURES_DIR, 'tfjs-graph', 'group1-shard1of1.bin')); // W [4,3] then b [3], 60 bytes
  const upload = async (weightsManifest: unknown, shards: Record<string, Buffer>) => {
    const json = JSON.parse(await fs.readFile(path.join(FIXTURES_DIR, 'tfjs-graph', 'model.json'), 'utf8')) as GraphJson;
    json.weightsManifest = weightsManifest;
    return postTar('weights', [
      { name: 'model.json', data: Buffer.from(JSON.stringify(json)) },
      ...Object.entries(shards).map(([name, data]) => ({ name, data })),
    ]);
  };
  const W = { name: 'W', shape: [4, 3], dtype: 'float32' };
  const b = { name: 'b', shape: [3], dtype: 'float32' };

  it('a group whose shard is smaller than its specs, another larger (the totals agree)', async () => {
    const bin = await shard();
    const res = await upload(
      [
        { paths: ['a.bin'], weights: [W] },
        { paths: ['b.bin'], weights: [b] },
      ],
      { 'a.bin': bin.subarray(0, 12), 'b.bin': bin.subarray(12) },
    );
    expectError(res, 422, 'MODEL_INVALID', node);
    expect(res.json!.error).toMatch(/group 1: its shards hold 12 bytes but its weight specs need 48/);
    await survived('weights');
  });

  it('a weight with negative dimensions whose element count happens to fit', async () => {
    const res = await upload([{ paths: ['s.bin'], weights: [{ ...W, shape: [-4, -3] }, b] }], { 's.bin': await shard() });
    expectError(res, 422, 'MODEL_INVALID', node);
    expect(res.json!.error).toMatch(/weight "W" has shape \[-4,-3\]/);
    await survived('weights');
  });

  it('a weight of a dtype TF.js cannot read', async () => {
    const res = await upload([{ paths: ['s.bin'], weights: [{ ...W, dtype: 'float64' }, b] }], { 's.bin': await shard() });
    expectError(res, 422, 'MODEL_INVALID', node);
    expect(res.json!.error).toMatch(/dtype float64/);
    await survived('weights');
  });

  it('a string weight laid over float bytes (its length prefixes run past the shards)', async () => {
    const res = await upload([{ paths: ['s.bin'], weights: [W, { ...b, dtype: 'string' }] }], { 's.bin': await shard() });
    expectError(res, 422, 'MODEL_INVALID', node);
    expect(res.json!.error).toMatch(/string weight "b" runs past the end of its shards/);
    await survived('weights');
  });
});
