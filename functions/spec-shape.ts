// One dimension of a model's signature, as a runtime reports it, turned into a V2 spec dimension: a size, or -1 for
// an unknown one. A size no manifest can hold (past 2^53, negative other than -1) refuses the model at upload,
// instead of a manifest that every later read would refuse.
import { hearthError } from '../core/index.ts';

/**
 * `d` as a V2 dimension of `kind` "name": a whole number >= 0 stays, -1, null, undefined and symbolic (string)
 * dimensions are -1; anything else is MODEL_INVALID.
 */
export function specDimension(kind: 'input' | 'output', name: string, d: unknown): number {
  if (d === null || d === undefined || d === -1 || typeof d === 'string') return -1;
  if (typeof d === 'number' && Number.isSafeInteger(d) && d >= 0) return d;
  throw hearthError(
    'MODEL_INVALID',
    `${kind} "${name}" has dimension ${(typeof d === 'number' ? String(d) : (JSON.stringify(d) ?? typeof d)).slice(0, 40)}: a size must be a whole number from 0 to 2^53-1, or -1 for a dynamic one`,
  );
}
