// Prints outputs as V2 JSON `data` text on the instance thread (RunMessage.print): for each request of a
// (possibly merged) run, the outputs it wants as JSON, cut to its own rows. The HTTP thread then splices the
// text into the response instead of formatting thousands of floats itself.
import { elementCount, hearthError, type Datatype, type PrintedTensor, type Tensor, type TensorData } from '../core/index.ts';
import { jsonDataText } from '../protocol/index.ts';
import type { RequestFailure } from './materialize.ts';

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
  const src = t.data;
  if (outer === 1) return { ...t, shape, data: src.subarray(start * inner, start * inner + rows) };
  const out = new (src.constructor as new (n: number) => Numeric)(outer * rows);
  for (let o = 0; o < outer; o++)
    (out as Uint8Array).set((src as Uint8Array).subarray((o * total + start) * inner, (o * total + start) * inner + rows), o * rows);
  return { ...t, shape, data: out };
}

/** The printed outputs of each request, in the order of plan.names. */
export function printOutputs(outputs: readonly Tensor[], plan: PrintPlan): PrintedTensor[][] {
  return printOutputsWithin(outputs, plan, Infinity).printed;
}

/**
 * printOutputs, with the JSON text of each request bounded by `maxBytes` (MAX_RESPONSE_BYTES): a request past it
 * gets no text and a RESPONSE_TOO_LARGE failure instead, found without printing more than about `maxBytes`.
 */
export function printOutputsWithin(
  outputs: readonly Tensor[],
  plan: PrintPlan,
  maxBytes: number,
): { printed: PrintedTensor[][]; failed: RequestFailure[] } {
  const byName = new Map(outputs.map((t) => [t.name, t]));
  const failed: RequestFailure[] = [];
  const printed = plan.names.map((names, i): PrintedTensor[] => {
    let left = maxBytes;
    const out: PrintedTensor[] = [];
    for (const name of names) {
      const t = byName.get(name);
      if (!t) continue;
      let own = t;
      if (plan.offsets) {
        const axis = plan.axes?.[name] ?? 0;
        const total = plan.offsets[plan.offsets.length - 1];
        if (t.shape.length <= axis || t.shape[axis] !== total) {
          throw hearthError('INTERNAL', `output "${name}" has shape [${t.shape.join(',')}], expected ${total} rows on axis ${axis}`);
        }
        own = rowsOf(t, axis, plan.offsets[i], plan.offsets[i + 1]);
      }
      const json = jsonWithin(own, left);
      if (json === undefined) {
        failed.push({ request: i, code: 'RESPONSE_TOO_LARGE', message: tooLargeAsJson(own, maxBytes) });
        return [];
      }
      left -= json.length;
      out.push({ name, datatype: t.datatype, shape: own.shape, json });
    }
    return out;
  });
  return { printed, failed };
}

/** Characters one element takes in JSON `data` text at least and at most, with its separator. */
const JSON_CHARS: Partial<Record<Datatype, [number, number]>> = {
  BOOL: [5, 6],
  UINT8: [2, 4],
  INT8: [2, 5],
  UINT16: [2, 6],
  INT16: [2, 7],
  UINT32: [2, 11],
  INT32: [2, 12],
  UINT64: [2, 21],
  INT64: [2, 21],
  // Floats: a float64's text ("-2.2250738585072014e-308"); float32 values print that way too when a NaN or an
  // Infinity sends the tensor down the slow path (protocol/response-encode.ts).
  FP16: [2, 25],
  FP32: [2, 25],
  FP64: [2, 25],
};

/** Elements printed at a time when the text may or may not fit (the rare case near the bound). */
const PRINT_CHUNK = 65_536;

/**
 * The tensor's JSON `data` text, or undefined when it is longer than `budget` characters. Decided without printing
 * when the element count alone settles it (in O(1)); otherwise printed a chunk at a time, stopping past the budget
 * (each chunk of floats picks its own printing path, so a chunk with no NaN may print the shorter float32 text).
 */
export function jsonWithin(t: Tensor, budget: number): string | undefined {
  const n = t.data.length;
  const [least, most] = JSON_CHARS[t.datatype] ?? [3, Infinity]; // BYTES: '"",' at least; escapes make the most unknown
  if (n * least + 1 > budget) return undefined;
  if (n * most + 2 <= budget) return jsonDataText(t);
  const parts: string[] = [];
  let length = 1;
  for (let at = 0; at < n; at += PRINT_CHUNK) {
    const end = Math.min(n, at + PRINT_CHUNK);
    const data = Array.isArray(t.data) ? t.data.slice(at, end) : t.data.subarray(at, end);
    const piece = jsonDataText({ ...t, shape: [end - at], data });
    length += piece.length - 1; // its elements and the ',' or ']' after them
    if (length > budget) return undefined;
    parts.push(piece.slice(1, -1));
  }
  return `[${parts.join(',')}]`;
}

function tooLargeAsJson(t: Tensor, maxBytes: number): string {
  return `the outputs take more than MAX_RESPONSE_BYTES (${maxBytes} bytes) as JSON text (past it at output "${t.name}" ${t.datatype} [${t.shape.join(',')}]); ask for binary outputs, or for less`;
}

/** Names every request of the run prints (their tensors need not go back to the host). */
export function printedByAll(names: readonly (readonly string[])[]): Set<string> {
  const all = new Set(names[0] ?? []);
  for (const list of names.slice(1)) for (const n of all) if (!list.includes(n)) all.delete(n);
  return all;
}
