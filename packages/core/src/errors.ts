/**
 * The one error hierarchy of tufa. Every refusal carries a stable `code` that a caller
 * can branch on (`switch (err.code)`), the role it concerns, and what was expected and found.
 */

/**
 * The exit statuses of the `tufa` command, documented in README.md ("Exit codes of `tufa`"; a test
 * checks that table against ERROR_TABLE).
 */
export const EXIT_STATUS = Object.freeze({
  /** The answer is yes: trusted, done. */
  OK: 0,
  /** Refused: verification failed (untrusted, mismatch, expired, rollback, bad signature, malformed
   * metadata), or the repository's rules refuse the update. */
  REFUSED: 1,
  /** Usage error: bad arguments, missing or wrong passphrase, bad key file. */
  USAGE: 2,
  /** The server or the network failed, or the server refused the caller (401, 403, 429). */
  SERVER: 3,
  /** No such tag, collection, key or role. */
  NOT_FOUND: 4,
  /** A local file named on the command line (or in the configuration) cannot be read or written. */
  LOCAL_FILE: 5,
  /** Offline: the trusted cache cannot answer (nothing cached, incomplete, or older than --max-age). */
  CACHE: 6,
} as const);

export type ExitStatus = (typeof EXIT_STATUS)[keyof typeof EXIT_STATUS];

/** What kind of failure a code is. */
export type ErrorKind =
  /** Bytes that are not what they claim to be (JSON, canonical form, metadata fields). */
  | 'malformed'
  /** A rule of the TUF workflow refused the data (signatures, versions, expiry, hashes, paths). */
  | 'verification'
  /** The repository's rules refuse an update: what it must carry, who signs which role. */
  | 'update-rule'
  /** The caller asked for something that cannot be done as asked (arguments, keys, passphrases). */
  | 'usage'
  /** A local file cannot be read or written. */
  | 'local-file'
  /** Offline: the trusted cache lacks what the answer needs, or is older than the caller allows. */
  | 'cache'
  | 'not-found'
  /** The network, a timeout, or a size bound of a transfer. */
  | 'transport'
  /** The collection moved on under the request: refresh and retry. */
  | 'conflict'
  /** The server refused the caller: no valid token, no scope, too many attempts. */
  | 'access'
  | 'internal';

export interface ErrorCodeSpec {
  readonly kind: ErrorKind;
  /** The server's HTTP status for this refusal. */
  readonly httpStatus: number;
  /** The `tufa` command's exit status for this refusal. */
  readonly exitStatus: ExitStatus;
  /** Met in cached metadata, the bytes were damaged or tampered with (rather than merely stale). */
  readonly cacheCorruption: boolean;
}

function spec(
  kind: ErrorKind,
  httpStatus: number,
  exitStatus: ExitStatus,
  cacheCorruption = false,
): ErrorCodeSpec {
  return Object.freeze({ kind, httpStatus, exitStatus, cacheCorruption });
}

const { REFUSED, USAGE, SERVER, NOT_FOUND, LOCAL_FILE, CACHE } = EXIT_STATUS;

/**
 * The one table of error codes: each code's kind, HTTP status and exit status, and whether it
 * means a corrupted cache. The server, the CLI and the client all read it; nothing restates it.
 */
export const ERROR_TABLE = Object.freeze({
  // parsing and encoding
  INVALID_JSON: spec('malformed', 400, REFUSED, true),
  NON_CANONICAL: spec('malformed', 400, REFUSED, true),
  CANONICAL_JSON: spec('malformed', 400, REFUSED, true),
  INVALID_METADATA: spec('malformed', 400, REFUSED, true),
  WRONG_TYPE: spec('malformed', 400, REFUSED, true),
  UNSUPPORTED_SPEC_VERSION: spec('malformed', 400, REFUSED, true),
  INVALID_KEY: spec('usage', 400, USAGE),
  UNSUPPORTED_KEY: spec('usage', 400, USAGE),
  // verification
  BAD_SIGNATURE: spec('verification', 400, REFUSED, true),
  THRESHOLD_NOT_MET: spec('verification', 400, REFUSED),
  EXPIRED: spec('verification', 400, REFUSED),
  ROLLBACK: spec('verification', 409, REFUSED),
  VERSION_MISMATCH: spec('verification', 400, REFUSED),
  HASH_MISMATCH: spec('verification', 400, REFUSED),
  LENGTH_MISMATCH: spec('verification', 400, REFUSED),
  UNTRUSTED_ROOT: spec('verification', 400, REFUSED),
  PATH_NOT_DELEGATED: spec('verification', 400, REFUSED),
  DELEGATION_LIMIT: spec('verification', 400, REFUSED),
  ORDER: spec('verification', 400, REFUSED),
  UPDATE_REFUSED: spec('update-rule', 400, REFUSED),
  // lookups and transport
  NOT_FOUND: spec('not-found', 404, NOT_FOUND),
  TOO_LARGE: spec('transport', 413, REFUSED, true),
  TIMEOUT: spec('transport', 503, SERVER),
  NETWORK: spec('transport', 503, SERVER),
  CONFLICT: spec('conflict', 409, SERVER),
  INVALID_ARGUMENT: spec('usage', 400, USAGE),
  FILE_UNREADABLE: spec('local-file', 500, LOCAL_FILE),
  // access control
  UNAUTHORIZED: spec('access', 401, SERVER),
  FORBIDDEN: spec('access', 403, SERVER),
  RATE_LIMITED: spec('access', 429, SERVER),
  // keys held by people
  WRONG_PASSPHRASE: spec('usage', 400, USAGE),
  PASSPHRASE_REQUIRED: spec('usage', 400, USAGE),
  // keys on a PKCS#11 token: a wrong or locked PIN, no PIN, the module, binding or token missing
  WRONG_PIN: spec('usage', 400, USAGE),
  PIN_REQUIRED: spec('usage', 400, USAGE),
  TOKEN_UNAVAILABLE: spec('usage', 400, USAGE),
  INTERNAL: spec('internal', 500, SERVER, true),
  // local files written, and answering offline from the trusted cache
  FILE_UNWRITABLE: spec('local-file', 500, LOCAL_FILE),
  CACHE_MISSING: spec('cache', 500, CACHE),
  CACHE_STALE: spec('cache', 500, CACHE),
  // container engines run by `tufa pull`
  ENGINE_FAILED: spec('transport', 502, SERVER),
  // a signatures array that names one key id twice (the spec: key ids MUST be unique there)
  DUPLICATE_SIGNATURE: spec('malformed', 400, REFUSED, true),
  // `tufa notary import`: a Notary root certificate refused, a tag that differs after the import
  UNTRUSTED_CERTIFICATE: spec('verification', 400, REFUSED),
  IMPORT_MISMATCH: spec('verification', 500, REFUSED),
  // more signatures than the keys that may sign the role (or than MAX_SIGNATURES): refused unverified
  TOO_MANY_SIGNATURES: spec('verification', 400, REFUSED, true),
} satisfies Record<string, ErrorCodeSpec>);

export type ErrorCode = keyof typeof ERROR_TABLE;

export const ERROR_CODES: readonly ErrorCode[] = Object.freeze(Object.keys(ERROR_TABLE) as ErrorCode[]);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_TABLE, value);
}

/** The details of the codes a caller branches on; other codes carry free-form details. */
export interface ErrorDetailsByCode {
  /** `path` as given; `reason` the system's error code (ENOENT, EACCES, EISDIR, …) or what failed. */
  FILE_UNREADABLE: { path: string; reason: string };
  /** `path` that could not be written; `reason` the system's error code (EACCES, EEXIST, …) or what failed. */
  FILE_UNWRITABLE: { path: string; reason: string };
  /** `file`: the cache file the offline answer needed (`role` names its role); `cacheDir`. */
  CACHE_MISSING: { source: 'cache'; cacheDir: string; file?: string };
  /** `refreshedAt`: the last successful refresh (ISO 8601, null when unknown); `maxAgeMs`, `ageMs`. */
  CACHE_STALE: {
    source: 'cache';
    cacheDir: string;
    refreshedAt: string | null;
    maxAgeMs: number;
    ageMs: number | null;
  };
  /** `current`: the collection's versions now (a lost race); `serverCode`: the server's own code. */
  CONFLICT: { gun?: string; current?: Record<string, number>; serverCode?: ErrorCode; status?: number };
  /** `retryAfter`: the server's Retry-After in seconds (null when it sent none). */
  RATE_LIMITED: { url?: string; status?: number; retryAfter?: string | null };
}

export type ErrorDetails<C extends ErrorCode> = C extends keyof ErrorDetailsByCode
  ? ErrorDetailsByCode[C] & Record<string, unknown>
  : Record<string, unknown>;

export interface TufaErrorOptions<C extends ErrorCode = ErrorCode> {
  /** The TUF role the error concerns (`root`, `timestamp`, a delegated role name, …). */
  role?: string | undefined;
  /** What the rule wanted. */
  expected?: unknown;
  /** What was there instead. */
  found?: unknown;
  /** Structured detail for `--json` output and API error bodies. */
  details?: ErrorDetails<C> | undefined;
  cause?: unknown;
}

export class TufaError<C extends ErrorCode = ErrorCode> extends Error {
  override readonly name = 'TufaError';
  readonly code: C;
  readonly role: string | undefined;
  readonly expected: unknown;
  readonly found: unknown;
  readonly details: ErrorDetails<C> | undefined;

  constructor(code: C, message: string, options: TufaErrorOptions<C> = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.role = options.role;
    this.expected = options.expected;
    this.found = options.found;
    this.details = options.details;
  }

  /** The code's row of ERROR_TABLE: kind, HTTP status, exit status. */
  get spec(): ErrorCodeSpec {
    return ERROR_TABLE[this.code];
  }

  /** A plain object for JSON output: never a stack trace. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { code: this.code, message: this.message };
    if (this.role !== undefined) out.role = this.role;
    if (this.expected !== undefined) out.expected = this.expected;
    if (this.found !== undefined) out.found = this.found;
    if (this.details !== undefined) out.details = this.details;
    return out;
  }
}

/** True for a TufaError (of that code): `isTufaError(err, 'FILE_UNREADABLE')` types `err.details`. */
export function isTufaError<C extends ErrorCode = ErrorCode>(err: unknown, code?: C): err is TufaError<C> {
  return err instanceof TufaError && (code === undefined || err.code === code);
}

/** FILE_UNREADABLE for a local file that cannot be read; `what` says what the file is for. */
export function fileUnreadable(path: string, what: string, cause: unknown): TufaError<'FILE_UNREADABLE'> {
  const errno = (cause as { code?: unknown } | null)?.code;
  const reason = typeof errno === 'string' ? errno : cause instanceof Error ? cause.message : String(cause);
  const why =
    errno === 'ENOENT'
      ? 'no such file'
      : errno === 'EACCES' || errno === 'EPERM'
        ? 'permission denied'
        : errno === 'EISDIR'
          ? 'a directory, not a file'
          : reason;
  return new TufaError('FILE_UNREADABLE', `${what}: cannot read ${path}: ${why}`, {
    details: { path, reason },
    cause,
  });
}

/** FILE_UNWRITABLE for a local file or folder that cannot be written; `what` says what it is for. */
export function fileUnwritable(path: string, what: string, cause: unknown): TufaError<'FILE_UNWRITABLE'> {
  const errno = (cause as { code?: unknown } | null)?.code;
  const reason = typeof errno === 'string' ? errno : cause instanceof Error ? cause.message : String(cause);
  const why =
    errno === 'EACCES' || errno === 'EPERM'
      ? 'permission denied'
      : errno === 'EEXIST'
        ? 'it exists already'
        : errno === 'ENOTDIR'
          ? 'a file stands where a folder is needed'
          : errno === 'ENAMETOOLONG'
            ? 'the name is too long for this file system'
            : errno === 'EROFS'
              ? 'a read-only file system'
              : reason;
  return new TufaError('FILE_UNWRITABLE', `${what}: cannot write ${path}: ${why}`, {
    details: { path, reason },
    cause,
  });
}
