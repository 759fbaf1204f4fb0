// The code and message of the HearthError a call throws; anything else thrown (or nothing) fails the test.
import { isHearthError } from '../../core/index.ts';

export function hearthFailure(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (isHearthError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a HearthError');
}
