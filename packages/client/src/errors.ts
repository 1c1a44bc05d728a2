/** The client's errors are core's: one hierarchy, one `code` union to branch on. */
export {
  ERROR_CODES,
  ERROR_TABLE,
  type ErrorCode,
  type ErrorCodeSpec,
  type ErrorDetails,
  type ErrorDetailsByCode,
  type ErrorKind,
  isErrorCode,
  isTufaError,
  TufaError,
  type TufaErrorOptions,
} from '@tufa/core/errors';
