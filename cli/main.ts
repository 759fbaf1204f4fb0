#!/usr/bin/env node
// `hearth`: the command line for a Hearth node, on the SDK (hearth/client). docs/cli.md walks through it.
// Exit codes: 0 done, 1 a failure (the server's code on one line), 2 a usage mistake.
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import cliProgress from 'cli-progress';
import { Command, CommanderError, Option } from 'commander';
import { stringify as toYaml, parse as parseYamlValue } from 'yaml';
import { HearthClient, type Datatype, type JobStatus, type Tensor, type UploadEvent } from '../client/index.ts';
import { datasetFile, modelSource } from '../client/node.ts';
import { benchColdWarm, benchText, summary } from './bench.ts';
import { applyPlan, planDeploy, planText } from './deploy.ts';
import { HearthYmlError, loadHearthYml } from './hearth-yml.ts';
import { tensorsFromJson, zeroInputs } from './inputs.ts';
import { dim, errorLine, fmtBytes, fmtMs, fmtUsd, green, printJson, red, redErr, table, UsageError, yellow } from './output.ts';

interface Globals {
  url: string;
  key?: string;
  json?: boolean;
}

const program = new Command('hearth')
  .description('Drive a Hearth node: models, inference, batch jobs, status, costs, benchmarks and hearth.yml deploys.')
  .addOption(new Option('--url <url>', 'the Hearth node').env('HEARTH_URL').default('http://127.0.0.1:8080'))
  .addOption(new Option('--key <key>', 'API key (hk_...) when the node runs with AUTH on').env('HEARTH_API_KEY'))
  .option('--json', 'print JSON for machines instead of tables')
  .showHelpAfterError()
  .exitOverride();

function globals(cmd: Command): Globals {
  return cmd.optsWithGlobals<Globals>();
}

function client(cmd: Command): HearthClient {
  const g = globals(cmd);
  return new HearthClient({ url: g.url, ...(g.key ? { key: g.key } : {}) });
}

function int(name: string) {
  return (v: string) => {
    if (!/^\d+$/.test(v)) throw new UsageError(`${name}: expected a whole number, got "${v}"`);
    return Number(v);
  };
}

/** A progress bar on stderr: live on a terminal, a line every few hundred ms otherwise (logs, CI, tests). */
function bar(format: string, total: number, payload: Record<string, unknown> = {}) {
  const b = new cliProgress.SingleBar(
    { format, stream: process.stderr, noTTYOutput: true, notTTYSchedule: 250, hideCursor: true, etaBuffer: 20, barsize: 30 },
    cliProgress.Presets.shades_classic,
  );
  b.start(total, 0, payload);
  return b;
}

// ---- models -----------------------------------------------------------------------------------------------------
const models = program.command('models').description('upload, list, remove and configure models');

models
  .command('push')
  .description('upload a model version: an .onnx file, a .tar.gz archive or a TF.js folder')
  .argument('<name>', 'model name')
  .argument('<path>', 'file or folder')
  .option('--version <n>', 'an explicit version number (refused if it exists)', int('--version'))
  .action(async (name: string, p: string, o: { version?: number }, cmd: Command) => {
    const source = await modelSource(p);
    const g = globals(cmd);
    let b: cliProgress.SingleBar | undefined;
    const t0 = Date.now();
    const onProgress = (e: UploadEvent) => {
      if (g.json) return;
      if (e.type === 'start')
        b = bar(`pushing ${name} [{bar}] {percentage}% | {sent}/{size} | {rate}/s | ETA {eta_formatted}`, e.totalBytes ?? 0, {
          sent: '0 B',
          size: fmtBytes(e.totalBytes ?? NaN),
          rate: '-',
        });
      else if (e.type === 'progress')
        b?.update(e.sentBytes, { sent: fmtBytes(e.sentBytes), rate: fmtBytes(e.sentBytes / Math.max(0.001, (Date.now() - t0) / 1000)) });
      else if (e.type === 'sent') {
        b?.stop();
        process.stderr.write(dim(`sent ${fmtBytes(e.sentBytes)}; the node is inspecting the model...\n`));
      }
    };
    const m = await client(cmd).models.upload(name, source, { ...(o.version !== undefined ? { version: o.version } : {}), onProgress });
    if (g.json) return printJson(m);
    console.log(
      `${green('pushed')} ${m.name} version ${m.version} (${m.format}, ${fmtBytes(m.sizeBytes)}, sha256 ${m.sha256.slice(0, 12)})`,
    );
    console.log(
      table(
        ['input', 'datatype', 'shape'],
        m.inputs.map((t) => [t.name, t.datatype, `[${t.shape.join(',')}]`]),
      ),
    );
    console.log(
      table(
        ['output', 'datatype', 'shape'],
        m.outputs.map((t) => [t.name, t.datatype, `[${t.shape.join(',')}]`]),
      ),
    );
  });

models
  .command('ls')
  .description('list models and their versions')
  .action(async (_o: unknown, cmd: Command) => {
    const list = await client(cmd).models.list();
    if (globals(cmd).json) return printJson(list);
    if (!list.length) return console.log(dim('no models yet: hearth models push NAME PATH'));
    console.log(
      table(
        ['name', 'latest', 'versions'],
        list.map((m) => [m.name, m.latest, m.versions.join(',')]),
      ),
    );
  });

models
  .command('rm')
  .description('delete a model (every version) or one version')
  .argument('<name>')
  .option('--version <n>', 'only this version', int('--version'))
  .action(async (name: string, o: { version?: number }, cmd: Command) => {
    const r = await client(cmd).models.delete(name, o.version);
    if (globals(cmd).json) return printJson(r);
    console.log(`deleted ${r.name} version${r.deleted.length === 1 ? '' : 's'} ${r.deleted.join(', ')}`);
  });

models
  .command('config')
  .description("show a model's serving config, or change keys of it with --set key=value")
  .argument('<name>')
  .option(
    '--set <key=value>',
    'a key (dotted for nested: batching.maxBatchSize) and its value; repeatable',
    (v: string, acc: string[]) => [...acc, v],
    [] as string[],
  )
  .action(async (name: string, o: { set: string[] }, cmd: Command) => {
    const c = client(cmd);
    let answer;
    if (o.set.length) {
      const patch: Record<string, unknown> = {};
      for (const kv of o.set) {
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new UsageError(`--set ${kv}: expected key=value`);
        const keys = kv.slice(0, eq).split('.');
        let at = patch;
        for (const k of keys.slice(0, -1)) at = (at[k] ??= {}) as Record<string, unknown>;
        // The value as YAML reads it: 4 a number, true a boolean, histogram a string, {kind: fixed} an object.
        at[keys.at(-1)!] = parseYamlValue(kv.slice(eq + 1)) as unknown;
      }
      answer = await c.models.putConfig(name, patch);
    } else {
      answer = await c.models.getConfig(name);
    }
    if (globals(cmd).json) return printJson(answer);
    process.stdout.write(toYaml(answer.config));
    if (answer.clamped) console.log(yellow(`# clamped on this node: ${answer.clamped}`));
  });

// ---- infer ------------------------------------------------------------------------------------------------------
function dataText(t: Tensor, max = 16): string {
  const d = Array.from(t.data as ArrayLike<unknown>, (x) =>
    typeof x === 'bigint' ? x.toString() : typeof x === 'string' ? JSON.stringify(x) : String(x),
  );
  return `[${d.slice(0, max).join(', ')}${d.length > max ? `, … ${d.length - max} more` : ''}]`;
}

program
  .command('infer')
  .description('run one inference: --input holds a V2 request or {"input name": nested array}')
  .argument('<model>')
  .requiredOption('--input <file.json>', 'the inputs')
  .option('--version <n>', 'a version (the latest by default)', int('--version'))
  .option('--binary', 'send and receive tensors in the binary extension')
  .option('--raw', 'send the file as it is and print the JSON answer as it is')
  .action(async (model: string, o: { input: string; version?: number; binary?: boolean; raw?: boolean }, cmd: Command) => {
    const c = client(cmd);
    let text: string;
    try {
      text = fs.readFileSync(o.input, 'utf8');
    } catch (e) {
      throw new UsageError(`--input ${o.input}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`--input ${o.input}: not JSON (${(e as Error).message})`);
    }
    const version = o.version !== undefined ? { version: o.version } : {};
    if (o.raw) {
      const r = await c.inferRaw(model, text, version);
      return printJson(r.body);
    }
    const needsMeta = !Array.isArray((body as { inputs?: unknown })?.inputs);
    const specs = needsMeta ? ((await c.models.metadata(model, o.version)).inputs as { name: string; datatype: Datatype }[]) : [];
    const req = tensorsFromJson(body, specs);
    const r = await c.infer(model, req.inputs, {
      ...version,
      ...(req.outputs ? { outputs: req.outputs } : {}),
      ...(req.id ? { id: req.id } : {}),
      ...(o.binary ? { binary: true } : {}),
    });
    if (globals(cmd).json) {
      return printJson({
        model_name: r.modelName,
        model_version: r.modelVersion,
        ...(r.id ? { id: r.id } : {}),
        outputs: r.outputList.map((t) => ({
          name: t.name,
          datatype: t.datatype,
          shape: t.shape,
          data: Array.from(t.data as ArrayLike<unknown>),
        })),
        timing: r.timing,
      });
    }
    for (const t of r.outputList) console.log(`${t.name} ${t.datatype} [${t.shape.join(',')}] ${dataText(t)}`);
    const tm = r.timing;
    console.log(
      dim(
        `${r.modelName ?? model} v${r.modelVersion ?? '?'}  ${tm.coldStart ? `cold start ${fmtMs(tm.coldStartMs)}` : 'warm'}  compute ${fmtMs(tm.computeMs)}  queue ${fmtMs(tm.queueMs)}${r.binary ? '  binary' : ''}`,
      ),
    );
  });

// ---- jobs -------------------------------------------------------------------------------------------------------
const jobs = program.command('jobs').description('batch jobs over JSON Lines datasets');

function jobRow(j: JobStatus): (string | number)[] {
  return [
    j.id,
    j.model,
    j.version,
    j.state,
    `${j.progress.doneRows}/${j.progress.totalRows}`,
    j.progress.failedRows,
    fmtUsd(j.cost?.usd),
    j.createdAt,
  ];
}
const JOB_HEAD = ['id', 'model', 'version', 'state', 'done', 'failed', 'cost', 'created'];

async function writeResults(c: HearthClient, id: string, out: string): Promise<void> {
  const { stream } = await c.jobs.resultsStream(id);
  await pipeline(Readable.fromWeb(stream as import('node:stream/web').ReadableStream<Uint8Array>), fs.createWriteStream(out));
}

jobs
  .command('submit')
  .description('upload a dataset and queue a job over it')
  .requiredOption('--model <model>')
  .requiredOption('--dataset <file.jsonl>', 'one V2 request body per line')
  .option('--name <dataset>', "the dataset's name on the node (default: the file name)")
  .option('--version <n>', 'model version', int('--version'))
  .option('--chunk-size <n>', 'rows per chunk', int('--chunk-size'))
  .option('--wait', 'follow the job to its end with a progress bar')
  .option('--out <file.jsonl>', 'write the results here (implies --wait)')
  .action(
    async (
      o: { model: string; dataset: string; name?: string; version?: number; chunkSize?: number; wait?: boolean; out?: string },
      cmd: Command,
    ) => {
      const c = client(cmd);
      const g = globals(cmd);
      const name =
        o.name ??
        (path
          .basename(o.dataset)
          .replace(/\.(jsonl|ndjson|json)$/i, '')
          .replace(/[^A-Za-z0-9._-]/g, '-')
          .replace(/^[^A-Za-z0-9]+/, '') ||
          'dataset');
      const file = await datasetFile(o.dataset);
      const up = await c.datasets.upload(name, file.data, { size: file.size });
      if (!g.json)
        console.error(
          dim(
            `dataset ${up.key}: ${up.rows} rows, ${fmtBytes(up.bytes)}${up.invalidLines ? `, ${up.invalidLines} lines not JSON objects` : ''}`,
          ),
        );
      const job = await c.jobs.submit({
        model: o.model,
        dataset: name,
        ...(o.version !== undefined ? { version: o.version } : {}),
        ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}),
      });
      if (!o.wait && !o.out) {
        if (g.json) return printJson(job);
        return console.log(job.id);
      }
      if (!g.json) console.error(`job ${job.id} queued`);
      let b: cliProgress.SingleBar | undefined;
      const final = await c.jobs.watch(job.id, {
        onProgress: (e) => {
          if (g.json) return;
          const p = e.status.progress;
          if (!b)
            b = bar('rows [{bar}] {percentage}% | {value}/{total} | failed {failed} | {state} | ETA {eta_formatted}', p.totalRows, {
              failed: 0,
              state: e.status.state,
            });
          b.update(p.doneRows + p.failedRows, { failed: p.failedRows, state: e.status.state });
          if (e.type === 'done') b.stop();
        },
      });
      if (o.out) await writeResults(c, job.id, o.out);
      if (g.json) return printJson(final);
      const col = final.state === 'completed' ? green : red;
      console.log(
        `${col(final.state)} ${final.id}: ${final.progress.doneRows} rows done, ${final.progress.failedRows} failed, ${fmtUsd(final.cost.usd)}${o.out ? `; results in ${o.out}` : ''}`,
      );
      if (final.state !== 'completed') process.exitCode = 1;
    },
  );

jobs
  .command('ls')
  .description('list jobs, newest first')
  .option('--limit <n>', 'how many', int('--limit'))
  .action(async (o: { limit?: number }, cmd: Command) => {
    const page = await client(cmd).jobs.list(o.limit ? { limit: o.limit } : {});
    if (globals(cmd).json) return printJson(page);
    console.log(table(JOB_HEAD, page.jobs.map(jobRow)));
  });

jobs
  .command('get')
  .description("one job's status; --out writes its results so far")
  .argument('<id>')
  .option('--out <file.jsonl>', 'write the results here')
  .action(async (id: string, o: { out?: string }, cmd: Command) => {
    const c = client(cmd);
    const j = await c.jobs.get(id);
    if (o.out) await writeResults(c, id, o.out);
    if (globals(cmd).json) return printJson(j);
    console.log(table(JOB_HEAD, [jobRow(j)]));
    if (j.error) console.log(red(j.error));
  });

jobs
  .command('cancel')
  .argument('<id>')
  .action(async (id: string, _o: unknown, cmd: Command) => {
    const j = await client(cmd).jobs.cancel(id);
    if (globals(cmd).json) return printJson(j);
    console.log(`${j.id}: ${j.state}`);
  });

// ---- status, costs ----------------------------------------------------------------------------------------------
program
  .command('status')
  .description('pools, instances, rates and latencies of the node')
  .action(async (_o: unknown, cmd: Command) => {
    const s = await client(cmd).status();
    if (globals(cmd).json) return printJson(s);
    const rows = s.models.map((m) => {
      const i = m.instances as { starting: number; idle: number; busy: number };
      const l = m.latencyMs as { p50: number; p99: number };
      const k = m.keepAlive as { policy?: string; kind?: string };
      return [
        `${String(m.name)}@${String(m.version)}`,
        `${i.busy}/${i.idle}/${i.starting}`,
        `${String(m.minInstances)}-${String(m.maxInstances)}`,
        Number(m.requests),
        Number(m.coldStarts),
        `${(m.ratePerSec as number).toFixed(2)}/s`,
        fmtMs(l.p50),
        fmtMs(l.p99),
        String(k.policy ?? k.kind ?? '-'),
      ];
    });
    if (rows.length)
      console.log(table(['model', 'busy/idle/starting', 'min-max', 'requests', 'cold', 'rate', 'p50', 'p99', 'keep-alive'], rows));
    else console.log(dim('no pools yet: a model gets one on its first request'));
    const n = s.node as { slots: number; memoryMb: number; memoryUsedMb: number };
    console.log(dim(`node: ${n.slots} slots, ${n.memoryUsedMb}/${n.memoryMb} MB used by instances`));
  });

program
  .command('costs')
  .description('the bill per model over a window, against always-on instances')
  .option('--from <time>', 'ISO 8601 date or date-time, or epoch ms')
  .option('--to <time>', 'ISO 8601 date or date-time, or epoch ms')
  .option('--model <name>')
  .action(async (o: { from?: string; to?: string; model?: string }, cmd: Command) => {
    const r = (await client(cmd).costs(o)) as {
      from: string | null;
      to: string;
      total: Record<string, unknown>;
      models: Record<string, unknown>[];
    };
    if (globals(cmd).json) return printJson(r);
    const row = (label: string, l: Record<string, unknown>) => {
      const a = l.alwaysOn as { cost: number; savings: number };
      return [
        label,
        Number(l.invocations),
        Number(l.coldStarts),
        fmtMs(l.billedMs as number),
        fmtUsd(l.computeCost as number),
        fmtUsd(l.idleCost as number),
        fmtUsd(l.storageCost as number),
        fmtUsd(l.totalCost as number),
        fmtUsd(a.cost),
        fmtUsd(a.savings),
      ];
    };
    console.log(dim(`from ${r.from ?? 'the start'} to ${r.to}`));
    console.log(
      table(
        ['model', 'requests', 'cold', 'billed', 'compute', 'idle', 'storage', 'total', 'always-on', 'savings'],
        [...r.models.map((m) => row(`${String(m.name)}@${String(m.version)}`, m)), row('total', r.total)],
      ),
    );
  });

// ---- bench ------------------------------------------------------------------------------------------------------
program
  .command('bench')
  .description('benchmarks against a running node')
  .command('cold-warm')
  .description('cold starts (unload, then one request) against warm requests of one model')
  .argument('<model>')
  .option('--input <file.json>', 'inputs as for hearth infer (default: zeros, dynamic dimensions 1)')
  .option('--cold <n>', 'cold starts', int('--cold'), 5)
  .option('--warm <n>', 'warm requests', int('--warm'), 50)
  .action(async (model: string, o: { input?: string; cold: number; warm: number }, cmd: Command) => {
    const c = client(cmd);
    const meta = await c.models.metadata(model);
    const specs = meta.inputs as { name: string; datatype: Datatype; shape: number[] }[];
    const inputs = o.input ? tensorsFromJson(JSON.parse(fs.readFileSync(o.input, 'utf8')), specs).inputs : zeroInputs(specs);
    const g = globals(cmd);
    const r = await benchColdWarm(c, model, inputs, {
      cold: o.cold,
      warm: o.warm,
      ...(g.json ? {} : { onStep: (s: string) => process.stderr.write(dim(`${s}\n`)) }),
    });
    if (g.json) return printJson({ ...r, summary: summary(r) });
    console.log(benchText(r, green));
  });

// ---- deploy -----------------------------------------------------------------------------------------------------
program
  .command('deploy')
  .description('make the node match hearth.yml: upload changed models, apply changed configs')
  .option('-f, --file <hearth.yml>', 'the file', 'hearth.yml')
  .option('--dry-run', 'print the plan only')
  .action(async (o: { file: string; dryRun?: boolean }, cmd: Command) => {
    const c = client(cmd);
    const g = globals(cmd);
    const { spec, dir } = loadHearthYml(o.file);
    const plan = await planDeploy(c, spec, dir);
    if (!g.json) console.log(planText(plan, { green, yellow, dim }));
    const todo = plan.filter((p) => p.action !== 'unchanged');
    if (o.dryRun || todo.length === 0) {
      if (g.json) printJson({ plan, applied: [] });
      else if (!todo.length) console.log(green('Nothing to do.'));
      return;
    }
    const applied = await applyPlan(c, plan, {
      onUpload: async (name, source) => {
        let b: cliProgress.SingleBar | undefined;
        return c.models.upload(name, source, {
          onProgress: (e) => {
            if (g.json) return;
            if (e.type === 'start') b = bar(`${name} [{bar}] {percentage}% | ETA {eta_formatted}`, e.totalBytes ?? 0);
            else if (e.type === 'progress') b?.update(e.sentBytes);
            else if (e.type === 'sent') b?.stop();
          },
        });
      },
      onStep: (line) => !g.json && console.log(line),
    });
    if (g.json) return printJson({ plan, applied });
    console.log(green(`Applied: ${applied.length} model${applied.length === 1 ? '' : 's'} changed.`));
  });

// ---- run --------------------------------------------------------------------------------------------------------
async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version exit 0; commander has printed its own message for a usage mistake.
      process.exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? 0 : 2;
      return;
    }
    if (e instanceof HearthYmlError) {
      for (const p of e.problems) process.stderr.write(`${redErr('hearth: ')}${p}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`${redErr('hearth:')} ${errorLine(e)}\n`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  }
}

await main();
