// Prints outputs as V2 JSON `data` text on the instance thread (RunMessage.print): for each request of a
// (possibly merged) run, the outputs it wants as JSON, cut to its own rows. The HTTP thread then splices the
// text into the response instead of formatting thousands of floats itself.
import { elementCount, hearthError, type PrintedTensor, type Tensor, type TensorData } from '../core/index.ts';
import { jsonDataText } from '../core/v2-codec.ts';

export interface PrintPlan {
  /** Rows of request i are offsets[i]..offsets[i+1] on each output's batch axis; absent: one unbatched request. */
  offsets?: number[];
  /** Batch axis per output name (0 when absent). */
  axes?: Record<string, number>;
  /** Per request, the outputs to print. */
  names: string[][];
}

type Numeric = Exclude<TensorData, string[]>;

/** Request rows [start, end) of `t` along `axis`, as a tensor (a view when the rows are contiguous). */
function rowsOf(t: Tensor, axis: number, start: number, end: number): Tensor {
  const total = t.shape[axis];
  const shape = t.shape.slice();
  shape[axis] = end - start;
  let outer = 1;
  for (let d = 0; d < axis; d++) outer *= t.shape[d];
  const inner = elementCount(t.shape.slice(axis + 1));
  const rows = (end - start) * inner;
  if (Array.isArray(t.data)) {
    const out: string[] = [];
    for (let o = 0; o < outer; o++) out.push(...t.data.slice((o * total + start) * inner, (o * total + start) * inner + rows));
    return { ...t, shape, data: out };
  }
  const src = t.data as Numeric;
  if (outer === 1) return { ...t, shape, data: src.subarray(start * inner, start * inner + rows) as Numeric };
  const out = new (src.constructor as new (n: number) => Numeric)(outer * rows);
  for (let o = 0; o < outer; o++) (out as Uint8Array).set((src as Uint8Array).subarray((o * total + start) * inner, (o * total + start) * inner + rows), o * rows);
  return { ...t, shape, data: out };
}

/** The printed outputs of each request, in the order of plan.names. */
export function printOutputs(outputs: readonly Tensor[], plan: PrintPlan): PrintedTensor[][] {
  const byName = new Map(outputs.map((t) => [t.name, t]));
  return plan.names.map((names, i) =>
    names.flatMap((name): PrintedTensor[] => {
      const t = byName.get(name);
      if (!t) return [];
      let own = t;
      if (plan.offsets) {
        const axis = plan.axes?.[name] ?? 0;
        const total = plan.offsets[plan.offsets.length - 1];
        if (t.shape.length <= axis || t.shape[axis] !== total) {
          throw hearthError('INTERNAL', `output "${name}" has shape [${t.shape.join(',')}], expected ${total} rows on axis ${axis}`);
        }
        own = rowsOf(t, axis, plan.offsets[i], plan.offsets[i + 1]);
      }
      return [{ name, datatype: t.datatype, shape: own.shape, json: jsonDataText(own) }];
    }),
  );
}

/** Names every request of the run prints (their tensors need not go back to the host). */
export function printedByAll(names: readonly (readonly string[])[]): Set<string> {
  const all = new Set(names[0] ?? []);
  for (const list of names.slice(1)) for (const n of all) if (!list.includes(n)) all.delete(n);
  return all;
}
