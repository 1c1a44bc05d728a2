/** What a call refused with, as the plain values a test asserts. */
import { isTufaError } from '@tufa/core';

/**
 * The TufaError code `attempt` refuses with, or 'ok' when it is accepted; anything else thrown is
 * rethrown. A promise, or a function that returns one, gives a promise of the code.
 */
export function codeOf(attempt: Promise<unknown> | (() => Promise<unknown>)): Promise<string>;
export function codeOf(attempt: () => unknown): string;
export function codeOf(attempt: Promise<unknown> | (() => unknown)): string | Promise<string> {
  const codeOfError = (err: unknown): string => {
    if (isTufaError(err)) return err.code;
    throw err;
  };
  let result: unknown;
  try {
    result = typeof attempt === 'function' ? attempt() : attempt;
  } catch (err) {
    return codeOfError(err);
  }
  if (result instanceof Promise) return result.then(() => 'ok', codeOfError);
  return 'ok';
}

/**
 * What `fn` refused with: code, message, role, expected, found and details (as `--json` and the
 * API show them). Fails when `fn` returns; anything but a TufaError is rethrown.
 */
export function refusal(fn: () => unknown): Record<string, unknown> {
  try {
    fn();
  } catch (err) {
    if (isTufaError(err)) return err.toJSON();
    throw err;
  }
  throw new Error('accepted where a refusal was expected');
}
