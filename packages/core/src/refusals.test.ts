/**
 * Refusals of the client's rules that no other test reached, each sent as a hostile repository
 * would send it, straight into core: the exact code, and the trusted set (or the verifier)
 * unchanged afterwards.
 */

import { bytesOf, DAY, NOW, RepoSim, refusedUpdate, rolesOf, sign, testCrypto, testKey } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { type ErrorCode, TufaError } from './errors.js';
import { utf8Encode } from './json.js';
import { metaFileName, type TargetFile } from './metadata.js';
import {
  expiresIn,
  metaFileFor,
  newRoot,
  newSnapshot,
  newTargets,
  newTimestamp,
  targetFileFor,
  withDelegation,
  withTarget,
} from './repository.js';
import { TargetVerifier } from './targetfile.js';
import { TrustedMetadataSet } from './trusted.js';

const HOUR = 3600 * 1000;

type Role = 'root' | 'timestamp' | 'snapshot' | 'targets' | 'releases';

/** A whole repository (root, timestamp, snapshot, targets, releases) in which `role` expires at `at` and the rest in 30 days. */
function repositoryWhere(role: Role, at: number) {
  const expires = (r: Role) => (r === role ? expiresIn(at, 0) : expiresIn(NOW, 30 * DAY));
  const k = { root: testKey(61), timestamp: testKey(62), snapshot: testKey(63), targets: testKey(64) };
  const releasesKey = testKey(65);
  const root = sign(
    newRoot({
      expires: expires('root'),
      roles: rolesOf(k),
    }),
    k.root,
  );
  const targets = sign(
    withDelegation(newTargets({ expires: expires('targets') }), {
      name: 'releases',
      keys: [releasesKey.key],
      paths: ['releases/*'],
    }),
    k.targets,
  );
  const releases = sign(
    withTarget(
      newTargets({ expires: expires('releases') }),
      'releases/r1',
      targetFileFor(testCrypto, utf8Encode('r1')),
    ),
    releasesKey,
  );
  const snapshot = sign(
    newSnapshot({
      expires: expires('snapshot'),
      meta: {
        [metaFileName('targets')]: metaFileFor(testCrypto, bytesOf(targets), 1),
        [metaFileName('releases')]: metaFileFor(testCrypto, bytesOf(releases), 1),
      },
    }),
    k.snapshot,
  );
  const timestamp = sign(
    newTimestamp({
      expires: expires('timestamp'),
      snapshotMeta: metaFileFor(testCrypto, bytesOf(snapshot), 1),
    }),
    k.timestamp,
  );
  return {
    root: bytesOf(root),
    timestamp: bytesOf(timestamp),
    snapshot: bytesOf(snapshot),
    targets: bytesOf(targets),
    releases: bytesOf(releases),
  };
}

/** The client workflow in the spec's order, stopping at the first refusal. */
const steps = (set: TrustedMetadataSet, repo: ReturnType<typeof repositoryWhere>) => [
  () => set.checkRootNotExpired(),
  () => set.updateTimestamp(repo.timestamp),
  () => set.updateSnapshot(repo.snapshot),
  () => set.updateTargets(repo.targets),
  () => set.updateDelegatedTargets(repo.releases, 'releases', 'targets'),
];
const STEP_OF: Record<Role, number> = { root: 0, timestamp: 1, snapshot: 2, targets: 3, releases: 4 };

describe('expires == now is expired, through the trusted-metadata set', () => {
  const at = NOW + HOUR; // a whole second, as `expires` is

  it.each(['root', 'timestamp', 'snapshot', 'targets', 'releases'] as const)(
    '%s: valid one second before its expiry, EXPIRED at it, and the set keeps what it had',
    (role) => {
      const repo = repositoryWhere(role, at);
      const early = TrustedMetadataSet.fromTrustedRoot(repo.root, { crypto: testCrypto, now: at - 1000 });
      for (const step of steps(early, repo)) step();
      expect(early.delegated('releases', 'targets')?.signed.version).toBe(1);

      const set = TrustedMetadataSet.fromTrustedRoot(repo.root, { crypto: testCrypto, now: at });
      const all = steps(set, repo);
      for (const step of all.slice(0, STEP_OF[role])) step();
      const err = refusedUpdate(set, all[STEP_OF[role]]!);
      expect(err.code).toBe('EXPIRED');
      expect(err.role).toBe(role);
      expect(err.found).toBe(new Date(at).toISOString().replace('.000Z', 'Z'));
      if (role !== 'root') {
        // Nothing of the refused role or after it is held.
        expect(set.delegated('releases')).toBeUndefined();
        if (role !== 'releases') expect(set.targets).toBeUndefined();
      }
    },
  );

  it('root: the first update after the trusted root refuses an expired root at the boundary', () => {
    const repo = repositoryWhere('root', at);
    const set = TrustedMetadataSet.fromTrustedRoot(repo.root, { crypto: testCrypto, now: at });
    const err = refusedUpdate(set, () => set.updateTimestamp(repo.timestamp));
    expect([err.code, err.role]).toEqual(['EXPIRED', 'root']);
    expect(set.timestamp).toBeUndefined();
  });
});

describe('snapshot', () => {
  it('a snapshot version lower than the trusted one is ROLLBACK, even when timestamp states that version', () => {
    // A client that kept snapshot v2 but lost its timestamp is served timestamp and snapshot v1 again.
    const sim = new RepoSim();
    const timestampV1 = sim.bytes('timestamp');
    const snapshotV1 = sim.bytes('snapshot');
    sim.publishSnapshot(); // v2, listing the same targets v1
    const set = TrustedMetadataSet.fromTrustedRoot(sim.bytes('root'), { crypto: testCrypto, now: NOW });
    set.updateTimestamp(timestampV1);
    set.updateSnapshot(sim.bytes('snapshot'), { cached: true });
    expect(set.snapshot?.signed.version).toBe(2);
    const err = refusedUpdate(set, () => set.updateSnapshot(snapshotV1));
    expect(err).toMatchObject({ code: 'ROLLBACK', role: 'snapshot', expected: '>= 2', found: 1 });
    expect(set.snapshot?.signed.version).toBe(2);
  });

  it('a snapshot after targets has been loaded is ORDER, also the same snapshot again', () => {
    const sim = new RepoSim();
    const set = TrustedMetadataSet.fromTrustedRoot(sim.bytes('root'), { crypto: testCrypto, now: NOW });
    set.updateTimestamp(sim.bytes('timestamp'));
    const first = sim.bytes('snapshot');
    set.updateSnapshot(first);
    set.updateTargets(sim.bytes('targets'));
    sim.publishSnapshot();
    for (const bytes of [first, sim.bytes('snapshot')]) {
      const err = refusedUpdate(set, () => set.updateSnapshot(bytes));
      expect([err.code, err.role]).toEqual(['ORDER', 'snapshot']);
      expect(err.message).toMatch(/after targets/);
    }
    expect(set.snapshot?.signed.version).toBe(1);
  });
});

describe('target files', () => {
  const content = utf8Encode('the artifact, 30 bytes long..');
  const sameLength = Uint8Array.from(content);
  sameLength[sameLength.length - 1] = sameLength[sameLength.length - 1]! ^ 1;
  const both = targetFileFor(testCrypto, content, { hashes: ['sha256', 'sha512'] });
  const only = (algorithm: 'sha256' | 'sha512'): TargetFile => ({
    ...both,
    hashes: { [algorithm]: both.hashes[algorithm]! },
  });

  it.each([
    ['sha256', only('sha256')],
    ['sha512', only('sha512')],
    ['sha256 and sha512', both],
  ] as const)('a file of the trusted length with other content is HASH_MISMATCH (%s stated)', (_, target) => {
    for (const chunk of [sameLength.length, 1]) {
      const v = new TargetVerifier(testCrypto, target, { path: 'app/v1', role: 'targets' });
      for (let i = 0; i < sameLength.length; i += chunk) v.update(sameLength.subarray(i, i + chunk));
      expect(v.bytesReceived).toBe(target.length);
      let error: unknown;
      try {
        v.finish();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TufaError);
      const algorithm = Object.keys(target.hashes)[0]!;
      expect(error).toMatchObject({
        code: 'HASH_MISMATCH' satisfies ErrorCode,
        role: 'targets',
        expected: `${algorithm}:${target.hashes[algorithm]}`,
      });
    }
    const right = new TargetVerifier(testCrypto, target);
    right.update(content);
    right.finish();
  });

  it('stops an endless stream at the trusted length: the first byte too many is LENGTH_MISMATCH', () => {
    const target = only('sha256');
    const v = new TargetVerifier(testCrypto, target, { path: 'app/v1' });
    v.update(content); // exactly the trusted length is accepted
    let fed = 0;
    let error: unknown;
    try {
      for (let i = 0; i < 10_000; i++) {
        fed++;
        v.update(new Uint8Array(1024));
      }
    } catch (err) {
      error = err;
    }
    expect(fed).toBe(1);
    expect(error).toMatchObject({
      code: 'LENGTH_MISMATCH' satisfies ErrorCode,
      expected: target.length,
      found: `> ${target.length}`,
    });
  });
});
