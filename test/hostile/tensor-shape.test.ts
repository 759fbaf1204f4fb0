// Hostile inputs of the inference path: a declared shape far larger than the data sent, or one whose element
// count is not a safe integer. Each must answer 400 INVALID_TENSOR on the HTTP thread, before anything is
// allocated or queued, over plain JSON, the deferred path (a flat array of at least DEFER_JSON_BYTES, parsed on
// the instance thread) and the binary extension; and the warm instance must survive (no cold start after it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeWithVad, expectError, expectIntact, request, sileroRequestBody, type Baseline, type HostileNode } from './rig.ts';

let node: HostileNode;
let base: Baseline;

beforeAll(async () => {
  ({ node, base } = await startNodeWithVad());
});

afterAll(async () => {
  await node?.stop();
});

/** silero's request with `input` replaced: its declared shape and its data as JSON text. */
function sileroWith(shape: number[], dataText: string): string {
  const body = JSON.parse(sileroRequestBody()) as { inputs: { name: string; shape: number[]; data: unknown }[] };
  const input = body.inputs.find((i) => i.name === 'input')!;
  input.shape = shape;
  input.data = '@DATA@';
  return JSON.stringify(body).replace('"@DATA@"', dataText);
}

/** A flat array of `n` numbers as JSON text (about 8 bytes each). */
function numbers(n: number): string {
  return `[${Array.from({ length: n }, (_, i) => (Math.sin(i) * 0.5).toFixed(5)).join(',')}]`;
}

function infer(body: string | Buffer, headers: Record<string, string | number> = {}) {
  return request(node, { method: 'POST', path: '/v2/models/vad/infer', headers: { 'content-type': 'application/json', ...headers }, body });
}

async function coldStarts(): Promise<number> {
  const res = await request(node, { path: '/v2/models/vad/stats' });
  return (res.json!.model_stats as { cold_start: { count: number } }[])[0].cold_start.count;
}

/** The fixed silero request runs on the warm instance (no cold start). */
async function expectWarm(): Promise<void> {
  const ok = await infer(sileroRequestBody());
  expect(ok.status, ok.body.toString()).toBe(200);
  expect(ok.headers['hearth-cold-start']).toBe('false');
}

describe('declared shapes larger than the data', () => {
  it('a 24 KB deferred array declared [1, 1e12], 20 times: 400 INVALID_TENSOR each, and no instance is lost', async () => {
    const data = numbers(3000);
    expect(data.length).toBeGreaterThan(16 * 1024); // past DEFER_JSON_BYTES: the deferred path
    const before = await coldStarts();
    for (let i = 0; i < 20; i++) {
      const res = await infer(sileroWith([1, 1e12], data));
      expectError(res, 400, 'INVALID_TENSOR', node);
      expect(res.json!.error).toMatch(/"input".*1000000000000/);
      await expectWarm();
    }
    expect(await coldStarts()).toBe(before);
    await expectIntact(node, base);
  });

  it('a shape whose element count overflows ([1e10, 1e10]): 400 INVALID_TENSOR on the plain and the deferred path', async () => {
    const before = await coldStarts();
    for (const data of [numbers(16), numbers(3000)]) {
      const res = await infer(sileroWith([1e10, 1e10], data));
      expectError(res, 400, 'INVALID_TENSOR', node);
      expect(res.json!.error).toContain('input');
      await expectWarm();
    }
    // Each dimension a safe integer, their product not.
    const res = await infer(sileroWith([9007199254740991, 3], numbers(3000)));
    expectError(res, 400, 'INVALID_TENSOR', node);
    await expectWarm();
    expect(await coldStarts()).toBe(before);
    await expectIntact(node, base);
  });

  it('no data with a huge dimension next to a zero ([1e15, 0]): a 400, and the instance stays warm', async () => {
    const before = await coldStarts();
    const res = await infer(sileroWith([1e15, 0], '[]'));
    expectError(res, 400, 'INVALID_TENSOR', node);
    await expectWarm();
    expect(await coldStarts()).toBe(before);
  });

  it('a small plain array declared [1, 1e12]: 400 INVALID_TENSOR', async () => {
    const res = await infer(sileroWith([1, 1e12], numbers(512)));
    expectError(res, 400, 'INVALID_TENSOR', node);
    await expectIntact(node, base);
  });

  it('the binary extension: 16 KB of data declared [1, 1e12] or [1e10, 1e10]: 400 INVALID_TENSOR', async () => {
    const before = await coldStarts();
    for (const shape of [
      [1, 1e12],
      [1e10, 1e10],
    ]) {
      const header = JSON.parse(sileroRequestBody()) as {
        inputs: { name: string; shape: number[]; data?: unknown; parameters?: object }[];
      };
      const input = header.inputs.find((i) => i.name === 'input')!;
      input.shape = shape;
      delete input.data;
      input.parameters = { binary_data_size: 16384 };
      const json = Buffer.from(JSON.stringify(header));
      const res = await infer(Buffer.concat([json, Buffer.alloc(16384)]), {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': json.length,
      });
      expectError(res, 400, 'INVALID_TENSOR', node);
      await expectWarm();
    }
    expect(await coldStarts()).toBe(before);
    await expectIntact(node, base);
  });

  it('many concurrent deferred requests declared [1, 1e12] next to good ones: each bad one 400, each good one 200', async () => {
    const bad = sileroWith([1, 1e12], numbers(3000));
    const good = sileroWith([1, 3000], numbers(3000));
    const before = await coldStarts();
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => infer(i % 2 ? bad : good)));
    results.forEach((res, i) => {
      if (i % 2) expectError(res, 400, 'INVALID_TENSOR', node);
      else expect(res.status, res.body.toString()).toBe(200);
    });
    await expectWarm();
    expect(await coldStarts()).toBe(before);
    await expectIntact(node, base);
  });
});
