/**
 * Work done in steps: a generator that yields between pieces of work (a role, a batch of
 * signatures) so that a caller may let its event loop run, and returns the work's result.
 * Internal to core: the stepwise forms are exported, this helper is not.
 */

export type Steps<T> = Generator<string, T, void>;

/** Runs the steps through to their result, without pausing. */
export function finish<T>(steps: Steps<T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}
