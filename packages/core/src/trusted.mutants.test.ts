/**
 * The trusted-metadata set, refusal by refusal, with everything a caller reads (code, message,
 * role, expected, found), and the answers it gives about what it holds: the cases mutation
 * testing found unchecked.
 */
import { bytesOf, DAY, NOW, RepoSim, refusal, sign, testCrypto, testKey } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { utf8Encode } from './json.js';
import type { MetaFile, Targets } from './metadata.js';
import {
  expiresIn,
  metaFileFor,
  newSnapshot,
  newTimestamp,
  targetFileFor,
  withDelegation,
  withTarget,
} from './repository.js';
import { checkLengthAndHashes, checkRootPins, TrustedMetadataSet } from './trusted.js';

const iso = (ms: number) => new Date(ms).toISOString();

function start(sim: RepoSim, options: { now?: number; allowExpired?: boolean } = {}): TrustedMetadataSet {
  return TrustedMetadataSet.fromTrustedRoot(sim.bytes('root'), { crypto: testCrypto, now: NOW, ...options });
}

function loadAll(sim: RepoSim, options: { now?: number; allowExpired?: boolean } = {}): TrustedMetadataSet {
  const set = start(sim, options);
  set.updateTimestamp(sim.bytes('timestamp'));
  set.updateSnapshot(sim.bytes('snapshot'));
  set.updateTargets(sim.bytes('targets'));
  return set;
}

describe('the trusted root', () => {
  it('refuses a reference time that is not a finite number', () => {
    const sim = new RepoSim();
    for (const now of [Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(refusal(() => start(sim, { now }))).toEqual({
        code: 'INVALID_ARGUMENT',
        message: 'reference time must be finite',
      });
    }
  });

  it('a root its own keys did not sign: says so, for role root', () => {
    const sim = new RepoSim();
    const forged = sign(sim.rootMd.signed, testKey(99));
    expect(
      refusal(() => TrustedMetadataSet.fromTrustedRoot(bytesOf(forged), { crypto: testCrypto, now: NOW })),
    ).toMatchObject({
      code: 'THRESHOLD_NOT_MET',
      message: 'root: 0 of the 1 required signatures by keys of root v1 itself',
      role: 'root',
    });
  });

  it('root updates after timestamp: ORDER for role root', () => {
    const sim = new RepoSim();
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    sim.rotateRoot((r) => r);
    expect(refusal(() => set.updateRoot(sim.bytes('root')))).toEqual({
      code: 'ORDER',
      message: 'root cannot be updated after timestamp has been loaded',
      role: 'root',
    });
  });

  it('a root that skips a version: what was expected and found', () => {
    const sim = new RepoSim();
    const set = start(sim);
    sim.rotateRoot((r) => r);
    sim.rotateRoot((r) => r);
    expect(refusal(() => set.updateRoot(sim.bytes('root')))).toEqual({
      code: 'VERSION_MISMATCH',
      message: 'root: version 3 does not follow trusted version 1',
      role: 'root',
      expected: 2,
      found: 3,
    });
  });

  it('an expired final root: EXPIRED for role root, with the time it was compared with', () => {
    const sim = new RepoSim();
    const now = NOW + 400 * DAY;
    const set = start(sim, { now });
    expect(refusal(() => set.checkRootNotExpired())).toEqual({
      code: 'EXPIRED',
      message: `root: expired at ${sim.rootMd.signed.expires}`,
      role: 'root',
      expected: `expires after ${iso(now)}`,
      found: sim.rootMd.signed.expires,
    });
  });
});

describe('timestamp', () => {
  it('after snapshot: ORDER for role timestamp', () => {
    const sim = new RepoSim();
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    set.updateSnapshot(sim.bytes('snapshot'));
    expect(refusal(() => set.updateTimestamp(sim.bytes('timestamp')))).toEqual({
      code: 'ORDER',
      message: 'timestamp cannot be updated after snapshot has been loaded',
      role: 'timestamp',
    });
  });

  it('signed by a key root does not name for it', () => {
    const sim = new RepoSim();
    sim.publishTimestamp({ signers: [testKey(300)] });
    expect(refusal(() => start(sim).updateTimestamp(sim.bytes('timestamp'))).message).toBe(
      'timestamp: 0 of the 1 required signatures by keys of root',
    );
  });

  it('a lower version, and a lower snapshot version: both versions in the refusal', () => {
    const sim = new RepoSim();
    sim.publishSnapshot(5);
    sim.publishTimestamp({ version: 7 });
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    sim.publishTimestamp({ version: 6 });
    expect(refusal(() => set.updateTimestamp(sim.bytes('timestamp')))).toEqual({
      code: 'ROLLBACK',
      message: 'timestamp: version 6 is lower than trusted version 7',
      role: 'timestamp',
      expected: '>= 7',
      found: 6,
    });
    sim.publishSnapshot(4);
    sim.publishTimestamp({ version: 8 });
    expect(refusal(() => set.updateTimestamp(sim.bytes('timestamp')))).toEqual({
      code: 'ROLLBACK',
      message: 'timestamp: snapshot version 4 is lower than trusted 5',
      role: 'snapshot',
      expected: '>= 5',
      found: 4,
    });
  });

  it('expired: EXPIRED for role timestamp', () => {
    const sim = new RepoSim();
    sim.publishTimestamp({ expires: expiresIn(NOW, -DAY) });
    expect(refusal(() => start(sim).updateTimestamp(sim.bytes('timestamp')))).toMatchObject({
      code: 'EXPIRED',
      role: 'timestamp',
      message: `timestamp: expired at ${expiresIn(NOW, -DAY)}`,
    });
  });

  it('expires exactly at the reference time: expired (expires <= now)', () => {
    const sim = new RepoSim();
    const at = sim.timestampMd.signed.expiresAt;
    expect(refusal(() => start(sim, { now: at }).updateTimestamp(sim.bytes('timestamp')))).toMatchObject({
      code: 'EXPIRED',
      role: 'timestamp',
      expected: `expires after ${iso(at)}`,
    });
    expect(start(sim, { now: at - 1000 }).updateTimestamp(sim.bytes('timestamp')).signed.version).toBe(1);
  });
});

describe('snapshot', () => {
  it('before timestamp, and after targets: ORDER for role snapshot', () => {
    const sim = new RepoSim();
    expect(refusal(() => start(sim).updateSnapshot(sim.bytes('snapshot')))).toEqual({
      code: 'ORDER',
      message: 'snapshot cannot be loaded before timestamp',
      role: 'snapshot',
    });
    const set = loadAll(sim);
    expect(refusal(() => set.updateSnapshot(sim.bytes('snapshot')))).toEqual({
      code: 'ORDER',
      message: 'snapshot cannot be updated after targets has been loaded',
      role: 'snapshot',
    });
  });

  it('with an expired trusted timestamp: EXPIRED for role timestamp', () => {
    const sim = new RepoSim();
    sim.publishTimestamp({ expires: expiresIn(NOW, -DAY) });
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'), { cached: true });
    expect(refusal(() => set.updateSnapshot(sim.bytes('snapshot')))).toMatchObject({
      code: 'EXPIRED',
      role: 'timestamp',
    });
  });

  it('of another length than timestamp states: LENGTH_MISMATCH for role snapshot', () => {
    const sim = new RepoSim();
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    const longer = new Uint8Array([...sim.bytes('snapshot'), 0x20]);
    expect(refusal(() => set.updateSnapshot(longer))).toMatchObject({
      code: 'LENGTH_MISMATCH',
      role: 'snapshot',
    });
  });

  it('signed by a key root does not name for it', () => {
    const sim = new RepoSim();
    sim.publishSnapshot(1, { signers: [testKey(301)] });
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    expect(refusal(() => set.updateSnapshot(sim.bytes('snapshot'))).message).toBe(
      'snapshot: 0 of the 1 required signatures by keys of root',
    );
  });

  /** Timestamp meta with the version only (the spec makes length and hashes optional). */
  function versionOnlyTimestamp(sim: RepoSim, version: number) {
    const meta: MetaFile = { version, extra: {} };
    return bytesOf(
      sign(
        newTimestamp({ expires: expiresIn(NOW, DAY), version: 9, snapshotMeta: meta }),
        ...sim.keys.timestamp,
      ),
    );
  }

  it('a lower version than the trusted snapshot: ROLLBACK; the same version is accepted', () => {
    const sim = new RepoSim();
    const v1 = sim.bytes('snapshot');
    sim.publishSnapshot(2);
    const v2 = sim.bytes('snapshot');
    const set = start(sim);
    set.updateTimestamp(versionOnlyTimestamp(sim, 1));
    set.updateSnapshot(v2, { cached: true });
    expect(refusal(() => set.updateSnapshot(v1))).toEqual({
      code: 'ROLLBACK',
      message: 'snapshot: version 1 is lower than trusted version 2',
      role: 'snapshot',
      expected: '>= 2',
      found: 1,
    });
    const same = start(sim);
    same.updateTimestamp(versionOnlyTimestamp(sim, 2));
    same.updateSnapshot(v2, { cached: true });
    expect(same.updateSnapshot(v2).signed.version).toBe(2);
  });

  it('a targets role dropped or rolled back: which one, and its versions', () => {
    const sim = new RepoSim();
    const a = testKey(72);
    sim.publishTargets((t) => withDelegation(t, { name: 'a', keys: [a.key], paths: ['a/*'] }));
    sim.publishDelegated('a', (t) => t, [a]);
    sim.publishDelegated('a', (t) => t, [a]);
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    set.updateSnapshot(sim.bytes('snapshot'));
    const snapshotWith = (meta: Record<string, MetaFile>) =>
      bytesOf(sign(newSnapshot({ expires: expiresIn(NOW, DAY), version: 9, meta }), ...sim.keys.snapshot));
    const targetsMeta = { 'targets.json': sim.snapshotMd.signed.meta['targets.json']! };
    expect(refusal(() => set.updateSnapshot(snapshotWith(targetsMeta), { cached: true }))).toEqual({
      code: 'ROLLBACK',
      message: 'snapshot: a.json was listed in the trusted snapshot and is missing',
      role: 'a',
      expected: 2,
      found: 'missing',
    });
    const lower = { ...targetsMeta, 'a.json': { version: 1, extra: {} } };
    expect(refusal(() => set.updateSnapshot(snapshotWith(lower), { cached: true }))).toEqual({
      code: 'ROLLBACK',
      message: 'snapshot: a.json version 1 is lower than trusted 2',
      role: 'a',
      expected: '>= 2',
      found: 1,
    });
  });

  it('legacy root.json, timestamp.json and snapshot.json entries may go', () => {
    const sim = new RepoSim();
    const targetsMeta = { 'targets.json': sim.snapshotMd.signed.meta['targets.json']! };
    const legacy = { ...targetsMeta };
    for (const name of ['root.json', 'timestamp.json', 'snapshot.json']) {
      Object.assign(legacy, { [name]: { version: 1, extra: {} } });
    }
    const snapshot = (version: number, meta: Record<string, MetaFile>) =>
      bytesOf(sign(newSnapshot({ expires: expiresIn(NOW, DAY), version, meta }), ...sim.keys.snapshot));
    const set = start(sim);
    set.updateTimestamp(versionOnlyTimestamp(sim, 2));
    set.updateSnapshot(snapshot(1, legacy), { cached: true });
    expect(set.updateSnapshot(snapshot(2, targetsMeta)).signed.version).toBe(2);
  });

  it('expired: EXPIRED for role snapshot; a publisher’s view reads it', () => {
    const sim = new RepoSim();
    sim.publishSnapshot(2, { expires: expiresIn(NOW, -DAY) });
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    expect(refusal(() => set.updateSnapshot(sim.bytes('snapshot')))).toMatchObject({
      code: 'EXPIRED',
      role: 'snapshot',
    });
    const publisher = start(sim, { allowExpired: true });
    publisher.updateTimestamp(sim.bytes('timestamp'));
    expect(publisher.updateSnapshot(sim.bytes('snapshot')).signed.version).toBe(2);
    expect(publisher.snapshotIsFinal()).toBe(true);
    expect(publisher.updateTargets(sim.bytes('targets')).signed.version).toBe(1);
  });

  it('not the version timestamp states: not final, and targets is refused with both versions', () => {
    const sim = new RepoSim();
    const v1 = sim.bytes('snapshot');
    sim.publishSnapshot(2);
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    set.updateSnapshot(v1, { cached: true });
    expect(set.snapshotIsFinal()).toBe(false);
    expect(refusal(() => set.updateTargets(sim.bytes('targets')))).toEqual({
      code: 'ROLLBACK',
      message: 'snapshot: version 1 is not the version 2 that timestamp states',
      role: 'snapshot',
      expected: 2,
      found: 1,
    });
  });
});

describe('snapshotIsFinal', () => {
  it('false before timestamp and before snapshot, true once both are loaded and final', () => {
    const sim = new RepoSim();
    const set = start(sim);
    expect(set.snapshotIsFinal()).toBe(false);
    set.updateTimestamp(sim.bytes('timestamp'));
    expect(set.snapshotIsFinal()).toBe(false);
    set.updateSnapshot(sim.bytes('snapshot'));
    expect(set.snapshotIsFinal()).toBe(true);
    expect([set.timestamp?.signed.type, set.snapshot?.signed.type]).toEqual(['timestamp', 'snapshot']);
  });
});

describe('targets', () => {
  it('before snapshot, and twice: ORDER for role targets', () => {
    const sim = new RepoSim();
    const set = start(sim);
    expect(refusal(() => set.updateTargets(sim.bytes('targets')))).toEqual({
      code: 'ORDER',
      message: 'targets cannot be loaded before snapshot',
      role: 'targets',
    });
    set.updateTimestamp(sim.bytes('timestamp'));
    expect(refusal(() => set.updateTargets(sim.bytes('targets')))).toEqual({
      code: 'ORDER',
      message: 'targets cannot be loaded before snapshot',
      role: 'targets',
    });
    set.updateSnapshot(sim.bytes('snapshot'));
    set.updateTargets(sim.bytes('targets'));
    expect(refusal(() => set.updateTargets(sim.bytes('targets')))).toEqual({
      code: 'ORDER',
      message: 'targets has already been loaded in this update',
      role: 'targets',
    });
  });

  it('signed by a key root does not name for it', () => {
    const sim = new RepoSim();
    sim.publishTargets((t) => t, [testKey(302)]);
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    set.updateSnapshot(sim.bytes('snapshot'));
    expect(refusal(() => set.updateTargets(sim.bytes('targets'))).message).toBe(
      'targets: 0 of the 1 required signatures by keys of root',
    );
  });

  /** Snapshot meta for targets that states only a version. */
  function versionOnlySnapshot(sim: RepoSim, targetsVersion: number): void {
    const meta = { 'targets.json': { version: targetsVersion, extra: {} } };
    sim.snapshotMd = sign(
      newSnapshot({ expires: expiresIn(NOW, DAY), version: 2, meta }),
      ...sim.keys.snapshot,
    );
    sim.publishTimestamp();
  }

  it('a lower or higher version than snapshot states: ROLLBACK or VERSION_MISMATCH, with both versions', () => {
    const sim = new RepoSim();
    sim.publishTargets();
    versionOnlySnapshot(sim, 3);
    const lower = start(sim);
    lower.updateTimestamp(sim.bytes('timestamp'));
    lower.updateSnapshot(sim.bytes('snapshot'));
    expect(refusal(() => lower.updateTargets(sim.bytes('targets')))).toEqual({
      code: 'ROLLBACK',
      message: 'targets: version 2 is not the version 3 that snapshot states',
      role: 'targets',
      expected: 3,
      found: 2,
    });
    versionOnlySnapshot(sim, 1);
    const higher = start(sim);
    higher.updateTimestamp(sim.bytes('timestamp'));
    higher.updateSnapshot(sim.bytes('snapshot'));
    expect(refusal(() => higher.updateTargets(sim.bytes('targets')))).toMatchObject({
      code: 'VERSION_MISMATCH',
      expected: 1,
      found: 2,
    });
  });

  it('expired: EXPIRED for role targets', () => {
    const sim = new RepoSim();
    sim.publishTargets((t) => ({ ...t, expires: expiresIn(NOW, -DAY), expiresAt: NOW - DAY }));
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    set.updateSnapshot(sim.bytes('snapshot'));
    expect(refusal(() => set.updateTargets(sim.bytes('targets')))).toMatchObject({
      code: 'EXPIRED',
      role: 'targets',
    });
  });
});

describe('delegated targets', () => {
  /** targets delegates to a and b; both delegate `shared` to one key. */
  function repo() {
    const sim = new RepoSim();
    const [a, b, shared] = [testKey(73), testKey(74), testKey(75)];
    sim.publishTargets((t) =>
      withDelegation(withDelegation(t, { name: 'a', keys: [a.key], paths: ['*'] }), {
        name: 'b',
        keys: [b.key],
        paths: ['*'],
      }),
    );
    const toShared = (t: Targets) => withDelegation(t, { name: 'shared', keys: [shared.key], paths: ['*'] });
    sim.publishDelegated('a', toShared, [a]);
    sim.publishDelegated('b', toShared, [b]);
    sim.publishDelegated('shared', (t) => withTarget(t, 'x', targetFileFor(testCrypto, utf8Encode('x'))), [
      shared,
    ]);
    return sim;
  }

  it('a role named by two delegators is held once, trusted through both', () => {
    const sim = repo();
    const set = loadAll(sim);
    expect(set.delegated('a')).toBeUndefined();
    set.updateDelegatedTargets(sim.bytes('a'), 'a', 'targets');
    set.updateDelegatedTargets(sim.bytes('b'), 'b', 'targets');
    const first = set.updateDelegatedTargets(sim.bytes('shared'), 'shared', 'a');
    expect(set.updateDelegatedTargets(sim.bytes('shared'), 'shared', 'b')).toBe(first);
    expect(set.delegated('shared')).toBe(first);
    expect(set.delegated('shared', 'a')).toBe(first);
    expect(set.delegated('shared', 'b')).toBe(first);
    expect(set.delegated('shared', 'targets')).toBeUndefined();
    expect(set.delegatedRoles().map((d) => [d.role, d.delegators, d.metadata.signed.version])).toEqual([
      ['a', ['targets'], 1],
      ['b', ['targets'], 1],
      ['shared', ['a', 'b'], 1],
    ]);
  });

  it('a delegator not loaded yet: ORDER', () => {
    const sim = repo();
    expect(refusal(() => loadAll(sim).updateDelegatedTargets(sim.bytes('shared'), 'shared', 'a'))).toEqual({
      code: 'ORDER',
      message: 'shared: its delegator a has not been loaded',
      role: 'shared',
    });
  });

  it('a delegator that delegates nothing, or not this role: NOT_FOUND', () => {
    const sim = repo();
    const set = loadAll(sim);
    set.updateDelegatedTargets(sim.bytes('a'), 'a', 'targets');
    set.updateDelegatedTargets(sim.bytes('shared'), 'shared', 'a');
    // shared delegates nothing at all; a delegates shared, not b.
    expect(refusal(() => set.updateDelegatedTargets(sim.bytes('a'), 'a', 'shared'))).toEqual({
      code: 'NOT_FOUND',
      message: 'a: shared does not delegate to it',
      role: 'a',
    });
    expect(refusal(() => set.updateDelegatedTargets(sim.bytes('b'), 'b', 'a'))).toEqual({
      code: 'NOT_FOUND',
      message: 'b: a does not delegate to it',
      role: 'b',
    });
  });

  it('not listed in snapshot: NOT_FOUND with the file name snapshot should list', () => {
    const sim = repo();
    sim.delegated.delete('b');
    sim.publishSnapshot();
    expect(refusal(() => loadAll(sim).updateDelegatedTargets(sim.bytes('a'), 'b', 'targets'))).toEqual({
      code: 'NOT_FOUND',
      message: 'b: not listed in snapshot',
      role: 'b',
      expected: 'b.json',
    });
  });

  it('bytes that do not parse name the delegated role', () => {
    const sim = repo();
    const err = refusal(() =>
      loadAll(sim).updateDelegatedTargets(utf8Encode('{'), 'a', 'targets', { cached: true }),
    );
    expect(err.code).toBe('INVALID_JSON');
    expect(err.message).toMatch(/^a\b/);
  });
});

describe('checkLengthAndHashes', () => {
  const bytes = utf8Encode('the bytes');
  const sha256 = metaFileFor(testCrypto, bytes, 1).hashes!.sha256!;

  it('another length: both lengths', () => {
    expect(refusal(() => checkLengthAndHashes(testCrypto, bytes, { length: 3 }, 'snapshot'))).toEqual({
      code: 'LENGTH_MISMATCH',
      message: `snapshot: ${bytes.length} bytes where 3 were stated`,
      role: 'snapshot',
      expected: 3,
      found: bytes.length,
    });
  });

  it('hashes it cannot compute are skipped when one it can is stated', () => {
    expect(
      refusal(() => checkLengthAndHashes(testCrypto, bytes, { hashes: { blake3: 'ab' } }, 'targets')),
    ).toEqual({
      code: 'HASH_MISMATCH',
      message: 'targets: none of the stated hash algorithms is supported',
      role: 'targets',
      expected: 'blake3',
    });
    expect(
      refusal(() =>
        checkLengthAndHashes(testCrypto, bytes, { hashes: { blake3: 'ab', md5: 'cd' } }, 'targets'),
      ).expected,
    ).toBe('blake3, md5');
    expect(() =>
      checkLengthAndHashes(testCrypto, bytes, { hashes: { blake3: 'ab', sha256 } }, 'targets'),
    ).not.toThrow();
  });

  it('another hash: the algorithm and both digests', () => {
    expect(
      refusal(() =>
        checkLengthAndHashes(testCrypto, bytes, { hashes: { sha256: '0'.repeat(64) } }, 'targets'),
      ),
    ).toEqual({
      code: 'HASH_MISMATCH',
      message: 'targets: sha256 does not match',
      role: 'targets',
      expected: '0'.repeat(64),
      found: sha256,
    });
  });
});

describe('checkRootPins', () => {
  it('says how many pinned keys signed, which were pinned, which are missing', () => {
    const sim = new RepoSim();
    const pinned = [sim.keys.root[0]!.keyid, testKey(5).keyid];
    expect(refusal(() => checkRootPins(testCrypto, sim.rootMd, { keyids: pinned, threshold: 2 }))).toEqual({
      code: 'UNTRUSTED_ROOT',
      message: 'root v1: signed by 1 of the 2 pinned keys required',
      role: 'root',
      expected: pinned,
      found: [sim.keys.root[0]!.keyid],
      details: { missing: [testKey(5).keyid] },
    });
  });
});
