// strategies suite: the three scheduling strategies (stateless, stateful, event) on one mixed workload, each on a
// fresh Hearth node with every model set to that strategy (PUT /v1/models/{name}/config). The workload:
//   hot       silero VAD under a saturating closed loop of low-priority (1) callers — bulk traffic — plus
//             interactive high-priority (8) calls arriving as a Poisson stream
//   lukewarm  three copies of the CNN fixture, each a Poisson stream at high priority, with a short keep-alive
//             so that some of their calls find a warm instance and some start cold
//   cold      models uploaded but never called before, each called once at a random time (high priority)
// Reported per strategy: p50/p99 per priority class and per group, cold starts, and requests answered per second.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Manifest } from '../../core/index.ts';
import { encodeInferRequest } from '../../protocol/index.ts';
import { seededRandom } from '../lib/azure-trace.ts';
import { cnnModel, sileroInputs, sileroModel, uploadModel, type BenchModel } from '../lib/bench-models.ts';
import { httpCall, startHearth, type ChildServer } from '../lib/child-server.ts';
import { runLoad } from '../lib/load-generator.ts';
import { summarize } from '../lib/percentiles.ts';
import type { Progress } from '../lib/progress.ts';
import type { BenchMode, StrategyClassRow, StrategyRow } from '../report/report.ts';

export interface StrategiesOptions {
  mode: BenchMode;
  progress: Progress;
  notes: string[];
}

export const STRATEGIES = ['stateless', 'stateful', 'event'] as const;

// warmupMs: the bulk callers run alone first, uncounted, so the hot pool has grown to its size before the
// measured window (a fresh node otherwise spends its first seconds starting instances).
const SIZES: Record<
  BenchMode,
  { durationMs: number; warmupMs: number; bulkConcurrency: number; hotRate: number; lukewarm: number; lukewarmRate: number; cold: number }
> = {
  full: { durationMs: 20_000, warmupMs: 4_000, bulkConcurrency: 8, hotRate: 40, lukewarm: 3, lukewarmRate: 1, cold: 4 },
  quick: { durationMs: 5_000, warmupMs: 2_500, bulkConcurrency: 8, hotRate: 40, lukewarm: 2, lukewarmRate: 1, cold: 2 },
  smoke: { durationMs: 3_000, warmupMs: 1_500, bulkConcurrency: 4, hotRate: 20, lukewarm: 1, lukewarmRate: 2, cold: 1 },
};

const HIGH = 8;
const LOW = 1;
const LUKEWARM_KEEP_ALIVE_MS = 1_500;

interface Sample {
  group: 'hot' | 'lukewarm' | 'cold';
  priority: number;
  ms: number;
  ok: boolean;
  coldStart: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Open-loop arrivals: each call is sent at its scheduled time whether or not earlier ones have answered. */
async function openLoop(schedule: Array<{ at: number; send: () => Promise<Sample> }>, t0: number, out: Sample[]): Promise<void> {
  const pending: Promise<void>[] = [];
  for (const item of schedule) {
    const wait = t0 + item.at - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(item.send().then((s) => void out.push(s)));
  }
  await Promise.all(pending);
}

function classRow(samples: Sample[]): StrategyClassRow {
  const ok = samples.filter((s) => s.ok).map((s) => s.ms);
  const s = summarize(ok);
  return { requests: ok.length, errors: samples.length - ok.length, p50Ms: s.p50Ms, p99Ms: s.p99Ms };
}

async function coldStartTotal(base: string): Promise<number> {
  const s = JSON.parse((await httpCall(`${base}/v2/models/stats`, 'GET')).text) as {
    model_stats?: Array<{ cold_start?: { count: number } }>;
  };
  return (s.model_stats ?? []).reduce((n, m) => n + (m.cold_start?.count ?? 0), 0);
}

async function runOne(
  strategy: string,
  silero: BenchModel,
  cnn: BenchModel,
  size: (typeof SIZES)[BenchMode],
  seed: number,
  notes: string[],
): Promise<StrategyRow> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `hearth-bench-strat-${strategy}-`));
  let hearth: ChildServer | undefined;
  try {
    hearth = await startHearth(dataDir);
    const base = hearth.url;
    const upload = async (m: BenchModel, name: string, config: Record<string, unknown>): Promise<Manifest> => {
      const manifest = await uploadModel(base, m, name);
      await httpCall(`${base}/v1/models/${name}/config`, 'PUT', JSON.stringify({ scheduling: { strategy }, ...config }));
      return manifest;
    };
    await upload(silero, 'hot', {});
    const cnnManifest = await upload(cnn, 'lukewarm-1', { keepAlive: { kind: 'fixed', idleMs: LUKEWARM_KEEP_ALIVE_MS } });
    for (let i = 2; i <= size.lukewarm; i++)
      await upload(cnn, `lukewarm-${i}`, { keepAlive: { kind: 'fixed', idleMs: LUKEWARM_KEEP_ALIVE_MS } });
    for (let i = 1; i <= size.cold; i++) await upload(silero, `cold-${i}`, {});

    const hotBodies = Array.from({ length: 8 }, (_, i) => encodeInferRequest({ inputs: sileroInputs(i + 1) }).body);
    const cnnBody = encodeInferRequest({ inputs: cnn.inputs(cnnManifest.inputs) }).body;
    // Warm the hot model and the lukewarm ones once, so the run starts from a steady state.
    await httpCall(`${base}/v2/models/hot/infer`, 'POST', hotBodies[0]);
    for (let i = 1; i <= size.lukewarm; i++) await httpCall(`${base}/v2/models/lukewarm-${i}/infer`, 'POST', cnnBody);

    const call = (group: Sample['group'], model: string, body: Buffer, priority: number) => async (): Promise<Sample> => {
      const t0 = performance.now();
      try {
        const res = await fetch(`${base}/v2/models/${model}/infer`, {
          method: 'POST',
          body: new Uint8Array(body),
          headers: { 'content-type': 'application/json', 'hearth-priority': String(priority) },
        });
        await res.arrayBuffer();
        return { group, priority, ms: performance.now() - t0, ok: res.ok, coldStart: res.headers.get('hearth-cold-start') === 'true' };
      } catch {
        return { group, priority, ms: performance.now() - t0, ok: false, coldStart: false };
      }
    };

    // The arrival schedule is drawn from a seeded generator, so every strategy sees the same calls at the same times.
    const rand = seededRandom(seed);
    const exp = (ratePerSec: number) => (-Math.log(1 - rand()) * 1000) / ratePerSec;
    const schedule: Array<{ at: number; send: () => Promise<Sample> }> = [];
    for (let t = exp(size.hotRate); t < size.durationMs; t += exp(size.hotRate))
      schedule.push({ at: t, send: call('hot', 'hot', hotBodies[schedule.length % 8], HIGH) });
    for (let i = 1; i <= size.lukewarm; i++) {
      for (let t = exp(size.lukewarmRate); t < size.durationMs; t += exp(size.lukewarmRate))
        schedule.push({ at: t, send: call('lukewarm', `lukewarm-${i}`, cnnBody, HIGH) });
    }
    for (let i = 1; i <= size.cold; i++)
      schedule.push({ at: rand() * size.durationMs * 0.9, send: call('cold', `cold-${i}`, hotBodies[i % 8], HIGH) });
    schedule.sort((a, b) => a.at - b.at);

    const samples: Sample[] = [];
    let coldBefore = 0;
    let t0 = 0;
    const [bulk] = await Promise.all([
      runLoad({
        url: `${base}/v2/models/hot/infer`,
        bodies: hotBodies,
        concurrency: size.bulkConcurrency,
        durationMs: size.durationMs,
        warmupMs: size.warmupMs,
        headers: { 'content-type': 'application/json', 'hearth-priority': String(LOW) },
      }),
      (async () => {
        await sleep(size.warmupMs);
        coldBefore = await coldStartTotal(base);
        t0 = performance.now();
        await openLoop(schedule, t0, samples);
      })(),
    ]);
    const elapsedMs = performance.now() - t0;
    const coldStarts = (await coldStartTotal(base)) - coldBefore;
    if (bulk.errors) notes.push(`strategies ${strategy}: ${bulk.errors} low-priority bulk calls failed, e.g. ${bulk.errorSamples[0]}`);
    const failed = samples.filter((s) => !s.ok).length;
    if (failed) notes.push(`strategies ${strategy}: ${failed} of ${samples.length} open-loop calls failed`);

    const high = classRow(samples.filter((s) => s.priority === HIGH));
    const low: StrategyClassRow = {
      requests: bulk.requests,
      errors: bulk.errors,
      p50Ms: Math.round(bulk.p50Ms * 1000) / 1000,
      p99Ms: Math.round(bulk.p99Ms * 1000) / 1000,
    };
    const groups: StrategyRow['groups'] = {};
    for (const g of ['hot', 'lukewarm', 'cold'] as const) {
      const gs = samples.filter((s) => s.group === g);
      groups[`${g} (high)`] = { ...classRow(gs), coldStartRequests: gs.filter((s) => s.coldStart).length };
    }
    // The bulk callers' answers are not inspected one by one (closed-loop load generator), so their cold waits are not known.
    groups['hot (low, bulk)'] = { ...low };
    const requests = high.requests + low.requests;
    return {
      strategy,
      throughput: Math.round((requests / (elapsedMs / 1000)) * 10) / 10,
      requests,
      errors: high.errors + low.errors,
      coldStarts,
      high,
      low,
      groups,
      durationMs: Math.round(elapsedMs),
    };
  } finally {
    await hearth?.stop();
    await fs.rm(dataDir, { recursive: true, force: true }).catch(() => {});
  }
}

export async function runStrategiesSuite(opts: StrategiesOptions): Promise<{ rows: StrategyRow[]; details: Record<string, unknown> }> {
  const size = SIZES[opts.mode];
  opts.progress.beginSuite('strategies', STRATEGIES.length);
  const silero = await sileroModel();
  const cnn = await cnnModel();
  const rows: StrategyRow[] = [];
  try {
    for (const strategy of STRATEGIES) {
      opts.progress.step(`${strategy}: ${size.durationMs / 1000} s of mixed traffic`);
      try {
        rows.push(await runOne(strategy, silero, cnn, size, 7, opts.notes));
      } catch (e) {
        opts.notes.push(`strategies ${strategy} failed: ${(e as Error).message}`);
        opts.progress.note(`${strategy} failed: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  } finally {
    opts.progress.endSuite();
  }
  return {
    rows,
    details: {
      ...size,
      highPriority: HIGH,
      lowPriority: LOW,
      lukewarmKeepAliveMs: LUKEWARM_KEEP_ALIVE_MS,
      workload:
        `Each strategy on a fresh node for ${size.durationMs / 1000} s after a ${size.warmupMs / 1000} s uncounted warm-up of the bulk callers: silero "hot" under ${size.bulkConcurrency} closed-loop low-priority (${LOW}) callers ` +
        `plus Poisson high-priority (${HIGH}) calls at ${size.hotRate}/s; ${size.lukewarm} CNN "lukewarm" models at ${size.lukewarmRate}/s each with a ${LUKEWARM_KEEP_ALIVE_MS} ms keep-alive; ` +
        `${size.cold} never-called silero copies each called once ("cold"). The same seeded arrival schedule for every strategy. Latency is client-observed over HTTP JSON.`,
    },
  };
}
