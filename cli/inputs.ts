// `hearth infer --input FILE.json`: a V2 request ({"inputs": [{name, datatype, shape, data}]}) or the shorthand
// {"name": nested array}, whose datatypes come from the model's metadata and whose shapes from the nesting.
import type { Datatype, InferInputs, InputTensor } from '../client/index.ts';
import { UsageError } from './output.ts';

/** A nested array's shape and its elements, row-major. */
function flatten(v: unknown, where: string): { shape: number[]; data: unknown[] } {
  if (!Array.isArray(v)) return { shape: [], data: [v] };
  if (v.length === 0) return { shape: [0], data: [] };
  const parts = v.map((x, i) => flatten(x, `${where}[${i}]`));
  const inner = parts[0].shape;
  for (const p of parts)
    if (p.shape.join(',') !== inner.join(',')) throw new UsageError(`${where}: a ragged array (rows of different shapes) is not a tensor`);
  return { shape: [v.length, ...inner], data: parts.flatMap((p) => p.data) };
}

function convert(datatype: Datatype, data: unknown[], where: string): InputTensor['data'] {
  if (datatype === 'BYTES') return data.map(String);
  if (datatype === 'BOOL') return data.map((x) => Boolean(x));
  if (datatype === 'INT64' || datatype === 'UINT64') return data.map((x) => BigInt(x as number | string));
  if (data.some((x) => typeof x !== 'number')) throw new UsageError(`${where}: ${datatype} data must be numbers`);
  return data as number[];
}

export function tensorsFromJson(
  body: unknown,
  specs: { name: string; datatype: Datatype }[],
): { inputs: InferInputs; outputs?: string[]; id?: string } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new UsageError('the input file must hold a JSON object');
  const b = body as Record<string, unknown>;
  if (Array.isArray(b.inputs)) {
    const inputs = (b.inputs as Record<string, unknown>[]).map((t, i) => {
      const where = `inputs[${i}]`;
      if (typeof t?.name !== 'string' || typeof t.datatype !== 'string') throw new UsageError(`${where}: needs "name" and "datatype"`);
      const flat = flatten(t.data, `${where}.data`);
      const shape = Array.isArray(t.shape) ? (t.shape as number[]) : flat.shape;
      return { name: t.name, datatype: t.datatype as Datatype, shape, data: convert(t.datatype as Datatype, flat.data, where) };
    });
    const outputs = Array.isArray(b.outputs) ? (b.outputs as { name: string }[]).map((o) => o.name) : undefined;
    return { inputs, ...(outputs ? { outputs } : {}), ...(typeof b.id === 'string' ? { id: b.id } : {}) };
  }
  const inputs: Record<string, InputTensor> = {};
  for (const [name, v] of Object.entries(b)) {
    const spec = specs.find((s) => s.name === name);
    if (!spec)
      throw new UsageError(`input "${name}": the model has no such input (it has ${specs.map((s) => s.name).join(', ') || 'none'})`);
    const flat = flatten(v, name);
    inputs[name] = { datatype: spec.datatype, shape: flat.shape, data: convert(spec.datatype, flat.data, name) };
  }
  return { inputs };
}

/** Zeros for each input, every dynamic dimension 1: what `hearth bench` sends when no input file is given. */
export function zeroInputs(specs: { name: string; datatype: Datatype; shape: number[] }[]): InferInputs {
  const out: Record<string, InputTensor> = {};
  for (const s of specs) {
    const shape = s.shape.map((d) => (d < 0 ? 1 : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const data: InputTensor['data'] =
      s.datatype === 'BYTES'
        ? Array<string>(n).fill('')
        : s.datatype === 'INT64' || s.datatype === 'UINT64'
          ? Array<bigint>(n).fill(0n)
          : Array<number>(n).fill(0);
    out[s.name] = { datatype: s.datatype, shape, data: s.datatype === 'FP16' ? new Uint16Array(n) : data };
  }
  return out;
}
