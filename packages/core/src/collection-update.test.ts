/**
 * CollectionUpdate step by step: the order of the steps, the status each returns without
 * throwing (both thresholds of a rotation, stored roles checked again), and the two ways to end
 * it (commit: every threshold; partial: threshold signing).
 */
import { bytesOf, codeOf, DAY, NOW, refusal, sign, testCrypto, testKey } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { CollectionUpdate, validateUpdate, validatingUpdate } from './collection-update.js';
import { succinctBinNameFor } from './delegation.js';
import { toHex } from './encoding.js';
import { utf8Encode } from './json.js';
import type { Metadata, MetaFile, Root, Targets } from './metadata.js';
import { checkProposal } from './proposal.js';
import {
  bumpVersion,
  expiresIn,
  metaFileFor,
  newRoot,
  newSnapshot,
  newTargets,
  targetFileFor,
  withDelegation,
  withRootRole,
  withSuccinctDelegation,
  withTarget,
} from './repository.js';
import { finish } from './steps.js';
import type {
  CollectionState,
  StoredDelegatedRoles,
  StoredRole,
  StoredRoleEntry,
  UpdateSteps,
} from './update.js';

const k = {
  r1: testKey(91),
  r2: testKey(92),
  t1: testKey(93),
  t2: testKey(94),
  d1: testKey(95),
  timestamp: testKey(96),
  snapshot: testKey(97),
};
const serverKeyids = { timestamp: [k.timestamp.keyid], snapshot: [k.snapshot.keyid] };

const rootV1 = (): Root =>
  newRoot({
    expires: expiresIn(NOW, 365 * DAY),
    roles: {
      root: { keys: [k.r1.key] },
      targets: { keys: [k.t1.key] },
      snapshot: { keys: [k.snapshot.key] },
      timestamp: { keys: [k.timestamp.key] },
    },
  });
const targetsV1 = (): Targets =>
  withDelegation(newTargets({ expires: expiresIn(NOW, 90 * DAY) }), {
    name: 'releases',
    keys: [k.d1.key],
    paths: ['releases/*'],
  });
const stored = <T extends Root | Targets>(md: Metadata<T>): StoredRole<T> => ({
  bytes: bytesOf(md),
  metadata: md,
});
const published = (): CollectionState => ({
  root: stored(sign(rootV1(), k.r1)),
  targets: stored(sign(targetsV1(), k.t1)),
  delegated: new Map(),
});
const start = (current = published(), keyids: typeof serverKeyids | null = serverKeyids) =>
  new CollectionUpdate({
    crypto: testCrypto,
    current,
    now: NOW,
    ...(keyids === null ? {} : { serverKeyids: keyids }),
  });
const releases = (...tags: string[]) => {
  let t = newTargets({ expires: expiresIn(NOW, 30 * DAY) });
  for (const tag of tags) t = withTarget(t, tag, targetFileFor(testCrypto, utf8Encode(tag)));
  return t;
};

describe('CollectionUpdate: steps in order', () => {
  it('root, targets, delegated roles, snapshot: a step after a later one is refused with ORDER', () => {
    const update = start();
    update.updateTargets(bytesOf(sign(bumpVersion(targetsV1(), expiresIn(NOW, DAY)), k.t1)));
    expect(
      refusal(() => update.updateRoot(bytesOf(sign(bumpVersion(rootV1(), expiresIn(NOW, DAY)), k.r1)))),
    ).toEqual({
      code: 'ORDER',
      message: 'root cannot be accepted after targets',
      role: 'root',
    });
    expect(codeOf(() => update.updateTargets(bytesOf(sign(targetsV1(), k.t1))))).toBe('ORDER');
    const r = bytesOf(sign(releases('releases/a'), k.d1));
    update.updateDelegatedTargets(r, 'releases');
    expect(refusal(() => update.updateDelegatedTargets(r, 'releases'))).toEqual({
      code: 'ORDER',
      message: 'releases has already been accepted in this update',
      role: 'releases',
    });
  });

  it('top-level targets is the delegated-targets step with root as its delegator', () => {
    const status = start().updateTargets(bytesOf(sign(bumpVersion(targetsV1(), expiresIn(NOW, DAY)), k.t2)));
    expect(status).toEqual({
      role: 'targets',
      version: 2,
      complete: false,
      thresholds: [
        { by: 'root', threshold: 1, signed: [], missing: [k.t1.keyid], needed: 1, verified: false },
      ],
    });
  });

  it('a delegated role is trusted through a delegator accepted earlier in the same update', () => {
    const update = start();
    const moved = withDelegation(bumpVersion(targetsV1(), expiresIn(NOW, DAY)), {
      name: 'releases',
      keys: [k.t2.key],
      paths: ['releases/*'],
    });
    update.updateTargets(bytesOf(sign(moved, k.t1)));
    const status = update.updateDelegatedTargets(bytesOf(sign(releases('releases/a'), k.t2)), 'releases');
    expect(status.thresholds.map((t) => [t.by, t.verified])).toEqual([['targets', true]]);
    expect(update.commit().changed.map((c) => c.role)).toEqual(['targets', 'releases']);
  });
});

describe('CollectionUpdate: root', () => {
  const v2 = () =>
    withRootRole(bumpVersion(rootV1(), expiresIn(NOW, 365 * DAY)), 'root', {
      keys: [k.r1.key, k.r2.key],
      threshold: 2,
    });

  it('a rotation reports the trusted root and the new root; commit names the one not met', () => {
    const update = start();
    const status = update.updateRoot(bytesOf(sign(v2(), k.r1)));
    expect(status.thresholds.map((t) => [t.by, t.signed.length, t.needed, t.verified])).toEqual([
      ['root v1', 1, 0, true],
      ['root v2', 1, 1, false],
    ]);
    expect(status.complete).toBe(false);
    expect(refusal(() => update.commit())).toMatchObject({
      code: 'THRESHOLD_NOT_MET',
      message: `root: 1 of the 2 required signatures by keys of root v2 itself`,
      role: 'root',
    });
    const both = start();
    expect(both.updateRoot(bytesOf(sign(v2(), k.r1, k.r2))).complete).toBe(true);
    expect(both.commit().root.metadata.signed.version).toBe(2);
  });

  it('a first root: only its own threshold', () => {
    const update = start({ delegated: new Map() });
    expect(update.updateRoot(bytesOf(sign(rootV1()))).thresholds.map((t) => t.by)).toEqual(['root v1']);
  });

  it('the snapshot decision is known once root is, and only with the server key ids', () => {
    const online = start();
    expect(online.snapshotOnline).toBeUndefined();
    online.updateTargets(bytesOf(sign(bumpVersion(targetsV1(), expiresIn(NOW, DAY)), k.t1)));
    expect(online.snapshotOnline).toBe(true);
    const offline = start(published(), { timestamp: serverKeyids.timestamp, snapshot: [] });
    offline.updateRoot(bytesOf(sign(bumpVersion(rootV1(), expiresIn(NOW, DAY)), k.r1)));
    expect(offline.snapshotOnline).toBe(false);
    const unknown = start(published(), null);
    unknown.updateRoot(bytesOf(sign(bumpVersion(rootV1(), expiresIn(NOW, DAY)), k.r1)));
    expect(unknown.snapshotOnline).toBeUndefined();
    expect(refusal(() => unknown.commit())).toEqual({
      code: 'INVALID_ARGUMENT',
      message: "an update is committed against the server's online key ids",
    });
  });
});

describe('CollectionUpdate: stored roles checked again', () => {
  it('a root that changes the targets keys: the stored targets is reported kept and not trusted', () => {
    const update = start();
    const v2 = withRootRole(bumpVersion(rootV1(), expiresIn(NOW, 365 * DAY)), 'targets', {
      keys: [k.t2.key],
    });
    update.updateRoot(bytesOf(sign(v2, k.r1)));
    expect(update.status().map((s) => [s.role, s.complete, s.kept ?? false])).toEqual([
      ['root', true, false],
      ['targets', false, true],
    ]);
    expect(refusal(() => update.commit()).message).toBe(
      'targets: 0 of the 1 required signatures by keys of root',
    );
    expect(refusal(() => update.partial())).toEqual({
      code: 'UPDATE_REFUSED',
      message:
        'the proposed root changes who signs targets: propose targets, signed by the new keys, with it',
      role: 'targets',
    });
    // No targets can be added once the kept roles are decided.
    expect(codeOf(() => update.updateTargets(bytesOf(sign(targetsV1(), k.t2))))).toBe('ORDER');
  });

  it('a delegator that narrows the paths of a stored role: PATH_NOT_DELEGATED for the stored role', () => {
    const current = {
      ...published(),
      delegated: new Map([['releases', stored(sign(releases('releases/a'), k.d1))]]),
    };
    const narrowed = withDelegation(bumpVersion(targetsV1(), expiresIn(NOW, DAY)), {
      name: 'releases',
      keys: [k.d1.key],
      paths: ['releases/b*'],
    });
    const update = start(current);
    update.updateTargets(bytesOf(sign(narrowed, k.t1)));
    expect(refusal(() => update.status())).toMatchObject({
      code: 'PATH_NOT_DELEGATED',
      role: 'releases',
      details: { delegator: 'targets' },
    });
  });

  it('the document of a step, and NOT_FOUND for a role the update does not carry', () => {
    const update = start();
    const md = sign(bumpVersion(targetsV1(), expiresIn(NOW, DAY)), k.t1);
    update.updateTargets(bytesOf(md));
    expect(update.document('targets').signedBytes).toEqual(md.signedBytes);
    expect(codeOf(() => update.document('releases'))).toBe('NOT_FOUND');
  });
});

describe('CollectionUpdate: succinct hash bins (TAP 15)', () => {
  /** Targets v2 delegating to 2^4 bins `bins-0`..`bins-f`, key d1, accepted in the same update. */
  const binned = () => {
    const update = start();
    const targets = withSuccinctDelegation(
      bumpVersion(newTargets({ expires: expiresIn(NOW, 90 * DAY) }), expiresIn(NOW, DAY)),
      {
        keys: [k.d1.key],
        bitLength: 4,
        namePrefix: 'bins',
      },
    );
    update.updateTargets(bytesOf(sign(targets, k.t1)));
    return { update, succinct: targets.delegations!.succinctRoles! };
  };

  it('a bin holding only paths that hash into it is accepted like any delegated role', () => {
    const { update, succinct } = binned();
    const tag = 'app/v1';
    const name = succinctBinNameFor(succinct, tag);
    const status = update.updateDelegatedTargets(bytesOf(sign(releases(tag), k.d1)), name);
    expect(status.thresholds.map((t) => [t.by, t.verified])).toEqual([['targets', true]]);
    expect(update.commit().changed.map((c) => c.role)).toEqual(['targets', name]);
  });

  it('a path in a bin it does not hash into is PATH_NOT_DELEGATED', () => {
    const { update, succinct } = binned();
    const tag = 'app/v1';
    const right = succinctBinNameFor(succinct, tag);
    const wrong = right === 'bins-0' ? 'bins-1' : 'bins-0';
    expect(
      refusal(() => update.updateDelegatedTargets(bytesOf(sign(releases(tag), k.d1)), wrong)),
    ).toMatchObject({
      code: 'PATH_NOT_DELEGATED',
      role: wrong,
    });
  });

  it('a bin past the last, or named other than the bins are, is delegated by no role: UPDATE_REFUSED', () => {
    for (const name of ['bins-10', 'bins-00', 'bins-A', 'bin-1']) {
      const { update } = binned();
      expect(
        codeOf(() => update.updateDelegatedTargets(bytesOf(sign(releases(), k.d1)), name)),
        name,
      ).toBe('UPDATE_REFUSED');
    }
  });

  it("a bin signed by a key other than the bins' is below its threshold", () => {
    const { update, succinct } = binned();
    const name = succinctBinNameFor(succinct, 'x');
    const status = update.updateDelegatedTargets(bytesOf(sign(releases('x'), k.t2)), name);
    expect(status.thresholds[0]).toMatchObject({ by: 'targets', verified: false, missing: [k.d1.keyid] });
    expect(codeOf(() => update.commit())).toBe('THRESHOLD_NOT_MET');
  });

  it('bins whose keys the delegations do not list are INVALID_METADATA', () => {
    const update = start();
    const targets = withSuccinctDelegation(
      bumpVersion(newTargets({ expires: expiresIn(NOW, DAY) }), expiresIn(NOW, DAY)),
      {
        keys: [k.d1.key],
        bitLength: 2,
        namePrefix: 'bins',
      },
    );
    const broken = { ...targets, delegations: { ...targets.delegations!, keys: {} } };
    expect(codeOf(() => update.updateTargets(bytesOf(sign(broken, k.t1))))).toBe('INVALID_METADATA');
  });
});

describe('CollectionUpdate: a state as a server stores it (StoredDelegatedRoles)', () => {
  /** A collection of targets v2 and its 16 bins at v1, each bin holding one tag. */
  const collection = (binKey = k.d1) => {
    const targets = withSuccinctDelegation(
      bumpVersion(newTargets({ expires: expiresIn(NOW, 90 * DAY) }), expiresIn(NOW, 90 * DAY)),
      { keys: [binKey.key], bitLength: 4, namePrefix: 'bins' },
    );
    const succinct = targets.delegations!.succinctRoles!;
    const bins = new Map<string, StoredRole<Targets>>();
    for (let i = 0; bins.size < 16; i++) {
      const tag = `app/v${i}`;
      const name = succinctBinNameFor(succinct, tag);
      if (!bins.has(name)) bins.set(name, stored(sign(releases(tag), binKey)));
    }
    return { targets: stored(sign(targets, k.t1)), bins, succinct };
  };
  /** The same bins as entries only: a document is at hand after a request, and every read is counted. */
  const asStored = (bins: ReadonlyMap<string, StoredRole<Targets>>) => {
    const entries = new Map<string, StoredRoleEntry>();
    for (const [name, role] of bins) {
      entries.set(name, {
        version: role.metadata.signed.version,
        length: role.bytes.length,
        sha256: toHex(testCrypto.hash('sha256', role.bytes)),
      });
    }
    const reads: string[] = [];
    let requested = new Set<string>();
    const roles: StoredDelegatedRoles & { load(names: readonly string[]): void } = {
      entries,
      delegating: [],
      document(name) {
        reads.push(name);
        return requested.has(name) ? bins.get(name) : undefined;
      },
      load(names) {
        requested = new Set(names);
      },
    };
    return { roles, reads };
  };
  /** Runs an update's steps, serving its requests; the requests it made. */
  const run = <T>(steps: UpdateSteps<T>, roles: { load(names: readonly string[]): void }) => {
    const requests: string[][] = [];
    for (let step = steps.next(); ; step = steps.next()) {
      if (step.done) return { result: step.value, requests };
      if (typeof step.value !== 'string') {
        requests.push([...step.value.load]);
        roles.load(step.value.load);
      }
    }
  };
  const state = (c: ReturnType<typeof collection>, delegated: CollectionState['delegated']) => ({
    ...published(),
    targets: c.targets,
    delegated,
  });

  it('a bin upload reads no other bin, and the snapshot takes every other entry as stored', () => {
    const c = collection();
    const tag = 'app/new';
    const name = succinctBinNameFor(c.succinct, tag);
    const next = bumpVersion(c.bins.get(name)!.metadata.signed, expiresIn(NOW, 30 * DAY));
    const upload = bytesOf(sign(withTarget(next, tag, targetFileFor(testCrypto, utf8Encode(tag))), k.d1));
    const { roles, reads } = asStored(c.bins);
    const other = [...c.bins.keys()].find((n) => n !== name)!;
    // A digest no document has: taken as it is, never recomputed from bytes.
    (roles.entries as Map<string, StoredRoleEntry>).set(other, {
      ...roles.entries.get(other)!,
      sha256: 'ab'.repeat(32),
    });
    const options = { crypto: testCrypto, uploads: new Map([[name, upload]]), now: NOW, serverKeyids };
    const { result, requests } = run(validatingUpdate({ ...options, current: state(c, roles) }), roles);
    expect(requests).toEqual([]);
    expect(reads).toEqual([]);
    const parsed = validateUpdate({ ...options, current: state(c, c.bins) });
    expect(result.changed).toEqual(parsed.changed);
    expect(result.declared).toEqual({ roles: 0, bins: 16 });
    const meta = result.snapshotMeta();
    expect(meta[`${other}.json`]!.hashes).toEqual({ sha256: 'ab'.repeat(32) });
    expect({ ...meta, [`${other}.json`]: parsed.snapshotMeta()[`${other}.json`] }).toEqual(
      parsed.snapshotMeta(),
    );
    expect(meta[`${name}.json`]).toEqual(parsed.snapshotMeta()[`${name}.json`]);
  });

  it('targets naming other bin keys checks every stored bin again, asked for in one batch, as parsed', () => {
    const c = collection();
    const rotated = withSuccinctDelegation(
      bumpVersion(newTargets({ expires: expiresIn(NOW, 90 * DAY) }), expiresIn(NOW, 90 * DAY)),
      { keys: [k.t2.key], bitLength: 4, namePrefix: 'bins' },
    );
    const targetsV3 = { ...rotated, version: 3 };
    const uploads = new Map([['targets', bytesOf(sign(targetsV3, k.t1))]]);
    const options = { crypto: testCrypto, uploads, now: NOW, serverKeyids };
    const { roles } = asStored(c.bins);
    const steps = validatingUpdate({ ...options, current: state(c, roles) });
    const requests: string[][] = [];
    const stepwise = codeOf(() => {
      for (let step = steps.next(); !step.done; step = steps.next()) {
        if (typeof step.value === 'string') continue;
        requests.push([...step.value.load]);
        roles.load(step.value.load);
      }
    });
    expect(requests).toEqual([[...c.bins.keys()]]);
    expect(stepwise).toBe('THRESHOLD_NOT_MET');
    expect(codeOf(() => validateUpdate({ ...options, current: state(c, c.bins) }))).toBe(stepwise);
  });

  it('a client-signed snapshot is matched against the stored entries, and against the bytes when it states sha512', () => {
    const c = collection();
    const tag = 'app/offline';
    const name = succinctBinNameFor(c.succinct, tag);
    const next = bumpVersion(c.bins.get(name)!.metadata.signed, expiresIn(NOW, 30 * DAY));
    const upload = bytesOf(sign(withTarget(next, tag, targetFileFor(testCrypto, utf8Encode(tag))), k.d1));
    const other = [...c.bins.keys()].find((n) => n !== name)!;
    const snapshotWith = (meta: (role: string, bytes: Uint8Array) => MetaFile) => {
      const entries: Record<string, MetaFile> = { 'targets.json': meta('targets', c.targets.bytes) };
      for (const [role, stored] of c.bins)
        entries[`${role}.json`] = meta(role, role === name ? upload : stored.bytes);
      return bytesOf(sign(newSnapshot({ expires: expiresIn(NOW, DAY), meta: entries }), k.snapshot));
    };
    const versionOf = (role: string) => (role === name ? 2 : role === 'targets' ? 2 : 1);
    const sha256 = (role: string, bytes: Uint8Array): MetaFile =>
      metaFileFor(testCrypto, bytes, versionOf(role));
    const sha512 = (role: string, bytes: Uint8Array): MetaFile =>
      metaFileFor(testCrypto, bytes, versionOf(role), {
        hashes: role === other ? ['sha256', 'sha512'] : ['sha256'],
      });
    // The server holds no snapshot key: the writer signs snapshot (offline), listing every role.
    const offline = { timestamp: serverKeyids.timestamp, snapshot: [] };
    const attempt = (snapshot: Uint8Array, delegated: CollectionState['delegated']) => {
      const uploads = new Map([
        [name, upload],
        ['snapshot', snapshot],
      ]);
      return validatingUpdate({
        crypto: testCrypto,
        current: state(c, delegated),
        uploads,
        now: NOW,
        serverKeyids: offline,
      });
    };
    const asEntries = asStored(c.bins);
    expect(run(attempt(snapshotWith(sha256), asEntries.roles), asEntries.roles).requests).toEqual([]);
    expect(asEntries.reads).toEqual([]);
    const stated = asStored(c.bins);
    expect(run(attempt(snapshotWith(sha512), stated.roles), stated.roles).requests).toEqual([[other]]);
    const wrong = (role: string, bytes: Uint8Array): MetaFile =>
      role === other ? { ...sha256(role, bytes), hashes: { sha256: 'ab'.repeat(32) } } : sha256(role, bytes);
    const refused = asStored(c.bins);
    expect(codeOf(() => run(attempt(snapshotWith(wrong), refused.roles), refused.roles))).toBe(
      'HASH_MISMATCH',
    );
    expect(codeOf(() => finish(attempt(snapshotWith(wrong), c.bins)))).toBe('HASH_MISMATCH');
  });

  it('run without its steps, an update that needs stored documents is INTERNAL, never a guess', () => {
    const c = collection();
    const again = { ...c.targets.metadata.signed, version: 3 };
    const { roles } = asStored(c.bins);
    expect(
      codeOf(() =>
        validateUpdate({
          crypto: testCrypto,
          current: state(c, roles),
          uploads: new Map([['targets', bytesOf(sign(again, k.t1))]]),
          now: NOW,
          serverKeyids,
        }),
      ),
    ).toBe('INTERNAL');
  });
});

describe('CollectionUpdate: no more signatures than the keys that may sign (issue 17)', () => {
  /** `md` with `n` more signatures, by key ids of no key (each checked would cost a verification). */
  const withJunk = <M extends Metadata>(md: M, n: number): M => ({
    ...md,
    signatures: [
      ...md.signatures,
      ...Array.from({ length: n }, (_, i) => ({
        keyid: i.toString(16).padStart(64, '0'),
        sig: 'ab'.repeat(64),
        extra: {},
      })),
    ],
  });
  const uploads = (entries: Record<string, Metadata>) =>
    new Map(Object.entries(entries).map(([name, md]) => [name, bytesOf(md)]));
  const validate = (entries: Record<string, Metadata>, current = published()) =>
    validateUpdate({ crypto: testCrypto, current, uploads: uploads(entries), now: NOW, serverKeyids });
  const propose = (entries: Record<string, Metadata>, current = published()) =>
    checkProposal({ crypto: testCrypto, current, uploads: uploads(entries), now: NOW, serverKeyids });
  const targetsV2 = () => bumpVersion(targetsV1(), expiresIn(NOW, DAY));

  it('an upload of targets with more signatures than root gives it keys is refused unverified', () => {
    expect(refusal(() => validate({ targets: withJunk(sign(targetsV2(), k.t1), 1) }))).toEqual({
      code: 'TOO_MANY_SIGNATURES',
      message: 'targets: 2 signatures, more than the 1 key(s) that may sign it',
      role: 'targets',
      expected: '<= 1',
      found: 2,
    });
    // Junk alone (was THRESHOLD_NOT_MET, after counting every entry).
    expect(codeOf(() => validate({ targets: withJunk(sign(targetsV2()), 1000) }))).toBe(
      'TOO_MANY_SIGNATURES',
    );
    expect(validate({ targets: sign(targetsV2(), k.t1) }).changed.map((c) => c.role)).toEqual(['targets']);
  });

  it('a proposal is bounded by the same rule (was BAD_SIGNATURE for the key outside the role)', () => {
    expect(codeOf(() => propose({ targets: withJunk(sign(targetsV2(), k.t1), 1) }))).toBe(
      'TOO_MANY_SIGNATURES',
    );
    expect(propose({ targets: sign(targetsV2(), k.t1) }).complete).toBe(true);
  });

  it("root on a rotation: as many as the old and the new root's keys together, no more", () => {
    const v2 = withRootRole(bumpVersion(rootV1(), expiresIn(NOW, DAY)), 'root', { keys: [k.r2.key] });
    expect(validate({ root: sign(v2, k.r1, k.r2) }).changed.map((c) => c.role)).toEqual(['root']);
    expect(refusal(() => validate({ root: withJunk(sign(v2, k.r1, k.r2), 1) }))).toMatchObject({
      code: 'TOO_MANY_SIGNATURES',
      expected: '<= 2',
      found: 3,
    });
    const first = { root: withJunk(sign(rootV1(), k.r1), 1), targets: sign(targetsV1(), k.t1) };
    expect(codeOf(() => validate(first, { delegated: new Map() }))).toBe('TOO_MANY_SIGNATURES');
  });

  it('a delegated role that two delegators name: the keys of both', () => {
    // targets gives `releases` d1; `team` (signed by t2) gives it t2.
    const targets = withDelegation(
      withDelegation(targetsV2(), { name: 'team', keys: [k.t2.key], paths: ['releases/*'] }),
      { name: 'releases', keys: [k.d1.key], paths: ['releases/*'] },
    );
    const team = withDelegation(releases(), { name: 'releases', keys: [k.t2.key], paths: ['releases/*'] });
    const base = { targets: sign(targets, k.t1), team: sign(team, k.t2) };
    const both = sign(releases('releases/a'), k.d1, k.t2);
    expect(validate({ ...base, releases: both }).changed.map((c) => c.role)).toContain('releases');
    expect(refusal(() => validate({ ...base, releases: withJunk(both, 1) }))).toMatchObject({
      code: 'TOO_MANY_SIGNATURES',
      role: 'releases',
      found: 3,
    });
  });

  it("a succinct bin: the bins' keys", () => {
    const targets = withSuccinctDelegation(
      bumpVersion(newTargets({ expires: expiresIn(NOW, 90 * DAY) }), expiresIn(NOW, DAY)),
      {
        keys: [k.d1.key],
        bitLength: 4,
        namePrefix: 'bins',
      },
    );
    const name = succinctBinNameFor(targets.delegations!.succinctRoles!, 'x');
    const bin = withJunk(sign(releases('x'), k.d1), 1);
    expect(codeOf(() => validate({ targets: sign(targets, k.t1), [name]: bin }))).toBe('TOO_MANY_SIGNATURES');
  });

  it('a stored role checked again is not refused for signatures by keys a rotation took away', () => {
    const two = withRootRole(rootV1(), 'targets', { keys: [k.t1.key, k.t2.key] });
    const current = {
      ...published(),
      root: stored(sign(two, k.r1)),
      targets: stored(sign(targetsV1(), k.t1, k.t2)),
    };
    const v2 = withRootRole(bumpVersion(two, expiresIn(NOW, DAY)), 'targets', { keys: [k.t1.key] });
    expect(validate({ root: sign(v2, k.r1) }, current).changed.map((c) => c.role)).toEqual(['root']);
  });

  it("a client-signed snapshot: root's snapshot keys", () => {
    const offline = start(published(), { timestamp: serverKeyids.timestamp, snapshot: [] });
    const snapshot = newSnapshot({
      expires: expiresIn(NOW, DAY),
      meta: { 'targets.json': { version: 1, extra: {} } },
    });
    const md = withJunk(sign(snapshot, k.snapshot), 1);
    expect(codeOf(() => offline.updateSnapshot(bytesOf(md)))).toBe('TOO_MANY_SIGNATURES');
  });
});

describe('validatingUpdate: validateUpdate in steps, for a server that lets readers run between them', () => {
  it('yields each role, and within a role every SIGNATURES_PER_STEP signatures; the same result and refusals', () => {
    const many = Array.from({ length: 40 }, (_, i) => testKey(200 + i));
    const targets = withDelegation(bumpVersion(targetsV1(), expiresIn(NOW, DAY)), {
      name: 'team',
      keys: many.map((x) => x.key),
      threshold: 40,
      paths: ['team/*'],
    });
    const entries = { targets: sign(targets, k.t1), team: sign(releases('team/a'), ...many) };
    const options = {
      crypto: testCrypto,
      current: published(),
      uploads: new Map(Object.entries(entries).map(([name, md]) => [name, bytesOf(md)])),
      now: NOW,
      serverKeyids,
    };
    const steps = validatingUpdate(options);
    const yielded: unknown[] = [];
    let step = steps.next();
    for (; !step.done; step = steps.next()) yielded.push(step.value);
    // 40 signatures of team: two batches of 16 inside it, then the role itself.
    expect(yielded).toEqual(['targets', 'team', 'team', 'team', 'team']);
    expect(step.value.changed.map((c) => c.role)).toEqual(validateUpdate(options).changed.map((c) => c.role));
    const unsigned = {
      ...options,
      uploads: new Map([...options.uploads, ['team', bytesOf(sign(releases('team/a')))]]),
    };
    const refused = validatingUpdate(unsigned);
    expect(
      codeOf(() => {
        while (!refused.next().done);
      }),
    ).toBe(codeOf(() => validateUpdate(unsigned)));
  });
});
