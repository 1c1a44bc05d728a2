/**
 * The repository-side rules (validateUpdate and its checks), refusal by refusal with everything a
 * writer reads back (code, message, role, expected, found, details), and the choices it makes
 * about snapshot and stored roles: the cases mutation testing found unchecked.
 */
import { bytesOf, DAY, NOW, refusal, sign, testCrypto, testKey } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { validateUpdate } from './collection-update.js';
import { utf8Encode } from './json.js';
import { type Metadata, parseSignedEnvelope, type Root, type Signed, type Targets } from './metadata.js';
import {
  bumpVersion,
  expiresIn,
  newRoot,
  newSnapshot,
  newTargets,
  targetFileFor,
  withDelegation,
  withRootRole,
  withTarget,
} from './repository.js';
import {
  type CollectionState,
  isValidRoleName,
  parseUploaded,
  snapshotMetaForState,
  type ValidatedUpdate,
} from './update.js';

const keys = {
  root: testKey(111),
  targets: testKey(113),
  timestamp: testKey(114),
  snapshot: testKey(115),
  offline: testKey(116),
  a: testKey(117),
  b: testKey(118),
  other: testKey(119),
};
const serverKeyids = { timestamp: [keys.timestamp.keyid], snapshot: [keys.snapshot.keyid] };
const UNLISTED = 'ab'.repeat(32);

function rootV1(snapshotKeys = [keys.snapshot], snapshotThreshold = 1): Root {
  return newRoot({
    expires: expiresIn(NOW, 365 * DAY),
    roles: {
      root: { keys: [keys.root.key] },
      targets: { keys: [keys.targets.key] },
      snapshot: { keys: snapshotKeys.map((k) => k.key), threshold: snapshotThreshold },
      timestamp: { keys: [keys.timestamp.key] },
    },
  });
}

const targetsV1 = (): Targets =>
  withDelegation(newTargets({ expires: expiresIn(NOW, 90 * DAY) }), {
    name: 'a',
    keys: [keys.a.key],
    paths: ['a/*'],
  });

const role = (paths: string[], version = 1): Targets => {
  let t = newTargets({ expires: expiresIn(NOW, 30 * DAY), version });
  for (const p of paths) t = withTarget(t, p, targetFileFor(testCrypto, utf8Encode(p)));
  return t;
};

const uploads = (entries: Record<string, Metadata | Uint8Array>) =>
  new Map(Object.entries(entries).map(([k, v]) => [k, v instanceof Uint8Array ? v : bytesOf(v)]));

const apply = (u: ValidatedUpdate): CollectionState => ({
  root: u.root,
  targets: u.targets,
  delegated: u.delegated,
  snapshot: u.snapshot,
});

const empty: CollectionState = { delegated: new Map() };

const update = (current: CollectionState, entries: Record<string, Metadata | Uint8Array>, now = NOW) =>
  validateUpdate({ crypto: testCrypto, current, uploads: uploads(entries), now, serverKeyids });

const first = (root = rootV1(), targets = targetsV1()) =>
  apply(update(empty, { root: sign(root, keys.root), targets: sign(targets, keys.targets) }));

/** Signed part edited by hand (what the repository helpers would not write). */
const edited = <T extends Signed>(signed: T, change: (s: any) => void): T => {
  const copy = structuredClone(signed) as any;
  change(copy);
  return copy as T;
};

describe('isValidRoleName', () => {
  it('255 characters are allowed, 256 are not', () => {
    expect(isValidRoleName('x'.repeat(255))).toBe(true);
    expect(isValidRoleName('x'.repeat(256))).toBe(false);
  });

  it('only a leading VERSION. is refused, whatever the number of digits', () => {
    expect(isValidRoleName('12.releases')).toBe(false);
    expect(isValidRoleName('v1.2')).toBe(true);
    expect(isValidRoleName('a/1.x')).toBe(true);
  });

  it('every character of a segment is checked, not only the first ones', () => {
    expect(isValidRoleName('aé')).toBe(false);
    expect(isValidRoleName('a b')).toBe(false);
  });

  it('no segment is . or .., and no segment starts with a dot', () => {
    for (const name of ['.', '..', 'a/..', './a', 'a/.hidden'])
      expect(isValidRoleName(name), name).toBe(false);
    expect(isValidRoleName('a/b.c')).toBe(true);
  });
});

describe('parseUploaded', () => {
  const md = sign(targetsV1(), keys.targets);
  const canonical = bytesOf(md);
  const text = new TextDecoder().decode(canonical);

  it('names the role in a parse error', () => {
    const err = refusal(() => parseUploaded('targets', utf8Encode('{"signed":'), 'releases'));
    expect(err.code).toBe('INVALID_JSON');
    expect(err.message).toMatch(/^releases\b/);
  });

  it('refuses a space before the closing brace', () => {
    const spaced = utf8Encode(`${text.slice(0, -1)} }`);
    expect(refusal(() => parseUploaded('targets', spaced, 'targets'))).toEqual({
      code: 'NON_CANONICAL',
      message: 'targets: the uploaded bytes are not canonical JSON',
      role: 'targets',
      expected: 'OLPC canonical JSON of the document',
    });
  });

  it('refuses signature fields out of order even when signed is canonical', () => {
    const sig = md.signatures[0]!;
    const reordered = text.replace(
      `{"keyid":"${sig.keyid}","sig":"${sig.sig}"}`,
      `{"sig":"${sig.sig}","keyid":"${sig.keyid}"}`,
    );
    expect(reordered).not.toBe(text);
    expect(refusal(() => parseUploaded('targets', utf8Encode(reordered), 'targets')).code).toBe(
      'NON_CANONICAL',
    );
  });
});

describe('snapshotMetaForState', () => {
  it('takes the sha256 the caller knows, and hashes what it does not', () => {
    const state = first();
    const known = 'cd'.repeat(32);
    const bytes = state.targets!.bytes;
    // What a store knows: the digest of its row, given to the parse of those bytes.
    const rowOf = (sha256?: string) => ({
      ...state,
      targets: parseSignedEnvelope('targets', bytes, sha256 === undefined ? {} : { sha256 }),
    });
    const meta = snapshotMetaForState(testCrypto, rowOf(known) as never);
    expect(meta['targets.json']).toMatchObject({
      version: 1,
      length: bytes.length,
      hashes: { sha256: known },
    });
    const computed = snapshotMetaForState(testCrypto, state as never)['targets.json']!.hashes!.sha256;
    expect(snapshotMetaForState(testCrypto, rowOf() as never)['targets.json']!.hashes).toEqual({
      sha256: computed,
    });
    expect(computed).not.toBe(known);
  });
});

describe('validateUpdate: what an update must carry', () => {
  it('at least one role, and at most 1000', () => {
    expect(
      refusal(() =>
        validateUpdate({ crypto: testCrypto, current: empty, uploads: new Map(), now: NOW, serverKeyids }),
      ),
    ).toEqual({
      code: 'INVALID_ARGUMENT',
      message: 'an update must carry at least one role',
    });
    const many = (n: number) => new Map(Array.from({ length: n }, (_, i) => [`r${i}`, utf8Encode('{}')]));
    expect(
      refusal(() =>
        validateUpdate({ crypto: testCrypto, current: empty, uploads: many(1001), now: NOW, serverKeyids }),
      ),
    ).toEqual({
      code: 'TOO_LARGE',
      message: 'an update carries at most 1000 roles',
      expected: 1000,
      found: 1001,
    });
    // 1000 is within the bound: the next rule (a first update needs root) answers.
    expect(
      refusal(() =>
        validateUpdate({ crypto: testCrypto, current: empty, uploads: many(1000), now: NOW, serverKeyids }),
      ).code,
    ).toBe('UPDATE_REFUSED');
  });

  it('never timestamp', () => {
    const state = first();
    expect(refusal(() => update(state, { timestamp: utf8Encode('{}') }))).toEqual({
      code: 'UPDATE_REFUSED',
      message: 'timestamp is signed by the server and cannot be uploaded',
      role: 'timestamp',
    });
  });

  it('root and targets in a first update', () => {
    expect(refusal(() => update(empty, { targets: sign(targetsV1(), keys.targets) }))).toEqual({
      code: 'UPDATE_REFUSED',
      message: 'the first update of a collection must carry root',
      role: 'root',
    });
    expect(refusal(() => update(empty, { root: sign(rootV1(), keys.root) }))).toEqual({
      code: 'UPDATE_REFUSED',
      message: 'the first update of a collection must carry targets',
      role: 'targets',
    });
  });
});

describe('validateUpdate: root', () => {
  it('a first root that is not v1: the versions, and no current one', () => {
    const v2 = sign(bumpVersion(rootV1(), expiresIn(NOW, DAY)), keys.root);
    expect(refusal(() => update(empty, { root: v2, targets: sign(targetsV1(), keys.targets) }))).toEqual({
      code: 'VERSION_MISMATCH',
      message: 'root: version 2 is not the next version 1',
      role: 'root',
      expected: 1,
      found: 2,
      details: { current: null },
    });
  });

  it('a root that does not parse names root', () => {
    const err = refusal(() =>
      update(empty, { root: utf8Encode('{"signed":'), targets: sign(targetsV1(), keys.targets) }),
    );
    expect(err.code).toBe('INVALID_JSON');
    expect(err.message).toMatch(/^root\b/);
  });

  it('root v1 again by other keys: CONFLICT with the published version', () => {
    const state = first();
    const other = withRootRole(rootV1(), 'root', { keys: [keys.other.key] });
    expect(refusal(() => update(state, { root: sign(other, keys.other) }))).toMatchObject({
      code: 'CONFLICT',
      role: 'root',
      expected: 2,
      found: 1,
    });
  });

  it('a root naming keys it does not list, or a threshold it cannot meet', () => {
    const unlisted = edited(rootV1(), (r) => r.roles.targets.keyids.push(UNLISTED));
    expect(
      refusal(() =>
        update(empty, { root: sign(unlisted, keys.root), targets: sign(targetsV1(), keys.targets) }),
      ),
    ).toEqual({
      code: 'INVALID_METADATA',
      message: 'root: targets names keys that are not listed',
      role: 'targets',
      found: [UNLISTED],
    });
    const unreachable = edited(rootV1(), (r) => (r.roles.snapshot.threshold = 2));
    expect(
      refusal(() =>
        update(empty, { root: sign(unreachable, keys.root), targets: sign(targetsV1(), keys.targets) }),
      ),
    ).toEqual({
      code: 'INVALID_METADATA',
      message: 'root: snapshot threshold 2 cannot be met',
      role: 'snapshot',
      expected: '<= 1',
      found: 2,
    });
  });

  it("a timestamp role that is not the server's key alone at threshold 1", () => {
    const notServer = withRootRole(rootV1(), 'timestamp', { keys: [keys.other.key] });
    expect(
      refusal(() =>
        update(empty, { root: sign(notServer, keys.root), targets: sign(targetsV1(), keys.targets) }),
      ),
    ).toEqual({
      code: 'INVALID_METADATA',
      message: "root: the timestamp role must be the server's timestamp key",
      role: 'timestamp',
      expected: { keyids: [keys.timestamp.keyid], threshold: 1 },
      found: { keyids: [keys.other.keyid], threshold: 1 },
    });
    const twoOfTwo = withRootRole(rootV1(), 'timestamp', {
      keys: [keys.timestamp.key, keys.other.key],
      threshold: 2,
    });
    expect(
      refusal(() =>
        update(empty, { root: sign(twoOfTwo, keys.root), targets: sign(targetsV1(), keys.targets) }),
      ),
    ).toMatchObject({ code: 'INVALID_METADATA', role: 'timestamp', found: { threshold: 2 } });
    // The server's key beside another, threshold 1: the server can sign timestamp alone.
    const withAnother = withRootRole(rootV1(), 'timestamp', { keys: [keys.other.key, keys.timestamp.key] });
    expect(
      update(empty, { root: sign(withAnother, keys.root), targets: sign(targetsV1(), keys.targets) }).root
        .metadata.signed.version,
    ).toBe(1);
  });

  it('an expired current root: EXPIRED for role root when only targets is uploaded', () => {
    const state = first();
    const later = NOW + 400 * DAY;
    const t2 = sign(bumpVersion(targetsV1(), expiresIn(later, DAY)), keys.targets);
    expect(refusal(() => update(state, { targets: t2 }, later))).toMatchObject({
      code: 'EXPIRED',
      role: 'root',
    });
  });

  it('a rotation that changes the targets keys, without targets: signed by keys of root', () => {
    const state = first();
    const v2 = bumpVersion(
      withRootRole(rootV1(), 'targets', { keys: [keys.other.key] }),
      expiresIn(NOW, DAY),
    );
    expect(refusal(() => update(state, { root: sign(v2, keys.root) })).message).toBe(
      'targets: 0 of the 1 required signatures by keys of root',
    );
  });
});

describe('validateUpdate: targets', () => {
  it('signed by another key, the wrong version, expired: the role and the signer in each refusal', () => {
    const state = first();
    const v2 = bumpVersion(targetsV1(), expiresIn(NOW, DAY));
    expect(refusal(() => update(state, { targets: sign(v2, keys.other) })).message).toBe(
      'targets: 0 of the 1 required signatures by keys of root',
    );
    expect(
      refusal(() => update(state, { targets: sign(bumpVersion(v2, v2.expires, 4), keys.targets) })),
    ).toEqual({
      code: 'VERSION_MISMATCH',
      message: 'targets: version 4 is not the next version 2',
      role: 'targets',
      expected: 2,
      found: 4,
      details: { current: 1 },
    });
    expect(
      refusal(() =>
        update(state, { targets: sign(bumpVersion(targetsV1(), expiresIn(NOW, -DAY)), keys.targets) }),
      ),
    ).toMatchObject({
      code: 'EXPIRED',
      role: 'targets',
    });
    expect(refusal(() => update(state, { targets: utf8Encode('{"signed":') })).message).toMatch(/^targets\b/);
  });

  it('delegations with a bad role name, unlisted keys, or an unreachable threshold', () => {
    const state = first();
    const v2 = bumpVersion(targetsV1(), expiresIn(NOW, DAY));
    for (const bad of ['../x', '1.x']) {
      const named = edited(v2, (t) => (t.delegations.roles[0].name = bad));
      expect(refusal(() => update(state, { targets: sign(named, keys.targets) }))).toEqual({
        code: 'INVALID_METADATA',
        message: `targets: delegated role name ${JSON.stringify(bad)}`,
        role: 'targets',
        found: bad,
        expected: 'segments of [A-Za-z0-9._-] separated by /, not VERSION.NAME',
      });
    }
    const unlisted = edited(v2, (t) => t.delegations.roles[0].keyids.push(UNLISTED));
    expect(refusal(() => update(state, { targets: sign(unlisted, keys.targets) }))).toEqual({
      code: 'INVALID_METADATA',
      message: 'targets: a names keys that are not listed',
      role: 'a',
      found: [UNLISTED],
    });
    const unreachable = edited(v2, (t) => (t.delegations.roles[0].threshold = 2));
    expect(refusal(() => update(state, { targets: sign(unreachable, keys.targets) })).message).toBe(
      'targets: a threshold 2 cannot be met',
    );
  });
});

describe('validateUpdate: delegated roles', () => {
  it('a bad name: quoted, and cut to 300 characters', () => {
    const state = first();
    const long = `1.${'x'.repeat(400)}`;
    expect(refusal(() => update(state, { [long]: sign(role([]), keys.a) }))).toEqual({
      code: 'INVALID_ARGUMENT',
      message: `${JSON.stringify(long.slice(0, 300))} is not a valid role name`,
      role: long.slice(0, 300),
      expected: 'segments of [A-Za-z0-9._-] separated by /, not VERSION.NAME, at most 255 characters',
    });
  });

  it('a delegated role whose own delegations are malformed names itself as the place', () => {
    const state = first();
    const bad = edited(withDelegation(role([]), { name: 'a1', keys: [keys.b.key], paths: ['a/*'] }), (t) =>
      t.delegations.roles[0].keyids.push(UNLISTED),
    );
    expect(refusal(() => update(state, { a: sign(bad, keys.a) })).message).toBe(
      'a: a1 names keys that are not listed',
    );
  });

  it('no delegator: UPDATE_REFUSED naming the role', () => {
    const state = first();
    expect(refusal(() => update(state, { nobody: sign(role([]), keys.a) }))).toEqual({
      code: 'UPDATE_REFUSED',
      message: 'nobody: no role of the collection delegates to it',
      role: 'nobody',
    });
  });

  it('targets outside the delegated paths: how many, the first ten, the paths and the delegator', () => {
    const state = first();
    const outside = Array.from({ length: 11 }, (_, i) => `b/${String(i).padStart(2, '0')}`);
    expect(refusal(() => update(state, { a: sign(role(['a/in', ...outside]), keys.a) }))).toEqual({
      code: 'PATH_NOT_DELEGATED',
      message: 'a: 11 target(s) outside the paths targets delegates, such as "b/00"',
      role: 'a',
      expected: ['a/*'],
      found: outside.slice(0, 10),
      details: { delegator: 'targets' },
    });
    const hashed = first(
      rootV1(),
      withDelegation(newTargets({ expires: expiresIn(NOW, DAY) }), {
        name: 'a',
        keys: [keys.a.key],
        pathHashPrefixes: ['00'],
      }),
    );
    const missed = ['x', 'y', 'z'].find(
      (p) => !targetFileFor(testCrypto, utf8Encode(p)).hashes.sha256!.startsWith('00'),
    )!;
    expect(refusal(() => update(hashed, { a: sign(role([missed]), keys.a) })).expected).toEqual(['00']);
  });

  it('the changed list carries each delegated role with its version and bytes', () => {
    const state = first();
    const a = sign(role(['a/x']), keys.a);
    expect(update(state, { a }).changed).toEqual([{ role: 'a', version: 1, bytes: bytesOf(a) }]);
  });

  it('a role is trusted through its delegators only, never through itself', () => {
    const state = first();
    const self = sign(
      withDelegation(role([]), { name: 'a', keys: [keys.other.key], paths: ['*'] }),
      keys.other,
    );
    expect(refusal(() => update(state, { a: self })).code).toBe('THRESHOLD_NOT_MET');
  });

  it('a nested delegation is trusted through its delegated delegator', () => {
    const state = first();
    const a = sign(withDelegation(role([]), { name: 'a1', keys: [keys.b.key], paths: ['a/1/*'] }), keys.a);
    const a1 = sign(role(['a/1/x']), keys.b);
    const ok = update(state, { a, a1 });
    expect([...ok.delegated.keys()]).toEqual(['a', 'a1']);
    // A delegated role without delegations of its own in the same update does not trip the search.
    const b = sign(role([]), keys.b);
    const withB = first(
      rootV1(),
      withDelegation(targetsV1(), { name: 'b', keys: [keys.b.key], paths: ['b/*'] }),
    );
    expect(update(withB, { a: sign(role([]), keys.a), b }).changed.map((c) => c.role)).toEqual(['a', 'b']);
  });

  it('named by two delegators: the second is tried when the first refuses', () => {
    const targets = withDelegation(
      withDelegation(newTargets({ expires: expiresIn(NOW, DAY) }), {
        name: 'a',
        keys: [keys.a.key],
        paths: ['*'],
      }),
      { name: 'b', keys: [keys.b.key], paths: ['*'] },
    );
    const state = first(rootV1(), targets);
    const toShared = (key: typeof keys.a) =>
      withDelegation(role([]), { name: 'shared', keys: [key.key], paths: ['*'] });
    const s1 = apply(
      update(state, { a: sign(toShared(keys.other), keys.a), b: sign(toShared(keys.b), keys.b) }),
    );
    // a delegates shared to `other`, b to keys.b: shared signed by keys.b is trusted through b.
    expect(update(s1, { shared: sign(role(['x']), keys.b) }).changed.map((c) => c.role)).toEqual(['shared']);
  });

  it('a stored role is checked again when one of its delegators changes, even if another did not', () => {
    const targets = withDelegation(
      withDelegation(newTargets({ expires: expiresIn(NOW, DAY) }), {
        name: 'a',
        keys: [keys.a.key],
        paths: ['*'],
      }),
      { name: 'b', keys: [keys.b.key], paths: ['*'] },
    );
    const toShared = (key: typeof keys.a, version = 1) =>
      withDelegation(role([], version), { name: 'shared', keys: [key.key], paths: ['*'] });
    let state = first(rootV1(), targets);
    // shared is trusted through a only (b names another key for it).
    state = apply(
      update(state, { a: sign(toShared(keys.other), keys.a), b: sign(toShared(keys.root), keys.b) }),
    );
    state = apply(update(state, { shared: sign(role(['x']), keys.other) }));
    // a now names yet another key: shared is trusted through neither a nor b.
    expect(refusal(() => update(state, { a: sign(toShared(keys.targets, 2), keys.a) })).code).toBe(
      'THRESHOLD_NOT_MET',
    );
  });
});

describe('validateUpdate: snapshot', () => {
  it('online: the server signs it, so an uploaded one is refused', () => {
    const state = first();
    const meta = snapshotMetaForState(testCrypto, state as never);
    const snap = sign(newSnapshot({ expires: expiresIn(NOW, DAY), meta }), keys.snapshot);
    expect(refusal(() => update(state, { snapshot: snap }))).toEqual({
      code: 'UPDATE_REFUSED',
      message: 'the server holds the snapshot key: do not upload snapshot',
      role: 'snapshot',
    });
  });

  it('online only when the server key alone meets a threshold of 1', () => {
    const both = update(empty, {
      root: sign(rootV1([keys.snapshot, keys.offline]), keys.root),
      targets: sign(targetsV1(), keys.targets),
    });
    expect(both.snapshotOnline).toBe(true);
    const twoOfTwo = () =>
      update(empty, {
        root: sign(rootV1([keys.snapshot, keys.offline], 2), keys.root),
        targets: sign(targetsV1(), keys.targets),
      });
    expect(refusal(twoOfTwo).code).toBe('UPDATE_REFUSED');
  });

  /** An offline-snapshot collection: snapshot v1 published with root and targets v1. */
  function offline() {
    const root = sign(rootV1([keys.offline]), keys.root);
    const targets = sign(targetsV1(), keys.targets);
    const meta = snapshotMetaForState(testCrypto, {
      targets: { bytes: bytesOf(targets), metadata: targets },
      delegated: new Map(),
    });
    const snapshot = sign(newSnapshot({ expires: expiresIn(NOW, DAY), meta }), keys.offline);
    return { state: apply(update(empty, { root, targets, snapshot })), snapshot };
  }

  const snapshotOf = (
    u: ValidatedUpdate | CollectionState,
    version: number,
    signer = keys.offline,
    change?: (m: any) => void,
  ) => {
    const meta = snapshotMetaForState(testCrypto, u as never);
    change?.(meta);
    return sign(newSnapshot({ expires: expiresIn(NOW, DAY), version, meta }), signer);
  };

  it('offline: a changed targets role needs a new snapshot; a root change alone does not', () => {
    const { state } = offline();
    const refusedFor = (entries: Record<string, Metadata>) => refusal(() => update(state, entries));
    const stale = {
      code: 'UPDATE_REFUSED',
      message:
        'the collection keeps its snapshot key offline: upload a snapshot signed by it with this update',
      role: 'snapshot',
    };
    expect(refusedFor({ a: sign(role(['a/x']), keys.a) })).toEqual(stale);
    expect(
      refusedFor({ targets: sign(bumpVersion(targetsV1(), expiresIn(NOW, DAY)), keys.targets) }),
    ).toEqual(stale);
    const v2 = bumpVersion(rootV1([keys.offline]), expiresIn(NOW, 365 * DAY));
    expect(update(state, { root: sign(v2, keys.root) }).snapshot).toBeUndefined();
    // A rotation of the snapshot key makes the stored snapshot untrusted: a new one must come along.
    const rotated = bumpVersion(rootV1([keys.other]), expiresIn(NOW, 365 * DAY));
    expect(refusedFor({ root: sign(rotated, keys.root) })).toEqual(stale);
  });

  it('offline: the uploaded snapshot is checked and listed in what changed', () => {
    const { state } = offline();
    const a = sign(role(['a/x']), keys.a);
    const next = (s: Metadata) => () => update(state, { a, snapshot: s });
    const after = { ...state, delegated: new Map([['a', { bytes: bytesOf(a), metadata: a }]]) };
    const good = snapshotOf(after, 2);
    expect(next(good)().changed.map((c) => [c.role, c.version])).toEqual([
      ['a', 1],
      ['snapshot', 2],
    ]);
    expect(next(good)().changed[1]).toEqual({ role: 'snapshot', version: 2, bytes: bytesOf(good) });
    expect(refusal(next(snapshotOf(after, 2, keys.other))).message).toBe(
      'snapshot: 0 of the 1 required signatures by keys of root',
    );
    expect(refusal(next(snapshotOf(after, 3)))).toMatchObject({ code: 'VERSION_MISMATCH', role: 'snapshot' });
    const expired = sign(
      newSnapshot({
        expires: expiresIn(NOW, -DAY),
        version: 2,
        meta: snapshotMetaForState(testCrypto, after as never),
      }),
      keys.offline,
    );
    expect(refusal(next(expired))).toMatchObject({ code: 'EXPIRED', role: 'snapshot' });
    expect(refusal(() => update(state, { a, snapshot: utf8Encode('{"signed":') })).message).toMatch(
      /^snapshot\b/,
    );
  });

  it('offline: a snapshot missing a role, with another version of one, or listing one the collection lacks', () => {
    const { state } = offline();
    const a = sign(role(['a/x']), keys.a);
    const after = { ...state, delegated: new Map([['a', { bytes: bytesOf(a), metadata: a }]]) };
    const run = (change: (m: any) => void) =>
      refusal(() => update(state, { a, snapshot: snapshotOf(after, 2, keys.offline, change) }));
    expect(run((m) => delete m['a.json'])).toEqual({
      code: 'INVALID_METADATA',
      message: 'snapshot: a.json is missing',
      role: 'a',
      expected: 'a.json',
    });
    expect(run((m) => (m['a.json'] = { ...m['a.json'], version: 5 }))).toEqual({
      code: 'VERSION_MISMATCH',
      message: 'snapshot: a.json version 5 is not 1',
      role: 'a',
      expected: 1,
      found: 5,
    });
    expect(run((m) => (m['ghost.json'] = { version: 1, extra: {} }))).toEqual({
      code: 'INVALID_METADATA',
      message: 'snapshot: lists ghost.json, which the collection does not have',
      role: 'snapshot',
      found: 'ghost.json',
    });
  });
});
