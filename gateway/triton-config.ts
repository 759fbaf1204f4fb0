// Triton's model configuration, both ways: what `GET /v2/models/{m}[/versions/{v}]/config` answers (derived from
// the manifest and the serving config as this node applies it), and what the `config` parameter of
// `POST /v2/repository/models/{m}/load` may change (max_batch_size, dynamic_batching, instance_group count).
//
// Batching: Triton's max_batch_size > 0 means every tensor has a leading batch dimension, which `dims` leave out.
// Hearth merges requests along each tensor's own batch axis (batchLayoutOf), not always the first: for a model
// whose tensors are all batch-first, dims leave out that axis as Triton's do; for any other model (silero's h/c
// batch on axis 1, its `sr` is shared) dims are the whole shapes, and max_batch_size still says how many items
// Hearth merges into one run. A model Hearth cannot batch at all reports max_batch_size 0.
import { hearthError, type Datatype, type Manifest, type ModelConfig, type TensorSpec } from '../core/index.ts';
import { batchLayoutOf } from '../executor/index.ts';

export interface TritonTensorConfig {
  name: string;
  data_type: string;
  dims: number[];
}

export interface TritonModelConfig {
  name: string;
  platform: string;
  backend: string;
  max_batch_size: number;
  input: TritonTensorConfig[];
  output: TritonTensorConfig[];
  dynamic_batching?: { preferred_batch_size: number[]; max_queue_delay_microseconds: number };
  instance_group: { kind: 'KIND_CPU'; count: number }[];
}

/** Triton's TYPE_* name of a V2 datatype (BYTES is TYPE_STRING in Triton's model configuration). */
export function tritonDataType(datatype: Datatype): string {
  return datatype === 'BYTES' ? 'TYPE_STRING' : `TYPE_${datatype}`;
}

/** Triton's platform and backend names: ONNX runs on onnxruntime as in Triton; TF.js has no Triton backend. */
export function tritonPlatform(manifest: Manifest): { platform: string; backend: string } {
  return manifest.format === 'onnx'
    ? { platform: 'onnxruntime_onnx', backend: 'onnxruntime' }
    : { platform: 'tensorflow_js', backend: 'tensorflowjs' };
}

/** Items merged into one run: Triton's max_batch_size (0 when the model's requests are never merged). */
function maxBatchOf(manifest: Manifest, config: ModelConfig): number {
  return batchLayoutOf(manifest) && config.batching.maxBatchSize > 1 ? config.batching.maxBatchSize : 0;
}

function tensors(manifest: Manifest, specs: readonly TensorSpec[], maxBatch: number): TritonTensorConfig[] {
  const strip = maxBatch > 0 && batchLayoutOf(manifest)?.batchFirst === true;
  return specs.map((s) => ({ name: s.name, data_type: tritonDataType(s.datatype), dims: strip ? s.shape.slice(1) : [...s.shape] }));
}

/** The model configuration in Triton's shape, from a version's manifest and the serving config this node applies. */
export function toTritonConfig(manifest: Manifest, config: ModelConfig): TritonModelConfig {
  const maxBatch = maxBatchOf(manifest, config);
  return {
    name: manifest.name,
    ...tritonPlatform(manifest),
    max_batch_size: maxBatch,
    input: tensors(manifest, manifest.inputs, maxBatch),
    output: tensors(manifest, manifest.outputs, maxBatch),
    ...(maxBatch > 0
      ? {
          dynamic_batching: {
            preferred_batch_size: [],
            max_queue_delay_microseconds: Math.round(config.batching.maxQueueDelayMs * 1000),
          },
        }
      : {}),
    instance_group: [{ kind: 'KIND_CPU', count: config.maxInstances }],
  };
}

/** The fields of a Triton config the load parameter maps (or checks for consistency). */
const TOP_FIELDS = ['name', 'platform', 'backend', 'max_batch_size', 'input', 'output', 'dynamic_batching', 'instance_group'];
const MAX_QUEUE_DELAY_US = 10_000_000;
const MAX_BATCH = 4096;

function bad(field: string, why: string): never {
  throw hearthError('INVALID_CONFIG', `config.${field}: ${why}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function onlyKeys(field: string, v: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) bad(field ? `${field}.${k}` : k, `not supported by Hearth (${what})`);
  }
}

function int(field: string, v: unknown, min: number, max: number): number {
  // Triton's JSON prints int64 fields as strings; both forms are accepted.
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    bad(field, `expected an integer from ${min} to ${max}, got ${JSON.stringify(v)?.slice(0, 60)}`);
  }
  return n;
}

/**
 * A serving-config patch (for mergeModelConfig) from Triton's `config` load parameter, a JSON model configuration.
 * A field Hearth cannot map, or a value that contradicts the model (name, platform, tensors), throws 400
 * INVALID_CONFIG naming the field. Fields left out keep their current values: the patch changes only what it names.
 */
export function patchFromTritonConfig(text: unknown, manifest: Manifest, current: ModelConfig): Record<string, unknown> {
  if (typeof text !== 'string')
    throw hearthError('INVALID_REQUEST', 'parameter "config": expected a string holding a JSON model configuration');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw hearthError('INVALID_REQUEST', `parameter "config" is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(raw)) throw hearthError('INVALID_REQUEST', 'parameter "config": expected a JSON object');
  onlyKeys('', raw, TOP_FIELDS, 'the load config maps max_batch_size, dynamic_batching and instance_group');

  if (raw.name !== undefined && raw.name !== manifest.name) bad('name', `the model is "${manifest.name}", got ${JSON.stringify(raw.name)}`);
  const own = tritonPlatform(manifest);
  if (raw.platform !== undefined && raw.platform !== own.platform) bad('platform', `this model runs on "${own.platform}"`);
  if (raw.backend !== undefined && raw.backend !== own.backend) bad('backend', `this model runs on "${own.backend}"`);

  const batching: Record<string, number> = {};
  let maxBatch = maxBatchOf(manifest, current);
  if (raw.max_batch_size !== undefined) {
    const n = int('max_batch_size', raw.max_batch_size, 0, MAX_BATCH);
    if (n > 0 && !batchLayoutOf(manifest)) {
      bad('max_batch_size', 'this model cannot be batched (its tensors have no common dynamic batch axis); only 0 applies');
    }
    // Hearth's maxBatchSize 1 is Triton's 0: every request runs alone.
    batching.maxBatchSize = Math.max(1, n);
    maxBatch = n;
  }

  if (raw.dynamic_batching !== undefined) {
    const d = raw.dynamic_batching;
    if (!isObject(d)) bad('dynamic_batching', 'expected an object');
    onlyKeys(
      'dynamic_batching',
      d,
      ['preferred_batch_size', 'max_queue_delay_microseconds'],
      'it maps preferred_batch_size and max_queue_delay_microseconds',
    );
    if (maxBatch === 0) bad('dynamic_batching', 'needs max_batch_size > 0');
    if (d.preferred_batch_size !== undefined) {
      if (!Array.isArray(d.preferred_batch_size)) bad('dynamic_batching.preferred_batch_size', 'expected an array of integers');
      d.preferred_batch_size.forEach((v, i) => {
        // Hearth's batcher fills a run up to maxBatchSize; it has no smaller preferred sizes to aim for.
        if (int(`dynamic_batching.preferred_batch_size[${i}]`, v, 1, MAX_BATCH) !== maxBatch) {
          bad(
            `dynamic_batching.preferred_batch_size[${i}]`,
            `Hearth forms batches up to max_batch_size (${maxBatch}) only; a preferred size below it cannot be mapped`,
          );
        }
      });
    }
    if (d.max_queue_delay_microseconds !== undefined) {
      batching.maxQueueDelayMs =
        int('dynamic_batching.max_queue_delay_microseconds', d.max_queue_delay_microseconds, 0, MAX_QUEUE_DELAY_US) / 1000;
    }
  }

  for (const side of ['input', 'output'] as const) {
    const given = raw[side];
    if (given === undefined) continue;
    if (!Array.isArray(given)) bad(side, 'expected an array');
    const ours = tensors(manifest, side === 'input' ? manifest.inputs : manifest.outputs, maxBatch);
    given.forEach((t: unknown, i) => {
      const field = `${side}[${i}]`;
      if (!isObject(t)) bad(field, 'expected an object');
      onlyKeys(field, t, ['name', 'data_type', 'dims'], 'tensors come from the model file; name, data_type and dims are only checked');
      const match = ours.find((o) => o.name === t.name);
      if (!match) bad(`${field}.name`, `the model has no ${side} ${JSON.stringify(t.name)} (it has ${ours.map((o) => o.name).join(', ')})`);
      if (t.data_type !== undefined && t.data_type !== match.data_type) bad(`${field}.data_type`, `${match.name} is ${match.data_type}`);
      if (t.dims !== undefined) {
        const dims: unknown = Array.isArray(t.dims) ? (t.dims as unknown[]).map((v) => (typeof v === 'string' ? Number(v) : v)) : t.dims;
        if (JSON.stringify(dims) !== JSON.stringify(match.dims))
          bad(`${field}.dims`, `${match.name} has dims ${JSON.stringify(match.dims)}`);
      }
    });
  }

  const patch: Record<string, unknown> = {};
  if (Object.keys(batching).length > 0) patch.batching = batching;

  if (raw.instance_group !== undefined) {
    const groups = raw.instance_group;
    if (!Array.isArray(groups) || groups.length === 0) bad('instance_group', 'expected a non-empty array');
    let count = 0;
    groups.forEach((g: unknown, i) => {
      const field = `instance_group[${i}]`;
      if (!isObject(g)) bad(field, 'expected an object');
      onlyKeys(field, g, ['count', 'kind'], 'it maps count and kind KIND_CPU');
      if (g.kind !== undefined && g.kind !== 'KIND_CPU' && g.kind !== 'KIND_AUTO') {
        bad(`${field}.kind`, `Hearth runs models on the CPU only (KIND_CPU or KIND_AUTO), got ${JSON.stringify(g.kind)}`);
      }
      count += g.count === undefined ? 1 : int(`${field}.count`, g.count, 1, 1024);
    });
    if (count > 1024) bad('instance_group', `at most 1024 instances in all, got ${count}`);
    // Triton keeps `count` instances loaded; Hearth scales from minInstances up to that many on demand.
    patch.maxInstances = count;
    if (current.minInstances > count) patch.minInstances = count;
  }
  return patch;
}
