// V2 surface under faults, through the test-only fault runtime (nothing here depends on timing):
// - a client that disconnects while its request waits in the queue takes it out of the queue: the route passes
//   a cancel signal (ClientGone) into the executor ("vad" loads hang, so the request stays queued until the socket closes);
// - a version whose load fails ("broken" loads throw) is not ready and shows UNAVAILABLE in the index.
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sileroBytes } from '../helpers/model-bodies.ts';
import { startV2Rig, type V2Rig } from './v2-rig.ts';

let rig: V2Rig;
let port: number;

beforeAll(async () => {
  rig = await startV2Rig(
    {},
    { allowTestRuntimes: true, loadOptions: (m) => ({ runtime: 'fault', fault: { load: m.name === 'broken' ? 'throw' : 'hang' } }) },
  );
  for (const name of ['vad', 'broken']) {
    const up = await rig.app.inject({
      method: 'POST',
      url: `/v1/models/${name}`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: sileroBytes(),
    });
    expect(up.statusCode).toBe(201);
  }
  await rig.app.listen({ port: 0, host: '127.0.0.1' });
  port = (rig.app.server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await rig?.close();
});

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}

it('closing the socket removes the queued request and counts it as failed', async () => {
  const body = JSON.stringify({
    inputs: [
      { name: 'input', datatype: 'FP32', shape: [1, 4], data: [0, 0, 0, 0] },
      { name: 'sr', datatype: 'INT64', shape: [], data: 16000 },
      { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: new Array(128).fill(0) },
      { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: new Array(128).fill(0) },
    ],
  });
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(
    `POST /v2/models/vad/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );

  const reasons: (string | undefined)[] = [];
  rig.executor.setObserver({ onRequestDone: (e) => reasons.push(e.reason) });
  const queued = () => rig.executor.control.pool('vad', 1)?.queued ?? 0;
  await until(() => queued() === 1);
  socket.destroy();
  await until(() => queued() === 0);
  // Taken out by the disconnect (CANCELED), not by its queue deadline running out (REJECTED).
  expect(reasons).toEqual(['CANCELED']);

  const [s] = rig.executor.stats({ name: 'vad' });
  expect(s.fail.count).toBe(1);
  expect(s.success.count).toBe(0);
  expect(s.inferenceCount).toBe(0);
});

it('a failed load makes the version not ready and UNAVAILABLE in the index, with the reason', async () => {
  expect((await rig.app.inject({ url: '/v2/models/broken/ready' })).statusCode).toBe(200);
  const load = await rig.app.inject({ method: 'POST', url: '/v2/repository/models/broken/load' });
  expect(load.statusCode).toBeGreaterThanOrEqual(400);
  expect(load.json()).toEqual({ error: expect.any(String), code: expect.stringMatching(/MODEL_INVALID|INSTANCE_FAILED/) });

  const ready = await rig.app.inject({ url: '/v2/models/broken/ready' });
  expect(ready.statusCode).toBe(400);
  expect(ready.body).toBe('');
  expect(ready.headers['hearth-not-ready']).toMatch(/\S/);
  const index = (await rig.app.inject({ method: 'POST', url: '/v2/repository/index' })).json<
    { name: string; state: string; reason: string }[]
  >();
  const broken = index.find((r) => r.name === 'broken')!;
  expect(broken.state).toBe('UNAVAILABLE');
  expect(broken.reason).toBe(load.json().error);
  const onlyReady = (await rig.app.inject({ method: 'POST', url: '/v2/repository/index', payload: { ready: true } })).json<
    { name: string }[]
  >();
  expect(onlyReady.map((r) => r.name)).toEqual(['vad']);
});
