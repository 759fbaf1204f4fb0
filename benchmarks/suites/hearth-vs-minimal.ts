// Same-run throughput comparison, silero VAD over HTTP JSON at concurrency 16: the hand-rolled fastify +
// onnxruntime-node server (benchmarks/lib/minimal-server.ts) against Hearth with batching on and off and with
// each scheduling strategy. Servers run in their own processes; the variants take turns, round after round,
// so drifting machine load hits them alike. Prints throughput, p50/p99 and the ratio hearth/minimal.
//   npm run bench -- --suite hearth-vs-minimal [--duration 5000] [--warmup 1000] [--prewarm 3000] [--rounds 2] [--concurrency 16]
//     [--variants minimal,batch-on,batch-off,batch-delay,stateful,event,event-defer-1k] [--delay 1] (batch-delay's maxQueueDelayMs) [--min-instances N] [--max-instances N] [--max-batch 16]
//     [--instance-concurrency N] (runs sent to one instance at once) [--idle-models N] (extra warmed, then idle, models)
//     [--prof DIR] (DIR/hearth-main-N: the Hearth main thread over each measured window; DIR/threads: whole-life
//     profiles of every thread, workers included) [--json FILE]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { arg } from '../lib/args.ts';
import { SILERO_FILE as modelPath } from '../lib/bench-models.ts';
import { formatLoad, runLoad, type LoadResult } from '../lib/load-generator.ts';
import { median } from '../lib/percentiles.ts';
import { cpuShare, readThreadCpu, type ThreadCpu } from '../lib/thread-cpu.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

const durationMs = Number(arg('duration', '5000'));
const warmupMs = Number(arg('warmup', '1000'));
const prewarmMs = Number(arg('prewarm', '3000'));
const rounds = Number(arg('rounds', '2'));
const concurrency = Number(arg('concurrency', '16'));
const maxBatch = Number(arg('max-batch', '16'));
const maxInstancesArg = arg('max-instances', '');
const profDir = arg('prof', '');
const idleModels = Number(arg('idle-models', '0'));
const jsonOut = arg('json', '');
const variantNames = arg('variants', 'minimal,batch-on,batch-off,stateful,event').split(',');

interface Variant {
  name: string;
  /** Model name on the Hearth server; undefined for the minimal server. */
  model?: string;
  config?: Record<string, unknown>;
  /** Node-level settings (environment) the variant needs; variants with different ones get Hearth processes of their own. */
  env?: Record<string, string>;
}

const minInstancesArg = arg('min-instances', '');
const instanceConcurrency = arg('instance-concurrency', '');
const maxInstances = {
  ...(instanceConcurrency ? { concurrency: Number(instanceConcurrency) } : {}),
  ...(maxInstancesArg ? { maxInstances: Number(maxInstancesArg) } : {}),
  ...(minInstancesArg ? { minInstances: Number(minInstancesArg) } : {}),
};
const ALL: Variant[] = [
  { name: 'minimal' },
  {
    name: 'batch-on',
    model: 'vad-batch',
    config: { ...maxInstances, batching: { maxBatchSize: maxBatch, maxQueueDelayMs: 0 }, scheduling: { strategy: 'stateless' } },
  },
  {
    name: 'batch-off',
    model: 'vad-nobatch',
    config: { ...maxInstances, batching: { maxBatchSize: 1, maxQueueDelayMs: 0 }, scheduling: { strategy: 'stateless' } },
  },
  {
    name: 'batch-delay',
    model: 'vad-batch-delay',
    config: {
      ...maxInstances,
      batching: { maxBatchSize: maxBatch, maxQueueDelayMs: Number(arg('delay', '1')) },
      scheduling: { strategy: 'stateless' },
    },
  },
  {
    name: 'stateful',
    model: 'vad-stateful',
    config: { ...maxInstances, batching: { maxBatchSize: maxBatch, maxQueueDelayMs: 0 }, scheduling: { strategy: 'stateful' } },
  },
  {
    name: 'event',
    model: 'vad-event',
    config: { ...maxInstances, batching: { maxBatchSize: maxBatch, maxQueueDelayMs: 0 }, scheduling: { strategy: 'event' } },
  },
  // The DEFER_JSON_BYTES default before 2026-11-26: every silero array (frame 10.5 KB, states 2.6 KB) parsed on the instance thread.
  {
    name: 'event-defer-1k',
    model: 'vad-event',
    config: { ...maxInstances, batching: { maxBatchSize: maxBatch, maxQueueDelayMs: 0 }, scheduling: { strategy: 'event' } },
    env: { DEFER_JSON_BYTES: '1024' },
  },
];
const variants = variantNames.map((n) => {
  const v = ALL.find((x) => x.name === n);
  if (!v) throw new Error(`--variants: unknown variant "${n}"; known: ${ALL.map((x) => x.name).join(', ')}`);
  return v;
});

/** Request bodies as a streaming VAD client sends them: a 512-sample frame plus the state it got back last time. */
function makeRequests(count: number) {
  const out: { inputs: { name: string; datatype: string; shape: number[]; data: number[] }[] }[] = [];
  for (let s = 0; s < count; s++) {
    const frame = Array.from({ length: 512 }, (_, i) =>
      Math.fround(Math.sin(i * 0.02 * (s + 1)) * (0.1 + 0.1 * s) + Math.cos(i * 0.37) * 0.05),
    );
    const state = (k: number) => Array.from({ length: 128 }, (_, i) => Math.fround(Math.tanh(Math.sin(i * 0.1 + s + k)) * 0.3));
    out.push({
      inputs: [
        { name: 'input', datatype: 'FP32', shape: [1, 512], data: frame },
        { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
        { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: state(1) },
        { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: state(2) },
      ],
    });
  }
  return out;
}

/** Each body's speech probability from an unbatched run, to check that every answer is its own. */
async function expectedOutputs(requests: ReturnType<typeof makeRequests>): Promise<number[]> {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
  const expected: number[] = [];
  for (const r of requests) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of r.inputs) {
      feeds[t.name] =
        t.datatype === 'INT64'
          ? new ort.Tensor('int64', BigInt64Array.from(t.data, BigInt), t.shape)
          : new ort.Tensor('float32', Float32Array.from(t.data), t.shape);
    }
    expected.push((await session.run(feeds)).output.data[0] as number);
  }
  await session.release();
  return expected;
}

function startChild(
  file: string,
  args: string[],
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', file, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += String(d)));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += String(d);
      const m = /listening (\S+)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`${path.basename(file)} exited with ${code} before listening:\n${stderr.slice(-2000)}`)));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function call(url: string, method: string, body: Buffer | string, contentType: string): Promise<unknown> {
  const res = await fetch(url, {
    method,
    body: typeof body === 'string' ? body : new Uint8Array(body),
    headers: { 'content-type': contentType },
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : undefined;
}

/** The model's instance counts from GET /v1/status, when the node reports them. */
async function poolState(baseUrl: string, model: string): Promise<{ starting: number; idle: number; busy: number } | undefined> {
  try {
    const status = (await (await fetch(`${baseUrl}/v1/status`)).json()) as {
      models?: { name: string; instances?: { starting: number; idle: number; busy: number } }[];
    };
    return status.models?.find((m) => m.name === model)?.instances;
  } catch {
    return undefined;
  }
}

/** Requests per run so far (V2 statistics: inference_count / execution_count). */
async function meanBatch(baseUrl: string, model: string): Promise<number | undefined> {
  try {
    const stats = (await (await fetch(`${baseUrl}/v2/models/${model}/stats`)).json()) as {
      model_stats?: { inference_count: number; execution_count: number }[];
    };
    const s = stats.model_stats?.[0];
    return s && s.execution_count > 0 ? s.inference_count / s.execution_count : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const requests = makeRequests(8);
  const bodies = requests.map((r) => Buffer.from(JSON.stringify(r)));
  const expected = await expectedOutputs(requests);
  const check = (index: number, body: Buffer): boolean => {
    const parsed = JSON.parse(body.toString('utf8')) as { outputs?: { name: string; data: number[] }[] };
    const out = parsed.outputs?.find((o) => o.name === 'output');
    return !!out && Math.abs(out.data[0] - expected[index]) < 1e-4;
  };

  const children: ChildProcess[] = [];
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hearth-bench-'));
  try {
    const urls = new Map<string, string>();
    const pids = new Map<string, number>();
    if (variants.some((v) => !v.model)) {
      const minimal = await startChild(path.join(here, '../lib/minimal-server.ts'), [modelPath], {});
      children.push(minimal.child);
      pids.set('minimal', minimal.child.pid!);
      urls.set('minimal', `${minimal.url}/v2/models/vad/infer`);
    }
    const hearthVariants = variants.filter((v) => v.model);
    // One Hearth process per distinct node environment; --prof profiles the first one started.
    const hearths = new Map<string, { child: ChildProcess; url: string }>();
    /** Base URL of the Hearth process serving each variant. */
    const bases = new Map<string, string>();
    let hearthChild: ChildProcess | undefined;
    const model = hearthVariants.length > 0 ? await fs.readFile(modelPath) : undefined;
    for (const v of hearthVariants) {
      const key = JSON.stringify(v.env ?? {});
      let hearth = hearths.get(key);
      if (!hearth) {
        const profile = profDir && !hearthChild;
        if (profile) await fs.mkdir(profDir, { recursive: true });
        hearth = await startChild(
          path.join(here, '../lib/hearth-server.ts'),
          profile ? [path.resolve(profDir)] : [],
          {
            DATA_DIR: path.join(dataDir, String(hearths.size)),
            PORT: '0',
            HOST: '127.0.0.1',
            REDIS_URL: 'redis://127.0.0.1:1',
            LOG_LEVEL: 'silent',
            ...v.env,
          },
          profile ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profDir, 'threads')}`] : [],
        );
        hearths.set(key, hearth);
        children.push(hearth.child);
        hearthChild ??= hearth.child;
      }
      await call(`${hearth.url}/v1/models/${v.model}`, 'POST', model!, 'application/octet-stream');
      await call(`${hearth.url}/v1/models/${v.model}/config`, 'PUT', JSON.stringify(v.config), 'application/json');
      urls.set(v.name, `${hearth.url}/v2/models/${v.model}/infer`);
      bases.set(v.name, hearth.url);
      pids.set(v.name, hearth.child.pid!);
    }

    // --idle-models N: extra silero models on the first Hearth process, each warmed once and then left idle.
    if (idleModels > 0 && bases.size > 0) {
      const base = [...bases.values()][0];
      for (let k = 0; k < idleModels; k++) {
        await call(`${base}/v1/models/idle${k}`, 'POST', model!, 'application/octet-stream');
        await runLoad({ url: `${base}/v2/models/idle${k}/infer`, bodies, concurrency, durationMs: 2000 });
      }
    }
    // Cold starts (worker spawn, session load) take seconds on a busy 2-core box; the comparison is about warm
    // serving, so each Hearth variant is driven until its pool stops growing before anything is measured.
    for (const v of hearthVariants) {
      const deadline = performance.now() + 20_000;
      for (;;) {
        await runLoad({ url: urls.get(v.name)!, bodies, concurrency, durationMs: prewarmMs });
        const pool = await poolState(bases.get(v.name)!, v.model!);
        if (!pool || pool.starting === 0 || performance.now() > deadline) break;
      }
    }

    console.log(
      `silero VAD, HTTP JSON, concurrency ${concurrency}, ${durationMs} ms per measurement after ${warmupMs} ms warm-up, ${rounds} round(s); ` +
        `${os.availableParallelism()} CPUs, load average ${os
          .loadavg()
          .map((x) => x.toFixed(1))
          .join(' ')}`,
    );
    const results = new Map<string, LoadResult[]>(variants.map((v) => [v.name, []]));
    for (let r = 0; r < rounds; r++) {
      for (const v of variants) {
        // With --prof, the Hearth main thread is profiled over the measured window of each Hearth variant.
        const profiling = profDir && v.model && hearthChild && pids.get(v.name) === hearthChild.pid;
        if (profiling) setTimeout(() => hearthChild!.kill('SIGUSR2'), warmupMs).unref();
        // The server's CPU over the measured window, main thread apart from the rest.
        const pid = pids.get(v.name)!;
        let cpuBefore: Promise<ThreadCpu | undefined> = Promise.resolve(undefined);
        let windowStart = 0;
        setTimeout(() => {
          windowStart = performance.now();
          cpuBefore = readThreadCpu(pid);
        }, warmupMs).unref();
        const res = await runLoad({ url: urls.get(v.name)!, bodies, concurrency, durationMs, warmupMs, check, checkEvery: 25 });
        const cpu = cpuShare(await cpuBefore, await readThreadCpu(pid), (performance.now() - windowStart) / 1000);
        if (profiling) {
          hearthChild!.kill('SIGUSR2');
          await new Promise((r) => setTimeout(r, 500));
        }
        results.get(v.name)!.push(res);
        const base = results.get('minimal')?.[r];
        const ratio = base && v.name !== 'minimal' ? `  ×${(res.inferencesPerSec / base.inferencesPerSec).toFixed(2)} of minimal` : '';
        const pool = v.model ? await poolState(bases.get(v.name)!, v.model) : undefined;
        const batch = v.model ? await meanBatch(bases.get(v.name)!, v.model) : undefined;
        const instances = pool
          ? `  [instances: ${pool.idle + pool.busy} warm, ${pool.starting} starting; mean batch ${batch?.toFixed(1) ?? '?'}]`
          : '';
        const cpuText = cpu ? `  [server CPU: main ${cpu.mainPct.toFixed(0)}%, other threads ${cpu.othersPct.toFixed(0)}%]` : '';
        console.log(`round ${r + 1}  ${formatLoad(v.name, res)}${ratio}${instances}${cpuText}`);
        for (const e of res.errorSamples) console.log(`    error: ${e}`);
      }
    }

    console.log('\nmedian over rounds');
    const summary: Record<string, unknown> = {};
    const baseRate = results.has('minimal') ? median(results.get('minimal')!.map((x) => x.inferencesPerSec)) : NaN;
    for (const v of variants) {
      const rs = results.get(v.name)!;
      const rate = median(rs.map((x) => x.inferencesPerSec));
      const p50 = median(rs.map((x) => x.p50Ms));
      const p99 = median(rs.map((x) => x.p99Ms));
      const errors = rs.reduce((n, x) => n + x.errors, 0);
      // On a shared machine the load drifts between rounds; the ratio within each round (variants measured
      // back to back) is steadier than the ratio of medians, so both are printed.
      const base = results.get('minimal');
      const ratio = v.name !== 'minimal' && base ? median(rs.map((x, i) => x.inferencesPerSec / base[i].inferencesPerSec)) : undefined;
      summary[v.name] = {
        inferencesPerSec: rate,
        p50Ms: p50,
        p99Ms: p99,
        errors,
        ratioToMinimal: ratio,
        ratioOfMedians: rate / baseRate,
        rounds: rs,
      };
      console.log(
        `${v.name.padEnd(14)} ${rate.toFixed(0).padStart(7)} inf/s  p50 ${p50.toFixed(2)} ms  p99 ${p99.toFixed(2)} ms  errors ${errors}` +
          (ratio !== undefined ? `  hearth/minimal: median per-round ${ratio.toFixed(2)}, of medians ${(rate / baseRate).toFixed(2)}` : ''),
      );
    }
    if (results.has('batch-on') && results.has('batch-off')) {
      const off = results.get('batch-off')!;
      console.log(
        `batching on / off: median per-round ${median(results.get('batch-on')!.map((x, i) => x.inferencesPerSec / off[i].inferencesPerSec)).toFixed(2)}`,
      );
    }
    if (jsonOut) {
      await fs.mkdir(path.dirname(path.resolve(jsonOut)), { recursive: true });
      await fs.writeFile(
        jsonOut,
        JSON.stringify({ concurrency, durationMs, warmupMs, rounds, cpus: os.availableParallelism(), results: summary }, null, 2),
      );
    }
    if (hearthChild && profDir) console.log(`CPU profiles in ${profDir} (open in Chrome DevTools or speedscope)`);
  } finally {
    await Promise.all(children.map(stopChild));
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

await main();
