/**
 * Core's stepwise checks (validatingUpdate, checkingProposal) run on the event loop with a turn
 * between steps: seconds of signature verification must not stall the reads served beside them.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Runs `steps` to their result (or refusal), letting other work run after each step. */
export async function yielding<T>(steps: Generator<string, T, void>): Promise<T> {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await nextTurn();
  }
}
