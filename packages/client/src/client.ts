/**
 * The TUF 1.0 client workflow (5.1–5.7) over HTTP. This file decides what to fetch, in what
 * order, with what bounds, and what to keep on disk; every trust decision is core's
 * (TrustedMetadataSet, searchTarget, TargetVerifier, checkDigest, checkRootPins).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  checkDigest,
  checkGun,
  checkRootPins,
  DEFAULT_MAX_DELEGATIONS,
  type DelegatedRole,
  ERROR_TABLE,
  type ErrorCode,
  fileUnreadable,
  formatDigest,
  hashBytes,
  isTufaError,
  type JsonValue,
  type Metadata,
  metaFileName,
  parseDigest,
  preferredDigest,
  type Root,
  searchTarget,
  serializeMetadata,
  type TargetFile,
  type Targets,
  TargetVerifier,
  TrustedMetadataSet,
  TufaError,
  toHex,
} from '@tufa/core';
import {
  cacheFileName,
  cacheFolderName,
  defaultCacheRoot,
  type LockOptions,
  MetadataCache,
} from './cache.js';
import {
  DEFAULT_TIMEOUTS,
  download,
  type FetchLike,
  nodeFetch,
  redactUrl,
  streamDownload,
  type Timeouts,
} from './fetcher.js';

/** Where the repository is: a tufa (Notary-layout) server and GUN, or any TUF 1.0 repository. */
export type RepositoryLocation =
  | { server: string; gun: string; targetsUrl?: string }
  | { metadataUrl: string; targetsUrl?: string };

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

/** python-tuf's bound on root rotations followed in one refresh. */
export const DEFAULT_MAX_ROOT_ROTATIONS = 256;

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

export interface ClientOptions {
  /** Parent folder of the per-repository cache folders (default ~/.tufa/cache). */
  cacheDir?: string;
  /** The exact cache folder for this repository (overrides `cacheDir`). */
  repositoryCacheDir?: string;
  trust?: TrustOptions;
  maxSizes?: MaxSizes;
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
  maxRootRotations?: number;
  /** At most this many roles are visited in one target search or listing (default 32). */
  maxDelegations?: number;
  /** Called for trust-on-first-use and for cache files discarded as stale. Never stdout. */
  onNotice?: (notice: Notice) => void;
  lock?: LockOptions;
}

export interface RefreshResult {
  root: number;
  timestamp: number;
  snapshot: number;
  targets: number;
  /** Set when this refresh trusted a root on first use. */
  tofu?: Extract<Notice, { kind: 'tofu' }>;
}

export interface TargetInfo {
  /** The target path (the tag). */
  name: string;
  length: number;
  hashes: Record<string, string>;
  custom: JsonValue | undefined;
  /** The role whose metadata states this target. */
  role: string;
}

export interface VerifiedTarget extends TargetInfo {
  /** The digest that was compared, `ALGORITHM:HEX`. */
  digest: string;
}

export type FileSource = string | AsyncIterable<Uint8Array>;

/** A delegated role as found through the trusted delegation tree. */
export interface FoundRole {
  name: string;
  /** The role that delegates it (`targets` or a delegated role). */
  delegator: string;
  delegation: DelegatedRole;
  /** Its trusted metadata, or undefined when nothing has been published for it yet. */
  metadata: Metadata<Targets> | undefined;
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
  private readonly maxSizes: Required<MaxSizes>;
  private readonly timeouts: Required<Timeouts>;
  private readonly fetchImpl: FetchLike;
  private trusted: TrustedMetadataSet | undefined;
  /** Set while publisherView() runs its refresh; the set it made. */
  private publisherMode = false;
  private publisherSet: TrustedMetadataSet | undefined;
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
    this.maxSizes = { ...DEFAULT_MAX_SIZES, ...definedOnly(options.maxSizes ?? {}) };
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...definedOnly(options.timeouts ?? {}) };
    const auth = { token: options.token, ca: options.ca, cert: options.cert, key: options.key };
    const wantsAuth = Object.values(auth).some((v) => v !== undefined);
    if (wantsAuth && options.fetch !== undefined) {
      throw new TufaError('INVALID_ARGUMENT', 'give either fetch or token/ca/cert/key, not both');
    }
    // node:http/https by default: it takes TLS options, and a short-lived CLI does not pay for
    // loading Node's fetch (undici) on every start.
    this.fetchImpl = options.fetch ?? nodeFetch({ ...auth, tokenOrigin: new URL(this.metadataUrl).origin });
    const trust = options.trust ?? {};
    if (trust.rootKeyIds !== undefined) {
      const threshold = trust.threshold ?? 1;
      if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > trust.rootKeyIds.length) {
        throw new TufaError(
          'INVALID_ARGUMENT',
          'trust.threshold must be between 1 and the number of key ids',
          {
            found: threshold,
          },
        );
      }
    }
  }

  /**
   * Runs the client workflow: root rotations, timestamp, snapshot, top-level targets, in the
   * spec's order, every piece through core's rules. A failed refresh leaves the last trusted
   * state (in memory and on disk) in place. Concurrent calls share one refresh.
   */
  refresh(): Promise<RefreshResult> {
    if (this.refreshing === undefined) {
      this.refreshing = this.cache
        .withLock(() => this.refreshLocked(), this.options.lock)
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
    return this.lookup(set, tag);
  }

  /** Compares `ALGORITHM:HEX` with the trusted entry: HASH_MISMATCH saying what differed. */
  async verifyDigest(tag: string, digest: string): Promise<VerifiedTarget> {
    const parsed = parseDigest(digest);
    const target = await this.getTarget(tag);
    checkDigest(asTargetFile(target), parsed, { path: tag, role: target.role });
    return { ...target, digest: formatDigest(parsed) };
  }

  /** Streams a file (a path or any async iterable of bytes) through the trusted length and hashes. */
  async verifyFile(tag: string, source: FileSource): Promise<VerifiedTarget> {
    // A file that cannot be opened is refused before any download.
    const handle =
      typeof source === 'string'
        ? await open(source, 'r').catch((err: unknown) => {
            throw fileUnreadable(source, `${tag}: the file to verify`, err);
          })
        : undefined;
    try {
      const target = await this.getTarget(tag);
      const verifier = new TargetVerifier(asTargetFile(target), { path: tag, role: target.role });
      const input = handle?.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false }) ?? source;
      try {
        for await (const chunk of input as AsyncIterable<Uint8Array>) verifier.update(toBytes(chunk));
      } catch (err) {
        if (err instanceof TufaError) throw err;
        throw fileUnreadable(
          typeof source === 'string' ? source : '(stream)',
          `${tag}: the file to verify`,
          err,
        );
      }
      verifier.finish();
      return { ...target, digest: formatDigest(preferredDigest(asTargetFile(target), target.role)) };
    } finally {
      await handle?.close();
    }
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
    return this.findRoleIn(await this.trustedSet(), name);
  }

  /**
   * A publisher's view of the repository: the same workflow and every rule except expiry, so that
   * a publisher can read a role that has expired in order to re-sign it (`tufa renew`). It never
   * answers lookups and never writes the cache.
   */
  async publisherView(): Promise<{ set: TrustedMetadataSet; findRole(name: string): Promise<FoundRole> }> {
    while (this.refreshing !== undefined) await this.refreshing.catch(() => undefined);
    const run = this.cache.withLock(async () => {
      this.publisherMode = true;
      try {
        return await this.refreshLocked();
      } finally {
        this.publisherMode = false;
      }
    }, this.options.lock);
    this.refreshing = run.finally(() => {
      this.refreshing = undefined;
    });
    await this.refreshing;
    const set = this.publisherSet!;
    this.publisherSet = undefined;
    return { set, findRole: (name) => this.findRoleIn(set, name) };
  }

  private async findRoleIn(set: TrustedMetadataSet, name: string): Promise<FoundRole> {
    for await (const found of this.delegationTree(set, `looking for ${name}`)) {
      if (found.delegation.name === name) return found;
    }
    throw new TufaError('NOT_FOUND', `${name}: no trusted role delegates it`, { role: name });
  }

  /**
   * Every delegated role in the trusted tree, each once, preorder from targets (bounded like a
   * search), loaded and verified through its delegator; `metadata` is undefined for a role that is
   * delegated but not listed in snapshot (nothing published for it yet).
   */
  private async *delegationTree(set: TrustedMetadataSet, purpose: string): AsyncGenerator<FoundRole> {
    const maxRoles = this.options.maxDelegations ?? DEFAULT_MAX_DELEGATIONS;
    const visited = new Set<string>(['targets']);
    const stack: { name: string; signed: Targets }[] = [{ name: 'targets', signed: set.targets!.signed }];
    while (stack.length > 0) {
      const parent = stack.pop()!;
      const next: { name: string; signed: Targets }[] = [];
      for (const child of parent.signed.delegations?.roles ?? []) {
        if (visited.has(child.name)) continue;
        if (visited.size >= maxRoles) {
          throw new TufaError('DELEGATION_LIMIT', `more than ${maxRoles} roles visited ${purpose}`, {
            role: child.name,
            expected: maxRoles,
          });
        }
        visited.add(child.name);
        const listed = Object.hasOwn(set.snapshot!.signed.meta, metaFileName(child.name));
        const metadata = listed ? await this.loadDelegated(set, child, parent.name) : undefined;
        yield { name: child.name, delegator: parent.name, delegation: child, metadata };
        if (metadata !== undefined) next.push({ name: child.name, signed: metadata.signed });
      }
      for (let i = next.length - 1; i >= 0; i--) stack.push(next[i]!);
    }
  }

  /** Every delegated role of the trusted tree, preorder from targets, each with its delegator. */
  async listDelegations(): Promise<FoundRole[]> {
    const out: FoundRole[] = [];
    for await (const found of this.delegationTree(await this.trustedSet(), 'listing delegations'))
      out.push(found);
    return out;
  }

  /** Every target visible through the delegation tree, sorted by name. */
  async listTargets(): Promise<TargetInfo[]> {
    const set = await this.trustedSet();
    const names = new Set<string>(Object.keys(set.targets!.signed.targets));
    for await (const found of this.delegationTree(set, 'listing targets')) {
      for (const target of Object.keys(found.metadata?.signed.targets ?? {})) names.add(target);
    }
    const out: TargetInfo[] = [];
    for (const name of [...names].sort()) {
      try {
        out.push(await this.lookup(set, name));
      } catch (err) {
        if (!isTufaError(err, 'NOT_FOUND')) throw err; // stated by a role not trusted for that path
      }
    }
    return out;
  }

  /**
   * Downloads a target from the targets base URL into `destPath`: length-bounded, every hash
   * checked while streaming, written to a temp file that is renamed only after verification.
   */
  async downloadTarget(tag: string, destPath: string): Promise<VerifiedTarget> {
    if (this.targetsUrl === undefined) {
      throw new TufaError('INVALID_ARGUMENT', 'downloadTarget needs a targetsUrl');
    }
    const set = await this.trustedSet();
    const target = await this.lookup(set, tag);
    const file = asTargetFile(target);
    const verifier = new TargetVerifier(file, { path: tag, role: target.role });
    const url = this.targetUrl(tag, file, set.root.signed.consistentSnapshot === true);
    await mkdir(dirname(destPath), { recursive: true });
    const temp = join(dirname(destPath), `.${basename(destPath)}.tufa-${randomBytes(6).toString('hex')}`);
    const handle = await open(temp, 'wx', 0o644);
    let done = false;
    try {
      const lengthError = (found: number | string) =>
        new TufaError('LENGTH_MISMATCH', `${tag}: more than the trusted ${target.length} bytes`, {
          role: target.role,
          expected: target.length,
          found,
          details: { url },
        });
      for await (const chunk of streamDownload(url, {
        role: tag,
        maxBytes: target.length,
        timeouts: this.timeouts,
        total: false,
        fetch: this.fetchImpl,
        tooLarge: lengthError,
      })) {
        verifier.update(chunk);
        for (let at = 0; at < chunk.length; ) at += (await handle.write(chunk, at)).bytesWritten;
      }
      verifier.finish();
      await handle.sync();
      await handle.close();
      done = true;
      await rename(temp, destPath);
    } catch (err) {
      if (!done) await handle.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw err;
    }
    return { ...target, digest: formatDigest(preferredDigest(file, target.role)) };
  }

  // -------------------------------------------------------------------------------------------

  private async trustedSet(): Promise<TrustedMetadataSet> {
    if (this.trusted === undefined) await this.refresh();
    return this.trusted!;
  }

  private async refreshLocked(): Promise<RefreshResult> {
    const now = this.clock();
    const { set, tofu } = await this.loadTrustedRoot(now);

    // 5.3: follow root rotations N+1, N+2, … until none is found (bounded).
    const maxRotations = this.options.maxRootRotations ?? DEFAULT_MAX_ROOT_ROTATIONS;
    const last = set.root.signed.version + maxRotations;
    for (let version = set.root.signed.version + 1; version <= last; version++) {
      let bytes: Uint8Array;
      try {
        bytes = await this.fetchMetadata('root', `${version}.root.json`, this.maxSizes.root);
      } catch (err) {
        if (isTufaError(err, 'NOT_FOUND')) break;
        throw err;
      }
      const previous = set.root.signed;
      set.updateRoot(bytes);
      // 5.3.11: rotated timestamp or snapshot keys invalidate the cached copies (fast-forward recovery).
      if (keysRotated(previous, set.root.signed)) {
        await this.unpersist('timestamp');
        await this.unpersist('snapshot');
      }
      await this.persist('root', bytes);
    }
    set.checkRootNotExpired(); // 5.3.10

    // 5.4: timestamp, with the cached one as the rollback baseline.
    await this.loadCached('timestamp', this.maxSizes.timestamp, (b) =>
      set.updateTimestamp(b, { cached: true }),
    );
    const held = set.timestamp;
    const timestampBytes = await this.fetchMetadata('timestamp', 'timestamp.json', this.maxSizes.timestamp);
    const timestamp = set.updateTimestamp(timestampBytes);
    if (timestamp !== held) await this.persist('timestamp', timestampBytes);

    // 5.5: snapshot; the cached one is enough when it is the version the timestamp states.
    const consistent = set.root.signed.consistentSnapshot === true;
    await this.loadCached('snapshot', this.maxSizes.snapshot, (b) => set.updateSnapshot(b, { cached: true }));
    if (!set.snapshotIsFinal()) {
      const meta = timestamp.signed.snapshotMeta;
      const bytes = await this.fetchMetadata(
        'snapshot',
        consistent ? `${meta.version}.snapshot.json` : 'snapshot.json',
        meta.length ?? this.maxSizes.snapshot,
      );
      set.updateSnapshot(bytes);
      await this.persist('snapshot', bytes);
    }

    // 5.6: top-level targets.
    const cachedTargets = await this.loadCached('targets', this.maxSizes.targets, (b) =>
      set.updateTargets(b, { cached: true }),
    );
    if (!cachedTargets) {
      const meta = set.snapshot!.signed.meta['targets.json']!;
      const bytes = await this.fetchMetadata(
        'targets',
        consistent ? `${meta.version}.targets.json` : 'targets.json',
        meta.length ?? this.maxSizes.targets,
      );
      set.updateTargets(bytes);
      await this.persist('targets', bytes);
    }

    if (this.publisherMode) this.publisherSet = set;
    else this.trusted = set;
    const result: RefreshResult = {
      root: set.root.signed.version,
      timestamp: set.timestamp!.signed.version,
      snapshot: set.snapshot!.signed.version,
      targets: set.targets!.signed.version,
    };
    if (tofu !== undefined) result.tofu = tofu;
    return result;
  }

  /** Options for each trusted set this client makes: a publisher's view does not enforce expiry. */
  private setOptions(now: number): { now: number; allowExpired: boolean } {
    return { now, allowExpired: this.publisherMode };
  }

  /** Writes verified metadata to the cache; a publisher's view leaves the cache alone. */
  private async persist(role: string, bytes: Uint8Array): Promise<void> {
    if (!this.publisherMode) await this.cache.write(role, bytes);
  }

  private async unpersist(role: string): Promise<void> {
    if (!this.publisherMode) await this.cache.remove(role);
  }

  private clock(): number {
    const now = (this.options.clock ?? Date.now)();
    if (!Number.isFinite(now)) throw new TufaError('INVALID_ARGUMENT', 'the clock must return a finite time');
    return now;
  }

  /** The trusted root to start from: the cache, else the last one held, else the trust anchor. */
  private async loadTrustedRoot(
    now: number,
  ): Promise<{ set: TrustedMetadataSet; tofu?: Extract<Notice, { kind: 'tofu' }> }> {
    const trust = this.options.trust ?? {};
    const pinned = trust.rootFile === undefined ? undefined : await this.readPinnedRoot(trust.rootFile, now);
    const anchor = trustAnchor(trust, pinned?.bytes);
    // A cache first trusted under other pins (or on first use) is not evidence for these pins:
    // start again from what is pinned now, so that pinning after a bad first use still protects.
    if (anchor !== undefined && (await this.cache.readAnchor()) !== anchor) {
      await this.cache.clear();
      this.trusted = undefined;
    }
    let fromCache: TrustedMetadataSet | undefined;
    let cached: Uint8Array | undefined;
    try {
      cached = await this.cache.read('root', this.maxSizes.root);
    } catch (err) {
      await this.cache.remove('root');
      throw cacheCorrupted(err, 'root', join(this.cacheDir, cacheFileName('root')));
    }
    if (cached !== undefined) {
      try {
        fromCache = TrustedMetadataSet.fromTrustedRoot(cached, this.setOptions(now));
      } catch (err) {
        await this.cache.remove('root');
        throw cacheCorrupted(err, 'root', join(this.cacheDir, cacheFileName('root')));
      }
    } else if (this.trusted !== undefined) {
      // The cache was discarded since the last refresh: start again from the root held in memory.
      const bytes = serializeMetadata(this.trusted.root);
      fromCache = TrustedMetadataSet.fromTrustedRoot(bytes, this.setOptions(now));
      await this.cache.write('root', bytes);
    }
    if (pinned !== undefined) {
      if (fromCache === undefined || fromCache.root.signed.version < pinned.set.root.signed.version) {
        await this.cache.write('root', pinned.bytes);
        await this.cache.writeAnchor(anchor!);
        return { set: pinned.set };
      }
    }
    if (fromCache !== undefined) return { set: fromCache };

    if (trust.rootKeyIds !== undefined && trust.rootKeyIds.length > 0) {
      const pins = { keyids: trust.rootKeyIds, threshold: trust.threshold ?? 1 };
      let first: Uint8Array | undefined;
      let firstError: unknown;
      try {
        first = await this.fetchMetadata('root', '1.root.json', this.maxSizes.root);
        const set = TrustedMetadataSet.fromTrustedRoot(first, this.setOptions(now));
        checkRootPins(set.root, pins);
        await this.cache.write('root', first);
        await this.cache.writeAnchor(anchor!);
        return { set };
      } catch (err) {
        if (!isTufaError(err)) throw err;
        if (err.code === 'NETWORK' || err.code === 'TIMEOUT') throw err;
        firstError = err;
      }
      const current = await this.fetchMetadata('root', 'root.json', this.maxSizes.root);
      const set = TrustedMetadataSet.fromTrustedRoot(current, this.setOptions(now));
      try {
        checkRootPins(set.root, pins);
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
      await this.cache.write('root', current);
      await this.cache.writeAnchor(anchor!);
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
      bytes = await this.fetchMetadata('root', '1.root.json', this.maxSizes.root);
    } catch (err) {
      if (!isTufaError(err, 'NOT_FOUND')) throw err;
      bytes = await this.fetchMetadata('root', 'root.json', this.maxSizes.root);
    }
    const set = TrustedMetadataSet.fromTrustedRoot(bytes, this.setOptions(now));
    await this.cache.write('root', bytes);
    const roleKeys = set.root.signed.roles.root;
    const tofu: Extract<Notice, { kind: 'tofu' }> = {
      kind: 'tofu',
      message:
        `trust on first use: trusting root v${set.root.signed.version} of ${this.metadataUrl}, ` +
        `root keys ${roleKeys.keyids.join(', ')} (threshold ${roleKeys.threshold})`,
      rootVersion: set.root.signed.version,
      keyids: [...roleKeys.keyids],
      threshold: roleKeys.threshold,
    };
    this.options.onNotice?.(tofu);
    return { set, tofu };
  }

  private async readPinnedRoot(
    rootFile: string | Uint8Array,
    now: number,
  ): Promise<{ set: TrustedMetadataSet; bytes: Uint8Array }> {
    let bytes: Uint8Array;
    if (typeof rootFile === 'string') {
      const size = await stat(rootFile).then(
        (s) => s.size,
        (err: unknown) => {
          throw fileUnreadable(rootFile, 'the pinned root file', err);
        },
      );
      if (size > this.maxSizes.root) {
        throw new TufaError(
          'TOO_LARGE',
          `pinned root file ${rootFile} is larger than ${this.maxSizes.root}`,
          {
            role: 'root',
            expected: `<= ${this.maxSizes.root}`,
            found: size,
          },
        );
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
    const set = TrustedMetadataSet.fromTrustedRoot(bytes, this.setOptions(now));
    const trust = this.options.trust ?? {};
    if (trust.rootKeyIds !== undefined && trust.rootKeyIds.length > 0) {
      checkRootPins(set.root, { keyids: trust.rootKeyIds, threshold: trust.threshold ?? 1 });
    }
    return { set, bytes };
  }

  /**
   * Loads a cached role through core. Bytes that do not parse or whose signatures are bad are a
   * corrupted cache: the file is discarded and the refresh refused with a clear error. Bytes that
   * are merely stale (older version, expired, keys since rotated) are discarded quietly.
   */
  private async loadCached(
    role: string,
    maxBytes: number,
    load: (bytes: Uint8Array) => unknown,
  ): Promise<boolean> {
    const file = join(this.cacheDir, cacheFileName(role));
    let bytes: Uint8Array | undefined;
    try {
      bytes = await this.cache.read(role, maxBytes);
    } catch (err) {
      await this.cache.remove(role);
      throw cacheCorrupted(err, role, file);
    }
    if (bytes === undefined) return false;
    try {
      load(bytes);
      return true;
    } catch (err) {
      if (!isTufaError(err)) throw err;
      if (ERROR_TABLE[err.code].cacheCorruption) {
        await this.cache.remove(role);
        throw cacheCorrupted(err, role, file);
      }
      if (role === 'timestamp' || role === 'snapshot') {
        // Only a baseline that no longer verifies (keys rotated) is dropped: 5.3.11's deletion.
        // Anything else (an expired timestamp) is this refresh's refusal.
        if (err.code !== 'THRESHOLD_NOT_MET') throw err;
        await this.cache.remove(role);
      }
      this.options.onNotice?.({
        kind: 'cache-discarded',
        message: `cached ${role} not used: ${err.message}`,
        role,
        file,
        code: err.code,
      });
      return false;
    }
  }

  private async loadDelegated(
    set: TrustedMetadataSet,
    role: DelegatedRole,
    delegator: string,
  ): Promise<Metadata<Targets>> {
    const held = set.delegated(role.name, delegator);
    if (held !== undefined) return held;
    let result: Metadata<Targets> | undefined;
    const fromCache = await this.loadCached(role.name, this.maxSizes.targets, (b) => {
      result = set.updateDelegatedTargets(b, role.name, delegator, { cached: true });
    });
    if (fromCache && result !== undefined) return result;
    const fileName = metaFileName(role.name);
    const snapshot = set.snapshot!.signed;
    const meta = Object.hasOwn(snapshot.meta, fileName) ? snapshot.meta[fileName] : undefined;
    if (meta === undefined) {
      throw new TufaError('NOT_FOUND', `${role.name}: not listed in snapshot`, {
        role: role.name,
        expected: fileName,
      });
    }
    const encoded = encodeURIComponent(role.name);
    const consistent = set.root.signed.consistentSnapshot === true;
    const bytes = await this.fetchMetadata(
      role.name,
      consistent ? `${meta.version}.${encoded}.json` : `${encoded}.json`,
      meta.length ?? this.maxSizes.targets,
    );
    const loaded = set.updateDelegatedTargets(bytes, role.name, delegator);
    if (!set.allowExpired) await this.cache.write(role.name, bytes); // a publisher's view leaves the cache alone
    return loaded;
  }

  /** 5.7: preorder search through the delegation tree, loading roles as the search needs them. */
  private async lookup(set: TrustedMetadataSet, tag: string): Promise<TargetInfo> {
    const maxRoles = this.options.maxDelegations ?? DEFAULT_MAX_DELEGATIONS;
    for (let step = 0; step <= maxRoles + 1; step++) {
      const result = searchTarget({
        path: tag,
        targets: set.targets!.signed,
        getRole: (name, delegator) => set.delegated(name, delegator)?.signed,
        maxRoles,
      });
      if (result.kind === 'found') {
        const t = result.target;
        return {
          name: tag,
          length: t.length,
          hashes: { ...t.hashes },
          custom: t.custom,
          role: result.role,
        };
      }
      if (result.kind === 'not-found') {
        throw new TufaError('NOT_FOUND', `${tag}: no trusted target of that name`, {
          found: tag,
          details: { rolesVisited: result.visited },
        });
      }
      await this.loadDelegated(set, result.role, result.delegator);
    }
    throw new TufaError('DELEGATION_LIMIT', `${tag}: delegation search did not settle`, {
      expected: maxRoles,
    });
  }

  private fetchMetadata(role: string, fileName: string, maxBytes: number): Promise<Uint8Array> {
    return download(this.metadataUrl + fileName, {
      role,
      maxBytes,
      timeouts: this.timeouts,
      total: true,
      fetch: this.fetchImpl,
    });
  }

  /** With consistent snapshots, `DIR/HASH.NAME` (the first hash the metadata lists). */
  private targetUrl(tag: string, file: TargetFile, consistent: boolean): string {
    const segments = tag.split('/');
    if (consistent) {
      const hash = Object.values(file.hashes)[0]!;
      segments[segments.length - 1] = `${hash}.${segments[segments.length - 1]}`;
    }
    return this.targetsUrl + segments.map(encodeURIComponent).join('/');
  }
}

/**
 * What the first trusted root rests on: pinned key ids and threshold, or the pinned root file's
 * hash; undefined for trust on first use (which any pin outranks).
 */
function trustAnchor(trust: TrustOptions, rootFileBytes: Uint8Array | undefined): string | undefined {
  if (rootFileBytes !== undefined) return `root-file sha256:${toHex(hashBytes('sha256', rootFileBytes))}`;
  if (trust.rootKeyIds !== undefined && trust.rootKeyIds.length > 0) {
    return `root-keys ${[...trust.rootKeyIds].sort().join(',')} threshold ${trust.threshold ?? 1}`;
  }
  return undefined;
}

function cacheCorrupted(err: unknown, role: string, file: string): TufaError {
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

function keysRotated(previous: Root, next: Root): boolean {
  const same = (a: readonly string[], b: readonly string[]) =>
    a.length === b.length && [...a].sort().join() === [...b].sort().join();
  return (
    !same(previous.roles.timestamp.keyids, next.roles.timestamp.keyids) ||
    !same(previous.roles.snapshot.keyids, next.roles.snapshot.keyids)
  );
}

function asTargetFile(t: TargetInfo): TargetFile {
  return { length: t.length, hashes: t.hashes, custom: t.custom, extra: {} };
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === 'string') return new TextEncoder().encode(chunk);
  throw new TufaError('INVALID_ARGUMENT', 'a file stream must yield bytes');
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

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

function definedOnly<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
