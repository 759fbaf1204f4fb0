// The "done when": 2,000 rows of silero VAD through a dataset, across two Hearth processes sharing one
// Redis and one store, with one node SIGKILLed at about 20% progress, give exactly 2,000 correct lines in order.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { QueueEvents } from 'bullmq';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { sileroBytes } from '../helpers/model-bodies.ts';
import { FAST_TUNING, makeJobsRig, sileroRow, sileroTensors, waitFor, type JobsRig } from './rig.ts';

const N = 2000;
let redis: TestRedis;
let dir: string;
let prefix: string;
const nodes: { proc: ChildProcess; base: string }[] = [];
let local: JobsRig;

async function startNode(): Promise<{ proc: ChildProcess; base: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.resolve('test/jobs/node-entry.ts')], {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      JOBS_PREFIX: prefix,
      DATA_DIR: dir,
      HEARTH_TUNING: JSON.stringify({ ...FAST_TUNING, rowConcurrency: 4 }),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /READY (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    proc.once('exit', (code) => reject(new Error(`node exited with ${code} before it was ready`)));
  });
  return { proc, base: `http://127.0.0.1:${port}` };
}

beforeAll(async () => {
  redis = await startTestRedis();
  prefix = uniquePrefix('two');
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-two-'));
  nodes.push(...(await Promise.all([startNode(), startNode()])));
  // The expected answers come from online inference in this process (no job workers here).
  local = await makeJobsRig({ redisUrl: redis.url, prefix, dataDir: dir, workerOptions: { enabled: false } });
});

afterAll(async () => {
  for (const n of nodes) if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill('SIGKILL');
  await local?.close();
  await redis?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

it('2,000 silero rows across two nodes, one killed at ~20%: exactly 2,000 correct lines in order', async () => {
  const [a, b] = nodes;
  const up = await fetch(`${a.base}/v1/models/vad`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: new Uint8Array(sileroBytes()),
  });
  expect(up.status).toBe(201);
  const text = Array.from({ length: N }, (_, i) => JSON.stringify(sileroRow(i))).join('\n') + '\n';
  const put = await fetch(`${a.base}/v1/datasets/vad-2000`, {
    method: 'PUT',
    headers: { 'content-type': 'application/x-ndjson' },
    body: text,
  });
  expect(put.status).toBe(201);
  expect(await put.json()).toMatchObject({ key: 'datasets/vad-2000.jsonl', rows: N, invalidLines: 0 });

  await waitFor(async () => ((await fetch(`${a.base}/v1/jobs`)).status === 200 ? true : undefined), 'Redis on node a');
  const post = await fetch(`${a.base}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'vad', input: 'datasets/vad-2000.jsonl', chunkSize: 50 }),
  });
  expect(post.status).toBe(202);
  const { id } = (await post.json()) as { id: string };
  // The killed node's chunk must come back through BullMQ's stalled check, not vanish.
  const events = new QueueEvents('chunks', { connection: { host: redis.host, port: redis.port }, prefix });
  const stalled: string[] = [];
  events.on('stalled', ({ jobId }) => stalled.push(jobId));
  await events.waitUntilReady();

  const status = async (base: string) =>
    (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as {
      state: string;
      progress: { doneRows: number; failedRows: number; totalRows: number };
    };
  const at = await waitFor(
    async () => {
      const s = await status(a.base);
      return s.progress.doneRows >= 0.2 * N ? s : undefined;
    },
    '20% progress',
    60_000,
    20,
  );
  expect(at.state).toBe('running');
  b.proc.kill('SIGKILL');
  await new Promise((r) => b.proc.once('exit', r));

  const done = await waitFor(
    async () => {
      const s = await status(a.base);
      return s.state === 'completed' ? s : undefined;
    },
    'the job to complete on the surviving node',
    55_000,
  );
  expect(done.progress).toEqual({ totalRows: N, doneRows: N, failedRows: 0 });
  await events.close();
  expect(stalled.length).toBeGreaterThanOrEqual(1);
  expect(stalled.every((j) => j.startsWith(`${id}.`))).toBe(true);

  const body = await (await fetch(`${a.base}/v1/jobs/${id}/results`)).text();
  const lines = body
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
  expect(lines.length).toBe(N);
  expect(lines.map((l) => l.index)).toEqual(Array.from({ length: N }, (_, i) => i));
  const manifest = await local.registry.getManifest('vad');
  let wrong = 0;
  for (let i = 0; i < N; i++) {
    const l = lines[i];
    if (l.id !== `row-${i}` || !l.outputs) {
      wrong++;
      continue;
    }
    const online = await local.executor.infer({ manifest, inputs: sileroTensors(i) });
    online.outputs.forEach((o, k) => {
      const want = o.data as Float32Array;
      const got = l.outputs[k].data as number[];
      if (got.length !== want.length || got.some((v, j) => Math.abs(v - want[j]) > 1e-4)) wrong++;
    });
  }
  expect(wrong).toBe(0);
}, 120_000);
