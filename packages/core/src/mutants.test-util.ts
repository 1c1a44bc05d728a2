/** Test support for the mutation tests (`*.mutants.test.ts`): a refusal as the plain fields a caller reads. */
import { TufaError } from './errors.js';

/**
 * What `fn` refused with: code, message, role, expected, found and details (as `--json` and the
 * API show them). Fails when `fn` returns; anything but a TufaError is rethrown.
 */
export function refusal(fn: () => unknown): Record<string, unknown> {
  try {
    fn();
  } catch (err) {
    if (err instanceof TufaError) return err.toJSON();
    throw err;
  }
  throw new Error('accepted where a refusal was expected');
}
