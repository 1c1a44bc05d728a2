/**
 * The first trusted root of a refresh: the cached root, a pinned root file, pinned root key ids,
 * or trust on first use; and the cache's anchor file, which says which of these the cached root
 * rests on, so that pinning after a bad first use still protects.
 */
import { open, stat } from 'node:fs/promises';
import {
  checkRootPins,
  fileUnreadable,
  isTufaError,
  type Metadata,
  type Root,
  serializeMetadata,
  TrustedMetadataSet,
  TufaError,
  toHex,
} from '@tufa/core';
import {
  accepted,
  acceptedBytes,
  type ClientContext,
  cacheCorrupted,
  cacheMissing,
  cachePath,
  describeError,
  fetchMetadata,
  type Notice,
  offlineRefusal,
} from './context.js';

export interface TrustOptions {
  /** A pinned root: a file path or the root's bytes. */
  rootFile?: string | Uint8Array;
  /** Pinned root key ids: `threshold` of them must have signed 1.root.json or the current root. */
  rootKeyIds?: readonly string[];
  /** How many of `rootKeyIds` must have signed (default 1). */
  threshold?: number;
  /** Trust on first use when nothing is pinned (default true). False: UNTRUSTED_ROOT instead. */
  allowTofu?: boolean;
}

export type TofuNotice = Extract<Notice, { kind: 'tofu' }>;

/** Refuses trust options that can never be met, before any request. */
export function checkTrustOptions(trust: TrustOptions): void {
  if (trust.rootKeyIds === undefined) return;
  const threshold = trust.threshold ?? 1;
  if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > trust.rootKeyIds.length) {
    throw new TufaError('INVALID_ARGUMENT', 'trust.threshold must be between 1 and the number of key ids', {
      found: threshold,
    });
  }
}

export interface TrustedRootOptions {
  trust: TrustOptions;
  /** The refresh's reference time. */
  now: number;
  /** A publisher's view: every rule but expiry, and the set made says so (`set.allowExpired`). */
  allowExpired: boolean;
  /** The root trusted by the client's last refresh, if any: the start when the cache lost its copy. */
  heldRoot: Metadata<Root> | undefined;
  /** Called when the pins changed since the cache was filled: what the client holds rests on the old ones. */
  onPinsChanged(): void;
}

/** The trusted root to start from: the cache, else the last one held, else the trust anchor. */
export async function loadTrustedRoot(
  ctx: ClientContext,
  options: TrustedRootOptions,
): Promise<{ set: TrustedMetadataSet; tofu?: TofuNotice }> {
  const { trust, now, allowExpired } = options;
  const setOptions = { now, allowExpired, crypto: ctx.crypto };
  const pinned = trust.rootFile === undefined ? undefined : await readPinnedRoot(ctx, options);
  const anchor = trustAnchor(ctx, trust, pinned?.bytes);
  let heldRoot = options.heldRoot;
  // A cache first trusted under other pins (or on first use) is not evidence for these pins:
  // start again from what is pinned now, so that pinning after a bad first use still protects.
  if (anchor !== undefined && (await ctx.cache.readAnchor()) !== anchor) {
    if (ctx.offline) {
      throw cacheMissing(
        ctx,
        (await ctx.cache.exists())
          ? 'the trusted cache was filled under other pins (or on first use) than the ones given now'
          : 'nothing is cached for this repository',
        { role: 'root' },
      );
    }
    await ctx.cache.clear();
    options.onPinsChanged();
    heldRoot = undefined;
  }
  let fromCache: TrustedMetadataSet | undefined;
  let cached: Uint8Array | undefined;
  // Offline, a cache file that cannot be used is refused and left as it is.
  const refuseCachedRoot = async (err: unknown) => {
    if (ctx.offline) return offlineRefusal(err, 'root', cachePath(ctx, 'root'));
    await ctx.cache.remove('root');
    return cacheCorrupted(err, 'root', cachePath(ctx, 'root'));
  };
  try {
    cached = await ctx.cache.read('root', ctx.maxSizes.root);
  } catch (err) {
    throw await refuseCachedRoot(err);
  }
  if (cached !== undefined && pinned !== undefined && sameBytes(cached, pinned.bytes)) {
    // The pinned root's very bytes, just loaded with the same options (and the pins): the same set.
    fromCache = pinned.set;
  } else if (cached !== undefined) {
    try {
      fromCache = TrustedMetadataSet.fromTrustedRoot(cached, setOptions);
      accepted(fromCache.root, cached);
    } catch (err) {
      throw await refuseCachedRoot(err);
    }
  } else if (heldRoot !== undefined) {
    // The cache was discarded since the last refresh: start again from the root held in memory.
    const bytes = acceptedBytes(heldRoot) ?? serializeMetadata(heldRoot);
    fromCache = TrustedMetadataSet.fromTrustedRoot(bytes, setOptions);
    accepted(fromCache.root, bytes);
    if (!ctx.offline) await ctx.cache.write('root', bytes);
  }
  if (pinned !== undefined) {
    if (fromCache === undefined || fromCache.root.signed.version < pinned.set.root.signed.version) {
      if (!ctx.offline) {
        await ctx.cache.write('root', pinned.bytes);
        await ctx.cache.writeAnchor(anchor!);
      }
      return { set: pinned.set };
    }
  }
  if (fromCache !== undefined) return { set: fromCache };
  if (ctx.offline) throw cacheMissing(ctx, 'nothing is cached for this repository', { role: 'root' });

  if (trust.rootKeyIds !== undefined && trust.rootKeyIds.length > 0) {
    const pins = { keyids: trust.rootKeyIds, threshold: trust.threshold ?? 1 };
    let first: Uint8Array | undefined;
    let firstError: unknown;
    try {
      first = await fetchRoot(ctx, '1.root.json');
      const set = TrustedMetadataSet.fromTrustedRoot(first, setOptions);
      accepted(set.root, first);
      checkRootPins(ctx.crypto, set.root, pins);
      await ctx.cache.write('root', first);
      await ctx.cache.writeAnchor(anchor!);
      return { set };
    } catch (err) {
      if (!isTufaError(err)) throw err;
      if (err.code === 'NETWORK' || err.code === 'TIMEOUT') throw err;
      firstError = err;
    }
    const current = await fetchRoot(ctx, 'root.json');
    const set = TrustedMetadataSet.fromTrustedRoot(current, setOptions);
    accepted(set.root, current);
    try {
      checkRootPins(ctx.crypto, set.root, pins);
    } catch (err) {
      if (!isTufaError(err)) throw err;
      throw new TufaError(err.code, `${err.message} (1.root.json: ${describeError(firstError)})`, {
        role: 'root',
        expected: err.expected,
        found: err.found,
        details: err.details,
        cause: err,
      });
    }
    await ctx.cache.write('root', current);
    await ctx.cache.writeAnchor(anchor!);
    return { set };
  }

  if (trust.allowTofu === false) {
    throw new TufaError(
      'UNTRUSTED_ROOT',
      'no trusted root: pin a root file or root key ids, or allow trust on first use',
      { role: 'root', expected: 'a pinned root or root key ids' },
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = await fetchRoot(ctx, '1.root.json');
  } catch (err) {
    if (!isTufaError(err, 'NOT_FOUND')) throw err;
    bytes = await fetchRoot(ctx, 'root.json');
  }
  const set = TrustedMetadataSet.fromTrustedRoot(bytes, setOptions);
  accepted(set.root, bytes);
  await ctx.cache.write('root', bytes);
  const roleKeys = set.root.signed.roles.root;
  const tofu: TofuNotice = {
    kind: 'tofu',
    message:
      `trust on first use: trusting root v${set.root.signed.version} of ${ctx.metadataUrl}, ` +
      `root keys ${roleKeys.keyids.join(', ')} (threshold ${roleKeys.threshold})`,
    rootVersion: set.root.signed.version,
    keyids: [...roleKeys.keyids],
    threshold: roleKeys.threshold,
  };
  ctx.onNotice(tofu);
  return { set, tofu };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

function fetchRoot(ctx: ClientContext, fileName: string): Promise<Uint8Array> {
  return fetchMetadata(ctx, { role: 'root', fileName, maxBytes: ctx.maxSizes.root });
}

/** The pinned root file, signed by its own threshold (and by the pinned key ids when given). */
async function readPinnedRoot(
  ctx: ClientContext,
  options: TrustedRootOptions,
): Promise<{ set: TrustedMetadataSet; bytes: Uint8Array }> {
  const { trust } = options;
  const rootFile = trust.rootFile!;
  const maxBytes = ctx.maxSizes.root;
  let bytes: Uint8Array;
  if (typeof rootFile === 'string') {
    const size = await stat(rootFile).then(
      (s) => s.size,
      (err: unknown) => {
        throw fileUnreadable(rootFile, 'the pinned root file', err);
      },
    );
    if (size > maxBytes) {
      throw new TufaError('TOO_LARGE', `pinned root file ${rootFile} is larger than ${maxBytes}`, {
        role: 'root',
        expected: `<= ${maxBytes}`,
        found: size,
      });
    }
    try {
      const handle = await open(rootFile, 'r');
      try {
        bytes = new Uint8Array(await handle.readFile());
      } finally {
        await handle.close();
      }
    } catch (err) {
      throw fileUnreadable(rootFile, 'the pinned root file', err);
    }
  } else {
    bytes = rootFile;
  }
  const set = TrustedMetadataSet.fromTrustedRoot(bytes, {
    crypto: ctx.crypto,
    now: options.now,
    allowExpired: options.allowExpired,
  });
  if (trust.rootKeyIds !== undefined && trust.rootKeyIds.length > 0) {
    checkRootPins(ctx.crypto, set.root, { keyids: trust.rootKeyIds, threshold: trust.threshold ?? 1 });
  }
  accepted(set.root, bytes);
  return { set, bytes };
}

/**
 * What the first trusted root rests on: pinned key ids and threshold, or the pinned root file's
 * hash; undefined for trust on first use (which any pin outranks).
 */
function trustAnchor(
  ctx: ClientContext,
  trust: TrustOptions,
  rootFileBytes: Uint8Array | undefined,
): string | undefined {
  // A root file is content, not a short identifier: the provider's hash (OpenSSL, about 2 ms less cold).
  if (rootFileBytes !== undefined)
    return `root-file sha256:${toHex(ctx.crypto.hash('sha256', rootFileBytes))}`;
  if (trust.rootKeyIds !== undefined && trust.rootKeyIds.length > 0) {
    return `root-keys ${[...trust.rootKeyIds].sort().join(',')} threshold ${trust.threshold ?? 1}`;
  }
  return undefined;
}
