/**
 * What every job of the client is given (the repository, its cache, the bounds, the transport),
 * and the two ways metadata arrives: downloaded within its bound, or read back from the cache
 * through core's rules (refused and discarded when corrupted, dropped quietly when stale).
 */
import { join } from 'node:path';
import { ERROR_TABLE, type ErrorCode, isTufaError, type MetaFile, TufaError } from '@tufa/core';
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
  readonly maxRootRotations: number;
  /** Roles visited per target search or listing. */
  readonly maxDelegations: number;
  readonly timeouts: Readonly<Required<Timeouts>>;
  readonly fetch: FetchLike;
  /** The clock (ms since the epoch), read once at the start of each refresh. */
  readonly clock: () => number;
  readonly onNotice: (notice: Notice) => void;
}

/** Downloads a metadata file from the metadata base URL, bounded in bytes and in time. */
export function fetchMetadata(
  ctx: ClientContext,
  file: { role: string; fileName: string; maxBytes: number },
): Promise<Uint8Array> {
  return download(ctx.metadataUrl + file.fileName, {
    role: file.role,
    maxBytes: file.maxBytes,
    timeouts: ctx.timeouts,
    total: true,
    fetch: ctx.fetch,
  });
}

/**
 * A role at the version its referrer states (snapshot from timestamp, targets and delegated
 * roles from snapshot): `VERSION.ROLE.json` with consistent snapshots, else `ROLE.json` (the
 * name URL-encoded), bounded by the stated length when there is one.
 */
export function fetchListed(
  ctx: ClientContext,
  listed: { role: string; meta: MetaFile; consistentSnapshot: boolean; maxBytes: number },
): Promise<Uint8Array> {
  const { role, meta } = listed;
  const encoded = encodeURIComponent(role);
  return fetchMetadata(ctx, {
    role,
    fileName: listed.consistentSnapshot ? `${meta.version}.${encoded}.json` : `${encoded}.json`,
    maxBytes: meta.length ?? listed.maxBytes,
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
