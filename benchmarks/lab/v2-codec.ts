// Lab, kept for the record: measured the V2 codec's fast paths against JSON.parse/stringify when they were written (2026-11-26).
// V2 codec fast paths: decoding a large JSON `data` array and encoding a large response, against the
// obvious baseline (JSON.parse, flatten, copy into a typed array; JSON.stringify of Array.from) in the same run.
// Run: npx tsx benchmarks/lab/v2-codec.ts [elements]
import { decodeInferRequest, encodeInferResponse } from '../../protocol/index.ts';
import type { Tensor } from '../../core/index.ts';
import { sampleAt } from '../lib/percentiles.ts';

const n = Number(process.argv[2] ?? 1_000_000);
const reps = 7;

const median = (xs: number[]) => sampleAt(xs, 0.5);

/** CPU time of this process in ms: on a shared, loaded box wall time mostly measures the neighbours. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function time(fn: () => unknown): number {
  const runs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = cpuMs();
    fn();
    runs.push(cpuMs() - t0);
  }
  return median(runs);
}

/** Alternates a and b in short rounds so drifting machine load hits both alike; medians of per-call CPU µs. */
function pairUs(a: () => void, b: () => void, iterations: number, rounds = 15): [number, number] {
  for (let i = 0; i < iterations; i++) {
    a();
    b();
  }
  const ra: number[] = [];
  const rb: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const [fn, out] of [
      [a, ra],
      [b, rb],
    ] as const) {
      const t0 = cpuMs();
      for (let i = 0; i < iterations; i++) fn();
      out.push(((cpuMs() - t0) * 1000) / iterations);
    }
  }
  return [median(ra), median(rb)];
}

function flatten(v: unknown, out: number[]): void {
  if (Array.isArray(v)) for (const x of v) flatten(x, out);
  else out.push(v as number);
}

/** What a straightforward route does: JSON.parse the body, flatten `data`, check types, build the typed array. */
function baselineDecode(body: Buffer): Float32Array {
  const req = JSON.parse(body.toString('utf8')) as { inputs: { data: unknown }[] };
  const flat: number[] = [];
  flatten(req.inputs[0].data, flat);
  for (const x of flat) if (typeof x !== 'number') throw new Error('bad');
  return new Float32Array(flat);
}

function baselineEncode(t: Tensor): Buffer {
  return Buffer.from(
    JSON.stringify({
      model_name: 'm',
      model_version: '1',
      outputs: [{ name: t.name, datatype: t.datatype, shape: t.shape, data: Array.from(t.data as Float32Array) }],
    }),
  );
}

const values = new Float32Array(n);
for (let i = 0; i < n; i++) values[i] = Math.fround(Math.random() * 2 - 1);
// Clients usually print float32 values either short (numpy `round`, JS toFixed) or as full doubles (tolist()).
const shortText = Array.from(values, (v) => v.toFixed(6)).join(',');
const longText = Array.from(values).join(',');
const rows = 1000;
const nestedText = Array.from(
  { length: rows },
  (_, r) => `[${Array.from(values.subarray((r * n) / rows, ((r + 1) * n) / rows), (v) => v.toFixed(6)).join(',')}]`,
).join(',');

const bodies: [string, Buffer, number[]][] = [
  ['flat, 6 decimals', Buffer.from(`{"inputs":[{"name":"x","datatype":"FP32","shape":[${n}],"data":[${shortText}]}]}`), [n]],
  [
    'flat, 17 digits (float32 printed as double)',
    Buffer.from(`{"inputs":[{"name":"x","datatype":"FP32","shape":[${n}],"data":[${longText}]}]}`),
    [n],
  ],
  [
    'nested [1000, n/1000], 6 decimals',
    Buffer.from(`{"inputs":[{"name":"x","datatype":"FP32","shape":[${rows},${n / rows}],"data":[${nestedText}]}]}`),
    [rows, n / rows],
  ],
];

console.log(`V2 codec, FP32 tensor of ${n.toLocaleString()} elements, median CPU time of ${reps} runs (node ${process.version})`);
for (const [label, body] of bodies) {
  const check = decodeInferRequest(body).inputs[0].data as Float32Array;
  const base = baselineDecode(body);
  for (let i = 0; i < n; i += 9973) if (check[i] !== base[i]) throw new Error(`mismatch at ${i}: ${check[i]} vs ${base[i]}`);
  const tb = time(() => baselineDecode(body));
  const tf = time(() => decodeInferRequest(body));
  console.log(
    `decode JSON ${label} (${(body.length / 1e6).toFixed(1)} MB): baseline ${tb.toFixed(1)} ms, codec ${tf.toFixed(1)} ms, ratio ${(tb / tf).toFixed(2)}x`,
  );
}

const t: Tensor = { name: 'y', datatype: 'FP32', shape: [n], data: values };
const te0 = time(() => baselineEncode(t));
const te1 = time(() => encodeInferResponse({ modelName: 'm', modelVersion: 1, outputs: [t] }));
console.log(`encode JSON response: baseline ${te0.toFixed(1)} ms, codec ${te1.toFixed(1)} ms, ratio ${(te0 / te1).toFixed(2)}x`);
const tbin = time(() => encodeInferResponse({ modelName: 'm', modelVersion: 1, outputs: [t] }, () => true));
console.log(`encode binary response: ${tbin.toFixed(2)} ms`);
const bin = encodeInferResponse({ modelName: 'm', modelVersion: 1, outputs: [t] }, () => true);
const binReq = Buffer.concat([
  Buffer.from(`{"inputs":[{"name":"x","datatype":"FP32","shape":[${n}],"parameters":{"binary_data_size":${n * 4}}}]}`),
  bin.body.subarray(bin.headerLength),
]);
const hl = binReq.length - n * 4;
const tdb = time(() => decodeInferRequest(binReq, { headerLength: hl }));
console.log(`decode binary request: ${tdb.toFixed(2)} ms`);

// A silero VAD request as a client sends it (JSON, float32 printed as doubles) and its response: the per-request
// cost on the gateway's event loop, against JSON.parse + Float32Array/BigInt64Array building + JSON.stringify.
{
  const audio = Array.from({ length: 512 }, (_, i) => Math.fround(Math.sin(i / 7) * 0.5));
  const state = Array.from({ length: 128 }, (_, i) => Math.fround(Math.cos(i) * 0.1));
  const sileroBody = Buffer.from(
    JSON.stringify({
      inputs: [
        { name: 'input', datatype: 'FP32', shape: [1, 512], data: audio },
        { name: 'sr', datatype: 'INT64', shape: [], data: 16000 },
        { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: state },
        { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: state },
      ],
    }),
  );
  const outs: Tensor[] = [
    { name: 'output', datatype: 'FP32', shape: [1, 1], data: Float32Array.of(0.25) },
    { name: 'hn', datatype: 'FP32', shape: [2, 1, 64], data: Float32Array.from(state) },
    { name: 'cn', datatype: 'FP32', shape: [2, 1, 64], data: Float32Array.from(state) },
  ];
  const [base, codec] = pairUs(
    () => {
      const req = JSON.parse(sileroBody.toString('utf8')) as { inputs: { datatype: string; data: unknown }[] };
      for (const t of req.inputs) {
        const flat: number[] = [];
        flatten(t.data, flat);
        if (t.datatype === 'INT64') BigInt64Array.from(flat, (v) => BigInt(v));
        else new Float32Array(flat);
      }
      Buffer.from(
        JSON.stringify({
          model_name: 'vad',
          model_version: '1',
          outputs: outs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, data: Array.from(t.data as Float32Array) })),
        }),
      );
    },
    () => {
      decodeInferRequest(sileroBody);
      encodeInferResponse({ modelName: 'vad', modelVersion: 1, outputs: outs });
    },
    2000,
  );
  console.log(
    `silero request (${sileroBody.length} B) decode + response encode: baseline ${base.toFixed(1)} µs, codec ${codec.toFixed(1)} µs, ratio ${(base / codec).toFixed(2)}x`,
  );
}
