/**
 * One repository simulator for every test: a TUF repository built with core's own helpers that
 * tests change and re-sign step by step, read in memory (`bytes`) or served over real HTTP on
 * 127.0.0.1 (`listen`), where any served file can be replaced or answered by a misbehaving handler.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  bumpVersion,
  expiresIn,
  type Metadata,
  type MetaFile,
  metaFileFor,
  metaFileName,
  newRoot,
  newSnapshot,
  newTargets,
  newTimestamp,
  type Root,
  type Snapshot,
  type Targets,
  type Timestamp,
  targetFileFor,
  withDelegation,
  withTarget,
} from '@tufa/core';
import { DAY, GUN, NOW, text } from './constants.js';
import { bytesOf, rolesOf, sign, type TestKey, testCrypto, testKey } from './keys.js';

export type TopLevelRole = 'root' | 'targets' | 'snapshot' | 'timestamp';
export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface DelegatedState {
  signed: Targets;
  keys: TestKey[];
  /** The last signed version; `publish` and `publishSnapshot` sign `signed` when absent. */
  md?: Metadata<Targets>;
}

export interface RepoSimOptions {
  /** The instant the first documents' expiries count from. */
  now?: number;
  /** Root's consistent_snapshot (core's default: true). */
  consistent?: boolean;
  /** Root, targets, snapshot and timestamp keys are testKey(firstKey) to testKey(firstKey + 3). */
  firstKey?: number;
  /** A delegation `releases` (releases/*, testKey(firstKey + 4)) holding `releases/r1`. */
  releases?: boolean;
}

/**
 * Root v1, targets v1 with `app/v1`, snapshot v1 and timestamp v1, all valid at `now`. Each
 * `publish*` makes the next version of a role with the keys given (the role's own by default).
 */
export class RepoSim {
  now: number;
  keys: Record<TopLevelRole, TestKey[]>;
  rootMd!: Metadata<Root>;
  /** Targets as they will be signed by the next `publish`. */
  targets: Targets;
  targetsMd!: Metadata<Targets>;
  readonly delegated = new Map<string, DelegatedState>();
  snapshotMd!: Metadata<Snapshot>;
  timestampMd!: Metadata<Timestamp>;
  /** The versions last published; the next publish counts on from them. */
  snapshotVersion = 0;
  timestampVersion = 0;
  snapshotExpires: string;
  timestampExpires: string;
  /** State hashes and lengths in snapshot and timestamp meta (`publish`, `publishSnapshot`). */
  metaHashes = true;
  /** Served paths (`metadata/…`, `targets/…`) → bytes. */
  readonly files = new Map<string, Uint8Array>();
  /** Paths answered by a handler instead (misbehaviour). */
  readonly handlers = new Map<string, Handler>();
  readonly requests: string[] = [];
  /** The bytes last published per role, for tests that craft variants. */
  readonly published = new Map<string, Uint8Array>();
  private server: Server | undefined;
  baseUrl = '';

  constructor(options: RepoSimOptions = {}) {
    this.now = options.now ?? NOW;
    const first = options.firstKey ?? 11;
    this.keys = {
      root: [testKey(first)],
      targets: [testKey(first + 1)],
      snapshot: [testKey(first + 2)],
      timestamp: [testKey(first + 3)],
    };
    this.snapshotExpires = expiresIn(this.now, 30 * DAY);
    this.timestampExpires = expiresIn(this.now, DAY);
    this.publishRoot(
      newRoot({
        expires: expiresIn(this.now, 365 * DAY),
        ...(options.consistent === undefined ? {} : { consistentSnapshot: options.consistent }),
        roles: rolesOf(this.keys),
      }),
    );
    this.targets = newTargets({ expires: expiresIn(this.now, 90 * DAY) });
    this.addTarget('targets', 'app/v1', text('app v1'));
    if (options.releases === true) {
      const releasesKey = testKey(first + 4);
      this.targets = withDelegation(this.targets, {
        name: 'releases',
        keys: [releasesKey.key],
        paths: ['releases/*'],
      });
      this.delegated.set('releases', {
        signed: newTargets({ expires: expiresIn(this.now, 90 * DAY) }),
        keys: [releasesKey],
      });
      this.addTarget('releases', 'releases/r1', text('release 1'));
    }
    this.publish();
  }

  /** The client tests' repository (keys 1 to 4, `releases` with key 5), served over HTTP. */
  static async start(options: { consistent?: boolean; now?: number } = {}): Promise<RepoSim> {
    const sim = new RepoSim({
      ...options,
      consistent: options.consistent ?? true,
      firstKey: 1,
      releases: true,
    });
    await sim.listen();
    return sim;
  }

  get root(): Root {
    return this.rootMd.signed;
  }

  get metadataUrl(): string {
    return `${this.baseUrl}/metadata/`;
  }
  get targetsUrl(): string {
    return `${this.baseUrl}/targets/`;
  }

  /** Signs and serves `root` under its versioned and plain names. */
  publishRoot(root: Root, signers: readonly TestKey[] = this.keys.root): Metadata<Root> {
    this.rootMd = sign(root, ...signers);
    const bytes = bytesOf(this.rootMd);
    this.files.set(`metadata/${root.version}.root.json`, bytes);
    this.files.set('metadata/root.json', bytes);
    this.published.set('root', bytes);
    return this.rootMd;
  }

  /** Root version +1 with `change` applied, signed by `signers` (default: the root keys). */
  rotateRoot(change: (root: Root) => Root, signers?: readonly TestKey[]): Metadata<Root> {
    return this.publishRoot(change(bumpVersion(this.root, this.root.expires)), signers ?? this.keys.root);
  }

  /** Adds a target to a role's metadata and serves its content (no version bump). */
  addTarget(role: string, path: string, content: Uint8Array): void {
    const file = targetFileFor(testCrypto, content);
    if (role === 'targets') this.targets = withTarget(this.targets, path, file);
    else {
      const d = this.delegated.get(role)!;
      d.signed = withTarget(d.signed, path, file);
    }
    this.serveTarget(path, content, file.hashes);
  }

  serveTarget(path: string, content: Uint8Array, hashes: Record<string, string>): void {
    const segments = path.split('/');
    const name = segments.pop()!;
    const dir = segments.length > 0 ? `${segments.join('/')}/` : '';
    this.files.set(`targets/${dir}${name}`, content);
    for (const hash of Object.values(hashes)) this.files.set(`targets/${dir}${hash}.${name}`, content);
  }

  /** Bumps the version of targets or a delegated role (to publish a change). */
  bump(role: string): void {
    if (role === 'targets') this.targets = bumpVersion(this.targets, this.targets.expires);
    else {
      const d = this.delegated.get(role)!;
      d.signed = bumpVersion(d.signed, d.signed.expires);
    }
  }

  /** Serves a role's bytes under its versioned and plain names. */
  serveRole(role: string, version: number, bytes: Uint8Array): void {
    const encoded = encodeURIComponent(role);
    this.files.set(`metadata/${version}.${encoded}.json`, bytes);
    this.files.set(`metadata/${encoded}.json`, bytes);
    this.published.set(role, bytes);
  }

  /** Signs and serves targets and every delegated role as they are, then a new snapshot and timestamp. */
  publish(): void {
    this.signTargets(this.keys.targets);
    for (const [name, d] of this.delegated) this.signDelegated(name, d, d.keys);
    this.publishSnapshot();
  }

  /** Targets version +1 with `change` applied, re-signed; then snapshot and timestamp follow. */
  publishTargets(change: (t: Targets) => Targets = (t) => t, signers?: readonly TestKey[]): void {
    this.targets = change(bumpVersion(this.targets, this.targets.expires));
    this.signTargets(signers ?? this.keys.targets);
    this.publishSnapshot();
  }

  /** The next version of a delegated role (or its first), re-signed; then snapshot and timestamp follow. */
  publishDelegated(
    name: string,
    change: (t: Targets) => Targets,
    keys: TestKey[],
    signers?: readonly TestKey[],
  ): void {
    const old = this.delegated.get(name);
    const base = old
      ? bumpVersion(old.signed, old.signed.expires)
      : newTargets({ expires: expiresIn(this.now, 90 * DAY) });
    const state: DelegatedState = { signed: change(base), keys };
    this.delegated.set(name, state);
    this.signDelegated(name, state, signers ?? keys);
    this.publishSnapshot();
  }

  /** A new snapshot of targets and every delegated role (the next version, or as given), then a timestamp. */
  publishSnapshot(version?: number, options: { expires?: string; signers?: readonly TestKey[] } = {}): void {
    const metaOptions = this.metaHashes ? {} : { hashes: [], length: false };
    const meta: Record<string, MetaFile> = {
      [metaFileName('targets')]: metaFileFor(
        testCrypto,
        bytesOf(this.targetsMd),
        this.targetsMd.signed.version,
        metaOptions,
      ),
    };
    for (const [name, d] of this.delegated) {
      const md = d.md ?? this.signDelegated(name, d, d.keys);
      meta[metaFileName(name)] = metaFileFor(testCrypto, bytesOf(md), md.signed.version, metaOptions);
    }
    this.snapshotVersion = version ?? this.snapshotVersion + 1;
    this.snapshotMd = sign(
      newSnapshot({ expires: options.expires ?? this.snapshotExpires, version: this.snapshotVersion, meta }),
      ...(options.signers ?? this.keys.snapshot),
    );
    const bytes = bytesOf(this.snapshotMd);
    this.serveRole('snapshot', this.snapshotVersion, bytes);
    this.publishTimestamp({
      snapshotMeta: metaFileFor(testCrypto, bytes, this.snapshotVersion, metaOptions),
    });
  }

  /** A new timestamp (the next version, or as given) for `snapshotMeta`, by default the current snapshot's. */
  publishTimestamp(
    options: {
      version?: number;
      expires?: string;
      signers?: readonly TestKey[];
      snapshotMeta?: MetaFile;
    } = {},
  ): void {
    this.timestampVersion = options.version ?? this.timestampVersion + 1;
    this.timestampMd = sign(
      newTimestamp({
        expires: options.expires ?? this.timestampExpires,
        version: this.timestampVersion,
        snapshotMeta:
          options.snapshotMeta ??
          metaFileFor(testCrypto, bytesOf(this.snapshotMd), this.snapshotMd.signed.version),
      }),
      ...(options.signers ?? this.keys.timestamp),
    );
    const bytes = bytesOf(this.timestampMd);
    this.files.set('metadata/timestamp.json', bytes);
    this.published.set('timestamp', bytes);
  }

  /** The bytes of a role's last signed version. */
  bytes(role: string): Uint8Array {
    switch (role) {
      case 'root':
        return bytesOf(this.rootMd);
      case 'timestamp':
        return bytesOf(this.timestampMd);
      case 'snapshot':
        return bytesOf(this.snapshotMd);
      case 'targets':
        return bytesOf(this.targetsMd);
      default: {
        const md = this.delegated.get(role)?.md;
        if (md === undefined) throw new Error(`no role ${role}`);
        return bytesOf(md);
      }
    }
  }

  private signTargets(signers: readonly TestKey[]): void {
    this.targetsMd = sign(this.targets, ...signers);
    this.serveRole('targets', this.targets.version, bytesOf(this.targetsMd));
  }

  private signDelegated(name: string, d: DelegatedState, signers: readonly TestKey[]): Metadata<Targets> {
    d.md = sign(d.signed, ...signers);
    this.serveRole(name, d.signed.version, bytesOf(d.md));
    return d.md;
  }

  async listen(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname.slice(1);
    // The tufa server layout maps onto the same metadata.
    const tufa = `v2/${GUN}/_trust/tuf/`;
    if (path.startsWith(tufa)) path = `metadata/${path.slice(tufa.length)}`;
    this.requests.push(path);
    const handler = this.handlers.get(path);
    if (handler !== undefined) {
      handler(req, res);
      return;
    }
    const bytes = this.files.get(path);
    if (bytes === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('content-length', bytes.length);
    res.end(bytes);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * A repository of root, targets (one target, one delegation "releases" for `releases/*`), the
 * delegated role, snapshot and timestamp, all valid at NOW, signed by testKey(1) to testKey(5).
 */
export function buildRepo() {
  const sim = new RepoSim({ firstKey: 1, releases: true });
  const keys = {
    root: sim.keys.root[0]!,
    targets: sim.keys.targets[0]!,
    snapshot: sim.keys.snapshot[0]!,
    timestamp: sim.keys.timestamp[0]!,
    releases: sim.delegated.get('releases')!.keys[0]!,
  };
  return {
    keys,
    root: sim.rootMd,
    targets: sim.targetsMd,
    releases: sim.delegated.get('releases')!.md!,
    snapshot: sim.snapshotMd,
    timestamp: sim.timestampMd,
  };
}

// Misbehaving handlers.

/** Streams bytes forever (no Content-Length). */
export function endless(): Handler {
  return (_req, res) => {
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    const write = () => {
      while (res.write(chunk)) {
        if (res.destroyed) return;
      }
      if (!res.destroyed) res.once('drain', write);
    };
    res.on('close', () => res.removeAllListeners('drain'));
    write();
  };
}

/** Sends `bytes` one byte every `intervalMs`. */
export function trickle(bytes: Uint8Array, intervalMs: number): Handler {
  return (_req, res) => {
    res.setHeader('content-length', bytes.length);
    let at = 0;
    const timer = setInterval(() => {
      if (res.destroyed || at >= bytes.length) {
        clearInterval(timer);
        if (!res.destroyed) res.end();
        return;
      }
      res.write(bytes.subarray(at, at + 1));
      at += 1;
    }, intervalMs);
    res.on('close', () => clearInterval(timer));
  };
}

/** Accepts the request and never answers. */
export function hang(): Handler {
  return () => undefined;
}

export function status(code: number): Handler {
  return (_req, res) => {
    res.statusCode = code;
    res.end();
  };
}
