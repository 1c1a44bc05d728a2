/**
 * The refresh (5.3–5.6): from the first trusted root, the root chain, then timestamp, snapshot
 * and top-level targets, in the spec's order, each through core's TrustedMetadataSet, keeping
 * what it accepted in the cache. It decides what to fetch and what to keep; the rules are core's.
 */
import { isTufaError, type Root, type TrustedMetadataSet, TufaError } from '@tufa/core';
import { type ClientContext, fetchListed, fetchMetadata, loadCached } from './context.js';
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
  const { set, tofu } = await loadTrustedRoot(ctx, { ...options, now });
  // A publisher's view (a set that allows expired metadata) leaves the cache alone.
  const persist = async (role: string, bytes: Uint8Array) => {
    if (!set.allowExpired) await ctx.cache.write(role, bytes);
  };
  const unpersist = async (role: string) => {
    if (!set.allowExpired) await ctx.cache.remove(role);
  };

  // 5.3: follow root rotations N+1, N+2, … until none is found (bounded).
  const last = set.root.signed.version + ctx.maxRootRotations;
  for (let version = set.root.signed.version + 1; version <= last; version++) {
    let bytes: Uint8Array;
    try {
      bytes = await fetchMetadata(ctx, {
        role: 'root',
        fileName: `${version}.root.json`,
        maxBytes: ctx.maxSizes.root,
      });
    } catch (err) {
      if (isTufaError(err, 'NOT_FOUND')) break;
      throw err;
    }
    const previous = set.root.signed;
    set.updateRoot(bytes);
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
    maxBytes: ctx.maxSizes.timestamp,
    load: (b) => set.updateTimestamp(b, { cached: true }),
  });
  const held = set.timestamp;
  const timestampBytes = await fetchMetadata(ctx, {
    role: 'timestamp',
    fileName: 'timestamp.json',
    maxBytes: ctx.maxSizes.timestamp,
  });
  const timestamp = set.updateTimestamp(timestampBytes);
  if (timestamp !== held) await persist('timestamp', timestampBytes);

  // 5.5: snapshot; the cached one is enough when it is the version the timestamp states.
  const consistentSnapshot = set.root.signed.consistentSnapshot === true;
  await loadCached(ctx, {
    role: 'snapshot',
    maxBytes: ctx.maxSizes.snapshot,
    load: (b) => set.updateSnapshot(b, { cached: true }),
  });
  if (!set.snapshotIsFinal()) {
    const bytes = await fetchListed(ctx, {
      role: 'snapshot',
      meta: timestamp.signed.snapshotMeta,
      consistentSnapshot,
      maxBytes: ctx.maxSizes.snapshot,
    });
    set.updateSnapshot(bytes);
    await persist('snapshot', bytes);
  }

  // 5.6: top-level targets.
  const cachedTargets = await loadCached(ctx, {
    role: 'targets',
    maxBytes: ctx.maxSizes.targets,
    load: (b) => set.updateTargets(b, { cached: true }),
  });
  if (!cachedTargets) {
    const bytes = await fetchListed(ctx, {
      role: 'targets',
      meta: set.snapshot!.signed.meta['targets.json']!,
      consistentSnapshot,
      maxBytes: ctx.maxSizes.targets,
    });
    set.updateTargets(bytes);
    await persist('targets', bytes);
  }

  const result: RefreshResult = {
    root: set.root.signed.version,
    timestamp: set.timestamp!.signed.version,
    snapshot: set.snapshot!.signed.version,
    targets: set.targets!.signed.version,
  };
  if (tofu !== undefined) result.tofu = tofu;
  return { set, result };
}

function keysRotated(previous: Root, next: Root): boolean {
  const same = (a: readonly string[], b: readonly string[]) =>
    a.length === b.length && [...a].sort().join() === [...b].sort().join();
  return (
    !same(previous.roles.timestamp.keyids, next.roles.timestamp.keyids) ||
    !same(previous.roles.snapshot.keyids, next.roles.snapshot.keyids)
  );
}
