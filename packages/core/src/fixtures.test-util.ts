import { TufaError } from './errors.js';
/** Test support: deterministic keys and a small in-memory repository built with core's own helpers. */
import { type Ed25519KeyPair, ed25519Signer, generateEd25519Key, type Signer } from './keys.js';
import {
  type Metadata,
  metaFileName,
  type Root,
  type Signed,
  serializeMetadata,
  type Targets,
} from './metadata.js';
import {
  bumpVersion,
  expiresIn,
  metaFileFor,
  newRoot,
  newSnapshot,
  newTargets,
  newTimestamp,
  signMetadata,
  targetFileFor,
  withDelegation,
  withTarget,
} from './repository.js';

export const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
export const DAY = 24 * 3600 * 1000;

/** A key pair derived from a small number, so tests are repeatable. */
export function testKey(n: number): Ed25519KeyPair & { signer: Signer } {
  const seed = new Uint8Array(32);
  seed[0] = n & 0xff;
  seed[1] = (n >> 8) & 0xff;
  seed[31] = 0x5a;
  const pair = generateEd25519Key(seed);
  return { ...pair, signer: ed25519Signer(pair.privateKey) };
}

export const bytesOf = (m: Metadata): Uint8Array => serializeMetadata(m);

export function sign<T extends Signed>(signed: T, ...keys: { signer: Signer }[]): Metadata<T> {
  return signMetadata(
    signed,
    keys.map((k) => k.signer),
  );
}

/**
 * A repository of root, targets (one target, one delegation "releases" for `releases/*`),
 * the delegated role, snapshot and timestamp, all valid at NOW.
 */
export function buildRepo() {
  const keys = {
    root: testKey(1),
    targets: testKey(2),
    snapshot: testKey(3),
    timestamp: testKey(4),
    releases: testKey(5),
  };
  const root: Root = newRoot({
    expires: expiresIn(NOW, 365 * DAY),
    roles: {
      root: { keys: [keys.root.key] },
      targets: { keys: [keys.targets.key] },
      snapshot: { keys: [keys.snapshot.key] },
      timestamp: { keys: [keys.timestamp.key] },
    },
  });
  let targets: Targets = newTargets({ expires: expiresIn(NOW, 90 * DAY) });
  targets = withTarget(targets, 'app/v1', targetFileFor(new TextEncoder().encode('app v1')));
  targets = withDelegation(targets, { name: 'releases', keys: [keys.releases.key], paths: ['releases/*'] });
  let releases: Targets = newTargets({ expires: expiresIn(NOW, 90 * DAY) });
  releases = withTarget(releases, 'releases/r1', targetFileFor(new TextEncoder().encode('release 1')));

  const rootMd = sign(root, keys.root);
  const targetsMd = sign(targets, keys.targets);
  const releasesMd = sign(releases, keys.releases);
  const snapshot = newSnapshot({
    expires: expiresIn(NOW, 30 * DAY),
    meta: {
      [metaFileName('targets')]: metaFileFor(bytesOf(targetsMd), 1),
      [metaFileName('releases')]: metaFileFor(bytesOf(releasesMd), 1),
    },
  });
  const snapshotMd = sign(snapshot, keys.snapshot);
  const timestamp = newTimestamp({
    expires: expiresIn(NOW, DAY),
    snapshotMeta: metaFileFor(bytesOf(snapshotMd), 1),
  });
  const timestampMd = sign(timestamp, keys.timestamp);
  return {
    keys,
    root: rootMd,
    targets: targetsMd,
    releases: releasesMd,
    snapshot: snapshotMd,
    timestamp: timestampMd,
  };
}

type TestKey = ReturnType<typeof testKey>;

/**
 * A small repository that tests can change and re-sign step by step: each `publish*` makes the
 * next version of a role with the keys given (the role's own by default).
 */
export class RepoSim {
  now = NOW;
  readonly keys: Record<'root' | 'targets' | 'snapshot' | 'timestamp', TestKey[]>;
  rootMd: Metadata<Root>;
  targets: Targets;
  targetsMd: Metadata<Targets>;
  readonly delegated = new Map<string, { signed: Targets; md: Metadata<Targets>; keys: TestKey[] }>();
  snapshotMd!: Metadata<import('./metadata.js').Snapshot>;
  timestampMd!: Metadata<import('./metadata.js').Timestamp>;

  constructor() {
    this.keys = {
      root: [testKey(11)],
      targets: [testKey(12)],
      snapshot: [testKey(13)],
      timestamp: [testKey(14)],
    };
    const root = newRoot({
      expires: expiresIn(NOW, 365 * DAY),
      roles: {
        root: { keys: this.keys.root.map((k) => k.key) },
        targets: { keys: this.keys.targets.map((k) => k.key) },
        snapshot: { keys: this.keys.snapshot.map((k) => k.key) },
        timestamp: { keys: this.keys.timestamp.map((k) => k.key) },
      },
    });
    this.rootMd = sign(root, ...this.keys.root);
    this.targets = withTarget(
      newTargets({ expires: expiresIn(NOW, 90 * DAY) }),
      'app/v1',
      targetFileFor(new TextEncoder().encode('app v1')),
    );
    this.targetsMd = sign(this.targets, ...this.keys.targets);
    this.publishSnapshot(1);
  }

  /** Root version +1 with `change` applied, signed by `signers` (default: old and new root keys). */
  rotateRoot(change: (root: Root) => Root, signers?: TestKey[]): Metadata<Root> {
    const next = change(bumpVersion(this.rootMd.signed, this.rootMd.signed.expires));
    this.rootMd = sign(next, ...(signers ?? this.keys.root));
    return this.rootMd;
  }

  /** Targets version +1 (or as given), re-signed, then snapshot and timestamp follow. */
  publishTargets(change: (t: Targets) => Targets = (t) => t, signers?: TestKey[]): void {
    this.targets = change(bumpVersion(this.targets, this.targets.expires));
    this.targetsMd = sign(this.targets, ...(signers ?? this.keys.targets));
    this.publishSnapshot();
  }

  publishDelegated(
    name: string,
    change: (t: Targets) => Targets,
    keys: TestKey[],
    signers?: TestKey[],
  ): void {
    const old = this.delegated.get(name);
    const base = old
      ? bumpVersion(old.signed, old.signed.expires)
      : newTargets({ expires: expiresIn(NOW, 90 * DAY) });
    const signed = change(base);
    this.delegated.set(name, { signed, md: sign(signed, ...(signers ?? keys)), keys });
    this.publishSnapshot();
  }

  publishSnapshot(version?: number, options: { expires?: string; signers?: TestKey[] } = {}): void {
    const meta: Record<string, import('./metadata.js').MetaFile> = {
      [metaFileName('targets')]: metaFileFor(bytesOf(this.targetsMd), this.targetsMd.signed.version),
    };
    for (const [name, d] of this.delegated)
      meta[metaFileName(name)] = metaFileFor(bytesOf(d.md), d.md.signed.version);
    const v = version ?? (this.snapshotMd?.signed.version ?? 0) + 1;
    this.snapshotMd = sign(
      newSnapshot({ expires: options.expires ?? expiresIn(NOW, 30 * DAY), version: v, meta }),
      ...(options.signers ?? this.keys.snapshot),
    );
    this.publishTimestamp();
  }

  publishTimestamp(options: { version?: number; expires?: string; signers?: TestKey[] } = {}): void {
    const v = options.version ?? (this.timestampMd?.signed.version ?? 0) + 1;
    this.timestampMd = sign(
      newTimestamp({
        expires: options.expires ?? expiresIn(NOW, DAY),
        version: v,
        snapshotMeta: metaFileFor(bytesOf(this.snapshotMd), this.snapshotMd.signed.version),
      }),
      ...(options.signers ?? this.keys.timestamp),
    );
  }

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
        const d = this.delegated.get(role);
        if (d === undefined) throw new Error(`no role ${role}`);
        return bytesOf(d.md);
      }
    }
  }
}

/** The TufaError code a call throws, or 'ok'. Anything else thrown is rethrown. */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof TufaError) return err.code;
    throw err;
  }
}
