import { codeOf as code, DAY, NOW, RepoSim, sign, testCrypto, testKey } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { isJsonObject, jsonObject, utf8Encode } from './json.js';
import { parseMetadata, serializeMetadata } from './metadata.js';
import {
  addSignatures,
  bumpVersion,
  expiresIn,
  metaFileFor,
  newRoot,
  newSnapshot,
  newTargets,
  snapshotMetaFor,
  targetFileFor,
  withDelegation,
  withoutDelegation,
  withoutTarget,
  withRootRole,
  withTarget,
} from './repository.js';
import { checkLengthAndHashes, TrustedMetadataSet } from './trusted.js';
import { verifyMetadataSignatures } from './verify.js';

describe('creating metadata', () => {
  it('makes a root with thresholds, consistent snapshots and Notary-like defaults', () => {
    const [a, b] = [testKey(1), testKey(2)];
    const root = newRoot({
      expires: expiresIn(NOW, 10 * 365 * DAY),
      roles: {
        root: { keys: [a.key, b.key], threshold: 2 },
        targets: { keys: [a.key] },
        snapshot: { keys: [b.key] },
        timestamp: { keys: [b.key] },
      },
    });
    expect(root).toMatchObject({ version: 1, consistentSnapshot: true, specVersion: '1.0.31' });
    expect(root.roles.root).toMatchObject({ keyids: [a.keyid, b.keyid], threshold: 2 });
    expect(Object.keys(root.keys).sort()).toEqual([a.keyid, b.keyid].sort());
  });

  it('refuses impossible thresholds, versions and expiry strings', () => {
    const k = testKey(1).key;
    const roles = {
      root: { keys: [k] },
      targets: { keys: [k] },
      snapshot: { keys: [k] },
      timestamp: { keys: [k] },
    };
    expect(
      code(() =>
        newRoot({ expires: expiresIn(NOW, DAY), roles: { ...roles, root: { keys: [k], threshold: 2 } } }),
      ),
    ).toBe('INVALID_ARGUMENT');
    expect(
      code(() =>
        newRoot({ expires: expiresIn(NOW, DAY), roles: { ...roles, root: { keys: [k, k], threshold: 2 } } }),
      ),
    ).toBe('INVALID_ARGUMENT');
    expect(code(() => newTargets({ expires: '2030-01-01' }))).toBe('INVALID_ARGUMENT');
    expect(code(() => newTargets({ expires: expiresIn(NOW, DAY), version: 0 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => newSnapshot({ expires: expiresIn(NOW, DAY), meta: {} }))).toBe('INVALID_ARGUMENT');
  });

  it("takes a jsonObject meta as the snapshot's own, and copies any other record into one", () => {
    const entry = { version: 1, length: 10, hashes: { sha256: '00'.repeat(32) }, extra: {} };
    const made = jsonObject<typeof entry>();
    made['targets.json'] = entry;
    expect(newSnapshot({ expires: expiresIn(NOW, DAY), meta: made }).meta).toBe(made);
    const literal: Record<string, typeof entry> = { 'targets.json': entry };
    const snapshot = newSnapshot({ expires: expiresIn(NOW, DAY), meta: literal });
    literal['a.json'] = entry;
    expect(isJsonObject(snapshot.meta)).toBe(true);
    expect(Object.keys(snapshot.meta)).toEqual(['targets.json']);
  });

  it('rotates a root role and drops keys no role uses any more', () => {
    const sim = new RepoSim();
    const old = sim.keys.timestamp[0]!;
    const next = withRootRole(sim.rootMd.signed, 'timestamp', { keys: [testKey(50).key] });
    expect(next.roles.timestamp.keyids).toEqual([testKey(50).keyid]);
    expect(next.keys[old.keyid]).toBeUndefined();
    expect(next.keys[testKey(50).keyid]).toBeDefined();
  });
});

describe('targets and delegations', () => {
  const base = () => newTargets({ expires: expiresIn(NOW, DAY) });

  it('adds, replaces and removes targets without touching the original', () => {
    const t0 = base();
    const t1 = withTarget(t0, 'a', targetFileFor(testCrypto, utf8Encode('a')));
    const t2 = withTarget(
      t1,
      'a',
      targetFileFor(testCrypto, utf8Encode('a2'), { custom: { mediaType: 'x' } }),
    );
    expect(Object.keys(t0.targets)).toEqual([]);
    expect(t2.targets.a).toMatchObject({ length: 2, custom: { mediaType: 'x' } });
    expect(Object.keys(withoutTarget(t2, 'a').targets)).toEqual([]);
    expect(code(() => withoutTarget(t0, 'a'))).toBe('NOT_FOUND');
    expect(code(() => withTarget(t0, '', targetFileFor(testCrypto, utf8Encode(''))))).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('a target named __proto__ is an ordinary target', () => {
    const t = withTarget(base(), '__proto__', targetFileFor(testCrypto, utf8Encode('p')));
    const md = sign(t, testKey(1));
    const parsed = parseMetadata('targets', serializeMetadata(md));
    expect(Object.keys(parsed.signed.targets)).toEqual(['__proto__']);
  });

  it('adds, replaces and removes delegations, keeping only keys in use', () => {
    const [k1, k2] = [testKey(61), testKey(62)];
    let t = withDelegation(base(), { name: 'a', keys: [k1.key], paths: ['a/*'] });
    t = withDelegation(t, { name: 'b', keys: [k2.key], pathHashPrefixes: ['0', '1'], terminating: true });
    expect(t.delegations!.roles.map((r) => r.name)).toEqual(['a', 'b']);
    t = withDelegation(t, { name: 'a', keys: [k2.key], paths: ['x/*'] });
    expect(t.delegations!.roles[0]).toMatchObject({ name: 'a', keyids: [k2.keyid], paths: ['x/*'] });
    expect(Object.keys(t.delegations!.keys)).toEqual([k2.keyid]);
    t = withoutDelegation(t, 'b');
    expect(t.delegations!.roles.map((r) => r.name)).toEqual(['a']);
    expect(code(() => withoutDelegation(t, 'b'))).toBe('NOT_FOUND');
    expect(code(() => withDelegation(t, { name: 'targets', keys: [k1.key], paths: ['*'] }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(code(() => withDelegation(t, { name: 'c', keys: [k1.key] }))).toBe('INVALID_ARGUMENT');
    expect(code(() => withDelegation(t, { name: 'c', keys: [k1.key], paths: ['*'], threshold: 2 }))).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('bumps version and expiry', () => {
    const t = bumpVersion(base(), expiresIn(NOW, 2 * DAY));
    expect(t).toMatchObject({ version: 2, expiresAt: NOW + 2 * DAY });
    expect(bumpVersion(t, t.expires, 9).version).toBe(9);
  });
});

describe('meta and signatures', () => {
  it('states length and hashes of the exact bytes served', () => {
    const sim = new RepoSim();
    const bytes = sim.bytes('targets');
    const meta = metaFileFor(testCrypto, bytes, 1, { hashes: ['sha256', 'sha512'] });
    expect(meta.length).toBe(bytes.length);
    expect(Object.keys(meta.hashes!)).toEqual(['sha256', 'sha512']);
    expect(() => checkLengthAndHashes(testCrypto, bytes, meta, 'targets')).not.toThrow();
    expect(metaFileFor(testCrypto, bytes, 3, { hashes: [], length: false })).toEqual({
      version: 3,
      extra: {},
    });
    const snapshotMeta = snapshotMetaFor(testCrypto, [{ role: 'targets', bytes, version: 4 }]);
    expect(snapshotMeta['targets.json']).toEqual({ version: 4, extra: {} });
  });

  it('adds signatures for a threshold and replaces a signer’s old signature', async () => {
    const [a, b] = [testKey(71), testKey(72)];
    const t = newTargets({ expires: expiresIn(NOW, DAY) });
    let md = sign(t, a);
    md = await addSignatures(md, [b.signer, a.signer]);
    expect(md.signatures.map((s) => s.keyid).sort()).toEqual([a.keyid, b.keyid].sort());
    const r = verifyMetadataSignatures(md, {
      crypto: testCrypto,
      role: 'targets',
      keyids: [a.keyid, b.keyid],
      threshold: 2,
      keys: { [a.keyid]: a.key, [b.keyid]: b.key },
    });
    expect(r.verified).toBe(true);
  });

  it('a repository built with these helpers passes the client rules end to end', () => {
    const sim = new RepoSim();
    const set = TrustedMetadataSet.fromTrustedRoot(sim.bytes('root'), { crypto: testCrypto, now: NOW });
    set.updateTimestamp(sim.bytes('timestamp'));
    set.updateSnapshot(sim.bytes('snapshot'));
    expect(set.updateTargets(sim.bytes('targets')).signed.targets['app/v1']).toBeDefined();
  });
});
