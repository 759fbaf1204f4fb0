// `hearth deploy`: makes a node match hearth.yml. A plan first (+ create, ~ update, = unchanged): a model is uploaded
// only when its artifact id (sha256) differs from the latest version's, a serving config is put only when a key it
// names differs from the stored value. Applying the same file twice changes nothing the second time.
import path from 'node:path';
import { isHearthError, type HearthClient, type ServingConfig } from '../client/index.ts';
import { localArtifactId, modelSource } from '../client/node.ts';
import type { HearthYml } from './hearth-yml.ts';

export interface ConfigChange {
  field: string;
  from: unknown;
  to: unknown;
}

export interface PlanItem {
  name: string;
  action: 'create' | 'update' | 'unchanged';
  path: string;
  /** Upload a new version (create, or an artifact that changed). */
  upload: boolean;
  /** The latest version now, when the model exists. */
  latest?: number;
  localSha256?: string;
  remoteSha256?: string;
  /** The config keys to put, with their value now. */
  configChanges: ConfigChange[];
  config?: ServingConfig;
}

/** The leaves of a nested object as dotted paths. */
function leaves(o: Record<string, unknown>, prefix = ''): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(o)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) out.push(...leaves(v as Record<string, unknown>, p));
    else out.push([p, v]);
  }
  return out;
}

function getPath(o: unknown, p: string): unknown {
  return p.split('.').reduce<unknown>((x, k) => (x && typeof x === 'object' ? (x as Record<string, unknown>)[k] : undefined), o);
}

/**
 * What the store holds for each field: the node answers the config as it applies it, and names in
 * hearth-config-clamped the fields it clamped (`field requested -> applied (because)`), whose stored value is the requested one.
 */
function clampedRequests(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const m = /^\s*(\S+) (.+?) -> .+ \(.*\)\s*$/.exec(part);
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  // memoryMb null means "derived": stored as absent.
  if ((a === null || a === undefined) && (b === null || b === undefined)) return true;
  return typeof a === 'number' && typeof b === 'string' && String(a) === b;
}

export async function planDeploy(client: HearthClient, spec: HearthYml, dir: string): Promise<PlanItem[]> {
  const items: PlanItem[] = [];
  for (const [name, m] of Object.entries(spec.models ?? {})) {
    const file = path.resolve(dir, m.path);
    const localSha256 = await localArtifactId(file).catch((e: unknown) => {
      throw new Error(
        `models.${name}.path: ${m.path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : (e as Error).message}`,
      );
    });
    const summary = await client.models.find(name);
    const item: PlanItem = {
      name,
      action: 'unchanged',
      path: file,
      upload: false,
      configChanges: [],
      ...(m.config ? { config: m.config } : {}),
    };
    if (localSha256) item.localSha256 = localSha256;
    if (!summary) {
      item.action = 'create';
      item.upload = true;
      item.configChanges = leaves(m.config ?? {}).map(([field, to]) => ({ field, from: undefined, to }));
      items.push(item);
      continue;
    }
    item.latest = summary.latest;
    const manifest = await client.models.manifest(name, summary.latest);
    item.remoteSha256 = manifest.sha256;
    // An archive's id is known only unpacked: it is uploaded every time.
    item.upload = localSha256 === undefined || localSha256 !== manifest.sha256;
    if (m.config) {
      const now = await client.models.getConfig(name);
      const clamped = clampedRequests(now.clamped);
      for (const [field, to] of leaves(m.config)) {
        const from = clamped.get(field) ?? getPath(now.config, field);
        if (!same(to, from)) item.configChanges.push({ field, from, to });
      }
    }
    if (item.upload || item.configChanges.length) item.action = 'update';
    items.push(item);
  }
  return items;
}

const show = (v: unknown) => (v === undefined ? '(default)' : JSON.stringify(v));

/** The plan as text: one line per model, its changes indented below. */
export function planText(
  items: PlanItem[],
  colour: { green: (s: string) => string; yellow: (s: string) => string; dim: (s: string) => string },
): string {
  const lines: string[] = [];
  for (const it of items) {
    const relative = path.relative(process.cwd(), it.path);
    const rel = !relative || relative.startsWith('..') ? it.path : relative;
    if (it.action === 'create') lines.push(colour.green(`+ create     ${it.name}`) + colour.dim(`  (upload ${rel})`));
    else if (it.action === 'update') lines.push(colour.yellow(`~ update     ${it.name}`));
    else lines.push(colour.dim(`= unchanged  ${it.name}  (version ${it.latest}, sha256 ${it.remoteSha256?.slice(0, 12)})`));
    if (it.action === 'update' && it.upload)
      lines.push(
        `    upload ${rel} as version ${(it.latest ?? 0) + 1} (sha256 ${it.localSha256?.slice(0, 12) ?? 'of an archive, not compared'} != ${it.remoteSha256?.slice(0, 12)})`,
      );
    for (const c of it.configChanges) lines.push(`    config ${c.field}: ${show(c.from)} -> ${show(c.to)}`);
  }
  const count = (a: PlanItem['action']) => items.filter((i) => i.action === a).length;
  lines.push('', `Plan: ${count('create')} to create, ${count('update')} to update, ${count('unchanged')} unchanged.`);
  return lines.join('\n');
}

/** The config patch of a plan item: only the changed keys, nested again. */
function patchOf(changes: ConfigChange[], config: ServingConfig): ServingConfig {
  const out: ServingConfig = {};
  for (const { field } of changes) {
    const top = field.split('.')[0];
    // keepAlive is replaced whole by the server: send the whole object as hearth.yml gives it.
    out[top] = config[top];
  }
  return out;
}

export interface ApplyHooks {
  onUpload?: (name: string, source: Awaited<ReturnType<typeof modelSource>>) => Promise<{ version: number }>;
  onStep?: (line: string) => void;
}

/** Applies a plan: uploads, then configs; answers what it did. */
export async function applyPlan(
  client: HearthClient,
  items: PlanItem[],
  hooks: ApplyHooks = {},
): Promise<{ name: string; uploaded?: number; configured: string[] }[]> {
  const done: { name: string; uploaded?: number; configured: string[] }[] = [];
  for (const it of items) {
    if (it.action === 'unchanged') continue;
    const result: { name: string; uploaded?: number; configured: string[] } = { name: it.name, configured: [] };
    if (it.upload) {
      const source = await modelSource(it.path);
      const m = hooks.onUpload ? await hooks.onUpload(it.name, source) : await client.models.upload(it.name, source);
      result.uploaded = m.version;
      hooks.onStep?.(`${it.name}: uploaded version ${m.version}`);
    }
    if (it.configChanges.length && it.config) {
      try {
        await client.models.putConfig(it.name, patchOf(it.configChanges, it.config));
      } catch (e) {
        if (isHearthError(e)) e.message = `${it.name}: config: ${e.message}`;
        throw e;
      }
      result.configured = it.configChanges.map((c) => c.field);
      hooks.onStep?.(`${it.name}: config ${result.configured.join(', ')} applied`);
    }
    done.push(result);
  }
  return done;
}
