import { bytesOf, codeOf, DAY, NOW, sign, testCrypto, testKey } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { validateUpdate } from './collection-update.js';
import { utf8Encode } from './json.js';
import { type Metadata, parseMetadata, type Root, type Targets } from './metadata.js';
import {
  checkProposal,
  describeProposal,
  mergeSignatures,
  parseSignatureList,
  proposalDocuments,
  proposalId,
  signaturesFromJson,
} from './proposal.js';
import {
  addSignatures,
  bumpVersion,
  expiresIn,
  newRoot,
  newTargets,
  targetFileFor,
  withDelegation,
  withRootRole,
  withTarget,
} from './repository.js';
import type { CollectionState, StoredRole } from './update.js';

const k = {
  r1: testKey(31),
  r2: testKey(32),
  r3: testKey(33),
  r4: testKey(34),
  r5: testKey(35),
  t1: testKey(41),
  t2: testKey(42),
  t3: testKey(43),
  d1: testKey(51),
  d2: testKey(52),
  timestamp: testKey(61),
  snapshot: testKey(62),
  outsider: testKey(70),
};
const serverKeyids = { timestamp: [k.timestamp.keyid], snapshot: [k.snapshot.keyid] };

function rootV1(): Root {
  return newRoot({
    expires: expiresIn(NOW, 365 * DAY),
    roles: {
      root: { keys: [k.r1.key, k.r2.key, k.r3.key], threshold: 2 },
      targets: { keys: [k.t1.key, k.t2.key, k.t3.key], threshold: 2 },
      snapshot: { keys: [k.snapshot.key] },
      timestamp: { keys: [k.timestamp.key] },
    },
  });
}

function targetsV1(): Targets {
  let t = newTargets({ expires: expiresIn(NOW, 90 * DAY) });
  t = withTarget(t, 'app/v1', targetFileFor(testCrypto, utf8Encode('v1')));
  return withDelegation(t, {
    name: 'releases',
    keys: [k.d1.key, k.d2.key],
    threshold: 2,
    paths: ['releases/*'],
  });
}

const stored = <T extends Root | Targets>(md: Metadata<T>): StoredRole<T> => ({
  bytes: bytesOf(md),
  metadata: md,
});

function published(): CollectionState {
  return {
    root: stored(sign(rootV1(), k.r1, k.r2)),
    targets: stored(sign(targetsV1(), k.t1, k.t2)),
    delegated: new Map(),
  };
}

const uploads = (entries: Record<string, Metadata | Uint8Array>) =>
  new Map(Object.entries(entries).map(([name, v]) => [name, v instanceof Uint8Array ? v : bytesOf(v)]));

const check = (current: CollectionState, entries: Record<string, Metadata | Uint8Array>) =>
  checkProposal({ crypto: testCrypto, current, uploads: uploads(entries), now: NOW, serverKeyids });

function targetsV2(): Targets {
  return withTarget(
    bumpVersion(targetsV1(), expiresIn(NOW, 90 * DAY)),
    'app/v2',
    targetFileFor(testCrypto, utf8Encode('v2')),
  );
}

describe('checkProposal: 2-of-3 targets', () => {
  it('one signature of three keys: pending, one more needed, the keys that are missing', () => {
    const status = check(published(), { targets: sign(targetsV2(), k.t1) });
    expect(status.complete).toBe(false);
    expect(status.needed).toBe(1);
    expect(status.roles).toEqual([
      {
        role: 'targets',
        version: 2,
        complete: false,
        thresholds: [
          {
            by: 'root',
            threshold: 2,
            signed: [k.t1.keyid],
            missing: [k.t2.keyid, k.t3.keyid],
            needed: 1,
            verified: false,
          },
        ],
      },
    ]);
    expect(status.id).toMatch(/^[0-9a-f]{64}$/);
  });

  it('merging a second signature completes it, and validateUpdate then accepts it as a normal update', async () => {
    const first = sign(targetsV2(), k.t1);
    const second = (await addSignatures(first, [k.t2.signer])).signatures.filter(
      (s) => s.keyid === k.t2.keyid,
    );
    const merged = mergeSignatures(bytesOf(first), 'targets', second);
    const status = check(published(), { targets: merged });
    expect(status.complete).toBe(true);
    expect(status.needed).toBe(0);
    expect(status.id).toBe(check(published(), { targets: first }).id); // the same proposal: the signed part did not change
    const update = validateUpdate({
      crypto: testCrypto,
      current: published(),
      uploads: uploads({ targets: merged }),
      now: NOW,
      serverKeyids,
    });
    expect(update.targets.metadata.signed.version).toBe(2);
  });

  it('refuses a signature by a key outside the role, a signature that does not verify, and no signature at all', () => {
    const outsider = sign(targetsV2(), k.t1, k.outsider);
    expect(codeOf(() => check(published(), { targets: outsider }))).toBe('BAD_SIGNATURE');
    const bad = sign(targetsV2(), k.t1);
    const forged = { ...bad, signatures: [{ ...bad.signatures[0]!, sig: 'ab'.repeat(64) }] };
    expect(codeOf(() => check(published(), { targets: forged }))).toBe('BAD_SIGNATURE');
    expect(codeOf(() => check(published(), { targets: sign(targetsV2()) }))).toBe('THRESHOLD_NOT_MET');
  });

  it('refuses a pending version altered after the first signature', () => {
    const signedByOne = sign(targetsV2(), k.t1);
    // The same signature over a document whose signed part was changed afterwards.
    const altered = withTarget(targetsV2(), 'app/evil', targetFileFor(testCrypto, utf8Encode('evil')));
    const tampered = { ...sign(altered), signatures: signedByOne.signatures };
    expect(codeOf(() => check(published(), { targets: tampered }))).toBe('BAD_SIGNATURE');
    // A co-signer's signature over the altered bytes merged into the original is refused as well.
    const coSig = sign(altered, k.t2).signatures;
    const merged = mergeSignatures(bytesOf(signedByOne), 'targets', coSig);
    expect(codeOf(() => check(published(), { targets: merged }))).toBe('BAD_SIGNATURE');
  });

  it('refuses what could never be published: not the next version, expired, timestamp or snapshot, bad name', () => {
    const v3 = bumpVersion(targetsV2(), expiresIn(NOW, DAY));
    expect(codeOf(() => check(published(), { targets: sign(v3, k.t1) }))).toBe('VERSION_MISMATCH');
    expect(codeOf(() => check(published(), { targets: sign(targetsV1(), k.t1) }))).toBe('ROLLBACK');
    const expired = bumpVersion(targetsV1(), expiresIn(NOW, -DAY));
    expect(codeOf(() => check(published(), { targets: sign(expired, k.t1) }))).toBe('EXPIRED');
    expect(codeOf(() => check(published(), { snapshot: utf8Encode('{}') }))).toBe('UPDATE_REFUSED');
    expect(codeOf(() => check(published(), { timestamp: utf8Encode('{}') }))).toBe('UPDATE_REFUSED');
    expect(codeOf(() => check(published(), {}))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => check(published(), { '1.x': sign(targetsV2(), k.t1) }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => check(published(), { targets: utf8Encode('{"signed": 1}') }))).toBe(
      'INVALID_METADATA',
    );
    const spaced = utf8Encode(`${new TextDecoder().decode(bytesOf(sign(targetsV2(), k.t1)))} `);
    expect(codeOf(() => check(published(), { targets: spaced }))).toBe('NON_CANONICAL');
  });

  it('refuses a collection that keeps its snapshot key offline (the server must sign snapshot)', () => {
    const offline = { timestamp: serverKeyids.timestamp, snapshot: [k.outsider.keyid] };
    expect(
      codeOf(() =>
        checkProposal({
          crypto: testCrypto,
          current: published(),
          uploads: uploads({ targets: sign(targetsV2(), k.t1) }),
          now: NOW,
          serverKeyids: offline,
        }),
      ),
    ).toBe('UPDATE_REFUSED');
    // A co-signer who does not know the server's keys can still check everything else.
    expect(
      checkProposal({
        crypto: testCrypto,
        current: published(),
        uploads: uploads({ targets: sign(targetsV2(), k.t1) }),
        now: NOW,
      }).complete,
    ).toBe(false);
  });
});

describe('checkProposal: root', () => {
  const rotated = (): Root =>
    withRootRole(bumpVersion(rootV1(), expiresIn(NOW, 365 * DAY)), 'root', {
      keys: [k.r1.key, k.r2.key, k.r3.key, k.r4.key, k.r5.key],
      threshold: 3,
    });

  it('2-of-3 to 3-of-5: both thresholds reported, met one signature at a time', async () => {
    let md = sign(rotated(), k.r1);
    let status = check(published(), { root: md });
    expect(status.roles[0]!.thresholds.map((t) => [t.by, t.threshold, t.signed.length, t.needed])).toEqual([
      ['root v1', 2, 1, 1],
      ['root v2', 3, 1, 2],
    ]);
    expect(status.needed).toBe(3);
    md = await addSignatures(md, [k.r2.signer]);
    status = check(published(), { root: md });
    expect(status.roles[0]!.thresholds.map((t) => t.verified)).toEqual([true, false]);
    expect(status.complete).toBe(false);
    md = await addSignatures(md, [k.r3.signer]);
    status = check(published(), { root: md });
    expect(status.complete).toBe(true);
    const update = validateUpdate({
      crypto: testCrypto,
      current: published(),
      uploads: uploads({ root: md }),
      now: NOW,
      serverKeyids,
    });
    expect(update.root.metadata.signed.roles.root.threshold).toBe(3);
  });

  it('a new key signing alone counts for the new threshold only; a key in neither root is refused', () => {
    const status = check(published(), { root: sign(rotated(), k.r4) });
    expect(status.roles[0]!.thresholds.map((t) => t.signed.length)).toEqual([0, 1]);
    expect(codeOf(() => check(published(), { root: sign(rotated(), k.r4, k.outsider) }))).toBe(
      'BAD_SIGNATURE',
    );
  });

  it('root v1 of a new collection: only its own threshold; it must come with targets', () => {
    const empty: CollectionState = { delegated: new Map() };
    const status = check(empty, { root: sign(rootV1(), k.r1), targets: sign(targetsV1(), k.t1) });
    expect(status.roles.map((r) => [r.role, r.thresholds.length, r.complete])).toEqual([
      ['root', 1, false],
      ['targets', 1, false],
    ]);
    expect(codeOf(() => check(empty, { root: sign(rootV1(), k.r1) }))).toBe('UPDATE_REFUSED');
  });

  it('root v1 by other keys where the collection exists: CONFLICT (created again), not ROLLBACK', () => {
    const other = withRootRole(rootV1(), 'root', { keys: [k.outsider.key] });
    const again = () =>
      check(published(), { root: sign(other, k.outsider), targets: sign(targetsV1(), k.t1) });
    expect(codeOf(again)).toBe('CONFLICT');
    expect(codeOf(() => check(published(), { root: sign(rootV1(), k.r1) }))).toBe('ROLLBACK');
  });

  it('a root that changes who signs targets must come with targets signed by the new keys', () => {
    const newTargetsKeys = withRootRole(bumpVersion(rootV1(), expiresIn(NOW, 365 * DAY)), 'targets', {
      keys: [k.t1.key, k.t2.key, k.t3.key],
      threshold: 3,
    });
    expect(codeOf(() => check(published(), { root: sign(newTargetsKeys, k.r1) }))).toBe('UPDATE_REFUSED');
    const status = check(published(), { root: sign(newTargetsKeys, k.r1), targets: sign(targetsV2(), k.t1) });
    expect(status.roles.find((r) => r.role === 'targets')!.thresholds[0]!.threshold).toBe(3);
  });

  it("refuses a timestamp role that is not the server's key", () => {
    const wrong = withRootRole(bumpVersion(rootV1(), expiresIn(NOW, 365 * DAY)), 'timestamp', {
      keys: [k.outsider.key],
    });
    expect(codeOf(() => check(published(), { root: sign(wrong, k.r1) }))).toBe('INVALID_METADATA');
  });
});

describe('checkProposal: a 2-of-2 delegated role', () => {
  const releases = (tag: string) =>
    withTarget(
      newTargets({ expires: expiresIn(NOW, 90 * DAY) }),
      tag,
      targetFileFor(testCrypto, utf8Encode(tag)),
    );

  it('pending with one signature, complete with two; outside the delegated paths is refused', () => {
    const one = check(published(), { releases: sign(releases('releases/r1'), k.d1) });
    expect(one.roles[0]!.thresholds[0]!).toMatchObject({ by: 'targets', threshold: 2, needed: 1 });
    expect(check(published(), { releases: sign(releases('releases/r1'), k.d1, k.d2) }).complete).toBe(true);
    expect(codeOf(() => check(published(), { releases: sign(releases('app/evil'), k.d1) }))).toBe(
      'PATH_NOT_DELEGATED',
    );
    expect(codeOf(() => check(published(), { other: sign(releases('releases/r1'), k.d1) }))).toBe(
      'UPDATE_REFUSED',
    );
  });

  it('competing proposals for one version have different ids', () => {
    const a = check(published(), { releases: sign(releases('releases/a'), k.d1) });
    const b = check(published(), { releases: sign(releases('releases/b'), k.d2) });
    expect(a.id).not.toBe(b.id);
  });
});

describe('checkProposal: a role that two delegators name (the same rule as validateUpdate)', () => {
  const x = testKey(81);
  const role = (...tags: string[]) => {
    let t = newTargets({ expires: expiresIn(NOW, 90 * DAY) });
    for (const tag of tags) t = withTarget(t, tag, targetFileFor(testCrypto, utf8Encode(tag)));
    return t;
  };
  // targets delegates a and b; a gives `shared` to x alone, for releases/a/*; b to d1 and d2 (2 of 2), for more.
  function twoDelegators(): CollectionState {
    const top = withDelegation(
      withDelegation(bumpVersion(targetsV1(), expiresIn(NOW, DAY)), {
        name: 'a',
        keys: [k.d1.key],
        paths: ['*'],
      }),
      { name: 'b', keys: [k.d2.key], paths: ['*'] },
    );
    const a = withDelegation(role(), { name: 'shared', keys: [x.key], paths: ['releases/a/*'] });
    const b = withDelegation(role(), {
      name: 'shared',
      keys: [k.d1.key, k.d2.key],
      threshold: 2,
      paths: ['releases/a/*', 'elsewhere/*'],
    });
    return {
      ...published(),
      targets: stored(sign(top, k.t1, k.t2)),
      delegated: new Map([
        ['a', stored(sign(a, k.d1))],
        ['b', stored(sign(b, k.d2))],
      ]),
    };
  }

  it('signed by keys of the second delegator: pending through it, complete when its threshold is met', () => {
    const state = twoDelegators();
    const one = check(state, { shared: sign(role('releases/a/1'), k.d1) });
    expect(one.roles).toEqual([
      {
        role: 'shared',
        version: 1,
        complete: false,
        oneOf: true,
        thresholds: [
          { by: 'a', threshold: 1, signed: [], missing: [x.keyid], needed: 1, verified: false },
          { by: 'b', threshold: 2, signed: [k.d1.keyid], missing: [k.d2.keyid], needed: 1, verified: false },
        ],
      },
    ]);
    expect(one.needed).toBe(1);
    const both = sign(role('releases/a/1'), k.d1, k.d2);
    expect(check(state, { shared: both }).complete).toBe(true);
    expect(
      validateUpdate({
        crypto: testCrypto,
        current: state,
        uploads: uploads({ shared: both }),
        now: NOW,
        serverKeyids,
      }).changed,
    ).toHaveLength(1);
    // Either delegator is enough: x alone meets a's threshold.
    expect(check(state, { shared: sign(role('releases/a/1'), x) }).complete).toBe(true);
  });

  it("outside the first delegator's paths but inside the second's: through the second only", () => {
    const state = twoDelegators();
    const status = check(state, { shared: sign(role('elsewhere/1'), k.d1) });
    expect(status.roles[0]!.thresholds.map((t) => t.by)).toEqual(['b']);
    expect(status.roles[0]!.oneOf).toBeUndefined();
    // x signs for a, whose paths do not hold elsewhere/1: its signature counts for no threshold.
    expect(codeOf(() => check(state, { shared: sign(role('elsewhere/1'), x) }))).toBe('BAD_SIGNATURE');
    // An update refuses it too: only b can trust it, and none of b's keys signed.
    expect(() =>
      validateUpdate({
        crypto: testCrypto,
        current: state,
        uploads: uploads({ shared: sign(role('elsewhere/1'), x) }),
        now: NOW,
        serverKeyids,
      }),
    ).toThrow('shared: 0 of the 2 required signatures by keys of b');
  });

  it('a stored role that a proposed delegator no longer trusts must be proposed with it, as an update must', () => {
    const r1 = sign(role('releases/r1'), k.d1, k.d2);
    const state = { ...published(), delegated: new Map([['releases', stored(r1)]]) };
    // targets v2 gives releases to the outsider: the stored releases v1 is trusted no more.
    const moved = withDelegation(targetsV2(), {
      name: 'releases',
      keys: [k.outsider.key],
      paths: ['releases/*'],
    });
    expect(codeOf(() => check(state, { targets: sign(moved, k.t1) }))).toBe('UPDATE_REFUSED');
    expect(
      codeOf(() =>
        validateUpdate({
          crypto: testCrypto,
          current: state,
          uploads: uploads({ targets: sign(moved, k.t1, k.t2) }),
          now: NOW,
          serverKeyids,
        }),
      ),
    ).toBe('THRESHOLD_NOT_MET');
    const r2 = sign(bumpVersion(role('releases/r1'), expiresIn(NOW, DAY)), k.outsider);
    expect(check(state, { targets: sign(moved, k.t1), releases: r2 }).roles.map((r) => r.complete)).toEqual([
      false,
      true,
    ]);
  });
});

describe('describeProposal', () => {
  it('targets added, removed and changed; delegations; root keys and thresholds', () => {
    let next = withTarget(targetsV2(), 'app/v1', targetFileFor(testCrypto, utf8Encode('v1 rebuilt')));
    next = withTarget(next, 'app/v3', targetFileFor(testCrypto, utf8Encode('v3')));
    next = withDelegation(next, { name: 'nightly', keys: [k.d1.key], paths: ['nightly/*'] });
    const changes = describeProposal(published(), uploads({ targets: sign(next, k.t1) }));
    expect(changes).toEqual([
      {
        role: 'targets',
        from: 1,
        to: 2,
        expires: next.expires,
        targets: { added: ['app/v2', 'app/v3'], removed: [], changed: ['app/v1'] },
        delegations: { added: ['nightly'], removed: [], changed: [] },
      },
    ]);
    const root = withRootRole(bumpVersion(rootV1(), expiresIn(NOW, 365 * DAY)), 'root', {
      keys: [k.r1.key, k.r2.key, k.r4.key],
      threshold: 3,
    });
    const [rootChanges] = describeProposal(published(), uploads({ root: sign(root, k.r1) }));
    expect(rootChanges!.keys).toEqual([
      { role: 'root', added: [k.r4.keyid], removed: [k.r3.keyid], threshold: { from: 2, to: 3 } },
    ]);
  });
});

describe('signature lists and ids', () => {
  it('parses {keyid, sig} strictly', () => {
    const sig = { keyid: k.t1.keyid, sig: 'ab'.repeat(64) };
    expect(parseSignatureList([sig], 'targets')).toEqual([{ ...sig, extra: {} }]);
    for (const bad of [
      [],
      [{ keyid: 'x', sig: 'ab' }],
      [{ ...sig, extra: 1 }],
      [{ keyid: k.t1.keyid, sig: 'XY' }],
      {},
    ]) {
      expect(codeOf(() => parseSignatureList(bad as never, 'targets'))).toBe('INVALID_ARGUMENT');
    }
    expect(signaturesFromJson({ signatures: { targets: [sig] } }).get('targets')).toHaveLength(1);
    expect(codeOf(() => signaturesFromJson({ signatures: {} }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => signaturesFromJson([]))).toBe('INVALID_ARGUMENT');
  });

  it('the id depends on the signed parts only, and documents read back', () => {
    const a = sign(targetsV2(), k.t1);
    const b = sign(targetsV2(), k.t2);
    expect(proposalId(testCrypto, new Map([['targets', a]]))).toBe(
      proposalId(testCrypto, new Map([['targets', b]])),
    );
    const docs = proposalDocuments(uploads({ targets: a }));
    expect(docs.get('targets')!.signed.version).toBe(2);
    expect(
      parseMetadata('targets', mergeSignatures(bytesOf(a), 'targets', b.signatures)).signatures,
    ).toHaveLength(2);
  });
});
