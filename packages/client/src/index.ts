export { cacheFolderName, defaultCacheRoot, type LockOptions, writeAtomic } from './cache.js';
export { type ClientOptions, createClient, type RepositoryLocation, TufaClient } from './client.js';
export {
  DEFAULT_MAX_LENGTHS,
  DEFAULT_MAX_SIZES,
  type MaxLengths,
  type MaxSizes,
  type Notice,
} from './context.js';
export type { FoundRole, TargetInfo } from './delegations.js';
export type { DownloadDestination, DownloadedTarget, FileSource, VerifiedTarget } from './downloads.js';
export * from './errors.js';
export type { ExportedMetadata } from './export.js';
export {
  DEFAULT_TIMEOUTS,
  explainTransportError,
  type FetchLike,
  redactUrl,
  type Timeouts,
} from './fetcher.js';
export { repositoryFileName, targetFileName } from './file-names.js';
export type { TrustOptions } from './trust-anchor.js';
export { DEFAULT_MAX_ROOT_ROTATIONS, type RefreshResult } from './updater.js';
