/**
 * The refresh (5.3–5.6): from the first trusted root, the root chain, then timestamp, snapshot
 * and top-level targets, in the spec's order, each through core's TrustedMetadataSet, keeping
 * what it accepted in the cache. It decides what to fetch and what to keep; the rules are core's.
 */
import { isTufaError, parseMetadata, type Root, type TrustedMetadataSet, TufaError } from '@tufa/core';
import {
  accepted,
  type ClientContext,
  cacheMissing,
  documentBound,
  fetchListed,
  fetchMetadata,
  loadCached,
  loadCachedOffline,
} from './context.js';
import { loadTrustedRoot, type TofuNotice, type TrustedRootOptions } from './trust-anchor.js';

/** python-tuf's bound on root rotations followed in one refresh. */
export const DEFAULT_MAX_ROOT_ROTATIONS = 256;

export interface RefreshResult {
  root: number;
  timestamp: number;
  snapshot: number;
  targets: number;
  /** Set when this refresh trusted a root on first use. */
  tofu?: TofuNotice;
}

export type RefreshOptions = Omit<TrustedRootOptions, 'now'>;

/**
 * Runs the client workflow and returns the trusted set it made. With `allowExpired` (a
 * publisher's view) every rule but expiry applies and the cache's metadata is left alone.
 */
export async function refreshTrustedMetadata(
  ctx: ClientContext,
  options: RefreshOptions,
): Promise<{ set: TrustedMetadataSet; result: RefreshResult }> {
  const now = ctx.clock();
  if (!Number.isFinite(now)) throw new TufaError('INVALID_ARGUMENT', 'the clock must return a finite time');
  if (ctx.offline) return loadOffline(ctx, { ...options, now });
  // Requested before the local checks so that the round trips overlap them; used in 5.3 and 5.4 only.
  const early = await startEarlyDownloads(ctx);
  try {
    return await refreshOnline(ctx, { ...options, now }, early);
  } finally {
    // A download never awaited (a local check refused first, a probe for another version) stops.
    early?.stop();
  }
}

/** 5.3-5.6 online, from the trusted root on, with the early downloads when there are some. */
async function refreshOnline(
  ctx: ClientContext,
  options: TrustedRootOptions,
  early: EarlyDownloads | undefined,
): Promise<{ set: TrustedMetadataSet; result: RefreshResult }> {
  const now = options.now;
  const { set, tofu } = await loadTrustedRoot(ctx, options);
  // A publisher's view (a set that allows expired metadata) leaves the cache alone.
  const persist = async (role: string, bytes: Uint8Array) => {
    if (!set.allowExpired) await ctx.cache.write(role, bytes);
  };
  const unpersist = async (role: string) => {
    if (!set.allowExpired) await ctx.cache.remove(role);
  };

  // 5.3: follow root rotations N+1, N+2, … until none is found (bounded).
  const last = set.root.signed.version + ctx.maxRootRotations;
  let timestampDownload = early?.timestamp;
  for (let version = set.root.signed.version + 1; version <= last; version++) {
    let bytes: Uint8Array;
    try {
      // The early probe only when it asked for this very version (its guess came from unchecked bytes).
      const download =
        early?.rootProbe.version === version
          ? early.rootProbe.download
          : fetchMetadata(ctx, {
              role: 'root',
              fileName: `${version}.root.json`,
              maxBytes: ctx.maxSizes.root,
            });
      // Else downloaded beside the first root probe (one round trip instead of two).
      timestampDownload ??= downloadTimestamp(ctx);
      bytes = await download;
    } catch (err) {
      if (isTufaError(err, 'NOT_FOUND')) break;
      throw err;
    }
    const previous = set.root.signed;
    accepted(set.updateRoot(bytes), bytes);
    // 5.3.11: rotated timestamp or snapshot keys invalidate the cached copies (fast-forward recovery).
    if (keysRotated(previous, set.root.signed)) {
      await unpersist('timestamp');
      await unpersist('snapshot');
    }
    await persist('root', bytes);
  }
  set.checkRootNotExpired(); // 5.3.10

  // 5.4: timestamp, with the cached one as the rollback baseline.
  await loadCached(ctx, {
    role: 'timestamp',
    maxBytes: documentBound(ctx, 'timestamp'),
    load: (b) => accepted(set.updateTimestamp(b, { cached: true }), b),
  });
  const held = set.timestamp;
  // Downloaded while the root chain was checked, checked only now: 5.4, against the newest root.
  const timestampBytes = await (timestampDownload ?? downloadTimestamp(ctx));
  const timestamp = accepted(set.updateTimestamp(timestampBytes), timestampBytes);
  if (timestamp !== held) await persist('timestamp', timestampBytes);

  // 5.5: snapshot; the cached one is enough when it is the version the timestamp states.
  const consistentSnapshot = set.root.signed.consistentSnapshot === true;
  await loadCached(ctx, {
    role: 'snapshot',
    maxBytes: documentBound(ctx, 'snapshot'),
    load: (b) => accepted(set.updateSnapshot(b, { cached: true }), b),
  });
  if (!set.snapshotIsFinal()) {
    const bytes = await fetchListed(ctx, {
      role: 'snapshot',
      kind: 'snapshot',
      meta: timestamp.signed.snapshotMeta,
      consistentSnapshot,
    });
    accepted(set.updateSnapshot(bytes), bytes);
    await persist('snapshot', bytes);
  }

  // 5.6: top-level targets.
  const cachedTargets = await loadCached(ctx, {
    role: 'targets',
    maxBytes: documentBound(ctx, 'targets'),
    load: (b) => accepted(set.updateTargets(b, { cached: true }), b),
  });
  if (!cachedTargets) {
    const bytes = await fetchListed(ctx, {
      role: 'targets',
      kind: 'targets',
      meta: set.snapshot!.signed.meta['targets.json']!,
      consistentSnapshot,
    });
    accepted(set.updateTargets(bytes), bytes);
    await persist('targets', bytes);
  }
  // Last, once every file this refresh accepted is in the cache: what `maxAge` measures.
  if (!set.allowExpired) await ctx.cache.writeLastRefresh({ at: now });

  return { set, result: resultOf(set, tofu) };
}

/** timestamp.json's download; a failure is reported where it is awaited, never as an unhandled rejection. */
function downloadTimestamp(ctx: ClientContext, signal?: AbortSignal): Promise<Uint8Array> {
  return quiet(
    fetchMetadata(ctx, {
      role: 'timestamp',
      fileName: 'timestamp.json',
      maxBytes: ctx.maxSizes.timestamp,
      ...(signal === undefined ? {} : { signal }),
    }),
  );
}

function quiet(download: Promise<Uint8Array>): Promise<Uint8Array> {
  download.catch(() => undefined);
  return download;
}

interface EarlyDownloads {
  timestamp: Promise<Uint8Array>;
  /** `VERSION.root.json` for the version after the cached root's. */
  rootProbe: { version: number; download: Promise<Uint8Array> };
  /** Ends whichever of the two is still in flight. */
  stop(): void;
}

/**
 * A warm refresh's first two requests (timestamp.json, the N+1 root probe), started before the
 * local checks of the pinned and cached roots so that the round trip to the repository overlaps
 * them. Nothing is trusted here: the bytes are checked where the workflow checks them, the probe's
 * version (read from the cached root, unverified) only names a file, and a probe for another
 * version than the one after the trusted root is not used. Without a cached root that parses
 * (first use, a damaged cache) nothing starts early: such a refresh may be refused before any
 * request, as it was.
 */
async function startEarlyDownloads(ctx: ClientContext): Promise<EarlyDownloads | undefined> {
  let cached: Uint8Array | undefined;
  try {
    cached = await ctx.cache.read('root', ctx.maxSizes.root);
  } catch {
    // loadTrustedRoot reads the cached root again and refuses it with its own error.
  }
  if (cached === undefined) return undefined;
  let version: number;
  try {
    version = parseMetadata('root', cached).signed.version + 1;
  } catch {
    return undefined; // refused by loadTrustedRoot, before any request, as without this
  }
  const controller = new AbortController();
  const signal = controller.signal;
  // The probe first, as the workflow asks for them.
  const download = quiet(
    fetchMetadata(ctx, {
      role: 'root',
      fileName: `${version}.root.json`,
      maxBytes: ctx.maxSizes.root,
      signal,
    }),
  );
  const timestamp = downloadTimestamp(ctx, signal);
  // One turn of the event loop: the connections open before the checks that follow, which may not
  // yield until they are done (a pinned root given as bytes); the requests leave at the next turn.
  await new Promise<void>((resolve) => setImmediate(resolve));
  return { rootProbe: { version, download }, timestamp, stop: () => controller.abort() };
}

/**
 * Offline: the trusted state from the cache alone, each file loaded as if it had just been
 * downloaded, so every rule applies (signatures against the cached root, hashes, lengths and
 * versions against the referring metadata, expiry at `now`). No request, no write.
 */
async function loadOffline(
  ctx: ClientContext,
  options: TrustedRootOptions,
): Promise<{ set: TrustedMetadataSet; result: RefreshResult }> {
  await checkCacheExists(ctx);
  if (ctx.maxAgeMs !== undefined) await checkCacheAge(ctx, options.now, ctx.maxAgeMs);
  const { set } = await loadTrustedRoot(ctx, options);
  set.checkRootNotExpired(); // 5.3.10, at the current time
  await loadCachedOffline(ctx, {
    role: 'timestamp',
    maxBytes: documentBound(ctx, 'timestamp'),
    load: (b) => accepted(set.updateTimestamp(b), b),
  });
  await loadCachedOffline(ctx, {
    role: 'snapshot',
    maxBytes: documentBound(ctx, 'snapshot'),
    load: (b) => accepted(set.updateSnapshot(b), b),
  });
  await loadCachedOffline(ctx, {
    role: 'targets',
    maxBytes: documentBound(ctx, 'targets'),
    load: (b) => accepted(set.updateTargets(b), b),
  });
  return { set, result: resultOf(set, undefined) };
}

/** CACHE_MISSING unless the cache holds a root: an offline answer has nothing to start from. */
export async function checkCacheExists(ctx: ClientContext): Promise<void> {
  if (!(await ctx.cache.exists())) {
    throw cacheMissing(ctx, `nothing is cached for this repository in ${ctx.cache.dir}`, { role: 'root' });
  }
}

/** CACHE_STALE unless the last successful refresh started at most `maxAgeMs` before `now`. */
async function checkCacheAge(ctx: ClientContext, now: number, maxAgeMs: number): Promise<void> {
  const last = await ctx.cache.readLastRefresh();
  const ageMs = last === undefined ? null : now - last.at;
  // A record from the future (the clock moved back) says nothing about the cache's age.
  if (ageMs !== null && ageMs >= 0 && ageMs <= maxAgeMs) return;
  const refreshedAt = last === undefined ? null : new Date(last.at).toISOString();
  const why =
    ageMs === null
      ? 'there is no record of a successful refresh'
      : ageMs < 0
        ? `its last refresh (${refreshedAt}) is later than the clock now`
        : `its last successful refresh was at ${refreshedAt}, ${Math.floor(ageMs / 1000)} s ago`;
  throw new TufaError(
    'CACHE_STALE',
    `offline: the trusted cache is older than allowed (${Math.floor(maxAgeMs / 1000)} s): ${why}; refresh online`,
    {
      expected: `a refresh within ${maxAgeMs} ms`,
      found: refreshedAt,
      details: { source: 'cache', cacheDir: ctx.cache.dir, refreshedAt, maxAgeMs, ageMs },
    },
  );
}

function resultOf(set: TrustedMetadataSet, tofu: TofuNotice | undefined): RefreshResult {
  const result: RefreshResult = {
    root: set.root.signed.version,
    timestamp: set.timestamp!.signed.version,
    snapshot: set.snapshot!.signed.version,
    targets: set.targets!.signed.version,
  };
  if (tofu !== undefined) result.tofu = tofu;
  return result;
}

function keysRotated(previous: Root, next: Root): boolean {
  const same = (a: readonly string[], b: readonly string[]) =>
    a.length === b.length && [...a].sort().join() === [...b].sort().join();
  return (
    !same(previous.roles.timestamp.keyids, next.roles.timestamp.keyids) ||
    !same(previous.roles.snapshot.keyids, next.roles.snapshot.keyids)
  );
}
