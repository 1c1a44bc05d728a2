import { bytesOf, DAY, NOW, RepoSim, sign, testCrypto, testKey } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { succinctBinNameFor } from './delegation.js';
import { type ErrorCode, TufaError } from './errors.js';
import { canonicalBytes, utf8Encode } from './json.js';
import { metadataToJson, type Root } from './metadata.js';
import {
  bumpVersion,
  expiresIn,
  newTimestamp,
  targetFileFor,
  withDelegation,
  withRootRole,
  withSuccinctDelegation,
  withTarget,
} from './repository.js';
import { checkLengthAndHashes, checkRootPins, TrustedMetadataSet } from './trusted.js';

function snapshotOf(set: TrustedMetadataSet) {
  return {
    root: set.root,
    timestamp: set.timestamp,
    snapshot: set.snapshot,
    targets: set.targets,
    delegated: set.delegatedRoles().map((d) => [d.role, d.delegators.join(','), d.metadata] as const),
  };
}

/** Runs a refused update: asserts its code and that the set did not change at all. */
function refused(set: TrustedMetadataSet, update: () => unknown, code: ErrorCode): TufaError {
  const before = snapshotOf(set);
  let error: unknown;
  try {
    update();
  } catch (err) {
    error = err;
  }
  expect(error, 'the update was accepted').toBeInstanceOf(TufaError);
  expect((error as TufaError).code).toBe(code);
  const after = snapshotOf(set);
  expect(after.root).toBe(before.root);
  expect(after.timestamp).toBe(before.timestamp);
  expect(after.snapshot).toBe(before.snapshot);
  expect(after.targets).toBe(before.targets);
  expect(after.delegated).toEqual(before.delegated);
  return error as TufaError;
}

function start(sim: RepoSim, now = NOW): TrustedMetadataSet {
  return TrustedMetadataSet.fromTrustedRoot(sim.bytes('root'), { crypto: testCrypto, now });
}

function loadAll(sim: RepoSim, now = NOW): TrustedMetadataSet {
  const set = start(sim, now);
  set.updateTimestamp(sim.bytes('timestamp'));
  set.updateSnapshot(sim.bytes('snapshot'));
  set.updateTargets(sim.bytes('targets'));
  return set;
}

/** Tampers with a document's signed part without re-signing. */
function tampered(bytes: Uint8Array, edit: (doc: any) => void): Uint8Array {
  const doc = JSON.parse(new TextDecoder().decode(bytes));
  edit(doc);
  return canonicalBytes(doc);
}

describe('the trusted root', () => {
  it('accepts a self-signed root', () => {
    const sim = new RepoSim();
    expect(start(sim).root.signed.version).toBe(1);
  });

  it('refuses a root not signed by its own root keys', () => {
    const sim = new RepoSim();
    const forged = sign(sim.rootMd.signed, testKey(99));
    const err = (() => {
      try {
        TrustedMetadataSet.fromTrustedRoot(bytesOf(forged), { crypto: testCrypto, now: NOW });
      } catch (e) {
        return e as TufaError;
      }
    })();
    expect(err?.code).toBe('THRESHOLD_NOT_MET');
    expect(err?.details).toMatchObject({ ignored: [testKey(99).keyid] });
  });

  it('refuses a tampered root with BAD_SIGNATURE', () => {
    const sim = new RepoSim();
    const bytes = tampered(sim.bytes('root'), (d) => (d.signed.expires = '2099-01-01T00:00:00Z'));
    expect(() => TrustedMetadataSet.fromTrustedRoot(bytes, { crypto: testCrypto, now: NOW })).toThrow(
      expect.objectContaining({ code: 'BAD_SIGNATURE' }),
    );
  });

  it('refuses a non-root document', () => {
    const sim = new RepoSim();
    expect(() =>
      TrustedMetadataSet.fromTrustedRoot(sim.bytes('targets'), { crypto: testCrypto, now: NOW }),
    ).toThrow(expect.objectContaining({ code: 'WRONG_TYPE' }));
  });
});

describe('5.3 root rotation', () => {
  it('follows a chain of rotations that change keys every time', () => {
    const sim = new RepoSim();
    const set = start(sim);
    for (let i = 0; i < 5; i++) {
      const oldKeys = sim.keys.root;
      const newKeys = [testKey(100 + i)];
      sim.rotateRoot(
        (r) => withRootRole(r, 'root', { keys: newKeys.map((k) => k.key) }),
        [...oldKeys, ...newKeys],
      );
      sim.keys.root = newKeys;
      set.updateRoot(sim.bytes('root'));
    }
    expect(set.root.signed.version).toBe(6);
    expect(set.root.signed.roles.root.keyids).toEqual([testKey(104).keyid]);
  });

  it('refuses a new root not signed by the threshold of the old root keys', () => {
    const sim = new RepoSim();
    const set = start(sim);
    const newKey = testKey(200);
    sim.rotateRoot((r) => withRootRole(r, 'root', { keys: [newKey.key] }), [newKey]);
    const err = refused(set, () => set.updateRoot(sim.bytes('root')), 'THRESHOLD_NOT_MET');
    expect(err.message).toMatch(/root v1/);
  });

  it('refuses a new root not signed by its own threshold', () => {
    const sim = new RepoSim();
    const set = start(sim);
    sim.rotateRoot((r) => withRootRole(r, 'root', { keys: [testKey(201).key] }), sim.keys.root);
    const err = refused(set, () => set.updateRoot(sim.bytes('root')), 'THRESHOLD_NOT_MET');
    expect(err.message).toMatch(/root v2 itself/);
  });

  it('refuses a root whose raised threshold is not met', () => {
    const sim = new RepoSim();
    const set = start(sim);
    const keys = [sim.keys.root[0]!, testKey(202)];
    sim.rotateRoot(
      (r) => withRootRole(r, 'root', { keys: keys.map((k) => k.key), threshold: 2 }),
      [keys[0]!],
    );
    const err = refused(set, () => set.updateRoot(sim.bytes('root')), 'THRESHOLD_NOT_MET');
    expect(err.expected).toBe(2);
    expect(err.found).toBe(1);
    sim.rotateRoot((r) => r, keys); // v3 signed by both: still not v2
    refused(set, () => set.updateRoot(sim.bytes('root')), 'VERSION_MISMATCH');
  });

  it('refuses a root that skips a version, and one that repeats a version', () => {
    const sim = new RepoSim();
    const set = start(sim);
    sim.rotateRoot((r) => r);
    const v2 = sim.bytes('root');
    sim.rotateRoot((r) => r);
    const err = refused(set, () => set.updateRoot(sim.bytes('root')), 'VERSION_MISMATCH');
    expect(err.expected).toBe(2);
    expect(err.found).toBe(3);
    set.updateRoot(v2);
    refused(set, () => set.updateRoot(v2), 'ROLLBACK');
  });

  it('accepts an expired intermediate root, but the final root must not be expired', () => {
    const sim = new RepoSim();
    const set = start(sim, NOW + 400 * DAY);
    sim.rotateRoot((r) => ({ ...r, expires: expiresIn(NOW, 500 * DAY), expiresAt: NOW + 500 * DAY }));
    const v2Bytes = sim.bytes('root');
    const expiredFinal = start(sim, NOW + 400 * DAY);
    refused(expiredFinal, () => expiredFinal.updateTimestamp(sim.bytes('timestamp')), 'EXPIRED');
    set.updateRoot(v2Bytes); // v1 had expired at the reference time: still fine as an intermediate
    expect(() => set.checkRootNotExpired()).not.toThrow();
  });

  it('refuses root updates once timestamp is loaded', () => {
    const sim = new RepoSim();
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    sim.rotateRoot((r) => r);
    refused(set, () => set.updateRoot(sim.bytes('root')), 'ORDER');
  });
});

describe('5.4 timestamp', () => {
  it('refuses a timestamp signed by the wrong key and a tampered one', () => {
    const sim = new RepoSim();
    const set = start(sim);
    sim.publishTimestamp({ signers: [testKey(300)] });
    refused(set, () => set.updateTimestamp(sim.bytes('timestamp')), 'THRESHOLD_NOT_MET');
    sim.publishTimestamp();
    const bytes = tampered(sim.bytes('timestamp'), (d) => (d.signed.version = 77));
    refused(set, () => set.updateTimestamp(bytes), 'BAD_SIGNATURE');
  });

  it('refuses a lower version, keeps the trusted one on an equal version', () => {
    const sim = new RepoSim();
    const set = start(sim);
    const v1 = sim.bytes('timestamp');
    sim.publishTimestamp();
    const v2 = set.updateTimestamp(sim.bytes('timestamp'));
    const err = refused(set, () => set.updateTimestamp(v1), 'ROLLBACK');
    expect(err.role).toBe('timestamp');
    expect(set.updateTimestamp(sim.bytes('timestamp'))).toBe(v2);
  });

  it('refuses a timestamp that rolls back the snapshot version', () => {
    const sim = new RepoSim();
    const set = start(sim);
    sim.publishSnapshot(5);
    set.updateTimestamp(sim.bytes('timestamp'));
    sim.publishSnapshot(4);
    const err = refused(set, () => set.updateTimestamp(sim.bytes('timestamp')), 'ROLLBACK');
    expect(err.role).toBe('snapshot');
  });

  it('refuses an expired timestamp, but takes an expired cached one as a rollback baseline', () => {
    const sim = new RepoSim();
    sim.publishTimestamp({ version: 10, expires: expiresIn(NOW, -DAY) });
    const set = start(sim);
    refused(set, () => set.updateTimestamp(sim.bytes('timestamp')), 'EXPIRED');
    set.updateTimestamp(sim.bytes('timestamp'), { cached: true });
    sim.publishTimestamp({ version: 9 });
    refused(set, () => set.updateTimestamp(sim.bytes('timestamp')), 'ROLLBACK');
    sim.publishTimestamp({ version: 11 });
    expect(set.updateTimestamp(sim.bytes('timestamp')).signed.version).toBe(11);
  });

  it('does not let an expired trusted timestamp be used for snapshot', () => {
    const sim = new RepoSim();
    sim.publishTimestamp({ expires: expiresIn(NOW, -DAY) });
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'), { cached: true });
    refused(set, () => set.updateSnapshot(sim.bytes('snapshot')), 'EXPIRED');
  });

  it('refuses timestamp updates after snapshot', () => {
    const sim = new RepoSim();
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    set.updateSnapshot(sim.bytes('snapshot'));
    sim.publishTimestamp();
    refused(set, () => set.updateTimestamp(sim.bytes('timestamp')), 'ORDER');
  });
});

describe('5.5 snapshot', () => {
  it('needs a timestamp first', () => {
    const sim = new RepoSim();
    const set = start(sim);
    refused(set, () => set.updateSnapshot(sim.bytes('snapshot')), 'ORDER');
  });

  it('refuses a snapshot whose hash or length differs from what timestamp states', () => {
    const sim = new RepoSim();
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    const good = sim.bytes('snapshot');
    const sameLength = tampered(good, (d) => (d.signed.expires = d.signed.expires.replace(/.$/, 'Z')));
    const flipped = Uint8Array.from(good);
    flipped[flipped.length - 3] = flipped[flipped.length - 3] === 0x61 ? 0x62 : 0x61;
    expect(sameLength.length).toBe(good.length);
    refused(set, () => set.updateSnapshot(flipped), 'HASH_MISMATCH');
    refused(
      set,
      () => set.updateSnapshot(utf8Encode(`${new TextDecoder().decode(good)} `)),
      'LENGTH_MISMATCH',
    );
  });

  it('refuses a snapshot signed by the wrong key', () => {
    const sim = new RepoSim();
    sim.publishSnapshot(undefined, { signers: sim.keys.timestamp });
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    refused(set, () => set.updateSnapshot(sim.bytes('snapshot')), 'THRESHOLD_NOT_MET');
  });

  it('refuses a snapshot whose version is not the one timestamp states', () => {
    const sim = new RepoSim();
    sim.publishSnapshot(3);
    const snapshotV3 = sim.bytes('snapshot');
    sim.publishSnapshot(5);
    const snapshotV5 = sim.bytes('snapshot');
    // A timestamp that states only the version (hashes and length are optional): the version rule alone.
    const versionOnly = (version: number) =>
      bytesOf(
        sign(
          newTimestamp({ expires: expiresIn(NOW, DAY), version: 9, snapshotMeta: { version, extra: {} } }),
          ...sim.keys.timestamp,
        ),
      );
    const set = start(sim);
    set.updateTimestamp(versionOnly(4));
    const low = refused(set, () => set.updateSnapshot(snapshotV3), 'ROLLBACK');
    expect(low).toMatchObject({ role: 'snapshot', expected: 4, found: 3 });
    refused(set, () => set.updateSnapshot(snapshotV5), 'VERSION_MISMATCH');
    // A cached snapshot of another version is kept as a baseline only: it cannot be used as final.
    set.updateSnapshot(snapshotV3, { cached: true });
    expect(set.snapshotIsFinal()).toBe(false);
    refused(set, () => set.updateTargets(sim.bytes('targets')), 'ROLLBACK');
  });

  it('refuses a snapshot that drops or rolls back a targets role, ignoring legacy root.json', () => {
    const sim = new RepoSim();
    const k = testKey(40);
    sim.publishTargets((t) => withDelegation(t, { name: 'a', keys: [k.key], paths: ['a/*'] }));
    sim.publishDelegated('a', (t) => t, [k]);
    sim.publishDelegated('a', (t) => t, [k]); // a is at v2
    const baselineTimestamp = bytesOf(sim.timestampMd);
    const baselineSnapshot = sim.snapshotMd;
    // The client's flow: cached timestamp, remote timestamp, cached snapshot, then the remote snapshot.
    const withBaseline = (snapshot = bytesOf(baselineSnapshot)) => {
      const set = start(sim);
      set.updateTimestamp(baselineTimestamp, { cached: true });
      set.updateTimestamp(sim.bytes('timestamp'));
      set.updateSnapshot(snapshot, { cached: true });
      return set;
    };

    const a = sim.delegated.get('a')!;
    a.md = sign({ ...a.signed, version: 1 }, k);
    sim.publishSnapshot();
    const rolledBack = withBaseline();
    const err = refused(rolledBack, () => rolledBack.updateSnapshot(sim.bytes('snapshot')), 'ROLLBACK');
    expect(err.role).toBe('a');

    sim.delegated.delete('a');
    sim.publishSnapshot();
    const dropped = withBaseline();
    const err2 = refused(dropped, () => dropped.updateSnapshot(sim.bytes('snapshot')), 'ROLLBACK');
    expect(err2.message).toMatch(/a\.json was listed/);

    // A legacy root.json line that disappears is no rollback: the client has no use for it.
    const legacy = sign(
      {
        ...sim.snapshotMd.signed,
        meta: { ...sim.snapshotMd.signed.meta, 'root.json': { version: 1, extra: {} } },
      },
      ...sim.keys.snapshot,
    );
    sim.publishSnapshot();
    const ok = withBaseline(bytesOf(legacy));
    expect(ok.updateSnapshot(sim.bytes('snapshot')).signed.meta['root.json']).toBeUndefined();
  });

  it('refuses an expired snapshot', () => {
    const sim = new RepoSim();
    sim.publishSnapshot(undefined, { expires: expiresIn(NOW, -1000) });
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    refused(set, () => set.updateSnapshot(sim.bytes('snapshot')), 'EXPIRED');
  });
});

describe('5.6 targets', () => {
  it('loads targets as the snapshot states them', () => {
    const sim = new RepoSim();
    const set = loadAll(sim);
    expect(Object.keys(set.targets!.signed.targets)).toEqual(['app/v1']);
  });

  it('refuses targets whose bytes do not match snapshot meta (mix-and-match)', () => {
    const sim = new RepoSim();
    const old = sim.bytes('targets');
    sim.publishTargets((t) => withTarget(t, 'app/v2', targetFileFor(testCrypto, utf8Encode('v2'))));
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    set.updateSnapshot(sim.bytes('snapshot'));
    const err = refused(set, () => set.updateTargets(old), 'LENGTH_MISMATCH');
    expect(err.role).toBe('targets');
  });

  it('refuses targets with the wrong version, wrong signer, or expired', () => {
    const sim = new RepoSim();
    const other = testKey(60);
    // snapshot without hashes for targets: version rule alone
    sim.publishTargets((t) => t);
    const v2 = sim.targetsMd;
    sim.publishTargets((t) => t);
    const set = start(sim);
    set.updateTimestamp(sim.bytes('timestamp'));
    set.updateSnapshot(sim.bytes('snapshot'));
    refused(set, () => set.updateTargets(bytesOf(v2), { cached: true }), 'ROLLBACK');

    sim.publishTargets((t) => t, [other]);
    const s2 = start(sim);
    s2.updateTimestamp(sim.bytes('timestamp'));
    s2.updateSnapshot(sim.bytes('snapshot'));
    refused(s2, () => s2.updateTargets(sim.bytes('targets')), 'THRESHOLD_NOT_MET');

    sim.publishTargets((t) => ({ ...t, expires: expiresIn(NOW, -DAY), expiresAt: NOW - DAY }));
    const s3 = start(sim);
    s3.updateTimestamp(sim.bytes('timestamp'));
    s3.updateSnapshot(sim.bytes('snapshot'));
    refused(s3, () => s3.updateTargets(sim.bytes('targets')), 'EXPIRED');
  });

  it('needs a final snapshot', () => {
    const sim = new RepoSim();
    const set = start(sim);
    refused(set, () => set.updateTargets(sim.bytes('targets')), 'ORDER');
  });
});

describe('5.6 delegated targets', () => {
  function delegatedRepo() {
    const sim = new RepoSim();
    const a = testKey(70);
    const b = testKey(71);
    sim.publishTargets((t) =>
      withDelegation(withDelegation(t, { name: 'a', keys: [a.key], paths: ['a/*'] }), {
        name: 'b',
        keys: [b.key],
        paths: ['b/*'],
      }),
    );
    sim.publishDelegated('a', (t) => withTarget(t, 'a/x', targetFileFor(testCrypto, utf8Encode('ax'))), [a]);
    sim.publishDelegated('b', (t) => t, [b]);
    return { sim, a, b };
  }

  it('loads a delegated role signed by its delegated keys', () => {
    const { sim } = delegatedRepo();
    const set = loadAll(sim);
    set.updateDelegatedTargets(sim.bytes('a'), 'a', 'targets');
    expect(set.delegated('a', 'targets')?.signed.targets['a/x']).toBeDefined();
    expect(set.delegated('a', 'other')).toBeUndefined();
  });

  it('refuses a role signed by another delegation’s key', () => {
    const { sim, b } = delegatedRepo();
    sim.publishDelegated('a', (t) => t, [sim.delegated.get('a')!.keys[0]!], [b]);
    const set = loadAll(sim);
    const err = refused(
      set,
      () => set.updateDelegatedTargets(sim.bytes('a'), 'a', 'targets'),
      'THRESHOLD_NOT_MET',
    );
    expect(err.role).toBe('a');
  });

  it('refuses a role that is not delegated, or not in snapshot, or whose delegator is not loaded', () => {
    const { sim } = delegatedRepo();
    const set = loadAll(sim);
    refused(set, () => set.updateDelegatedTargets(sim.bytes('a'), 'c', 'targets'), 'NOT_FOUND');
    refused(set, () => set.updateDelegatedTargets(sim.bytes('a'), 'a', 'b'), 'ORDER');
    sim.delegated.delete('b');
    sim.publishSnapshot();
    const set2 = loadAll(sim);
    const err = refused(set2, () => set2.updateDelegatedTargets(sim.bytes('a'), 'b', 'targets'), 'NOT_FOUND');
    expect(err.message).toMatch(/not listed in snapshot/);
  });

  it('refuses a delegated role with a hash mismatch, a wrong version, or expired', () => {
    const { sim, a } = delegatedRepo();
    const old = sim.bytes('a');
    sim.publishDelegated('a', (t) => withTarget(t, 'a/y', targetFileFor(testCrypto, utf8Encode('ay'))), [a]);
    let set = loadAll(sim);
    refused(set, () => set.updateDelegatedTargets(old, 'a', 'targets'), 'LENGTH_MISMATCH');
    refused(set, () => set.updateDelegatedTargets(old, 'a', 'targets', { cached: true }), 'ROLLBACK');
    sim.publishDelegated('a', (t) => ({ ...t, expires: expiresIn(NOW, -1000), expiresAt: NOW - 1000 }), [a]);
    set = loadAll(sim);
    refused(set, () => set.updateDelegatedTargets(sim.bytes('a'), 'a', 'targets'), 'EXPIRED');
  });

  it('verifies a role named by two delegators against each delegator’s keys', () => {
    const sim = new RepoSim();
    const p1 = testKey(80);
    const p2 = testKey(81);
    const shared = testKey(82);
    const wrong = testKey(83);
    sim.publishTargets((t) =>
      withDelegation(withDelegation(t, { name: 'p1', keys: [p1.key], paths: ['*'] }), {
        name: 'p2',
        keys: [p2.key],
        paths: ['*'],
      }),
    );
    sim.publishDelegated(
      'p1',
      (t) => withDelegation(t, { name: 'shared', keys: [shared.key], paths: ['*'] }),
      [p1],
    );
    sim.publishDelegated(
      'p2',
      (t) => withDelegation(t, { name: 'shared', keys: [wrong.key], paths: ['*'] }),
      [p2],
    );
    sim.publishDelegated('shared', (t) => withTarget(t, 'x', targetFileFor(testCrypto, utf8Encode('x'))), [
      shared,
    ]);
    const set = loadAll(sim);
    set.updateDelegatedTargets(sim.bytes('p1'), 'p1', 'targets');
    set.updateDelegatedTargets(sim.bytes('p2'), 'p2', 'targets');
    set.updateDelegatedTargets(sim.bytes('shared'), 'shared', 'p1');
    expect(set.delegated('shared', 'p1')).toBeDefined();
    refused(set, () => set.updateDelegatedTargets(sim.bytes('shared'), 'shared', 'p2'), 'THRESHOLD_NOT_MET');
    expect(set.delegated('shared', 'p2')).toBeUndefined();
  });
});

describe('5.3.11 fast-forward recovery', () => {
  it('drops a timestamp pushed to a huge version by a compromised key once root rotates that key', () => {
    const sim = new RepoSim();
    sim.publishTimestamp({ version: 2 ** 40 });
    const attacked = sim.bytes('timestamp');
    const rootV1 = sim.bytes('root');
    const set = start(sim);
    set.updateTimestamp(attacked); // the client believed it

    const newKey = testKey(90);
    sim.rotateRoot((r) => withRootRole(r, 'timestamp', { keys: [newKey.key] }));
    sim.keys.timestamp = [newKey];
    sim.publishTimestamp({ version: 3 });

    const next = TrustedMetadataSet.fromTrustedRoot(rootV1, { crypto: testCrypto, now: NOW }); // next refresh: cached v1, then v2
    next.updateRoot(sim.bytes('root'));
    refused(next, () => next.updateTimestamp(attacked, { cached: true }), 'THRESHOLD_NOT_MET');
    expect(next.updateTimestamp(sim.bytes('timestamp')).signed.version).toBe(3);
    next.updateSnapshot(sim.bytes('snapshot'));
    next.updateTargets(sim.bytes('targets'));
  });

  it('drops a snapshot pushed to a huge version once the snapshot key rotates', () => {
    const sim = new RepoSim();
    sim.publishSnapshot(2 ** 40);
    const attackedSnapshot = sim.bytes('snapshot');
    const attackedTimestamp = sim.bytes('timestamp');
    const rootV1 = sim.bytes('root');
    const newKey = testKey(91);
    sim.rotateRoot((r: Root) =>
      withRootRole(withRootRole(r, 'snapshot', { keys: [newKey.key] }), 'timestamp', {
        keys: [testKey(92).key],
      }),
    );
    sim.keys.snapshot = [newKey];
    sim.keys.timestamp = [testKey(92)];
    sim.publishSnapshot(1);
    const set = TrustedMetadataSet.fromTrustedRoot(rootV1, { crypto: testCrypto, now: NOW });
    set.updateRoot(sim.bytes('root'));
    refused(set, () => set.updateTimestamp(attackedTimestamp, { cached: true }), 'THRESHOLD_NOT_MET');
    set.updateTimestamp(sim.bytes('timestamp'));
    refused(set, () => set.updateSnapshot(attackedSnapshot, { cached: true }), 'THRESHOLD_NOT_MET');
    expect(set.updateSnapshot(sim.bytes('snapshot')).signed.version).toBe(1);
  });
});

describe('checkRootPins and checkLengthAndHashes', () => {
  it('trusts a root signed by the pinned keys only', () => {
    const sim = new RepoSim();
    expect(checkRootPins(testCrypto, sim.rootMd, { keyids: [sim.keys.root[0]!.keyid] }).verified).toBe(true);
    expect(() => checkRootPins(testCrypto, sim.rootMd, { keyids: [testKey(5).keyid] })).toThrow(
      expect.objectContaining({ code: 'UNTRUSTED_ROOT' }),
    );
    expect(() =>
      checkRootPins(testCrypto, sim.rootMd, { keyids: [sim.keys.root[0]!.keyid], threshold: 2 }),
    ).toThrow(expect.objectContaining({ code: 'UNTRUSTED_ROOT' }));
  });

  it('refuses stated hashes that tufa cannot compute', () => {
    expect(() =>
      checkLengthAndHashes(testCrypto, utf8Encode('x'), { hashes: { md5: 'ab' } }, 'snapshot'),
    ).toThrow(expect.objectContaining({ code: 'HASH_MISMATCH' }));
    expect(() => checkLengthAndHashes(testCrypto, utf8Encode('x'), {}, 'snapshot')).not.toThrow();
  });

  it('serialises what it holds unchanged', () => {
    const sim = new RepoSim();
    const set = loadAll(sim);
    expect(canonicalBytes(metadataToJson(set.targets!))).toEqual(sim.bytes('targets'));
  });
});

describe("a publisher's view (allowExpired)", () => {
  it('reads expired roles with every other rule intact', () => {
    const sim = new RepoSim();
    sim.publishTargets((t) => ({ ...t, expires: expiresIn(NOW, -DAY), expiresAt: NOW - DAY }));
    const client = start(sim);
    client.updateTimestamp(sim.bytes('timestamp'));
    client.updateSnapshot(sim.bytes('snapshot'));
    refused(client, () => client.updateTargets(sim.bytes('targets')), 'EXPIRED');

    const publisher = TrustedMetadataSet.fromTrustedRoot(sim.bytes('root'), {
      crypto: testCrypto,
      now: NOW,
      allowExpired: true,
    });
    publisher.updateTimestamp(sim.bytes('timestamp'));
    publisher.updateSnapshot(sim.bytes('snapshot'));
    expect(publisher.updateTargets(sim.bytes('targets')).signed.expiresAt).toBe(NOW - DAY);

    // Signatures, versions and hashes still hold.
    const forged = TrustedMetadataSet.fromTrustedRoot(sim.bytes('root'), {
      crypto: testCrypto,
      now: NOW,
      allowExpired: true,
    });
    forged.updateTimestamp(sim.bytes('timestamp'));
    forged.updateSnapshot(sim.bytes('snapshot'));
    const tamperedTargets = tampered(sim.bytes('targets'), (d) => (d.signed.version = 99));
    refused(forged, () => forged.updateTargets(tamperedTargets), 'LENGTH_MISMATCH');
  });
});

describe('root expiries as real repositories wrote them', () => {
  it("walks a chain whose early roots expire as Sigstore's roots 1-3 did, to the one current root", () => {
    const sim = new RepoSim();
    const set = start(sim);
    // v2-v4 carry an offset with a fraction, nanoseconds, and an offset: all long past at NOW.
    for (const expires of [
      '2021-12-18T13:28:12.99008-06:00',
      '2022-05-11T19:09:02.663975009Z',
      '2023-01-12T11:53:17+01:00',
    ]) {
      // bumpVersion writes tufa's own format only: the foreign expiry is set on its result.
      sim.publishRoot({ ...bumpVersion(sim.root, expiresIn(NOW, DAY)), expires }, sim.keys.root);
      set.updateRoot(sim.bytes('root'));
    }
    expect(set.root.signed.expires).toBe('2023-01-12T11:53:17+01:00');
    expect(() => set.checkRootNotExpired()).toThrow(expect.objectContaining({ code: 'EXPIRED' }));
    sim.publishRoot(bumpVersion(sim.root, expiresIn(NOW, 365 * DAY)), sim.keys.root);
    set.updateRoot(sim.bytes('root'));
    set.updateTimestamp(sim.bytes('timestamp'));
    expect(set.root.signed.version).toBe(5);
  });

  it('a root that expires a nanosecond after now is current, and expired a millisecond later', () => {
    const sim = new RepoSim();
    const current = start(sim);
    const later = start(sim, NOW + 1);
    const at = new Date(NOW).toISOString().replace('.000Z', '.000000001Z');
    sim.rotateRoot((r) => ({ ...r, expires: at }));
    current.updateRoot(sim.bytes('root'));
    expect(() => current.checkRootNotExpired()).not.toThrow();
    later.updateRoot(sim.bytes('root'));
    refused(later, () => later.updateTimestamp(sim.bytes('timestamp')), 'EXPIRED');
  });
});

describe('5.6 delegated roles in succinct hash bins (TAP 15)', () => {
  it("loads a bin signed by the bins' keys; refuses another bin's name, a name past the last bin, and a foreign key", () => {
    const sim = new RepoSim();
    const binKey = testKey(73);
    sim.publishTargets((t) =>
      withSuccinctDelegation(t, { keys: [binKey.key], bitLength: 2, namePrefix: 'bins' }),
    );
    const succinct = sim.targets.delegations!.succinctRoles!;
    const name = succinctBinNameFor(succinct, 'tag');
    sim.publishDelegated(name, (t) => withTarget(t, 'tag', targetFileFor(testCrypto, utf8Encode('tag'))), [
      binKey,
    ]);
    const set = loadAll(sim);
    expect(set.updateDelegatedTargets(sim.bytes(name), name, 'targets').signed.targets.tag).toBeDefined();
    refused(set, () => set.updateDelegatedTargets(sim.bytes(name), 'bins-4', 'targets'), 'NOT_FOUND');
    sim.publishDelegated(name, (t) => t, [binKey], [testKey(74)]);
    const other = loadAll(sim);
    const err = refused(
      other,
      () => other.updateDelegatedTargets(sim.bytes(name), name, 'targets'),
      'THRESHOLD_NOT_MET',
    );
    expect(err.role).toBe(name);
  });
});
