/** The client's errors are core's: one hierarchy, one `code` union to branch on. */
export {
  ERROR_CODES,
  type ErrorCode,
  isTufaError,
  TufaError,
  type TufaErrorOptions,
} from '@tufa/core/errors';
