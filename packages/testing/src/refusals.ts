/** What a call refused with, as the plain values a test asserts. */
import { isDeepStrictEqual } from 'node:util';
import { isTufaError, type TrustedMetadataSet, type TufaError } from '@tufa/core';

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

/** What a trusted-metadata set holds, by identity. */
function held(set: TrustedMetadataSet) {
  return {
    root: set.root,
    timestamp: set.timestamp,
    snapshot: set.snapshot,
    targets: set.targets,
    delegated: set.delegatedRoles().map((d) => [d.role, d.delegators.join(','), d.metadata] as const),
  };
}

/**
 * The TufaError an update of `set` throws, after checking that it threw one and that the set holds
 * exactly what it held before (a refused update changes nothing). Fails otherwise.
 */
export function refusedUpdate(set: TrustedMetadataSet, update: () => unknown): TufaError {
  const before = held(set);
  let error: unknown;
  try {
    update();
  } catch (err) {
    error = err;
  }
  if (!isTufaError(error)) {
    if (error === undefined) throw new Error('the update was accepted');
    throw error;
  }
  const after = held(set);
  for (const role of ['root', 'timestamp', 'snapshot', 'targets'] as const) {
    if (after[role] !== before[role]) throw new Error(`a refused update changed the trusted ${role}`);
  }
  if (!isDeepStrictEqual(after.delegated, before.delegated)) {
    throw new Error('a refused update changed the trusted delegated roles');
  }
  return error;
}
