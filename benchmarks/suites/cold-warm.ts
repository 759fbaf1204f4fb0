// cold-warm suite: what a user sees over HTTP for each model — a cold start with the artifact fetched from
// the store, a cold start from the node cache, and warm calls — with the server's own breakdown of each cold
// start (queue, worker acquire, artifact fetch, session create, first run). Hearth runs in its own process
// (createHearth + listen on port 0). A direct onnxruntime session in this process gives the raw figures to
// compare with: session create, first run and session.run p50.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import type { Tensor } from '../../core/index.ts';
import { encodeInferRequest } from '../../protocol/index.ts';
import { largeOnnxModel, sileroModel, toOrtFeeds, uploadModel, upscalerModel, userModel, type BenchModel } from '../lib/bench-models.ts';
import { httpCall, startHearth, type ChildServer } from '../lib/child-server.ts';
import { runLoad } from '../lib/load-generator.ts';
import { median, summarize } from '../lib/percentiles.ts';
import type { Progress } from '../lib/progress.ts';
import type { BenchMode, ColdStartBreakdownMs, ColdWarmRow } from '../report/report.ts';
import type { ExecutorCostModel } from './keep-alive.ts';

export interface ColdWarmOptions {
  mode: BenchMode;
  extraModels: string[];
  progress: Progress;
  notes: string[];
}

const SIZES: Record<
  BenchMode,
  { reps: number; warmCalls: number; models: Array<'silero' | 'upscaler' | 'large'>; largeMb: number; rawRuns: number }
> = {
  full: { reps: 7, warmCalls: 1000, models: ['silero', 'upscaler', 'large'], largeMb: 50, rawRuns: 1000 },
  quick: { reps: 5, warmCalls: 200, models: ['silero', 'upscaler', 'large'], largeMb: 50, rawRuns: 300 },
  // CI smoke: the same steps on the two smallest models (still 5 reps and 200 warm calls).
  smoke: { reps: 5, warmCalls: 200, models: ['silero', 'large'], largeMb: 5, rawRuns: 200 },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Pause between unloading a model and its next cold call: the node refills its pre-spawned workers meanwhile. */
const PAUSE_MS = 600;

interface ColdSample {
  clientMs: number;
  coldStart: boolean;
  source?: string;
  parts: ColdStartBreakdownMs;
}

/** Parses `acquire=1.2;fetch=3.4;source=cache;load=20.1;first-run=0.9`. */
export function parseBreakdown(header: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of (header ?? '').split(';')) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
  }
  return out;
}

/** Deletes the node cache's folder for an artifact (named by its sha256, at most two levels under cacheDir). */
export async function removeCacheEntry(cacheDir: string, sha256: string, depth = 2): Promise<number> {
  let removed = 0;
  const entries = await fs.readdir(cacheDir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const full = path.join(cacheDir, e.name);
    if (e.name === sha256) {
      await fs.rm(full, { recursive: true, force: true });
      removed++;
    } else if (depth > 0 && e.name !== 'staging') {
      removed += await removeCacheEntry(full, sha256, depth - 1);
    }
  }
  return removed;
}

async function coldCall(base: string, model: string, body: Buffer): Promise<ColdSample> {
  const r = await httpCall(`${base}/v2/models/${model}/infer`, 'POST', body, 'application/json');
  const h = r.headers;
  const b = parseBreakdown(h.get('hearth-cold-start-breakdown'));
  const num = (v: string | null | undefined) => (v === null || v === undefined || v === '' ? NaN : Number(v));
  const acquireMs = num(b.acquire);
  const fetchMs = num(b.fetch);
  const loadMs = num(b.load);
  const firstRunMs = num(b['first-run'] ?? h.get('hearth-compute-ms'));
  const queueTotal = num(h.get('hearth-queue-ms'));
  // hearth-queue-ms runs from arrival to the start of the run, so it holds acquire, fetch and load too.
  const queueMs = Math.max(0, queueTotal - (acquireMs || 0) - (fetchMs || 0) - (loadMs || 0));
  const server = queueMs + (acquireMs || 0) + (fetchMs || 0) + (loadMs || 0) + (firstRunMs || 0);
  return {
    clientMs: r.ms,
    coldStart: h.get('hearth-cold-start') === 'true',
    source: b.source,
    parts: { queueMs, acquireMs, fetchMs, loadMs, firstRunMs, otherMs: Math.max(0, r.ms - server) },
  };
}

function medianParts(samples: ColdSample[]): ColdStartBreakdownMs {
  const keys = ['queueMs', 'acquireMs', 'fetchMs', 'loadMs', 'firstRunMs', 'otherMs'] as const;
  const out = {} as ColdStartBreakdownMs;
  for (const k of keys) out[k] = Math.round(median(samples.map((s) => s.parts[k]).filter(Number.isFinite)) * 1000) / 1000;
  return out;
}

/** Session create, first run and session.run percentiles on a direct onnxruntime session, in this process. */
async function rawOnnx(file: string, inputs: Tensor[], runs: number): Promise<NonNullable<ColdWarmRow['raw']>> {
  const creates: number[] = [];
  const firsts: number[] = [];
  const feeds = toOrtFeeds(inputs);
  let session: ort.InferenceSession | undefined;
  for (let i = 0; i < 3; i++) {
    await session?.release();
    const t0 = performance.now();
    session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const t1 = performance.now();
    await session.run(feeds);
    const t2 = performance.now();
    creates.push(t1 - t0);
    firsts.push(t2 - t1);
  }
  const times: number[] = [];
  for (let i = 0; i < Math.max(10, runs / 10); i++) await session!.run(feeds);
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await session!.run(feeds);
    times.push(performance.now() - t0);
  }
  await session!.release();
  const s = summarize(times);
  return {
    sessionCreateMs: Math.round(median(creates) * 1000) / 1000,
    firstRunMs: Math.round(median(firsts) * 1000) / 1000,
    runP50Ms: s.p50Ms,
    runP99Ms: s.p99Ms,
  };
}

export async function runColdWarmSuite(opts: ColdWarmOptions): Promise<{ rows: ColdWarmRow[]; costModels: ExecutorCostModel[] }> {
  const size = SIZES[opts.mode];
  const { progress, notes } = opts;
  const models: BenchModel[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  for (const m of size.models) {
    if (m === 'silero') models.push(await sileroModel());
    if (m === 'upscaler') models.push(await upscalerModel());
    if (m === 'large') {
      const large = await largeOnnxModel(size.largeMb);
      cleanups.push(large.cleanup);
      models.push(large);
    }
  }
  for (const [i, file] of opts.extraModels.entries()) {
    try {
      models.push(await userModel(file, i + 1));
    } catch (e) {
      notes.push(`cold-warm: --model ${file} skipped: ${(e as Error).message}`);
    }
  }
  progress.beginSuite('cold-warm', models.length * 4);

  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-bench-cold-'));
  const cacheDir = path.join(dataDir, 'cache');
  let hearth: ChildServer | undefined;
  const rows: ColdWarmRow[] = [];
  const costModels: ExecutorCostModel[] = [];
  try {
    hearth = await startHearth(dataDir);
    const base = hearth.url;
    for (const model of models) {
      try {
        progress.step(`${model.label}: upload (${(model.sizeBytes / 1024 / 1024).toFixed(1)} MB)`);
        const manifest = await uploadModel(base, model);
        const inputs = model.inputs(manifest.inputs);
        const body = encodeInferRequest({ inputs }).body;

        // A rep counts only when the server says it was the wanted kind of cold start (hearth-cold-start and the
        // breakdown's source); others are retried, up to as many extra attempts as reps, and reported.
        const coldReps = async (want: 'store' | 'cache'): Promise<ColdSample[]> => {
          const samples: ColdSample[] = [];
          let attempts = 0;
          while (samples.length < size.reps && attempts < size.reps * 2) {
            attempts++;
            await httpCall(`${base}/v2/repository/models/${model.name}/unload`, 'POST');
            if (want === 'store') await removeCacheEntry(cacheDir, manifest.sha256);
            // Let the node refill its pre-spawned workers, as it would between real cold starts.
            await sleep(PAUSE_MS);
            const s = await coldCall(base, model.name, body);
            if (s.coldStart && s.source === want) samples.push(s);
            else
              notes.push(
                `cold-warm ${model.label}: a "cold from ${want}" attempt came back as ${s.coldStart ? `cold from ${s.source}` : 'warm'} and was repeated`,
              );
          }
          if (samples.length < size.reps)
            notes.push(
              `cold-warm ${model.label}: only ${samples.length} of ${size.reps} cold starts from the ${want} in ${attempts} attempts`,
            );
          if (samples.length === 0) throw new Error(`no cold start from the ${want} in ${attempts} attempts`);
          return samples;
        };
        // The autoscaler keeps a recently used pool warm for its keep-alive window, and would start the instance
        // again right after the unload; a keep-alive of 0 during the cold phases lets the pool stay at zero.
        await httpCall(`${base}/v1/models/${model.name}/config`, 'PUT', JSON.stringify({ keepAlive: { kind: 'fixed', idleMs: 0 } }));
        progress.step(`${model.label}: ${size.reps} cold starts from the store`);
        const fromStore = await coldReps('store');
        progress.step(`${model.label}: ${size.reps} cold starts from the cache`);
        const fromCache = await coldReps('cache');

        await httpCall(`${base}/v1/models/${model.name}/config`, 'PUT', JSON.stringify({ keepAlive: { kind: 'fixed', idleMs: 600_000 } }));
        progress.step(`${model.label}: ≥${size.warmCalls} warm calls`);
        // Estimate one call, then run long enough for the wanted count (closed loop, one client).
        const probe: number[] = [];
        for (let i = 0; i < 5; i++) probe.push((await httpCall(`${base}/v2/models/${model.name}/infer`, 'POST', body)).ms);
        const est = Math.max(0.2, median(probe));
        // The probe goes through fetch, which costs more than the load generator's raw socket: cap the first pass
        // and let the second one (below) size itself from the pace actually measured.
        let durationMs = Math.min(10_000, Math.max(1_000, est * size.warmCalls * 1.5));
        let warm = await runLoad({
          url: `${base}/v2/models/${model.name}/infer`,
          bodies: [body],
          concurrency: 1,
          durationMs,
          warmupMs: Math.min(500, est * 20),
        });
        if (warm.requests < size.warmCalls && warm.requests > 0) {
          // The probe underestimated a call: measure again, long enough for the count at the pace just seen.
          durationMs = Math.min(120_000, (durationMs / warm.requests) * size.warmCalls * 1.3);
          warm = await runLoad({ url: `${base}/v2/models/${model.name}/infer`, bodies: [body], concurrency: 1, durationMs, warmupMs: 200 });
        }
        if (warm.errors) notes.push(`cold-warm ${model.label}: ${warm.errors} warm calls failed: ${warm.errorSamples[0] ?? ''}`);
        if (warm.requests < size.warmCalls)
          notes.push(
            `cold-warm ${model.label}: only ${warm.requests} warm calls fit in ${Math.round(durationMs)} ms (wanted ${size.warmCalls})`,
          );

        const raw = model.onnxFile ? await rawOnnx(model.onnxFile, inputs, size.rawRuns) : undefined;
        const row: ColdWarmRow = {
          model: model.label,
          format: manifest.format,
          sizeBytes: manifest.sizeBytes,
          coldFromStoreMs: Math.round(median(fromStore.map((s) => s.clientMs)) * 1000) / 1000,
          coldFromCacheMs: Math.round(median(fromCache.map((s) => s.clientMs)) * 1000) / 1000,
          warmP50Ms: Math.round(warm.p50Ms * 1000) / 1000,
          warmP95Ms: Math.round(warm.p95Ms * 1000) / 1000,
          warmP99Ms: Math.round(warm.p99Ms * 1000) / 1000,
          breakdown: { store: medianParts(fromStore), cache: medianParts(fromCache) },
          coldReps: size.reps,
          warmCalls: warm.requests,
          ...(raw ? { raw } : {}),
        };
        rows.push(row);
        costModels.push({
          model: row.model,
          coldFromStoreMs: row.coldFromStoreMs,
          coldFromCacheMs: row.coldFromCacheMs,
          serviceMs: row.warmP50Ms,
        });
      } catch (e) {
        notes.push(`cold-warm ${model.label} failed: ${(e as Error).message}`);
        progress.note(`${model.label} failed: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  } finally {
    await hearth?.stop();
    for (const c of cleanups) await c().catch(() => {});
    await fs.rm(dataDir, { recursive: true, force: true }).catch(() => {});
    progress.endSuite();
  }
  return { rows, costModels };
}
