// The built CLI (node dist/cli/main.js) run as a subprocess in a temp folder against a real Hearth on loopback, AUTH
// on, jobs on a private Redis: push with progress, infer, a job with --wait and --out, status and costs tables,
// bench, deploy twice (the second a no-op), a bad hearth.yml naming its line, and the exit codes.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onnxFixtureDir, TFJS_GRAPH_DIR } from '../fixtures/golden.ts';
import { startTestHearth, TEST_ADMIN_KEY, type TestHearth } from '../helpers/app.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts';
import { FAST_TUNING } from '../jobs/rig.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'dist/cli/main.js');

let redis: TestRedis;
let hearth: TestHearth;
let url: string;
let dir: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in the temp folder (never blocking this process: the Hearth it talks to lives here). */
function hearthCli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: dir, HEARTH_URL: url, HEARTH_API_KEY: TEST_ADMIN_KEY, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const fixture = (dt: string) => path.join(onnxFixtureDir(`identity-${dt}`), 'model.onnx');

beforeAll(async () => {
  redis = await startTestRedis();
  const prefix = uniquePrefix('cli');
  hearth = await startTestHearth({
    env: { AUTH: 'on', HEARTH_ADMIN_KEY: TEST_ADMIN_KEY, REDIS_URL: redis.url, JOBS_PREFIX: prefix, EXECUTOR_PREWARM_WORKERS: '1' },
    overrides: { jobs: { redisUrl: redis.url, prefix, workerOptions: FAST_TUNING } },
  });
  await hearth.app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(hearth.app.server.address() as { port: number }).port}`;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-cli-'));
  fs.copyFileSync(fixture('fp32'), path.join(dir, 'id.onnx'));
});

afterAll(async () => {
  await hearth?.close();
  await redis?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('hearth CLI', () => {
  it('models push shows progress and the signature; ls as a table and as JSON', async () => {
    const r = await hearthCli(['models', 'push', 'idf', 'id.onnx']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('pushing idf');
    expect(r.stderr).toMatch(/100% \| [\d.]+ (B|KB) ?\/[\d.]+ (B|KB)/);
    expect(r.stdout).toMatch(/pushed idf version 1 \(onnx/);
    expect(r.stdout).toMatch(/^input\s+datatype\s+shape\nx\s+FP32\s+\[-1,-1\]$/m);

    const ls = await hearthCli(['models', 'ls']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^name\s+latest\s+versions\nidf\s+1\s+1$/m);
    const json = await hearthCli(['--json', 'models', 'ls']);
    expect(JSON.parse(json.stdout)).toEqual([{ name: 'idf', versions: [1], latest: 1 }]);
  });

  it('infer: shorthand, binary, a raw V2 request; config --set', async () => {
    fs.writeFileSync(path.join(dir, 'in.json'), JSON.stringify({ x: [[1.5, 2, -3]] }));
    const r = await hearthCli(['infer', 'idf', '--input', 'in.json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('y FP32 [1,3] [1.5, 2, -3]');
    const b = await hearthCli(['infer', 'idf', '--input', 'in.json', '--binary']);
    expect(b.stdout).toContain('y FP32 [1,3] [1.5, 2, -3]');
    expect(b.stdout).toContain('binary');
    fs.writeFileSync(
      path.join(dir, 'v2.json'),
      JSON.stringify({ id: 'raw-1', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [7, 8] }] }),
    );
    const raw = await hearthCli(['infer', 'idf', '--input', 'v2.json', '--raw']);
    expect(JSON.parse(raw.stdout)).toMatchObject({ id: 'raw-1', model_name: 'idf', outputs: [{ name: 'y', shape: [1, 2], data: [7, 8] }] });

    const set = await hearthCli(['models', 'config', 'idf', '--set', 'timeoutMs=9000', '--set', 'batching.maxBatchSize=3']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^timeoutMs: 9000$/m);
    expect(set.stdout).toMatch(/^ {2}maxBatchSize: 3$/m);
    const bad = await hearthCli(['models', 'config', 'idf', '--set', 'timeoutMs=-5']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^hearth: INVALID_CONFIG: .*timeoutMs.* \(HTTP 400\)$/m);
  });

  it('jobs submit --wait --out: a rows progress bar, the results file, then jobs ls and get', async () => {
    const rows = Array.from({ length: 40 }, (_, i) =>
      JSON.stringify({ id: `r${i}`, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [i] }] }),
    );
    fs.writeFileSync(path.join(dir, 'rows.jsonl'), `${rows.join('\n')}\n`);
    const r = await hearthCli([
      'jobs',
      'submit',
      '--model',
      'idf',
      '--dataset',
      'rows.jsonl',
      '--chunk-size',
      '10',
      '--wait',
      '--out',
      'results.jsonl',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('dataset datasets/');
    expect(r.stderr).toMatch(/rows .*100% \| 40\/40 \| failed 0 \| completed/);
    expect(r.stdout).toMatch(/^completed j\S+: 40 rows done, 0 failed/m);
    const lines = fs
      .readFileSync(path.join(dir, 'results.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; outputs: { data: number[] }[] });
    expect(lines).toHaveLength(40);
    expect(lines[39]).toMatchObject({ id: 'r39', outputs: [{ name: 'y', data: [39] }] });
    const id = /completed (\S+):/.exec(r.stdout)![1];
    const ls = await hearthCli(['jobs', 'ls']);
    expect(ls.stdout).toMatch(new RegExp(`^${id}\\s+idf\\s+1\\s+completed\\s+40/40\\s+0`, 'm'));
    const get = await hearthCli(['--json', 'jobs', 'get', id]);
    expect(JSON.parse(get.stdout)).toMatchObject({ id, state: 'completed', progress: { totalRows: 40, doneRows: 40 } });
    const missing = await hearthCli(['jobs', 'get', 'j_missing']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^hearth: JOB_NOT_FOUND: /);
  });

  it('status and costs as aligned tables, and as JSON', async () => {
    const s = await hearthCli(['status']);
    expect(s.code, s.stderr).toBe(0);
    const [head, ...rows] = s.stdout.split('\n');
    expect(head).toMatch(/^model\s+busy\/idle\/starting\s+min-max\s+requests\s+cold\s+rate\s+p50\s+p99\s+keep-alive$/);
    const row = rows.find((l) => l.startsWith('idf@1'));
    expect(row).toBeDefined();
    // Aligned: every column starts where its header does.
    expect(row!.indexOf(row!.split(/\s{2,}/)[1])).toBe(head.indexOf('busy/idle/starting'));
    expect(s.stdout).toMatch(/node: \d+ slots/);
    const c = await hearthCli(['costs', '--from', '2020-01-01']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/^model\s+requests\s+cold\s+billed\s+compute\s+idle\s+storage\s+total\s+always-on\s+savings$/m);
    expect(c.stdout).toMatch(/^idf@1\s+\d+/m);
    expect(c.stdout).toMatch(/^total\s+\d+/m);
    const cj = await hearthCli(['--json', 'costs']);
    expect(JSON.parse(cj.stdout)).toHaveProperty('currency', 'USD');
    const badWindow = await hearthCli(['costs', '--from', 'last week']);
    expect(badWindow.code).toBe(1);
    expect(badWindow.stderr).toMatch(/^hearth: INVALID_REQUEST: from:/);
  });

  it('bench cold-warm: percentiles, the cold-start breakdown and a chart', async () => {
    const r = await hearthCli(['bench', 'cold-warm', 'idf', '--cold', '2', '--warm', '8']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('idf: 2 cold starts (2 reported cold by the server), 8 warm requests');
    expect(r.stdout).toMatch(/^cold\s+2\s+[\d.]+ ms/m);
    expect(r.stdout).toMatch(/^warm\s+8\s+[\d.]+ ms/m);
    expect(r.stdout).toMatch(/^load\s+[\d.]+ ms/m);
    expect(r.stdout).toMatch(/^cold p50 +█+ [\d.]+ ms$/m);
    expect(r.stdout).toMatch(/^warm p99 +█+ [\d.]+ ms$/m);
  });

  it('deploy: a plan, then applied; the same file again is a no-op; a config change is an update; --dry-run changes nothing', async () => {
    fs.mkdirSync(path.join(dir, 'models'), { recursive: true });
    fs.copyFileSync(fixture('int32'), path.join(dir, 'models', 'ints.onnx'));
    fs.cpSync(TFJS_GRAPH_DIR, path.join(dir, 'models', 'tfjs'), { recursive: true });
    const yml = (batch: number) =>
      [
        'version: 1',
        'models:',
        '  ints:',
        '    path: ./models/ints.onnx',
        // 8 instances is more than a test node holds: the node clamps it, and the plan must still see it as stored.
        `    config: { maxInstances: 8, keepAlive: { kind: histogram }, batching: { maxBatchSize: ${batch} } }`,
        '  tf:',
        '    path: models/tfjs',
        'functions: {}',
        '',
      ].join('\n');
    fs.writeFileSync(path.join(dir, 'hearth.yml'), yml(4));
    const first = await hearthCli(['deploy']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^\+ create +ints/m);
    expect(first.stdout).toMatch(/^\+ create +tf/m);
    expect(first.stdout).toContain('Plan: 2 to create, 0 to update, 0 unchanged.');
    expect(first.stdout).toContain('ints: uploaded version 1');
    expect(first.stdout).toContain('Applied: 2 models changed.');

    const second = await hearthCli(['deploy', '-f', 'hearth.yml']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/^= unchanged +ints +\(version 1/m);
    expect(second.stdout).toMatch(/^= unchanged +tf +\(version 1/m);
    expect(second.stdout).toContain('Plan: 0 to create, 0 to update, 2 unchanged.');
    expect(second.stdout).toContain('Nothing to do.');
    const ls = JSON.parse((await hearthCli(['--json', 'models', 'ls'])).stdout) as { name: string; versions: number[] }[];
    expect(ls.filter((m) => m.name === 'ints' || m.name === 'tf').map((m) => m.versions)).toEqual([[1], [1]]);

    fs.writeFileSync(path.join(dir, 'hearth.yml'), yml(8));
    const dry = await hearthCli(['deploy', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^~ update +ints$/m);
    expect(dry.stdout).toContain('config batching.maxBatchSize: 4 -> 8');
    expect(dry.stdout).not.toContain('upload ./models');
    expect(dry.stdout).not.toContain('Applied');
    const apply = await hearthCli(['deploy']);
    expect(apply.stdout).toContain('config batching.maxBatchSize: 4 -> 8');
    expect(apply.stdout).toContain('ints: config batching.maxBatchSize applied');
    expect((await hearthCli(['deploy'])).stdout).toContain('Nothing to do.');

    // A new artifact at the same path: a new version, the config untouched.
    fs.copyFileSync(fixture('int16'), path.join(dir, 'models', 'ints.onnx'));
    const changed = await hearthCli(['deploy']);
    expect(changed.stdout).toMatch(/upload models\/ints\.onnx as version 2 \(sha256 [0-9a-f]{12} != [0-9a-f]{12}\)/);
    expect(changed.stdout).toContain('ints: uploaded version 2');
  });

  it('a bad hearth.yml: each error names its line, exit 2, nothing deployed', async () => {
    fs.writeFileSync(
      path.join(dir, 'bad.yml'),
      [
        'version: 1',
        'models:',
        '  broken:',
        '    path: ./id.onnx',
        '    config:',
        '      maxInstances: two',
        '      colour: blue',
        '',
      ].join('\n'),
    );
    const r = await hearthCli(['deploy', '-f', 'bad.yml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^hearth: bad\.yml:6:21: models\.broken\.config\.maxInstances: must be integer$/m);
    expect(r.stderr).toMatch(/^hearth: bad\.yml:7:7: models\.broken\.config: unknown key "colour"$/m);
    fs.writeFileSync(path.join(dir, 'broken.yml'), 'version: 1\nmodels:\n  a: [unclosed\n');
    const y = await hearthCli(['deploy', '-f', 'broken.yml']);
    expect(y.code).toBe(2);
    expect(y.stderr).toMatch(/^hearth: broken\.yml:\d+:\d+: /m);
    const missing = await hearthCli(['deploy', '-f', 'nope.yml']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.yml: cannot read it (ENOENT)');
    expect((await hearthCli(['--json', 'models', 'ls'])).stdout).not.toContain('broken');
  });

  it('exit codes: 0 for help, 2 for usage, 1 for a failure with the server code on one line', async () => {
    expect((await hearthCli(['--help'])).code).toBe(0);
    const usage = await hearthCli(['models', 'push', 'only-a-name']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("missing required argument 'path'");
    expect((await hearthCli(['models', 'rm', 'x', '--version', 'latest'])).code).toBe(2);
    const unknown = await hearthCli(['infer', 'ghost', '--input', 'in.json']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^hearth: MODEL_NOT_FOUND: .*ghost.* \(HTTP 404\)\n$/);
    const nokey = await hearthCli(['models', 'ls'], { HEARTH_API_KEY: '' });
    expect(nokey.code).toBe(1);
    expect(nokey.stderr).toMatch(/^hearth: UNAUTHENTICATED: .* \(HTTP 401\)\n$/);
    // Colour only on a terminal: a pipe gets none.
    expect(nokey.stderr).not.toContain('\x1b[');
  });
});
