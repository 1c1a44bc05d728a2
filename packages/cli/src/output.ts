/** Output for people and for scripts, and the documented exit codes. */
import { type ErrorCode, isTufaError, TufaError } from '@tufa/core';

export const EXIT = Object.freeze({
  /** The answer is yes: trusted, done. */
  OK: 0,
  /** Verification refused: untrusted, mismatch, expired, rollback, bad signature… */
  REFUSED: 1,
  /** Usage error: bad arguments, missing or wrong passphrase, bad key file. */
  USAGE: 2,
  /** The server or the network failed, or the server refused the caller (401, 403, 429). */
  SERVER: 3,
  /** No such tag, collection, key or role. */
  NOT_FOUND: 4,
});

const USAGE_CODES: ReadonlySet<ErrorCode> = new Set([
  'INVALID_ARGUMENT',
  'WRONG_PASSPHRASE',
  'PASSPHRASE_REQUIRED',
  'INVALID_KEY',
  'UNSUPPORTED_KEY',
]);
const SERVER_CODES: ReadonlySet<ErrorCode> = new Set([
  'NETWORK',
  'TIMEOUT',
  'CONFLICT',
  'INTERNAL',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'RATE_LIMITED',
]);

export function exitCodeFor(code: ErrorCode): number {
  if (code === 'NOT_FOUND') return EXIT.NOT_FOUND;
  if (USAGE_CODES.has(code)) return EXIT.USAGE;
  if (SERVER_CODES.has(code)) return EXIT.SERVER;
  return EXIT.REFUSED;
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
