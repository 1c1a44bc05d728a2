/**
 * The client's facade: one object per repository, holding the trusted set of its last refresh.
 * It checks the location and options, then hands each call to its job: the refresh (updater.ts,
 * starting from trust-anchor.ts), delegated roles and target search (delegations.ts), target
 * files (downloads.ts). Every trust decision is core's.
 */
import { join } from 'node:path';
import {
  type CryptoProvider,
  checkGun,
  DEFAULT_MAX_DELEGATIONS,
  type TrustedMetadataSet,
  TufaError,
} from '@tufa/core';
import { createNodeCrypto } from '@tufa/core/node';
import { cacheFolderName, defaultCacheRoot, type LockOptions, MetadataCache } from './cache.js';
import {
  type ClientContext,
  DEFAULT_MAX_LENGTHS,
  DEFAULT_MAX_SIZES,
  type MaxLengths,
  type MaxSizes,
  type Notice,
} from './context.js';
import {
  type FoundRole,
  findRole,
  findTarget,
  listDelegations,
  listTargets,
  type TargetInfo,
} from './delegations.js';
import {
  type DownloadDestination,
  type DownloadedTarget,
  destinationPath,
  downloadTarget,
  type FileSource,
  findCachedTarget,
  type VerifiedTarget,
  verifyDigest,
  verifyFile,
} from './downloads.js';
import { type ExportedMetadata, exportMetadata } from './export.js';
import { DEFAULT_TIMEOUTS, type FetchLike, nodeFetch, redactUrl, type Timeouts } from './fetcher.js';
import { checkTrustOptions, loadTrustedRoot, type TrustOptions } from './trust-anchor.js';
import {
  checkCacheExists,
  DEFAULT_MAX_ROOT_ROTATIONS,
  type RefreshResult,
  refreshTrustedMetadata,
} from './updater.js';

/** Where the repository is: a tufa (Notary-layout) server and GUN, or any TUF 1.0 repository. */
export type RepositoryLocation =
  | { server: string; gun: string; targetsUrl?: string }
  | { metadataUrl: string; targetsUrl?: string };

export interface ClientOptions {
  /** Parent folder of the per-repository cache folders (default ~/.tufa/cache). */
  cacheDir?: string;
  /** The exact cache folder for this repository (overrides `cacheDir`). */
  repositoryCacheDir?: string;
  trust?: TrustOptions;
  /** Byte bounds per role for a document whose length no signed metadata states. */
  maxSizes?: MaxSizes;
  /** The most a signed length may state, per kind; above it TOO_LARGE before downloading. */
  maxLengths?: MaxLengths;
  timeouts?: Timeouts;
  /** A fetch implementation (default: node:http/https, with token/ca/cert/key when given). */
  fetch?: FetchLike;
  /** Access token for the server (`Authorization: Bearer`); sent to the repository's origin only. */
  token?: string | undefined;
  /** PEM CA certificate(s) for an https server with a private CA. */
  ca?: string | Uint8Array | undefined;
  /** PEM client certificate and key, for a server that requires mutual TLS. */
  cert?: string | Uint8Array | undefined;
  key?: string | Uint8Array | undefined;
  /** The clock (ms since the epoch), read once at the start of each refresh. */
  clock?: () => number;
  /**
   * The crypto provider that checks every signature and hash (default: a new
   * `createNodeCrypto()` from `@tufa/core/node` for this client; `createNobleCrypto()` from
   * `@tufa/core/noble` is the pure-JavaScript one, without RSA).
   */
  crypto?: CryptoProvider;
  maxRootRotations?: number;
  /** At most this many roles are visited in one target search or listing (default 32). */
  maxDelegations?: number;
  /** Called for trust-on-first-use and for cache files discarded as stale. Never stdout. */
  onNotice?: (notice: Notice) => void;
  lock?: LockOptions;
  /**
   * Answer from the trusted cache alone: no request is made and the cache is not written. Every
   * rule still applies to the cached files (signatures, hashes, versions, expiry now);
   * CACHE_MISSING when the cache lacks a file the answer needs.
   */
  offline?: boolean;
  /** With `offline`: CACHE_STALE when the last successful refresh started longer ago (ms). */
  maxAge?: number;
}

/** Creates a client for a tufa server and GUN or for any TUF 1.0 repository over HTTP. */
export function createClient(location: RepositoryLocation, options: ClientOptions = {}): TufaClient {
  return new TufaClient(location, options);
}

export class TufaClient {
  readonly metadataUrl: string;
  readonly targetsUrl: string | undefined;
  readonly cacheDir: string;
  private readonly cache: MetadataCache;
  private readonly options: ClientOptions;
  private readonly context: ClientContext;
  /** The set of the last refresh (never a publisher's view): what lookups answer from. */
  private trusted: TrustedMetadataSet | undefined;
  private refreshing: Promise<RefreshResult> | undefined;

  constructor(location: RepositoryLocation, options: ClientOptions = {}) {
    this.options = options;
    let identity: string;
    if ('server' in location) {
      const server = checkUrl(location.server, 'server').replace(/\/+$/, '');
      // Every character core's grammar allows is safe in a URL path: the GUN goes as it is.
      const gun = checkGun(location.gun);
      this.metadataUrl = `${server}/v2/${gun}/_trust/tuf/`;
      identity = `${server}|${gun}`;
    } else {
      this.metadataUrl = withSlash(checkUrl(location.metadataUrl, 'metadataUrl'));
      identity = this.metadataUrl;
    }
    this.targetsUrl =
      location.targetsUrl === undefined ? undefined : withSlash(checkUrl(location.targetsUrl, 'targetsUrl'));
    this.cacheDir =
      options.repositoryCacheDir ?? join(options.cacheDir ?? defaultCacheRoot(), cacheFolderName(identity));
    this.cache = new MetadataCache(this.cacheDir);
    const maxSizes = checkBounds('maxSizes', {
      ...DEFAULT_MAX_SIZES,
      ...definedOnly(options.maxSizes ?? {}),
    });
    const maxLengths = checkBounds('maxLengths', {
      ...DEFAULT_MAX_LENGTHS,
      ...definedOnly(options.maxLengths ?? {}),
    });
    const timeouts = { ...DEFAULT_TIMEOUTS, ...definedOnly(options.timeouts ?? {}) };
    const auth = { token: options.token, ca: options.ca, cert: options.cert, key: options.key };
    const wantsAuth = Object.values(auth).some((v) => v !== undefined);
    if (wantsAuth && options.fetch !== undefined) {
      throw new TufaError('INVALID_ARGUMENT', 'give either fetch or token/ca/cert/key, not both');
    }
    // node:http/https by default: it takes TLS options, and a short-lived CLI does not pay for
    // loading Node's fetch (undici) on every start.
    const fetch = options.fetch ?? nodeFetch({ ...auth, tokenOrigin: new URL(this.metadataUrl).origin });
    checkTrustOptions(options.trust ?? {});
    const offline = options.offline === true;
    if (options.offline !== undefined && typeof options.offline !== 'boolean') {
      throw new TufaError('INVALID_ARGUMENT', 'offline must be true or false', { found: options.offline });
    }
    if (options.maxAge !== undefined) {
      if (!offline)
        throw new TufaError('INVALID_ARGUMENT', 'maxAge applies to offline answers: give offline: true');
      if (!Number.isSafeInteger(options.maxAge) || options.maxAge <= 0) {
        throw new TufaError('INVALID_ARGUMENT', 'maxAge must be a positive whole number of milliseconds', {
          found: options.maxAge,
        });
      }
    }
    this.context = {
      metadataUrl: this.metadataUrl,
      targetsUrl: this.targetsUrl,
      cache: this.cache,
      maxSizes,
      maxLengths,
      maxRootRotations: options.maxRootRotations ?? DEFAULT_MAX_ROOT_ROTATIONS,
      maxDelegations: options.maxDelegations ?? DEFAULT_MAX_DELEGATIONS,
      timeouts,
      fetch,
      crypto: options.crypto ?? createNodeCrypto(),
      clock: () => (options.clock ?? Date.now)(),
      onNotice: (notice) => options.onNotice?.(notice),
      offline,
      maxAgeMs: options.maxAge,
    };
  }

  /**
   * Runs the client workflow: root rotations, timestamp, snapshot, top-level targets, in the
   * spec's order, every piece through core's rules. A failed refresh leaves the last trusted
   * state (in memory and on disk) in place. Concurrent calls share one refresh.
   */
  refresh(): Promise<RefreshResult> {
    if (this.refreshing === undefined) {
      // Offline, a missing cache is refused before the lock, which would create its folder.
      this.refreshing = (this.context.offline ? checkCacheExists(this.context) : Promise.resolve())
        .then(() =>
          this.cache.withLock(async () => {
            const { set, result } = await this.runRefresh(false);
            this.trusted = set;
            return result;
          }, this.options.lock),
        )
        .finally(() => {
          this.refreshing = undefined;
        });
    }
    return this.refreshing;
  }

  /** The trusted entry for a target path, found through the delegation tree; NOT_FOUND otherwise. */
  async getTarget(tag: string): Promise<TargetInfo> {
    checkTag(tag);
    const set = await this.trustedSet();
    return findTarget(this.context, set, tag);
  }

  /** Compares `ALGORITHM:HEX` with the trusted entry: HASH_MISMATCH saying what differed. */
  verifyDigest(tag: string, digest: string): Promise<VerifiedTarget> {
    return verifyDigest({ tag, digest, findTarget: () => this.getTarget(tag) });
  }

  /** Streams a file (a path or any async iterable of bytes) through the trusted length and hashes. */
  verifyFile(tag: string, source: FileSource): Promise<VerifiedTarget> {
    return verifyFile({ tag, source, crypto: this.context.crypto, findTarget: () => this.getTarget(tag) });
  }

  /**
   * The trusted metadata after a refresh (read-only): root, timestamp, snapshot, top-level targets,
   * and the delegated roles loaded so far. For publishers and tools that inspect the repository.
   */
  async trustedMetadata(): Promise<TrustedMetadataSet> {
    return this.trustedSet();
  }

  /**
   * Finds a delegated role by name: preorder through the delegation tree (bounded like a search),
   * loading and verifying roles on the way. `metadata` is undefined when the role is delegated but
   * not listed in snapshot yet (nothing was ever published for it). NOT_FOUND when no role
   * delegates it.
   */
  async findRole(name: string): Promise<FoundRole> {
    return findRole(this.context, await this.trustedSet(), name);
  }

  /**
   * A publisher's view of the repository: the same workflow and every rule except expiry, so that
   * a publisher can read a role that has expired in order to re-sign it (`tufa renew`). It never
   * answers lookups and never writes the cache.
   */
  async publisherView(): Promise<{ set: TrustedMetadataSet; findRole(name: string): Promise<FoundRole> }> {
    if (this.context.offline) {
      throw new TufaError('INVALID_ARGUMENT', "offline: a publisher's view needs the network");
    }
    while (this.refreshing !== undefined) await this.refreshing.catch(() => undefined);
    const run = this.cache.withLock(() => this.runRefresh(true), this.options.lock);
    this.refreshing = run
      .then(({ result }) => result)
      .finally(() => {
        this.refreshing = undefined;
      });
    await this.refreshing;
    const { set } = await run;
    return { set, findRole: (name) => findRole(this.context, set, name) };
  }

  /** Every delegated role of the trusted tree, preorder from targets, each with its delegator. */
  async listDelegations(): Promise<FoundRole[]> {
    return listDelegations(this.context, await this.trustedSet());
  }

  /** Every target visible through the delegation tree, sorted by name. */
  async listTargets(): Promise<TargetInfo[]> {
    return listTargets(this.context, await this.trustedSet());
  }

  /**
   * Downloads a target from the targets base URL into `destination` (a file path, or `{ dir }`:
   * a file in that folder named by `targetFileName`): length-bounded, every hash checked while
   * streaming, written to a temp file that is renamed only after verification. Returns the path.
   */
  downloadTarget(tag: string, destination: DownloadDestination): Promise<DownloadedTarget> {
    checkTag(tag);
    const destPath = destinationPath(tag, destination);
    return downloadTarget(this.context, {
      tag,
      destPath,
      findTarget: async () => {
        const set = await this.trustedSet();
        const target = await findTarget(this.context, set, tag);
        return { target, consistentSnapshot: set.root.signed.consistentSnapshot === true };
      },
    });
  }

  /**
   * The local file of a target (`destination` as for downloadTarget) when it already matches the
   * trusted entry, else undefined (no such file, or other bytes). Nothing is downloaded.
   */
  findCachedTarget(tag: string, destination: DownloadDestination): Promise<DownloadedTarget | undefined> {
    checkTag(tag);
    const path = destinationPath(tag, destination);
    return findCachedTarget({
      tag,
      path,
      crypto: this.context.crypto,
      findTarget: () => this.getTarget(tag),
    });
  }

  /**
   * Writes the trusted metadata (every delegated role of the tree included, loaded first) into
   * `dir` in the standard repository layout; see export.ts. `dir` must not exist or be empty.
   */
  async exportMetadata(dir: string): Promise<ExportedMetadata> {
    const set = await this.trustedSet();
    await listDelegations(this.context, set);
    return exportMetadata(set, dir);
  }

  /**
   * Puts the pinned root (`trust.rootFile`, checked against its own signatures and any pinned key
   * ids) into the cache without a network call, so that a later refresh, or offline answers once
   * filled, start from it. A cache already holding a newer root under the same pins keeps it.
   */
  async seed(): Promise<{ root: number }> {
    const trust = this.options.trust ?? {};
    if (trust.rootFile === undefined) {
      throw new TufaError('INVALID_ARGUMENT', 'seeding the cache needs a pinned root: give trust.rootFile');
    }
    // The pinned root path never downloads; a context that cannot is the proof.
    const ctx: ClientContext = { ...this.context, offline: false, fetch: noNetwork };
    return this.cache.withLock(async () => {
      const { set } = await loadTrustedRoot(ctx, {
        trust,
        now: ctx.clock(),
        allowExpired: false,
        heldRoot: undefined,
        onPinsChanged: () => {
          this.trusted = undefined;
        },
      });
      return { root: set.root.signed.version };
    }, this.options.lock);
  }

  /** When the last successful refresh started (ISO 8601), as recorded in the cache; undefined if never. */
  async lastRefresh(): Promise<string | undefined> {
    const last = await this.cache.readLastRefresh();
    return last === undefined ? undefined : new Date(last.at).toISOString();
  }

  // -------------------------------------------------------------------------------------------

  private async trustedSet(): Promise<TrustedMetadataSet> {
    if (this.trusted === undefined) await this.refresh();
    return this.trusted!;
  }

  /** One refresh under the cache lock; `allowExpired` makes a publisher's view instead. */
  private runRefresh(allowExpired: boolean): ReturnType<typeof refreshTrustedMetadata> {
    return refreshTrustedMetadata(this.context, {
      trust: this.options.trust ?? {},
      allowExpired,
      heldRoot: this.trusted?.root,
      onPinsChanged: () => {
        this.trusted = undefined;
      },
    });
  }
}

const noNetwork: FetchLike = () =>
  Promise.reject(new TufaError('INTERNAL', 'seeding the cache made a request'));

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/**
 * A repository URL: http(s), no query or fragment, and no user name or password — those would
 * be sent as Basic auth, echoed in errors and named in the cache folder; tufa sends a token
 * (`token`) instead. Errors never repeat the credentials.
 */
function checkUrl(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TufaError('INVALID_ARGUMENT', `${what} must be an http(s) URL`, { found: redactUrl(value) });
  }
  if (url.username !== '' || url.password !== '') {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${what} must not carry a user name or password: give an access token (the token option) instead`,
      { found: redactUrl(value) },
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TufaError('INVALID_ARGUMENT', `${what} must be an http(s) URL`, { found: redactUrl(value) });
  }
  if (url.search !== '' || url.hash !== '') {
    throw new TufaError('INVALID_ARGUMENT', `${what} must not have a query or fragment`, {
      found: redactUrl(value),
    });
  }
  return value;
}

function checkTag(tag: string): void {
  if (typeof tag !== 'string' || tag.length === 0 || tag.length > 4096) {
    throw new TufaError('INVALID_ARGUMENT', 'a target name must be a non-empty string', { found: tag });
  }
}

/** Every bound a positive whole number of bytes: a typo must not lift or zero a bound. */
function checkBounds<T extends Record<string, unknown>>(what: string, bounds: T): T {
  for (const [role, value] of Object.entries(bounds)) {
    if (!Number.isSafeInteger(value) || (value as number) <= 0) {
      throw new TufaError('INVALID_ARGUMENT', `${what}.${role} must be a positive whole number of bytes`, {
        found: value,
      });
    }
  }
  return bounds;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
