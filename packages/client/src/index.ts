export { cacheFolderName, defaultCacheRoot, type LockOptions, writeAtomic } from './cache.js';
export {
  type ClientOptions,
  createClient,
  DEFAULT_MAX_ROOT_ROTATIONS,
  DEFAULT_MAX_SIZES,
  type FileSource,
  type FoundRole,
  type MaxSizes,
  type Notice,
  type RefreshResult,
  type RepositoryLocation,
  type TargetInfo,
  type TrustOptions,
  TufaClient,
  type VerifiedTarget,
} from './client.js';
export * from './errors.js';
export {
  DEFAULT_TIMEOUTS,
  explainTransportError,
  type FetchLike,
  redactUrl,
  type Timeouts,
} from './fetcher.js';
