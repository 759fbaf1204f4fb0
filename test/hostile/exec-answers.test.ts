// Wrong answers of the executor seen by the probe: a load racing an unload answered 500 INSTANCE_FAILED "retired before
// it was ready" (nothing failed: the unload came first); onnxruntime's errors passed through with its internal source
// locations and C++ signatures ("/onnxruntime_src/.../reshape_helper.h:84 onnxruntime::ReshapeHelper::...").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError, expectIntact, request, sileroRequestBody, startNodeWithVad, type Baseline, type HostileNode } from './rig.ts';

let node: HostileNode;
let base: Baseline;

beforeAll(async () => {
  ({ node, base } = await startNodeWithVad());
});

afterAll(async () => {
  await node?.stop();
});

const post = (path: string) => request(node, { method: 'POST', path, timeoutMs: 30_000 });

describe('a load racing an unload', () => {
  it('answers 200 or 503 MODEL_UNAVAILABLE with Retry-After, never a 500', async () => {
    let raced = 0;
    // The unload must reach the instance while it loads; a few tries with growing delays find that window.
    for (let i = 0; i < 12 && raced < 3; i++) {
      expect((await post('/v2/repository/models/vad/unload')).status).toBe(200);
      const load = post('/v2/repository/models/vad/load');
      await new Promise((r) => setTimeout(r, 5 + (i % 4) * 10));
      const unload = await post('/v2/repository/models/vad/unload');
      expect(unload.status).toBe(200);
      const res = await load;
      if (res.status === 200) continue;
      raced++;
      expectError(res, 503, 'MODEL_UNAVAILABLE', node);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.json!.error).toMatch(/unload/);
    }
    expect(raced, 'no load was caught by its unload').toBeGreaterThan(0);
    // Loaded again, it serves.
    expect((await post('/v2/repository/models/vad/load')).status).toBe(200);
    await expectIntact(node, base);
  });
});

describe("onnxruntime's messages", () => {
  it('an input shape the model cannot reshape: 400 INVALID_TENSOR with the reason, without source locations or C++ signatures', async () => {
    const body = JSON.parse(sileroRequestBody()) as { inputs: { name: string; shape: number[]; data: unknown[] }[] };
    const input = body.inputs.find((t) => t.name === 'input')!;
    input.shape = [0, 512];
    input.data = [];
    const res = await request(node, {
      method: 'POST',
      path: '/v2/models/vad/infer',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expectError(res, 400, 'INVALID_TENSOR', node);
    const msg = String(res.json!.error);
    expect(msg).toMatch(/reshape/i);
    expect(msg).not.toMatch(/onnxruntime_src|\.(h|cc|cpp):\d+|onnxruntime::/);
    await expectIntact(node, base);
  });
});
