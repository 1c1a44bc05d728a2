/** Output for people and for scripts, and the documented exit codes. */
import { ERROR_TABLE, type ErrorCode, EXIT_STATUS, isTufaError, TufaError } from '@tufa/core';

/** The documented exit statuses (README.md "Exit codes of `tufa`"): core's, one per kind of answer. */
export const EXIT = EXIT_STATUS;

/** The exit status of a refusal: its code's row in core's ERROR_TABLE. */
export function exitCodeFor(code: ErrorCode): number {
  return ERROR_TABLE[code]?.exitStatus ?? EXIT.REFUSED;
}

export interface Output {
  readonly json: boolean;
  /** The result: a JSON document with --json, else the human lines. */
  result(data: unknown, human: string | string[]): void;
  /** A side note for people (stderr); silent with --json. */
  note(text: string): void;
}

export function makeOutput(json: boolean, stdout = process.stdout, stderr = process.stderr): Output {
  return {
    json,
    result(data, human) {
      if (json) stdout.write(`${JSON.stringify(data, null, 2)}\n`);
      else {
        const lines = Array.isArray(human) ? human : [human];
        if (lines.length > 0) stdout.write(`${lines.join('\n')}\n`);
      }
    },
    note(text) {
      if (!json) stderr.write(`${text}\n`);
    },
  };
}

/** Reports an error (one line on stderr, or the JSON document) and returns the exit code. */
export function reportError(err: unknown, options: { json: boolean; debug: boolean }): number {
  const error = isTufaError(err)
    ? err
    : new TufaError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
  const exit = exitCodeFor(error.code);
  if (options.json) process.stdout.write(`${JSON.stringify({ error: error.toJSON() }, null, 2)}\n`);
  process.stderr.write(`tufa: ${error.code}: ${error.message}\n`);
  if (options.debug) {
    if (error.expected !== undefined) process.stderr.write(`  expected: ${JSON.stringify(error.expected)}\n`);
    if (error.found !== undefined) process.stderr.write(`  found: ${JSON.stringify(error.found)}\n`);
    if (error.details !== undefined) process.stderr.write(`  details: ${JSON.stringify(error.details)}\n`);
    const cause = error.code === 'INTERNAL' ? err : error.cause;
    if (cause instanceof Error && cause.stack) process.stderr.write(`${cause.stack}\n`);
  }
  return exit;
}
