/**
 * Threshold-signing proposals: every refusal with its full fields, the status of mixed proposals,
 * signature lists and merges, and the change summary co-signers read: the cases mutation testing
 * found unchecked.
 */
import { bytesOf, DAY, NOW, refusal, sign, testCrypto, testKey } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { utf8Encode } from './json.js';
import { type Metadata, parseMetadata, type Root, type Targets } from './metadata.js';
import {
  checkProposal,
  describeProposal,
  mergeSignatures,
  parseSignatureList,
  proposalId,
  signaturesFromJson,
} from './proposal.js';
import {
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
  r1: testKey(131),
  r2: testKey(132),
  r3: testKey(133),
  r4: testKey(134),
  t1: testKey(141),
  t2: testKey(142),
  t3: testKey(143),
  d1: testKey(151),
  d2: testKey(152),
  timestamp: testKey(161),
  snapshot: testKey(162),
  offline: testKey(163),
  outsider: testKey(170),
};
const serverKeyids = { timestamp: [k.timestamp.keyid], snapshot: [k.snapshot.keyid] };

function rootV1(snapshot = k.snapshot): Root {
  return newRoot({
    expires: expiresIn(NOW, 365 * DAY),
    roles: {
      root: { keys: [k.r1.key, k.r2.key, k.r3.key], threshold: 2 },
      targets: { keys: [k.t1.key, k.t2.key, k.t3.key], threshold: 2 },
      snapshot: { keys: [snapshot.key] },
      timestamp: { keys: [k.timestamp.key] },
    },
  });
}

const targetsV1 = (): Targets =>
  withDelegation(
    withTarget(
      newTargets({ expires: expiresIn(NOW, 90 * DAY) }),
      'app/v1',
      targetFileFor(testCrypto, utf8Encode('v1')),
    ),
    {
      name: 'releases',
      keys: [k.d1.key, k.d2.key],
      threshold: 2,
      paths: ['releases/*'],
    },
  );

const targetsV2 = (): Targets => bumpVersion(targetsV1(), expiresIn(NOW, 90 * DAY));
const releases = (...paths: string[]): Targets => {
  let t = newTargets({ expires: expiresIn(NOW, 30 * DAY) });
  for (const p of paths) t = withTarget(t, p, targetFileFor(testCrypto, utf8Encode(p)));
  return t;
};

const stored = <T extends Root | Targets>(md: Metadata<T>): StoredRole<T> => ({
  bytes: bytesOf(md),
  metadata: md,
});
const published = (root = rootV1()): CollectionState => ({
  root: stored(sign(root, k.r1, k.r2)),
  targets: stored(sign(targetsV1(), k.t1, k.t2)),
  delegated: new Map(),
});
const empty: CollectionState = { delegated: new Map() };

const uploads = (entries: Record<string, Metadata | Uint8Array>) =>
  new Map(Object.entries(entries).map(([name, v]) => [name, v instanceof Uint8Array ? v : bytesOf(v)]));
const check = (current: CollectionState, entries: Record<string, Metadata | Uint8Array>, now = NOW) =>
  checkProposal({ crypto: testCrypto, current, uploads: uploads(entries), now, serverKeyids });

const rootV2 = () => bumpVersion(rootV1(), expiresIn(NOW, 365 * DAY));

describe('checkProposal: what a proposal may carry', () => {
  it('at least one role, at most 1000, never timestamp or snapshot', () => {
    expect(
      refusal(() =>
        checkProposal({
          crypto: testCrypto,
          current: published(),
          uploads: new Map(),
          now: NOW,
          serverKeyids,
        }),
      ),
    ).toEqual({
      code: 'INVALID_ARGUMENT',
      message: 'a proposal must carry at least one role',
    });
    const many = (n: number) => new Map(Array.from({ length: n }, (_, i) => [`r${i}`, utf8Encode('{}')]));
    expect(
      refusal(() =>
        checkProposal({ crypto: testCrypto, current: empty, uploads: many(1001), now: NOW, serverKeyids }),
      ),
    ).toEqual({
      code: 'TOO_LARGE',
      message: 'a proposal carries at most 1000 roles',
      expected: 1000,
      found: 1001,
    });
    expect(
      refusal(() =>
        checkProposal({ crypto: testCrypto, current: empty, uploads: many(1000), now: NOW, serverKeyids }),
      ).code,
    ).toBe('UPDATE_REFUSED');
    for (const role of ['timestamp', 'snapshot']) {
      expect(refusal(() => check(published(), { [role]: utf8Encode('{}') }))).toEqual({
        code: 'UPDATE_REFUSED',
        message: `${role} cannot be proposed: the server signs it when the proposal is published`,
        role,
      });
    }
  });

  it('root and targets for a new collection', () => {
    expect(refusal(() => check(empty, { targets: sign(targetsV1(), k.t1) }))).toEqual({
      code: 'UPDATE_REFUSED',
      message: 'the first update of a collection must carry root',
      role: 'root',
    });
    expect(refusal(() => check(empty, { root: sign(rootV1(), k.r1) }))).toEqual({
      code: 'UPDATE_REFUSED',
      message: 'the first update of a collection must carry targets',
      role: 'targets',
    });
  });

  it('a collection that keeps its snapshot key offline', () => {
    expect(refusal(() => check(published(rootV1(k.offline)), { targets: sign(targetsV2(), k.t1) }))).toEqual({
      code: 'UPDATE_REFUSED',
      message:
        'the collection keeps its snapshot key offline: threshold signing needs the server to sign snapshot',
      role: 'snapshot',
    });
  });
});

describe('checkProposal: signatures', () => {
  it('a signature that does not verify, even by a key only the trusted root names', () => {
    const v2 = withRootRole(rootV2(), 'root', { keys: [k.r1.key, k.r2.key, k.r4.key], threshold: 2 });
    const md = sign(v2, k.r1);
    const forged = {
      ...md,
      signatures: [...md.signatures, { keyid: k.r3.keyid, sig: '00'.repeat(64), extra: {} }],
    };
    expect(refusal(() => check(published(), { root: forged }))).toEqual({
      code: 'BAD_SIGNATURE',
      message: `root: the signature by ${k.r3.keyid} does not verify`,
      role: 'root',
      found: k.r3.keyid,
      details: { reason: 'does-not-verify' },
    });
  });

  it('a signature by a key outside the role, and no signature by a key of the role', () => {
    expect(refusal(() => check(published(), { targets: sign(targetsV2(), k.t1, k.outsider) }))).toEqual({
      code: 'BAD_SIGNATURE',
      message: `targets: ${k.outsider.keyid} is not a key of the role`,
      role: 'targets',
      found: k.outsider.keyid,
      details: { reason: 'not-a-role-key' },
    });
    expect(refusal(() => check(published(), { targets: sign(targetsV2()) }))).toEqual({
      code: 'THRESHOLD_NOT_MET',
      message: 'targets: a proposal must be signed by at least one key of the role',
      role: 'targets',
      expected: '>= 1',
      found: 0,
    });
  });

  it('complete only when every role is: a complete targets beside an incomplete delegated role', () => {
    const status = check(published(), {
      targets: sign(targetsV2(), k.t1, k.t2),
      releases: sign(releases('releases/a'), k.d1),
    });
    expect(status.roles.map((r) => [r.role, r.complete])).toEqual([
      ['targets', true],
      ['releases', false],
    ]);
    expect(status.complete).toBe(false);
    expect(status.needed).toBe(1);
  });
});

describe('checkProposal: root', () => {
  it('the id names the roles it covers', () => {
    const root = sign(rootV2(), k.r1);
    const targets = sign(targetsV2(), k.t1);
    expect(check(published(), { root, targets }).id).toBe(
      proposalId(
        testCrypto,
        new Map<string, Metadata>([
          ['root', root],
          ['targets', targets],
        ]),
      ),
    );
  });

  it('without the server key ids (a co-signer), root is checked against its own timestamp keys', () => {
    const status = checkProposal({
      crypto: testCrypto,
      current: published(),
      uploads: uploads({ root: sign(rootV2(), k.r1) }),
      now: NOW,
    });
    expect(status.roles[0]!.thresholds.map((t) => [t.by, t.needed])).toEqual([
      ['root v1', 1],
      ['root v2', 1],
    ]);
  });

  it('a root that does not parse, not the next version, expired: named root', () => {
    expect(refusal(() => check(published(), { root: utf8Encode('{"signed":') })).message).toMatch(/^root\b/);
    expect(
      refusal(() => check(published(), { root: sign(bumpVersion(rootV1(), expiresIn(NOW, DAY), 3), k.r1) })),
    ).toMatchObject({
      code: 'VERSION_MISMATCH',
      role: 'root',
      expected: 2,
      found: 3,
    });
    expect(
      refusal(() => check(published(), { root: sign(bumpVersion(rootV1(), expiresIn(NOW, -DAY)), k.r1) })),
    ).toMatchObject({
      code: 'EXPIRED',
      role: 'root',
    });
  });

  it('an expired current root refuses a targets proposal, for role root', () => {
    const later = NOW + 400 * DAY;
    const t2 = sign(bumpVersion(targetsV1(), expiresIn(later, DAY)), k.t1);
    expect(refusal(() => check(published(), { targets: t2 }, later))).toMatchObject({
      code: 'EXPIRED',
      role: 'root',
    });
  });

  it('a root that changes who signs targets, without targets', () => {
    const v2 = withRootRole(rootV2(), 'targets', { keys: [k.outsider.key] });
    expect(refusal(() => check(published(), { root: sign(v2, k.r1) }))).toEqual({
      code: 'UPDATE_REFUSED',
      message:
        'the proposed root changes who signs targets: propose targets, signed by the new keys, with it',
      role: 'targets',
    });
  });
});

describe('checkProposal: targets and delegated roles', () => {
  it('targets that do not parse, not the next version, expired, badly delegating: named targets', () => {
    expect(refusal(() => check(published(), { targets: utf8Encode('{"signed":') })).message).toMatch(
      /^targets\b/,
    );
    expect(
      refusal(() =>
        check(published(), { targets: sign(bumpVersion(targetsV1(), expiresIn(NOW, DAY), 3), k.t1) }),
      ),
    ).toMatchObject({
      code: 'VERSION_MISMATCH',
      role: 'targets',
    });
    expect(
      refusal(() =>
        check(published(), { targets: sign(bumpVersion(targetsV1(), expiresIn(NOW, -DAY)), k.t1) }),
      ),
    ).toMatchObject({
      code: 'EXPIRED',
      role: 'targets',
    });
    const bad = structuredClone(targetsV2()) as any;
    bad.delegations.roles[0].name = '../x';
    expect(refusal(() => check(published(), { targets: sign(bad, k.t1) })).message).toBe(
      'targets: delegated role name "../x"',
    );
  });

  it('a bad delegated role name, cut to 300 characters; a role nobody delegates', () => {
    const long = `1.${'x'.repeat(400)}`;
    expect(refusal(() => check(published(), { [long]: sign(releases(), k.d1) }))).toEqual({
      code: 'INVALID_ARGUMENT',
      message: `${JSON.stringify(long.slice(0, 300))} is not a valid role name`,
      role: long.slice(0, 300),
      expected: 'segments of [A-Za-z0-9._-] separated by /, not VERSION.NAME, at most 255 characters',
    });
    expect(refusal(() => check(published(), { nobody: sign(releases(), k.d1) }))).toEqual({
      code: 'UPDATE_REFUSED',
      message: 'nobody: no role of the collection delegates to it',
      role: 'nobody',
    });
  });
});

describe('parseSignatureList', () => {
  const good = (n: number) => Array.from({ length: n }, () => ({ keyid: k.t1.keyid, sig: 'ab' }));
  const message = 'targets: a signature is {"keyid": 64 hex digits, "sig": hex}';

  it('1 to 64 signatures', () => {
    expect(parseSignatureList(good(64), 'targets')).toHaveLength(64);
    expect(refusal(() => parseSignatureList(good(65), 'targets'))).toEqual({
      code: 'INVALID_ARGUMENT',
      message: 'targets: signatures must be a list of 1 to 64 {keyid, sig}',
      role: 'targets',
    });
  });

  it('each one exactly {keyid, sig} of strings, the sig at most 4096 hex digits (an even number)', () => {
    expect(parseSignatureList([{ keyid: k.t1.keyid, sig: 'a'.repeat(4096) }], 'targets')).toHaveLength(1);
    for (const bad of [
      null,
      'ab',
      { keyid: k.t1.keyid, sig: ['ab'] },
      { keyid: k.t1.keyid, sig: 'a'.repeat(4098) },
    ]) {
      expect(refusal(() => parseSignatureList([bad] as never, 'targets'))).toEqual({
        code: 'INVALID_ARGUMENT',
        message,
        role: 'targets',
      });
    }
  });
});

describe('mergeSignatures', () => {
  const md = sign(targetsV2(), k.t1);
  const sigsOf = (bytes: Uint8Array) =>
    parseMetadata('targets', bytes).signatures.map((s) => [s.keyid, s.sig]);

  it("a key's new signature replaces its earlier one", () => {
    const stale = bytesOf({ ...md, signatures: [{ keyid: k.t1.keyid, sig: '00'.repeat(64), extra: {} }] });
    expect(sigsOf(mergeSignatures(stale, 'targets', md.signatures))).toEqual([
      [k.t1.keyid, md.signatures[0]!.sig],
    ]);
  });

  it('a signature sent twice is kept once', () => {
    const second = sign(targetsV2(), k.t2).signatures[0]!;
    expect(sigsOf(mergeSignatures(bytesOf(md), 'targets', [second, second]))).toEqual([
      [k.t1.keyid, md.signatures[0]!.sig],
      [k.t2.keyid, second.sig],
    ]);
  });
});

describe('signaturesFromJson', () => {
  const message = 'signatures are sent as {"signatures": {"ROLE": [{keyid, sig}]}}';
  const list = [{ keyid: k.t1.keyid, sig: 'ab' }];

  it('refuses anything but {"signatures": {ROLE: [...]}}', () => {
    for (const doc of [
      null,
      'x',
      5,
      [],
      { signatures: null },
      { signatures: 'ab' },
      { signatures: ['x'] },
      { other: 1 },
    ]) {
      expect(refusal(() => signaturesFromJson(doc as never))).toEqual({ code: 'INVALID_ARGUMENT', message });
    }
  });

  it('1 to 1000 roles', () => {
    const roles = (n: number) => ({
      signatures: Object.fromEntries(Array.from({ length: n }, (_, i) => [`r${i}`, list])),
    });
    expect(signaturesFromJson(roles(1000)).size).toBe(1000);
    for (const n of [0, 1001]) {
      expect(refusal(() => signaturesFromJson(roles(n)))).toEqual({
        code: 'INVALID_ARGUMENT',
        message: 'signatures must name at least one role',
      });
    }
  });
});

describe('describeProposal', () => {
  it('a new collection: everything is added, nothing was there before', () => {
    const root = rootV1();
    const [r, t, d] = describeProposal(
      empty,
      uploads({
        root: sign(root, k.r1),
        targets: sign(targetsV1(), k.t1),
        releases: sign(releases('releases/a'), k.d1),
      }),
    );
    expect(r).toMatchObject({ role: 'root', from: null, to: 1 });
    expect(r!.keys).toEqual(
      (['root', 'timestamp', 'snapshot', 'targets'] as const).map((name) => ({
        role: name,
        added: [...root.roles[name].keyids],
        removed: [],
        threshold: { from: null, to: root.roles[name].threshold },
      })),
    );
    expect(t).toMatchObject({
      role: 'targets',
      from: null,
      targets: { added: ['app/v1'], removed: [], changed: [] },
      delegations: { added: ['releases'], removed: [], changed: [] },
    });
    expect(d).toMatchObject({ role: 'releases', from: null, to: 1, targets: { added: ['releases/a'] } });
  });

  it('root: only the roles whose keys or threshold change, each kind of change alone', () => {
    let v2 = withRootRole(rootV2(), 'root', { keys: [k.r1.key, k.r2.key, k.r3.key, k.r4.key], threshold: 2 });
    v2 = withRootRole(v2, 'targets', { keys: [k.t1.key, k.t2.key], threshold: 2 });
    const only = (next: Root) => describeProposal(published(), uploads({ root: sign(next, k.r1) }))[0]!;
    expect(only(v2)).toMatchObject({ from: 1, to: 2 });
    expect(only(v2).keys).toEqual([
      { role: 'root', added: [k.r4.keyid], removed: [], threshold: { from: 2, to: 2 } },
      { role: 'targets', added: [], removed: [k.t3.keyid], threshold: { from: 2, to: 2 } },
    ]);
    const thresholdOnly = withRootRole(rootV2(), 'targets', {
      keys: [k.t1.key, k.t2.key, k.t3.key],
      threshold: 3,
    });
    expect(only(thresholdOnly).keys).toEqual([
      { role: 'targets', added: [], removed: [], threshold: { from: 2, to: 3 } },
    ]);
    expect(only(rootV2()).keys).toEqual([]);
  });

  it('a target whose hash changes at the same length is changed; names come sorted', () => {
    let next = withTarget(targetsV2(), 'app/v1', targetFileFor(testCrypto, utf8Encode('v9')));
    next = withDelegation(next, { name: 'zeta', keys: [k.d1.key], paths: ['z/*'] });
    next = withDelegation(next, { name: 'alpha', keys: [k.d1.key], paths: ['a/*'] });
    const [t] = describeProposal(published(), uploads({ targets: sign(next, k.t1) }));
    expect(t!.targets).toEqual({ added: [], removed: [], changed: ['app/v1'] });
    expect(t!.delegations).toEqual({ added: ['alpha', 'zeta'], removed: [], changed: [] });
    const current = published();
    const before = withDelegation(
      withDelegation(targetsV1(), { name: 'zeta', keys: [k.d1.key], paths: ['z/*'] }),
      {
        name: 'alpha',
        keys: [k.d1.key],
        paths: ['a/*'],
      },
    );
    const state = { ...current, targets: stored(sign(before, k.t1, k.t2)) };
    const dropped = bumpVersion(
      withTarget(
        newTargets({ expires: expiresIn(NOW, DAY) }),
        'other',
        targetFileFor(testCrypto, utf8Encode('o')),
      ),
      expiresIn(NOW, DAY),
    );
    const [gone] = describeProposal(state, uploads({ targets: sign(dropped, k.t1) }));
    expect(gone!.targets).toEqual({ added: ['other'], removed: ['app/v1'], changed: [] });
    expect(gone!.delegations).toEqual({ added: [], removed: ['alpha', 'releases', 'zeta'], changed: [] });
  });

  it('changed delegations come sorted too', () => {
    const zetaAlpha = (suffix: string) =>
      withDelegation(
        withDelegation(targetsV1(), { name: 'zeta', keys: [k.d1.key], paths: [`z${suffix}/*`] }),
        {
          name: 'alpha',
          keys: [k.d1.key],
          paths: [`a${suffix}/*`],
        },
      );
    const state = { ...published(), targets: stored(sign(zetaAlpha(''), k.t1, k.t2)) };
    const changed = bumpVersion(zetaAlpha('2'), expiresIn(NOW, DAY));
    const [t] = describeProposal(state, uploads({ targets: sign(changed, k.t1) }));
    expect(t!.delegations).toEqual({ added: [], removed: [], changed: ['alpha', 'zeta'] });
  });

  it('a delegated role is compared with its own published version, not with targets', () => {
    const r1 = sign(releases('releases/a'), k.d1, k.d2);
    const state = { ...published(), delegated: new Map([['releases', stored(r1)]]) };
    const r2 = sign(bumpVersion(releases('releases/a', 'releases/b'), expiresIn(NOW, DAY)), k.d1);
    const [d] = describeProposal(state, uploads({ releases: r2 }));
    expect(d).toMatchObject({
      role: 'releases',
      from: 1,
      to: 2,
      targets: { added: ['releases/b'], removed: [], changed: [] },
    });
    const [fresh] = describeProposal(published(), uploads({ nightly: sign(releases(), k.d1) }));
    expect(fresh).toMatchObject({ role: 'nightly', from: null });
    expect(
      refusal(() => describeProposal(published(), uploads({ releases: utf8Encode('{"signed":') }))).message,
    ).toMatch(/^releases\b/);
  });
});
