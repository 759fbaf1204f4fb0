// Checks decoded inputs against a model version's manifest before any work is queued, so a bad request
// never reaches an instance (or fails its batch mates). Shared by the gateway and the job workers.
import { elementCount, hearthError, isDeferred, shown, type InputTensor, type Manifest } from '../core/index.ts';

function fmt(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

function names(list: readonly { name: string }[]): string {
  return list.map((t) => `"${t.name}"`).join(', ') || 'none';
}

/**
 * Throws INVALID_TENSOR naming the input and what was expected when:
 * an input is missing, unknown or given twice; its datatype differs; its rank differs or a fixed dimension
 * differs (-1 in the manifest matches any size); or its data length is not the product of its shape (for a
 * deferred input, the instance thread checks that when it parses the JSON, and fails only that request).
 * Throws INVALID_REQUEST when a requested output is not an output of the model.
 */
export function validateInputs(manifest: Manifest, tensors: readonly InputTensor[], requestedOutputs?: readonly string[]): void {
  const model = `model "${manifest.name}" version ${manifest.version}`;
  const specs = new Map(manifest.inputs.map((s) => [s.name, s]));
  const seen = new Set<string>();
  for (const t of tensors) {
    const spec = specs.get(t.name);
    if (!spec) throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": not an input of ${model}; expected ${names(manifest.inputs)}`);
    if (seen.has(t.name)) throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": given more than once`);
    seen.add(t.name);
    if (t.datatype !== spec.datatype) {
      throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": expected datatype ${spec.datatype}, got ${t.datatype}`);
    }
    const fits = t.shape.length === spec.shape.length && spec.shape.every((d, i) => d === -1 || d === t.shape[i]);
    if (!fits) throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": expected shape ${fmt(spec.shape)}, got ${fmt(t.shape)}`);
    const want = elementCount(t.shape);
    // A deferred input's element count is checked where its JSON is parsed (functions/materialize.ts).
    if (!isDeferred(t) && t.data.length !== want) {
      throw hearthError('INVALID_TENSOR', `input "${shown(t.name)}": shape ${fmt(t.shape)} needs ${want} elements, got ${t.data.length}`);
    }
  }
  for (const spec of manifest.inputs) {
    if (!seen.has(spec.name)) {
      throw hearthError('INVALID_TENSOR', `input "${spec.name}": missing; ${model} expects ${spec.datatype} ${fmt(spec.shape)}`);
    }
  }
  if (requestedOutputs) {
    const outs = new Set(manifest.outputs.map((o) => o.name));
    const dup = new Set<string>();
    for (const name of requestedOutputs) {
      if (!outs.has(name)) throw hearthError('INVALID_REQUEST', `output "${shown(name)}": not an output of ${model}; expected ${names(manifest.outputs)}`);
      if (dup.has(name)) throw hearthError('INVALID_REQUEST', `output "${shown(name)}": requested more than once`);
      dup.add(name);
    }
  }
}
