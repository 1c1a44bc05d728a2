/**
 * The one error hierarchy of tufa. Every refusal carries a stable `code` that a caller
 * can branch on (`switch (err.code)`), the role it concerns, and what was expected and found.
 */

export const ERROR_CODES = Object.freeze([
  // parsing and encoding
  'INVALID_JSON',
  'NON_CANONICAL',
  'CANONICAL_JSON',
  'INVALID_METADATA',
  'WRONG_TYPE',
  'UNSUPPORTED_SPEC_VERSION',
  'INVALID_KEY',
  'UNSUPPORTED_KEY',
  // verification
  'BAD_SIGNATURE',
  'THRESHOLD_NOT_MET',
  'EXPIRED',
  'ROLLBACK',
  'VERSION_MISMATCH',
  'HASH_MISMATCH',
  'LENGTH_MISMATCH',
  'UNTRUSTED_ROOT',
  'PATH_NOT_DELEGATED',
  'DELEGATION_LIMIT',
  'ORDER',
  // lookups and transport
  'NOT_FOUND',
  'TOO_LARGE',
  'TIMEOUT',
  'NETWORK',
  'CONFLICT',
  'INVALID_ARGUMENT',
  // access control
  'UNAUTHORIZED',
  'FORBIDDEN',
  'RATE_LIMITED',
  // keys held by people
  'WRONG_PASSPHRASE',
  'PASSPHRASE_REQUIRED',
  'INTERNAL',
] as const);

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface TufaErrorOptions {
  /** The TUF role the error concerns (`root`, `timestamp`, a delegated role name, …). */
  role?: string | undefined;
  /** What the rule wanted. */
  expected?: unknown;
  /** What was there instead. */
  found?: unknown;
  /** Structured detail for `--json` output and API error bodies. */
  details?: Record<string, unknown> | undefined;
  cause?: unknown;
}

export class TufaError extends Error {
  override readonly name = 'TufaError';
  readonly code: ErrorCode;
  readonly role: string | undefined;
  readonly expected: unknown;
  readonly found: unknown;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: TufaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.role = options.role;
    this.expected = options.expected;
    this.found = options.found;
    this.details = options.details;
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

export function isTufaError(err: unknown, code?: ErrorCode): err is TufaError {
  return err instanceof TufaError && (code === undefined || err.code === code);
}
