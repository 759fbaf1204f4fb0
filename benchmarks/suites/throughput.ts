// throughput suite, in the style of Triton's perf_analyzer: closed-loop clients at each concurrency level,
// for silero VAD and the CNN fixture, over V2 JSON and the binary extension, against three servers that take
// turns within each level so that drift in the machine hits all of them alike:
//   raw      a session.run loop in this process (one session, one intra-op thread, no HTTP): the ceiling
//   minimal  the hand-rolled fastify + onnxruntime-node server (benchmarks/lib/minimal-server.ts), JSON only
//   hearth   a Hearth node in its own process, default model config
// Hearth's own split of each request into queue and compute comes from its Triton statistics, read before and
// after each measurement (the same figures as the hearth-queue-ms / hearth-compute-ms headers, summed).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import type { Manifest, Tensor } from '../../core/index.ts';
import { encodeInferRequest } from '../../protocol/index.ts';
import { cnnModel, sileroInputs, sileroModel, toOrtFeeds, uploadModel, type BenchModel } from '../lib/bench-models.ts';
import { httpCall, startHearth, startMinimal, type ChildServer } from '../lib/child-server.ts';
import { runLoad, type LoadResult } from '../lib/load-generator.ts';
import { summarize } from '../lib/percentiles.ts';
import type { Progress } from '../lib/progress.ts';
import type { BenchMode, ThroughputRow } from '../report/report.ts';

export interface ThroughputOptions {
  mode: BenchMode;
  progress: Progress;
  notes: string[];
}

const SIZES: Record<BenchMode, { levels: number[]; durationMs: number; warmupMs: number }> = {
  full: { levels: [1, 2, 4, 8, 16, 32, 64], durationMs: 3_000, warmupMs: 500 },
  quick: { levels: [1, 4, 16], durationMs: 1_200, warmupMs: 250 },
  smoke: { levels: [1, 16], durationMs: 600, warmupMs: 200 },
};

/** A closed loop of `concurrency` callers on one session, for `durationMs` after `warmupMs`. */
async function rawLoop(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>[],
  concurrency: number,
  durationMs: number,
  warmupMs: number,
): Promise<Omit<ThroughputRow, 'server' | 'model' | 'protocol' | 'concurrency'>> {
  const start = performance.now();
  const countFrom = start + warmupMs;
  const end = countFrom + durationMs;
  const latencies: number[] = [];
  let errors = 0;
  let seq = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const t0 = performance.now();
        if (t0 >= end) return;
        try {
          await session.run(feeds[seq++ % feeds.length]);
          if (t0 >= countFrom) latencies.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  const seconds = (Math.max(performance.now(), end) - countFrom) / 1000;
  const s = summarize(latencies);
  return {
    inferPerSec: Math.round((latencies.length / seconds) * 10) / 10,
    p50Ms: s.p50Ms,
    p90Ms: s.p90Ms,
    p95Ms: s.p95Ms,
    p99Ms: s.p99Ms,
    requests: latencies.length,
    errors,
  };
}

interface TritonStats {
  model_stats?: Array<{
    inference_count?: number;
    execution_count?: number;
    inference_stats?: Record<string, { count: number; ns: number }>;
  }>;
}

async function hearthStats(
  base: string,
  model: string,
): Promise<{ queue: { count: number; ns: number }; compute: { count: number; ns: number }; inferences: number; executions: number }> {
  const s = JSON.parse((await httpCall(`${base}/v2/models/${model}/stats`, 'GET')).text) as TritonStats;
  const zero = { count: 0, ns: 0 };
  const ms = s.model_stats ?? [];
  const sum = (k: string) =>
    ms.reduce((a, m) => ({ count: a.count + (m.inference_stats?.[k]?.count ?? 0), ns: a.ns + (m.inference_stats?.[k]?.ns ?? 0) }), zero);
  return {
    queue: sum('queue'),
    compute: sum('compute_infer'),
    inferences: ms.reduce((a, m) => a + (m.inference_count ?? 0), 0),
    executions: ms.reduce((a, m) => a + (m.execution_count ?? 0), 0),
  };
}

function fromLoad(r: LoadResult): Omit<ThroughputRow, 'server' | 'model' | 'protocol' | 'concurrency'> {
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return {
    inferPerSec: Math.round(r.inferencesPerSec * 10) / 10,
    p50Ms: r3(r.p50Ms),
    p90Ms: r3(r.p90Ms),
    p95Ms: r3(r.p95Ms),
    p99Ms: r3(r.p99Ms),
    requests: r.requests,
    errors: r.errors,
  };
}

interface Target {
  model: BenchModel;
  manifest: Manifest;
  /** A few distinct requests, used round-robin. */
  inputs: Tensor[][];
  json: Buffer[];
  binary: Buffer[];
  binaryHeaderLengths: number[];
  session: ort.InferenceSession;
  feeds: Record<string, ort.Tensor>[];
  minimal?: ChildServer;
}

export async function runThroughputSuite(opts: ThroughputOptions): Promise<{ rows: ThroughputRow[]; details: Record<string, unknown> }> {
  const size = SIZES[opts.mode];
  const { progress, notes } = opts;
  const models = [await sileroModel(), await cnnModel()];
  // Per level and model: raw, minimal (JSON), hearth JSON, hearth binary.
  progress.beginSuite('throughput', size.levels.length * models.length * 4 + 1);
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-bench-tput-'));
  let hearth: ChildServer | undefined;
  const targets: Target[] = [];
  const rows: ThroughputRow[] = [];
  const batchSizes: Record<string, number> = {};
  try {
    progress.step('starting servers and uploading models');
    hearth = await startHearth(dataDir);
    for (const model of models) {
      const manifest = await uploadModel(hearth.url, model);
      const inputs =
        model.label === 'silero-vad' ? Array.from({ length: 8 }, (_, i) => sileroInputs(i + 1)) : [model.inputs(manifest.inputs)];
      const encodedBin = inputs.map((i) =>
        encodeInferRequest({ inputs: i, parameters: { binary_data_output: true } }, { binaryInputs: true }),
      );
      const session = await ort.InferenceSession.create(model.onnxFile!, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
      let minimal: ChildServer | undefined;
      try {
        minimal = await startMinimal(model.onnxFile!);
      } catch (e) {
        notes.push(`throughput: the minimal server did not start for ${model.label}: ${(e as Error).message.split('\n')[0]}`);
      }
      targets.push({
        model,
        manifest,
        inputs,
        json: inputs.map((i) => encodeInferRequest({ inputs: i }).body),
        binary: encodedBin.map((e) => e.body),
        binaryHeaderLengths: encodedBin.map((e) => e.headerLength ?? 0),
        session,
        feeds: inputs.map(toOrtFeeds),
        minimal,
      });
      // One warm-up call each, so the first measurement does not include a cold start.
      await httpCall(`${hearth.url}/v2/models/${model.name}/infer`, 'POST', targets.at(-1)!.json[0]);
    }
    notes.push('throughput: the minimal server speaks V2 JSON only (as a hand-rolled server would); binary rows compare hearth with raw.');

    for (const c of size.levels) {
      for (const t of targets) {
        const label = t.model.label;
        progress.step(`c=${c} ${label}: raw session.run`);
        rows.push({
          server: 'raw',
          model: label,
          protocol: 'none',
          concurrency: c,
          ...(await rawLoop(t.session, t.feeds, c, size.durationMs, size.warmupMs)),
        });

        progress.step(`c=${c} ${label}: minimal (JSON)`);
        if (t.minimal) {
          const r = await runLoad({
            url: `${t.minimal.url}/v2/models/vad/infer`,
            bodies: t.json,
            concurrency: c,
            durationMs: size.durationMs,
            warmupMs: size.warmupMs,
          });
          rows.push({ server: 'minimal', model: label, protocol: 'json', concurrency: c, ...fromLoad(r) });
          if (r.errors) notes.push(`throughput minimal ${label} c=${c}: ${r.errors} errors, e.g. ${r.errorSamples[0]}`);
        }

        for (const protocol of ['json', 'binary'] as const) {
          progress.step(`c=${c} ${label}: hearth (${protocol})`);
          const before = await hearthStats(hearth.url, t.model.name);
          // Binary requests share one header length only when every body has the same JSON header; they do here
          // (same names, shapes and sizes), which the check below makes sure of.
          const headerLength = t.binaryHeaderLengths[0];
          const bodies = protocol === 'json' ? t.json : t.binary.filter((_, i) => t.binaryHeaderLengths[i] === headerLength);
          const r = await runLoad({
            url: `${hearth.url}/v2/models/${t.model.name}/infer`,
            bodies,
            concurrency: c,
            durationMs: size.durationMs,
            warmupMs: size.warmupMs,
            headers:
              protocol === 'json'
                ? { 'content-type': 'application/json' }
                : { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) },
          });
          const after = await hearthStats(hearth.url, t.model.name);
          const dq = after.queue.count - before.queue.count;
          const dc = after.compute.count - before.compute.count;
          const row: ThroughputRow = { server: 'hearth', model: label, protocol, concurrency: c, ...fromLoad(r) };
          if (dq > 0) row.serverQueueMs = Math.round(((after.queue.ns - before.queue.ns) / dq / 1e6) * 1000) / 1000;
          if (dc > 0) row.serverComputeMs = Math.round(((after.compute.ns - before.compute.ns) / dc / 1e6) * 1000) / 1000;
          const runs = after.executions - before.executions;
          if (runs > 0) batchSizes[`${label}/${protocol}/c${c}`] = Math.round(((after.inferences - before.inferences) / runs) * 100) / 100;
          rows.push(row);
          if (r.errors) notes.push(`throughput hearth ${label} ${protocol} c=${c}: ${r.errors} errors, e.g. ${r.errorSamples[0]}`);
        }
      }
    }
  } finally {
    for (const t of targets) {
      await t.minimal?.stop();
      await t.session.release().catch(() => {});
    }
    await hearth?.stop();
    await fs.rm(dataDir, { recursive: true, force: true }).catch(() => {});
    progress.endSuite();
  }
  return {
    rows,
    details: {
      durationMs: size.durationMs,
      warmupMs: size.warmupMs,
      levels: size.levels,
      hearthMeanBatchSize: batchSizes,
      raw: 'one onnxruntime session (intraOpNumThreads 1) in the benchmark process, `concurrency` callers awaiting session.run in a closed loop',
      minimal:
        'benchmarks/lib/minimal-server.ts in its own process: fastify + onnxruntime-node, V2 JSON, one session, no pool, no batching',
      hearth: 'benchmarks/lib/hearth-server.ts (createHearth) in its own process, default model config',
    },
  };
}
