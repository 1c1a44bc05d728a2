/**
 * What every job of the client is given (the repository, its cache, the bounds, the transport),
 * and the two ways metadata arrives: downloaded within its bound, or read back from the cache
 * through core's rules (refused and discarded when corrupted, dropped quietly when stale).
 */
import { join } from 'node:path';
import {
  type CryptoProvider,
  ERROR_TABLE,
  type ErrorCode,
  isTufaError,
  type Metadata,
  type MetaFile,
  TufaError,
} from '@tufa/core';
import { cacheFileName, type MetadataCache } from './cache.js';
import { download, type FetchLike, type Timeouts } from './fetcher.js';

/** Byte bounds per role (defaults as python-tuf's); `targets` applies to delegated roles too. */
export interface MaxSizes {
  root?: number;
  timestamp?: number;
  snapshot?: number;
  targets?: number;
}

export const DEFAULT_MAX_SIZES: Readonly<Required<MaxSizes>> = Object.freeze({
  root: 512 * 1024,
  timestamp: 16 * 1024,
  snapshot: 2 * 1024 * 1024,
  targets: 5 * 1024 * 1024,
});

/**
 * The most a signed length may state (the timestamp for snapshot, the snapshot for targets and
 * delegated roles; `targets` covers both): a larger one is refused before anything is
 * downloaded, since the server holds the keys that sign those lengths.
 */
export interface MaxLengths {
  snapshot?: number;
  targets?: number;
}

export const DEFAULT_MAX_LENGTHS: Readonly<Required<MaxLengths>> = Object.freeze({
  snapshot: 32 * 1024 * 1024,
  targets: 64 * 1024 * 1024,
});

/** The kinds of document a bound is set for: a delegated role is bounded as `targets`. */
export type BoundedRole = keyof Required<MaxSizes>;

export type Notice =
  | {
      kind: 'tofu';
      message: string;
      rootVersion: number;
      /** The root key ids trusted on first use, and their threshold. */
      keyids: string[];
      threshold: number;
    }
  | { kind: 'cache-discarded'; message: string; role: string; file: string; code: ErrorCode };

/** One repository as the client reaches it; made once by the client, read by every job. */
export interface ClientContext {
  /** The metadata base URL, ending in `/`. */
  readonly metadataUrl: string;
  /** The targets base URL, ending in `/`, when target files can be downloaded. */
  readonly targetsUrl: string | undefined;
  readonly cache: MetadataCache;
  readonly maxSizes: Readonly<Required<MaxSizes>>;
  readonly maxLengths: Readonly<Required<MaxLengths>>;
  readonly maxRootRotations: number;
  /** Roles visited per target search or listing. */
  readonly maxDelegations: number;
  readonly timeouts: Readonly<Required<Timeouts>>;
  readonly fetch: FetchLike;
  /** Verifies every signature and hash of this client. */
  readonly crypto: CryptoProvider;
  /** The clock (ms since the epoch), read once at the start of each refresh. */
  readonly clock: () => number;
  readonly onNotice: (notice: Notice) => void;
  /** Answer from the trusted cache alone: no request is made, and the cache is never written. */
  readonly offline: boolean;
  /** Offline only: refuse a cache whose last successful refresh is older than this (ms). */
  readonly maxAgeMs: number | undefined;
}

/** The exact bytes each accepted metadata object was parsed from: what an export writes. */
const ACCEPTED_BYTES = new WeakMap<Metadata, Uint8Array>();

/** Records the bytes `metadata` was parsed from, once core's rules accepted it; returns it. */
export function accepted<M extends Metadata>(metadata: M, bytes: Uint8Array): M {
  if (!ACCEPTED_BYTES.has(metadata)) ACCEPTED_BYTES.set(metadata, bytes);
  return metadata;
}

/** The bytes an accepted metadata object was parsed from (see `accepted`). */
export function acceptedBytes(metadata: Metadata): Uint8Array | undefined {
  return ACCEPTED_BYTES.get(metadata);
}

/** Downloads a metadata file from the metadata base URL, bounded in bytes and in time. */
export function fetchMetadata(
  ctx: ClientContext,
  file: { role: string; fileName: string; maxBytes: number; statedLength?: number; signal?: AbortSignal },
): Promise<Uint8Array> {
  if (ctx.offline) {
    // Every offline path reads the cache instead; reaching here is a bug, never a request.
    return Promise.reject(
      new TufaError('INTERNAL', `offline: ${file.fileName} would have been downloaded`, { role: file.role }),
    );
  }
  return download(ctx.metadataUrl + file.fileName, {
    role: file.role,
    maxBytes: file.maxBytes,
    timeouts: ctx.timeouts,
    total: true,
    fetch: ctx.fetch,
    gzip: true,
    ...(file.statedLength === undefined ? {} : { statedLength: file.statedLength }),
    ...(file.signal === undefined ? {} : { signal: file.signal }),
  });
}

/**
 * The most bytes of one document of a kind the client ever holds, downloaded or read from the
 * cache: the bound for an unstated length or the ceiling on a stated one, whichever is larger.
 */
export function documentBound(ctx: ClientContext, kind: BoundedRole): number {
  const ceiling = kind === 'snapshot' || kind === 'targets' ? ctx.maxLengths[kind] : 0;
  return Math.max(ctx.maxSizes[kind], ceiling);
}

/**
 * A role at the version its referrer states (snapshot from timestamp, targets and delegated
 * roles from snapshot): `VERSION.ROLE.json` with consistent snapshots, else `ROLE.json` (the
 * name URL-encoded). Bounded by the stated length when there is one, and a stated length above
 * the kind's ceiling is TOO_LARGE before any request; else by `maxSizes`.
 */
export async function fetchListed(
  ctx: ClientContext,
  listed: { role: string; kind: 'snapshot' | 'targets'; meta: MetaFile; consistentSnapshot: boolean },
): Promise<Uint8Array> {
  const { role, meta, kind } = listed;
  const encoded = encodeURIComponent(role);
  const fileName = listed.consistentSnapshot ? `${meta.version}.${encoded}.json` : `${encoded}.json`;
  const ceiling = ctx.maxLengths[kind];
  if (meta.length !== undefined && meta.length > ceiling) {
    const referrer = kind === 'snapshot' ? 'timestamp' : 'snapshot';
    throw new TufaError(
      'TOO_LARGE',
      `${role}: the ${referrer} states ${meta.length} bytes, more than the ${ceiling} this client accepts (maxLengths.${kind})`,
      { role, expected: `<= ${ceiling}`, found: meta.length, details: { url: ctx.metadataUrl + fileName } },
    );
  }
  return fetchMetadata(ctx, {
    role,
    fileName,
    maxBytes: meta.length ?? ctx.maxSizes[kind],
    ...(meta.length === undefined ? {} : { statedLength: meta.length }),
  });
}

/** The cache file of a role, as named in errors and notices. */
export function cachePath(ctx: ClientContext, role: string): string {
  return join(ctx.cache.dir, cacheFileName(role));
}

/**
 * Loads a cached role through core (`load`). Bytes that do not parse or whose signatures are bad
 * are a corrupted cache: the file is discarded and the refresh refused with a clear error. Bytes
 * that are merely stale (older version, expired, keys since rotated) are discarded quietly.
 * True when the cached copy was taken.
 */
export async function loadCached(
  ctx: ClientContext,
  cached: { role: string; maxBytes: number; load: (bytes: Uint8Array) => unknown },
): Promise<boolean> {
  const { role } = cached;
  const file = cachePath(ctx, role);
  let bytes: Uint8Array | undefined;
  try {
    bytes = await ctx.cache.read(role, cached.maxBytes);
  } catch (err) {
    await ctx.cache.remove(role);
    throw cacheCorrupted(err, role, file);
  }
  if (bytes === undefined) return false;
  try {
    cached.load(bytes);
    return true;
  } catch (err) {
    if (!isTufaError(err)) throw err;
    if (ERROR_TABLE[err.code].cacheCorruption) {
      await ctx.cache.remove(role);
      throw cacheCorrupted(err, role, file);
    }
    if (role === 'timestamp' || role === 'snapshot') {
      // Only a baseline that no longer verifies (keys rotated) is dropped: 5.3.11's deletion.
      // Anything else (an expired timestamp) is this refresh's refusal.
      if (err.code !== 'THRESHOLD_NOT_MET') throw err;
      await ctx.cache.remove(role);
    }
    ctx.onNotice({
      kind: 'cache-discarded',
      message: `cached ${role} not used: ${err.message}`,
      role,
      file,
      code: err.code,
    });
    return false;
  }
}

/**
 * Offline: loads a cached role as if it had just been downloaded (`load` applies every rule:
 * signatures, hashes and versions against the referring metadata, expiry now). Nothing is
 * removed or written. A role not cached is CACHE_MISSING; a refusal keeps core's code.
 */
export async function loadCachedOffline(
  ctx: ClientContext,
  cached: { role: string; maxBytes: number; load: (bytes: Uint8Array) => unknown },
): Promise<void> {
  const { role } = cached;
  const file = cachePath(ctx, role);
  let bytes: Uint8Array | undefined;
  try {
    bytes = await ctx.cache.read(role, cached.maxBytes);
  } catch (err) {
    throw offlineRefusal(err, role, file);
  }
  if (bytes === undefined) {
    throw cacheMissing(ctx, `${role} is not in the trusted cache (${file})`, { role, file });
  }
  try {
    cached.load(bytes);
  } catch (err) {
    throw offlineRefusal(err, role, file);
  }
}

/** CACHE_MISSING: what an offline answer needs is not cached; refresh online once. */
export function cacheMissing(
  ctx: ClientContext,
  what: string,
  where: { role?: string; file?: string } = {},
): TufaError<'CACHE_MISSING'> {
  return new TufaError('CACHE_MISSING', `offline: ${what}; refresh online once to fill the cache`, {
    role: where.role,
    details: {
      source: 'cache',
      cacheDir: ctx.cache.dir,
      ...(where.file === undefined ? {} : { file: where.file }),
    },
  });
}

/** An offline refusal of a cache file: core's code, `details.source = 'cache'`, the file left as it is. */
export function offlineRefusal(err: unknown, role: string, file: string): TufaError {
  if (!isTufaError(err)) return cacheCorrupted(err, role, file);
  return new TufaError(err.code, `offline: trusted cache ${file}: ${err.message}`, {
    role: err.role ?? role,
    expected: err.expected,
    found: err.found,
    details: { ...(err.details ?? {}), source: 'cache', file },
    cause: err,
  });
}

/** The refusal for a cache file that cannot be used: core's code, `details.source = 'cache'`. */
export function cacheCorrupted(err: unknown, role: string, file: string): TufaError {
  if (!isTufaError(err)) {
    return new TufaError('INTERNAL', `trusted cache: ${file} cannot be used: ${describeError(err)}`, {
      role,
      details: { source: 'cache', file },
      cause: err,
    });
  }
  return new TufaError(
    err.code,
    `trusted cache: ${file} is corrupted and was discarded (${err.message}); ` +
      'the next refresh starts again from the last trusted root',
    {
      role: err.role ?? role,
      expected: err.expected,
      found: err.found,
      details: { ...(err.details ?? {}), source: 'cache', file },
      cause: err,
    },
  );
}

export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
