/** The exit statuses of `tufa-server`, one per kind of failure; the README's table is checked against this. */
import type { ErrorCode } from '@tufa/core';

export const SERVER_EXIT = Object.freeze({
  /** A clean stop after SIGTERM/SIGINT, or a command that did its job. */
  OK: 0,
  /** Anything else: a failed migration, PostgreSQL that would not start, a bug. */
  FAILED: 1,
  /** Configuration or usage: a bad flag or variable, a missing, unreadable or too open file, a wrong master key, a data folder PostgreSQL cannot reach. */
  CONFIG: 2,
  /** Something the server needs is not there for it: the database is unreachable or refuses the login, the address or the data folder is in use. */
  UNAVAILABLE: 3,
  /** Not found: no tufa database where a command looked, no such token, no such database on the PostgreSQL server. */
  NOT_FOUND: 4,
});

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: SERVER_EXIT.CONFIG,
  INVALID_JSON: SERVER_EXIT.CONFIG,
  INVALID_KEY: SERVER_EXIT.CONFIG,
  NETWORK: SERVER_EXIT.UNAVAILABLE,
  TIMEOUT: SERVER_EXIT.UNAVAILABLE,
  UNAUTHORIZED: SERVER_EXIT.UNAVAILABLE,
  CONFLICT: SERVER_EXIT.UNAVAILABLE,
  NOT_FOUND: SERVER_EXIT.NOT_FOUND,
};

export function serverExitStatus(code: ErrorCode): number {
  return BY_CODE[code] ?? SERVER_EXIT.FAILED;
}
