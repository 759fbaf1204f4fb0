// Prepares tensors for postMessage across the instance thread boundary: each numeric tensor gets an
// ArrayBuffer of its own that goes in the transfer list, so the bytes move instead of being copied.
import type { Tensor, TensorData } from '../core/index.ts';

type NumericData = Exclude<TensorData, string[]>;

/**
 * Returns the tensors (with data re-homed where needed) and the transfer list to pass to postMessage.
 * A typed array that is a view into a larger buffer (a Node Buffer pool slab, a shared slab, another
 * tensor's buffer) is copied first, because transferring its buffer would detach bytes it does not own.
 * After the call the caller must not touch the tensors' data: it belongs to the receiver.
 */
export function transferTensors(tensors: Tensor[]): { tensors: Tensor[]; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const seen = new Set<ArrayBufferLike>();
  const out = tensors.map((t) => {
    if (Array.isArray(t.data)) return t; // BYTES: strings are structured-cloned
    let data = t.data as NumericData;
    const buf = data.buffer;
    const owns = buf instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buf.byteLength && !seen.has(buf);
    if (!owns) data = data.slice() as NumericData; // slice() copies into a fresh, exactly-sized buffer
    seen.add(data.buffer);
    transfer.push(data.buffer as ArrayBuffer);
    return data === t.data ? t : { ...t, data };
  });
  return { tensors: out, transfer };
}
