/**
 * Work done in steps: a generator that yields between pieces of work (a role, a batch of
 * signatures) so that a caller may let its event loop run, and returns the work's result.
 * Internal to core: the stepwise forms are exported, this helper is not.
 */

import { TufaError } from './errors.js';
import type { UpdateSteps } from './update.js';

export type { UpdateSteps } from './update.js';

export type Steps<T> = Generator<string, T, void>;

/** Runs the steps through to their result, without pausing (every document at hand). */
export function finish<T>(steps: UpdateSteps<T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (typeof step.value !== 'string') {
      throw new TufaError('INTERNAL', 'stored documents were asked for: run the update in steps');
    }
  }
}
