// hearth.yml: read with the yaml library (keeping each node's place in the text), checked against the JSON Schema
// that ships beside this file (hearth.schema.json, with Ajv), every error naming its line and column.
import fs from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import schema from './hearth.schema.json' with { type: 'json' };

export interface HearthYml {
  version: 1;
  models?: Record<string, { path: string; config?: Record<string, unknown> }>;
  functions?: Record<string, never>;
}

/** A hearth.yml that cannot be used: each problem as `file:line:col: where: what`. */
export class HearthYmlError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'HearthYmlError';
    this.problems = problems;
  }
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile<HearthYml>(schema);

/** The node an Ajv error points at: the offending key for an unknown property, else the value at its path. */
function nodeOf(doc: Document, e: ErrorObject): Node | undefined {
  const keys = e.instancePath
    .split('/')
    .slice(1)
    .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  const at = keys.length ? (doc.getIn(keys, true) as Node | undefined) : (doc.contents ?? undefined);
  const extra =
    (e.params as { additionalProperty?: string; propertyName?: string }).additionalProperty ??
    (e.params as { propertyName?: string }).propertyName;
  if (extra !== undefined && isMap(at)) {
    const pair = at.items.find((p) => isScalar(p.key) && p.key.value === extra);
    if (pair && isScalar(pair.key)) return pair.key;
  }
  return at ?? undefined;
}

function describe(e: ErrorObject): string {
  const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '(top level)';
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${where}: unknown key "${String(p.additionalProperty)}"`;
    case 'required':
      return `${where}: missing "${String(p.missingProperty)}"`;
    case 'enum':
      return `${where}: must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `${where}: must be ${JSON.stringify(p.allowedValue)}`;
    case 'propertyNames':
      return `${where}: "${String(p.propertyName)}" is not a model name (lowercase letters, digits, . _ -)`;
    default:
      return `${where}: ${e.message ?? e.keyword}`;
  }
}

/** Parses and checks hearth.yml text; throws HearthYmlError naming each problem's line. */
export function parseHearthYml(text: string, file = 'hearth.yml'): HearthYml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    const { line, col } = lineCounter.linePos(offset ?? 0);
    return `${file}:${line}:${col}`;
  };
  if (doc.errors.length) {
    throw new HearthYmlError(doc.errors.map((e) => `${at(e.pos[0])}: ${e.message.split('\n')[0]}`));
  }
  const value: unknown = doc.toJS();
  if (!validate(value)) {
    // Ajv reports an if/then/else failure twice (the branch's error and "must match then/else"): keep the first.
    const errors = (validate.errors ?? []).filter((e) => e.keyword !== 'if');
    const problems = errors.map((e) => `${at(nodeOf(doc, e)?.range?.[0])}: ${describe(e)}`);
    throw new HearthYmlError([...new Set(problems)]);
  }
  return value;
}

/** Reads a hearth.yml from disk. */
export function loadHearthYml(file: string): { spec: HearthYml; dir: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new HearthYmlError([`${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`]);
  }
  return { spec: parseHearthYml(text, path.relative(process.cwd(), file) || file), dir: path.dirname(path.resolve(file)) };
}
