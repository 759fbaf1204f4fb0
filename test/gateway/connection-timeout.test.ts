// CONNECTION_TIMEOUT_MS closes silent sockets, but not one whose request is being answered: a load (or an
// inference) may take far longer than the connection timeout while nothing crosses the socket. Here a load
// is slowed by the test-only fault runtime (loadDelayMs) well past a 300 ms connection timeout.
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sileroBytes } from '../helpers/model-bodies.ts';
import { startV2Rig, type V2Rig } from './v2-rig.ts';

const CONNECTION_TIMEOUT_MS = 300;
const LOAD_DELAY_MS = 1500;

let rig: V2Rig;
let port: number;

beforeAll(async () => {
  rig = await startV2Rig(
    { CONNECTION_TIMEOUT_MS: String(CONNECTION_TIMEOUT_MS) },
    { allowTestRuntimes: true, loadOptions: () => ({ runtime: 'fault', fault: { loadDelayMs: LOAD_DELAY_MS } }) },
  );
  const up = await rig.app.inject({
    method: 'POST',
    url: '/v1/models/vad',
    headers: { 'content-type': 'application/octet-stream' },
    payload: sileroBytes(),
  });
  expect(up.statusCode).toBe(201);
  await rig.app.listen({ port: 0, host: '127.0.0.1' });
  port = (rig.app.server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await rig?.close();
});

function post(path: string): Promise<{ status: number; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - t0 }));
    });
    req.on('error', reject);
    req.end();
  });
}

it('a request answered after a long silent wait keeps its connection', async () => {
  const res = await post('/v2/repository/models/vad/load');
  expect(res.status).toBe(200);
  // The premise: the socket was silent for longer than the connection timeout (the load alone takes 1.5 s).
  expect(res.ms).toBeGreaterThan(CONNECTION_TIMEOUT_MS);
});

it('a connection that says nothing is closed after the connection timeout', async () => {
  const socket = net.connect(port, '127.0.0.1');
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.on('error', () => {});
  });
  socket.destroy();
  expect(closed).toBe(true);
});
