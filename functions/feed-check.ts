// Checks a run's inputs and requested outputs against the session's specs before the runtime sees
// them, so a bad call gets INVALID_TENSOR naming the input instead of a runtime's internal message.
import { hearthError, shown, type Tensor, type TensorSpec } from '../core/index.ts';
import { checkTensorData } from './tensor-convert.ts';

/** True when a concrete shape fits a spec shape (same rank; -1 matches any size). */
export function shapeFits(spec: readonly number[], shape: readonly number[]): boolean {
  return spec.length === shape.length && spec.every((d, i) => d === -1 || d === shape[i]);
}

/** Throws INVALID_TENSOR for an unknown, duplicate or missing input, a wrong datatype or shape, or bad data. */
export function checkFeeds(inputs: readonly TensorSpec[], feeds: readonly Tensor[]): void {
  const byName = new Map(inputs.map((s) => [s.name, s]));
  const seen = new Set<string>();
  for (const t of feeds) {
    const spec = byName.get(t.name);
    if (!spec) {
      throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": the model has no such input (inputs: ${inputs.map((s) => s.name).join(', ')})`);
    }
    if (seen.has(t.name)) throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": given more than once`);
    seen.add(t.name);
    if (t.datatype !== spec.datatype) {
      throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": expected datatype ${spec.datatype}, got ${t.datatype}`);
    }
    if (!shapeFits(spec.shape, t.shape)) {
      throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": expected shape ${JSON.stringify(spec.shape)}, got ${JSON.stringify(t.shape)}`);
    }
    checkTensorData(t, `input "${shown(t.name)}"`);
  }
  const missing = inputs.filter((s) => !seen.has(s.name)).map((s) => s.name);
  if (missing.length) throw hearthError('INVALID_TENSOR', `missing input${missing.length > 1 ? 's' : ''}: ${missing.map((m) => `"${m}"`).join(', ')}`);
}

/** Throws INVALID_TENSOR for an unknown or duplicate requested output; returns the names to fetch. */
export function checkOutputNames(outputs: readonly TensorSpec[], names: readonly string[] | undefined): string[] {
  if (names === undefined || names.length === 0) return outputs.map((s) => s.name);
  const known = new Set(outputs.map((s) => s.name));
  const seen = new Set<string>();
  for (const n of names) {
    if (!known.has(n)) throw hearthError('INVALID_TENSOR', `output "${shown(n)}": the model has no such output (outputs: ${[...known].join(', ')})`);
    if (seen.has(n)) throw hearthError('INVALID_TENSOR', `output "${shown(n)}": requested more than once`);
    seen.add(n);
  }
  return [...names];
}
