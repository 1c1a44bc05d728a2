/**
 * The exit statuses of `tufa-server`, by the kind core's ERROR_TABLE gives each code; the
 * README's table is checked against this.
 */
import { ERROR_TABLE, type ErrorCode, type ErrorKind } from '@tufa/core';

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

const BY_KIND: Partial<Record<ErrorKind, number>> = {
  usage: SERVER_EXIT.CONFIG,
  'local-file': SERVER_EXIT.CONFIG,
  malformed: SERVER_EXIT.CONFIG,
  transport: SERVER_EXIT.UNAVAILABLE,
  access: SERVER_EXIT.UNAVAILABLE,
  conflict: SERVER_EXIT.UNAVAILABLE,
  'not-found': SERVER_EXIT.NOT_FOUND,
};

export function serverExitStatus(code: ErrorCode): number {
  return BY_KIND[ERROR_TABLE[code].kind] ?? SERVER_EXIT.FAILED;
}
