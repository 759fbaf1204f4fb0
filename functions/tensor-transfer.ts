// Prepares tensors for postMessage across the instance thread boundary: each numeric tensor gets an
// ArrayBuffer of its own that goes in the transfer list, so the bytes move instead of being copied. tensorBytes
// says how many bytes a tensor's data takes (the bound of a response, MAX_RESPONSE_BYTES).
import { isDeferred, type DeferredPart, type InputTensor, type Tensor, type TensorData } from '../core/index.ts';

type NumericData = Exclude<TensorData, string[]>;

/**
 * Returns the tensors (with data re-homed where needed) and the transfer list to pass to postMessage.
 * A typed array that is a view into a larger buffer (a Node Buffer pool slab, a shared slab, another
 * tensor's buffer) is copied first, because transferring its buffer would detach bytes it does not own.
 * Deferred inputs move the same way, part by part (their JSON text and any decoded parts).
 * After the call the caller must not touch the tensors' data: it belongs to the receiver.
 */
export function transferTensors<T extends InputTensor = Tensor>(tensors: T[]): { tensors: T[]; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const seen = new Set<ArrayBufferLike>();
  const own = <A extends NumericData | Uint8Array>(data: A): A => {
    const buf = data.buffer;
    const owns = buf instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buf.byteLength && !seen.has(buf);
    // A copy into a fresh, exactly-sized buffer (TypedArray#slice copies; a Buffer's slice would be a view).
    const out = owns ? data : Buffer.isBuffer(data) ? (new Uint8Array(data) as A) : (data.slice() as A);
    seen.add(out.buffer);
    transfer.push(out.buffer as ArrayBuffer);
    return out;
  };
  const out = tensors.map((t): T => {
    if (isDeferred(t)) {
      const parts = t.data.parts.map((p): DeferredPart => ({
        ...p,
        ...(p.json ? { json: own(p.json) } : {}),
        ...(p.data ? { data: own(p.data) } : {}),
      }));
      return { ...t, data: { deferred: true, parts } };
    }
    if (Array.isArray(t.data)) return t; // BYTES: strings are structured-cloned
    const data = own(t.data);
    return data === t.data ? t : { ...t, data };
  });
  return { tensors: out, transfer };
}

/** Bytes of a tensor's data as the binary extension sends it (BYTES: each string's UTF-8 bytes and a 4-byte length). */
export function tensorBytes(t: Tensor): number {
  if (!Array.isArray(t.data)) return t.data.byteLength;
  let n = 0;
  for (const s of t.data) n += 4 + Buffer.byteLength(s, 'utf8');
  return n;
}
