// Hostile nesting on the inference path: a `shape` (or any other member of the request) nested 100k deep used to
// answer 500 "Maximum call stack size exceeded" from a recursive walk of the value. Each must be a 400 naming the
// depth limit, over HTTP against a real node, and the node must stay intact.
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

const deep = (n: number, leaf = '1') => '['.repeat(n) + leaf + ']'.repeat(n);

/** silero's request with one member of `input` (or of the request) replaced by raw JSON text. */
function sileroWith(where: 'input' | 'request', key: string, text: string): string {
  const body = JSON.parse(sileroRequestBody()) as Record<string, unknown> & { inputs: Record<string, unknown>[] };
  const target = where === 'request' ? body : body.inputs.find((i) => i.name === 'input')!;
  target[key] = '@HOSTILE@';
  return JSON.stringify(body).replace('"@HOSTILE@"', text);
}

function infer(body: string) {
  return request(node, { method: 'POST', path: '/v2/models/vad/infer', headers: { 'content-type': 'application/json' }, body });
}

describe('deeply nested JSON in an infer request', () => {
  it('a shape nested 100k deep: 400 INVALID_REQUEST naming the depth limit', async () => {
    const res = await infer(sileroWith('input', 'shape', deep(100_000)));
    expectError(res, 400, 'INVALID_REQUEST', node);
    expect(res.json!.error).toMatch(/nested deeper than 64 levels/);
    await expectIntact(node, base);
  });

  it('data, datatype, parameters, id, outputs and an unknown member nested 100k deep: each a 400', async () => {
    const cases: [string, string][] = [
      [sileroWith('input', 'data', deep(100_000)), 'INVALID_TENSOR'],
      [sileroWith('input', 'datatype', deep(100_000, '"FP32"')), 'INVALID_REQUEST'],
      [sileroWith('input', 'parameters', `{"p":${deep(100_000)}}`), 'INVALID_REQUEST'],
      [sileroWith('request', 'id', deep(100_000, '"x"')), 'INVALID_REQUEST'],
      [sileroWith('request', 'parameters', `{"p":${deep(100_000)}}`), 'INVALID_REQUEST'],
      [sileroWith('request', 'outputs', deep(100_000)), 'INVALID_REQUEST'],
      [sileroWith('request', 'extra', `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`), 'INVALID_REQUEST'],
    ];
    for (const [body, code] of cases) {
      const res = await infer(body);
      expectError(res, 400, code, node);
      expect(res.json!.error).toMatch(/nested deeper than 64 levels/);
    }
    await expectIntact(node, base);
  });
});
