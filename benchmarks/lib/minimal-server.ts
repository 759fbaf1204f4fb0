// The hand-rolled baseline Hearth has to beat: fastify + onnxruntime-node, Open Inference Protocol JSON in
// and out, one session with one intra-op thread, on the event loop's thread; no pool, no batching.
// Written the way a developer would write it in an afternoon: JSON.parse, TypedArray.from, Array.from.
//   tsx benchmarks/lib/minimal-server.ts <model.onnx> [port]   prints "listening <url>"
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import ort from 'onnxruntime-node';

interface V2Input {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
}

const toOrt: Record<string, { type: ort.Tensor.Type; from: (d: unknown[]) => ort.Tensor.DataType }> = {
  FP32: { type: 'float32', from: (d) => Float32Array.from(d as number[]) },
  FP64: { type: 'float64', from: (d) => Float64Array.from(d as number[]) },
  INT32: { type: 'int32', from: (d) => Int32Array.from(d as number[]) },
  INT64: { type: 'int64', from: (d) => BigInt64Array.from(d as number[], (v) => BigInt(v)) },
  UINT8: { type: 'uint8', from: (d) => Uint8Array.from(d as number[]) },
  BOOL: { type: 'bool', from: (d) => Uint8Array.from(d as number[], (v) => (v ? 1 : 0)) },
};
const fromOrt: Record<string, string> = { float32: 'FP32', float64: 'FP64', int32: 'INT32', int64: 'INT64', uint8: 'UINT8', bool: 'BOOL' };

export interface MinimalServer {
  url: string;
  close(): Promise<void>;
}

export async function startMinimalServer(opts: {
  modelPath: string;
  modelName?: string;
  port?: number;
  host?: string;
}): Promise<MinimalServer> {
  const session = await ort.InferenceSession.create(opts.modelPath, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const modelName = opts.modelName ?? 'model';
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });

  app.post<{ Params: { name: string }; Body: { inputs?: V2Input[] } }>('/v2/models/:name/infer', async (req, reply) => {
    if (req.params.name !== modelName) return reply.code(404).send({ error: `unknown model ${req.params.name}` });
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of req.body?.inputs ?? []) {
      const conv = toOrt[input.datatype];
      if (!conv) return reply.code(400).send({ error: `unsupported datatype ${input.datatype}` });
      feeds[input.name] = new ort.Tensor(conv.type, conv.from(input.data), input.shape);
    }
    const results = await session.run(feeds);
    return {
      model_name: modelName,
      outputs: Object.entries(results).map(([name, t]) => ({
        name,
        datatype: fromOrt[t.type] ?? t.type,
        shape: t.dims,
        data: t.type === 'int64' ? Array.from(t.data as BigInt64Array, Number) : Array.from(t.data as Float32Array),
      })),
    };
  });

  const url = await app.listen({ port: opts.port ?? 0, host: opts.host ?? '127.0.0.1' });
  return {
    url,
    close: async () => {
      await app.close();
      await session.release();
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [modelPath, port] = process.argv.slice(2);
  if (!modelPath) {
    console.error('usage: tsx benchmarks/lib/minimal-server.ts <model.onnx> [port]');
    process.exit(2);
  }
  const server = await startMinimalServer({ modelPath, modelName: 'vad', port: port ? Number(port) : 0 });
  console.log(`listening ${server.url}`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
