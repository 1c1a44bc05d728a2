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
