// Batch jobs against online traffic on one node: online p50/p99 over HTTP (V2 infer, silero VAD) without and with a
// large job running, online throughput unloaded, and the job's rows/s alone and under online load, all in one run.
// Starts its own redis-server on a free port and a Hearth on a temp dir.
// Rounds alternate the conditions (capacity, online alone, online with a fresh job, job alone) and the summary
// gives medians of the per-round figures, so drifting machine load does not favour one condition.
//   npm run bench -- --suite jobs-fairness [--rows 30000] [--seconds 4] [--rounds 3] [--online 2] [--capacity-clients 8]
//                                   [--row-concurrency 8] [--chunk 256] [--strategy stateless|stateful|event]
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../core/index.ts';
import { encodeInferRequest } from '../../protocol/index.ts';
import { createHearth } from '../../gateway/index.ts';
import { startTestRedis } from '../../test/helpers/redis.ts';
import { arg } from '../lib/args.ts';
import { SILERO_FILE, sileroInputs } from '../lib/bench-models.ts';
import { runLoad, type LoadResult } from '../lib/load-generator.ts';
import { median } from '../lib/percentiles.ts';
import { describeMachine } from '../lib/machine.ts';

const ROWS = Number(arg('rows', '30000'));
const SECONDS = Number(arg('seconds', '4'));
const ONLINE = Number(arg('online', '2'));
const CAPACITY_CLIENTS = Number(arg('capacity-clients', '8'));
const ROW_CONCURRENCY = Number(arg('row-concurrency', '8'));
const CHUNK = Number(arg('chunk', '256'));
const ROUNDS = Number(arg('rounds', '3'));
/** The model's scheduling strategy; `event` orders by priority (batch rows are 0), the others are FIFO. */
const STRATEGY = arg('strategy', '');

/** A VAD frame as a V2 JSON request body, distinct per seed. */
function rowText(seed: number): string {
  return encodeInferRequest({ id: `r${seed}`, inputs: sileroInputs(seed % 97) }).body.toString('utf8');
}

// A private redis-server on a free port, never REDIS_URL: the benchmark must not share a queue.
const redis = await startTestRedis({ useEnv: false });
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-fairness-'));
const config = loadConfig({ DATA_DIR: dir, REDIS_URL: redis.url, JOBS_PREFIX: 'fairness', LOG_LEVEL: 'silent' });
const hearth = await createHearth(config, { jobs: { workerOptions: { rowConcurrency: ROW_CONCURRENCY } } });
const base = await hearth.app.listen({ port: 0, host: '127.0.0.1' });
const cleanup = async () => {
  await hearth.close();
  await redis.close();
  await fs.rm(dir, { recursive: true, force: true });
};

try {
  const up = await fetch(`${base}/v1/models/vad`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: new Uint8Array(await fs.readFile(SILERO_FILE)),
  });
  if (up.status !== 201) throw new Error(`upload: ${up.status} ${await up.text()}`);
  if (STRATEGY) {
    const cfg = await fetch(`${base}/v1/models/vad/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ scheduling: { strategy: STRATEGY } }),
    });
    if (cfg.status !== 200) throw new Error(`config: ${cfg.status} ${await cfg.text()}`);
  }
  const bodies = Array.from({ length: 64 }, (_, i) => Buffer.from(rowText(1000 + i)));
  const infer = `${base}/v2/models/vad/infer`;
  const load = (concurrency: number, seconds: number) =>
    runLoad({ url: infer, bodies, concurrency, durationMs: seconds * 1000, warmupMs: 500 });

  await load(ONLINE, 2); // cold start, JIT

  // The large job reads a dataset of ROWS frames.
  const text = Array.from({ length: ROWS }, (_, i) => rowText(i)).join('\n') + '\n';
  const put = await fetch(`${base}/v1/datasets/frames`, { method: 'PUT', headers: { 'content-type': 'application/x-ndjson' }, body: text });
  if (put.status !== 201) throw new Error(`dataset: ${put.status} ${await put.text()}`);
  for (let i = 0; i < 100 && (await fetch(`${base}/v1/jobs`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));

  // Rounds alternate the conditions, so a machine whose load drifts during the run biases no condition.
  const rounds: Round[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const capacity = await load(CAPACITY_CLIENTS, SECONDS / 2);
    const unloaded = await load(ONLINE, SECONDS);
    const post = await fetch(`${base}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'vad', input: 'datasets/frames.jsonl', chunkSize: CHUNK }),
    });
    if (post.status !== 202) throw new Error(`job: ${post.status} ${await post.text()}`);
    const { id } = (await post.json()) as { id: string };
    const status = async () => (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as { state: string; progress: { doneRows: number } };
    while ((await status()).progress.doneRows < 1) await new Promise((r) => setTimeout(r, 20));
    const rowsAt = async () => ({ t: performance.now(), done: (await status()).progress.doneRows });
    // The job alone first, then with online traffic, while the job is still far from its end.
    const a0 = await rowsAt();
    await new Promise((r) => setTimeout(r, (SECONDS / 2) * 1000));
    const a1 = await rowsAt();
    const withJob = await load(ONLINE, SECONDS);
    const a2 = await rowsAt();
    const stillRunning = (await status()).state === 'running';
    await fetch(`${base}/v1/jobs/${id}`, { method: 'DELETE' });
    // Let the running chunk stop before the next unloaded window.
    await new Promise((r) => setTimeout(r, 1000));
    rounds.push({
      capacityPerSec: capacity.requestsPerSec,
      unloaded,
      withJob,
      jobRowsPerSecAlone: ((a1.done - a0.done) / (a1.t - a0.t)) * 1000,
      jobRowsPerSecUnderLoad: ((a2.done - a1.done) / (a2.t - a1.t)) * 1000,
      jobOutlastedWindows: stillRunning,
    });
    const r = rounds[rounds.length - 1];
    console.log(
      `round ${round + 1}: capacity ${r.capacityPerSec.toFixed(0)} req/s | online p50/p99 ${unloaded.p50Ms.toFixed(2)}/${unloaded.p99Ms.toFixed(2)} ms (${unloaded.requestsPerSec.toFixed(0)} req/s) -> ${withJob.p50Ms.toFixed(2)}/${withJob.p99Ms.toFixed(2)} ms (${withJob.requestsPerSec.toFixed(0)} req/s) with the job | job ${r.jobRowsPerSecAlone.toFixed(0)} rows/s alone, ${r.jobRowsPerSecUnderLoad.toFixed(0)} under online load${stillRunning ? '' : ' (job ended early: raise --rows)'}`,
    );
  }

  const med = (f: (r: Round) => number) => median(rounds.map(f));
  const report = {
    machine: describeMachine(),
    settings: {
      strategy: STRATEGY || 'default',
      rows: ROWS,
      seconds: SECONDS,
      rounds: ROUNDS,
      onlineClients: ONLINE,
      capacityClients: CAPACITY_CLIENTS,
      rowConcurrency: ROW_CONCURRENCY,
      chunkSize: CHUNK,
      slots: config.executor.slots,
    },
    medians: {
      onlineCapacityPerSec: med((r) => r.capacityPerSec),
      onlineUnloaded: {
        p50Ms: med((r) => r.unloaded.p50Ms),
        p99Ms: med((r) => r.unloaded.p99Ms),
        perSec: med((r) => r.unloaded.requestsPerSec),
      },
      onlineWithJob: {
        p50Ms: med((r) => r.withJob.p50Ms),
        p99Ms: med((r) => r.withJob.p99Ms),
        perSec: med((r) => r.withJob.requestsPerSec),
      },
      p50Ratio: med((r) => r.withJob.p50Ms / r.unloaded.p50Ms),
      p99Ratio: med((r) => r.withJob.p99Ms / r.unloaded.p99Ms),
      jobRowsPerSecAlone: med((r) => r.jobRowsPerSecAlone),
      jobRowsPerSecUnderOnlineLoad: med((r) => r.jobRowsPerSecUnderLoad),
      jobAloneVsOnlineCapacity: med((r) => r.jobRowsPerSecAlone / r.capacityPerSec),
    },
    rounds: rounds.map((r) => ({ ...r, unloaded: summary(r.unloaded), withJob: summary(r.withJob) })),
  };
  const m = report.medians;
  console.log(
    `\nmedians over ${ROUNDS} rounds (${os.availableParallelism()} cores, ${config.executor.slots} slots, rowConcurrency ${ROW_CONCURRENCY}, strategy ${STRATEGY || 'default'}):`,
  );
  console.log(`  online capacity            ${m.onlineCapacityPerSec.toFixed(0)} req/s (${CAPACITY_CLIENTS} closed-loop clients)`);
  console.log(
    `  online p50 / p99, no job   ${m.onlineUnloaded.p50Ms.toFixed(2)} / ${m.onlineUnloaded.p99Ms.toFixed(2)} ms, ${m.onlineUnloaded.perSec.toFixed(0)} req/s (${ONLINE} closed-loop clients)`,
  );
  console.log(
    `  online p50 / p99, job      ${m.onlineWithJob.p50Ms.toFixed(2)} / ${m.onlineWithJob.p99Ms.toFixed(2)} ms, ${m.onlineWithJob.perSec.toFixed(0)} req/s  (x${m.p50Ratio.toFixed(2)} / x${m.p99Ratio.toFixed(2)})`,
  );
  console.log(
    `  job rows/s alone           ${m.jobRowsPerSecAlone.toFixed(0)} (${(m.jobAloneVsOnlineCapacity * 100).toFixed(0)}% of online capacity)`,
  );
  console.log(`  job rows/s under online    ${m.jobRowsPerSecUnderOnlineLoad.toFixed(0)}`);
  console.log(JSON.stringify(report, null, 2));
} finally {
  await cleanup();
}

interface Round {
  capacityPerSec: number;
  unloaded: LoadResult;
  withJob: LoadResult;
  jobRowsPerSecUnderLoad: number;
  jobRowsPerSecAlone: number;
  jobOutlastedWindows: boolean;
}

function summary(r: LoadResult) {
  return {
    requests: r.requests,
    errors: r.errors,
    perSec: r.requestsPerSec,
    p50Ms: r.p50Ms,
    p90Ms: r.p90Ms,
    p99Ms: r.p99Ms,
    maxMs: r.maxMs,
  };
}
