import { createHash } from 'node:crypto';
import { bytesOf, codeOf, DAY, NOW, sign, testCrypto, testKey } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { validateUpdate } from './collection-update.js';
import { isTufaError } from './errors.js';
import { utf8Encode } from './json.js';
import {
  dict,
  type Metadata,
  metaFileName,
  parseMetadata,
  parseSignedEnvelope,
  type Root,
  serializeMetadata,
  type TargetFile,
  type Targets,
} from './metadata.js';
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
  type StoredRole,
  snapshotMetaForState,
  type ValidatedUpdate,
} from './update.js';

const keys = {
  root: testKey(11),
  root2: testKey(12),
  targets: testKey(13),
  timestamp: testKey(14),
  snapshot: testKey(15),
  releases: testKey(16),
  offlineSnapshot: testKey(17),
  other: testKey(18),
};
const serverKeyids = { timestamp: [keys.timestamp.keyid], snapshot: [keys.snapshot.keyid] };

function rootV1(snapshotKey = keys.snapshot): Root {
  return newRoot({
    expires: expiresIn(NOW, 365 * DAY),
    roles: {
      root: { keys: [keys.root.key] },
      targets: { keys: [keys.targets.key] },
      snapshot: { keys: [snapshotKey.key] },
      timestamp: { keys: [keys.timestamp.key] },
    },
  });
}

function targetsV1(): Targets {
  let t = newTargets({ expires: expiresIn(NOW, 90 * DAY) });
  t = withTarget(t, 'app/v1', targetFileFor(testCrypto, utf8Encode('app v1')));
  return withDelegation(t, { name: 'releases', keys: [keys.releases.key], paths: ['releases/*'] });
}

const uploads = (entries: Record<string, Metadata | Uint8Array>) =>
  new Map(Object.entries(entries).map(([k, v]) => [k, v instanceof Uint8Array ? v : bytesOf(v)]));

function stored<T extends Root | Targets>(md: Metadata<T>): StoredRole<T> {
  return { bytes: bytesOf(md), metadata: md };
}

function apply(update: ValidatedUpdate): CollectionState {
  return {
    root: update.root,
    targets: update.targets,
    delegated: update.delegated,
    snapshot: update.snapshot,
  };
}

const empty: CollectionState = { delegated: new Map() };

function firstPublish(): CollectionState {
  const update = validateUpdate({
    crypto: testCrypto,
    current: empty,
    uploads: uploads({ root: sign(rootV1(), keys.root), targets: sign(targetsV1(), keys.targets) }),
    now: NOW,
    serverKeyids,
  });
  return apply(update);
}

describe('validateUpdate: first publish', () => {
  it('accepts root v1 signed by itself with targets v1, and says the server signs snapshot', () => {
    const update = validateUpdate({
      crypto: testCrypto,
      current: empty,
      uploads: uploads({ root: sign(rootV1(), keys.root), targets: sign(targetsV1(), keys.targets) }),
      now: NOW,
      serverKeyids,
    });
    expect(update.snapshotOnline).toBe(true);
    expect(update.changed.map((c) => [c.role, c.version])).toEqual([
      ['root', 1],
      ['targets', 1],
    ]);
    const meta = snapshotMetaForState(testCrypto, update);
    expect(Object.keys(meta)).toEqual(['targets.json']);
    expect(meta['targets.json']!.length).toBe(update.targets.bytes.length);
  });

  it('refuses a first update without root or without targets', () => {
    expect(
      codeOf(() =>
        validateUpdate({
          crypto: testCrypto,
          current: empty,
          uploads: uploads({ targets: sign(targetsV1(), keys.targets) }),
          now: NOW,
          serverKeyids,
        }),
      ),
    ).toBe('UPDATE_REFUSED');
    expect(
      codeOf(() =>
        validateUpdate({
          crypto: testCrypto,
          current: empty,
          uploads: uploads({ root: sign(rootV1(), keys.root) }),
          now: NOW,
          serverKeyids,
        }),
      ),
    ).toBe('UPDATE_REFUSED');
  });

  it('refuses a root not signed by its own keys, a root v2 as first root, an expired root', () => {
    const tg = sign(targetsV1(), keys.targets);
    const run = (root: Metadata<Root>) => () =>
      validateUpdate({
        crypto: testCrypto,
        current: empty,
        uploads: uploads({ root, targets: tg }),
        now: NOW,
        serverKeyids,
      });
    expect(codeOf(run(sign(rootV1(), keys.other)))).toBe('THRESHOLD_NOT_MET');
    expect(codeOf(run(sign(bumpVersion(rootV1(), expiresIn(NOW, DAY)), keys.root)))).toBe('VERSION_MISMATCH');
    expect(codeOf(run(sign(bumpVersion(rootV1(), expiresIn(NOW, -DAY), 1), keys.root)))).toBe('EXPIRED');
  });

  it("refuses a root whose timestamp role is not the server's key", () => {
    const root = withRootRole(rootV1(), 'timestamp', { keys: [keys.other.key] });
    expect(
      codeOf(() =>
        validateUpdate({
          crypto: testCrypto,
          current: empty,
          uploads: uploads({ root: sign(root, keys.root), targets: sign(targetsV1(), keys.targets) }),
          now: NOW,
          serverKeyids,
        }),
      ),
    ).toBe('INVALID_METADATA');
  });

  it('refuses an uploaded timestamp, non-canonical bytes, a wrong _type, bad JSON', () => {
    const root = sign(rootV1(), keys.root);
    const tg = sign(targetsV1(), keys.targets);
    const run = (u: Map<string, Uint8Array>) => () =>
      validateUpdate({ crypto: testCrypto, current: empty, uploads: u, now: NOW, serverKeyids });
    expect(codeOf(run(uploads({ root, targets: tg, timestamp: tg })))).toBe('UPDATE_REFUSED');
    const spaced = utf8Encode(JSON.stringify(JSON.parse(new TextDecoder().decode(bytesOf(tg))), null, 1));
    expect(codeOf(run(uploads({ root, targets: spaced })))).toBe('NON_CANONICAL');
    expect(codeOf(run(uploads({ root, targets: root })))).toBe('WRONG_TYPE');
    expect(codeOf(run(uploads({ root, targets: utf8Encode('{"signed":') })))).toBe('INVALID_JSON');
  });
});

describe('validateUpdate: later updates', () => {
  it('accepts targets v2 and refuses a repeated or skipped version, a wrong key, an expired targets', () => {
    const state = firstPublish();
    const v2 = bumpVersion(targetsV1(), expiresIn(NOW, 90 * DAY));
    const ok = validateUpdate({
      crypto: testCrypto,
      current: state,
      uploads: uploads({ targets: sign(v2, keys.targets) }),
      now: NOW,
      serverKeyids,
    });
    expect(ok.targets.metadata.signed.version).toBe(2);
    const run = (md: Metadata<Targets>) => () =>
      validateUpdate({
        crypto: testCrypto,
        current: state,
        uploads: uploads({ targets: md }),
        now: NOW,
        serverKeyids,
      });
    expect(codeOf(run(sign(targetsV1(), keys.targets)))).toBe('ROLLBACK');
    expect(codeOf(run(sign(bumpVersion(targetsV1(), expiresIn(NOW, DAY), 3), keys.targets)))).toBe(
      'VERSION_MISMATCH',
    );
    expect(codeOf(run(sign(v2, keys.other)))).toBe('THRESHOLD_NOT_MET');
    const badSig = { ...sign(v2, keys.targets) };
    const forged = { ...badSig, signatures: [{ ...badSig.signatures[0]!, sig: '00'.repeat(64) }] };
    expect(codeOf(run(forged))).toBe('BAD_SIGNATURE');
    expect(codeOf(run(sign(bumpVersion(targetsV1(), expiresIn(NOW, -DAY)), keys.targets)))).toBe('EXPIRED');
  });

  it('lets an expired targets role be replaced while root is valid, not once root has expired', () => {
    const state = firstPublish();
    const later = NOW + 100 * DAY; // targets v1 expired at NOW + 90 days
    const v2 = sign(bumpVersion(targetsV1(), expiresIn(later, 90 * DAY)), keys.targets);
    const ok = validateUpdate({
      crypto: testCrypto,
      current: state,
      uploads: uploads({ targets: v2 }),
      now: later,
      serverKeyids,
    });
    expect(ok.targets.metadata.signed.version).toBe(2);
    const afterRoot = NOW + 400 * DAY;
    const v2b = sign(bumpVersion(targetsV1(), expiresIn(afterRoot, 90 * DAY)), keys.targets);
    expect(
      codeOf(() =>
        validateUpdate({
          crypto: testCrypto,
          current: state,
          uploads: uploads({ targets: v2b }),
          now: afterRoot,
          serverKeyids,
        }),
      ),
    ).toBe('EXPIRED');
  });

  it('rotates root with both thresholds and exactly the next version', () => {
    const state = firstPublish();
    const v2 = bumpVersion(
      withRootRole(rootV1(), 'root', { keys: [keys.root2.key] }),
      expiresIn(NOW, 365 * DAY),
    );
    const ok = validateUpdate({
      crypto: testCrypto,
      current: state,
      uploads: uploads({ root: sign(v2, keys.root, keys.root2) }),
      now: NOW,
      serverKeyids,
    });
    expect(ok.root.metadata.signed.version).toBe(2);
    const run = (md: Metadata<Root>) => () =>
      validateUpdate({
        crypto: testCrypto,
        current: state,
        uploads: uploads({ root: md }),
        now: NOW,
        serverKeyids,
      });
    expect(codeOf(run(sign(v2, keys.root2)))).toBe('THRESHOLD_NOT_MET'); // old threshold missing
    expect(codeOf(run(sign(v2, keys.root)))).toBe('THRESHOLD_NOT_MET'); // new threshold missing
    const v3 = bumpVersion(v2, expiresIn(NOW, DAY), 3);
    expect(codeOf(run(sign(v3, keys.root, keys.root2)))).toBe('VERSION_MISMATCH');
    expect(codeOf(run(sign(rootV1(), keys.root)))).toBe('ROLLBACK');
  });

  it('refuses a root v1 by other keys where a collection exists as CONFLICT (created again), not as a signature failure', () => {
    const state = firstPublish();
    const other = withRootRole(rootV1(), 'root', { keys: [keys.other.key] });
    let error: unknown;
    try {
      validateUpdate({
        crypto: testCrypto,
        current: state,
        uploads: uploads({ root: sign(other, keys.other), targets: sign(targetsV1(), keys.targets) }),
        now: NOW,
        serverKeyids,
      });
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'CONFLICT', details: { exists: true, current: { root: 1 } } });
    expect((error as Error).message).toMatch(/exists already/);
  });

  it('needs targets re-signed when a root rotation changes the targets keys', () => {
    const state = firstPublish();
    const v2 = bumpVersion(
      withRootRole(rootV1(), 'targets', { keys: [keys.other.key] }),
      expiresIn(NOW, 365 * DAY),
    );
    const rootMd = sign(v2, keys.root);
    expect(
      codeOf(() =>
        validateUpdate({
          crypto: testCrypto,
          current: state,
          uploads: uploads({ root: rootMd }),
          now: NOW,
          serverKeyids,
        }),
      ),
    ).toBe('THRESHOLD_NOT_MET');
    const t2 = sign(bumpVersion(targetsV1(), expiresIn(NOW, DAY)), keys.other);
    const ok = validateUpdate({
      crypto: testCrypto,
      current: state,
      uploads: uploads({ root: rootMd, targets: t2 }),
      now: NOW,
      serverKeyids,
    });
    expect(ok.changed.map((c) => c.role)).toEqual(['root', 'targets']);
  });
});

describe('validateUpdate: delegated roles', () => {
  const releases = (paths: string[], version = 1) => {
    let r = newTargets({ expires: expiresIn(NOW, 30 * DAY), version });
    for (const p of paths) r = withTarget(r, p, targetFileFor(testCrypto, utf8Encode(p)));
    return r;
  };

  it('accepts a delegated role signed by its delegation key with targets inside its paths', () => {
    const state = firstPublish();
    const ok = validateUpdate({
      crypto: testCrypto,
      current: state,
      uploads: uploads({ releases: sign(releases(['releases/r1']), keys.releases) }),
      now: NOW,
      serverKeyids,
    });
    expect(ok.delegated.get('releases')!.metadata.signed.version).toBe(1);
    expect(Object.keys(snapshotMetaForState(testCrypto, ok)).sort()).toEqual([
      'releases.json',
      'targets.json',
    ]);
  });

  it('refuses targets outside the delegated paths, the wrong signer, an undelegated role, a bad name', () => {
    const state = firstPublish();
    const run = (u: Map<string, Uint8Array>) => () =>
      validateUpdate({ crypto: testCrypto, current: state, uploads: u, now: NOW, serverKeyids });
    expect(codeOf(run(uploads({ releases: sign(releases(['releases/r1', 'app/v2']), keys.releases) })))).toBe(
      'PATH_NOT_DELEGATED',
    );
    expect(codeOf(run(uploads({ releases: sign(releases(['releases/r1']), keys.targets) })))).toBe(
      'THRESHOLD_NOT_MET',
    );
    expect(codeOf(run(uploads({ nobody: sign(releases([]), keys.releases) })))).toBe('UPDATE_REFUSED');
    expect(codeOf(run(uploads({ '1.releases': sign(releases([]), keys.releases) })))).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('refuses a delegation change that leaves a stored delegated role untrusted', () => {
    let state = firstPublish();
    state = apply(
      validateUpdate({
        crypto: testCrypto,
        current: state,
        uploads: uploads({ releases: sign(releases(['releases/r1']), keys.releases) }),
        now: NOW,
        serverKeyids,
      }),
    );
    let t2 = bumpVersion(targetsV1(), expiresIn(NOW, DAY));
    t2 = withDelegation(t2, { name: 'releases', keys: [keys.other.key], paths: ['releases/*'] });
    const t2md = sign(t2, keys.targets);
    expect(
      codeOf(() =>
        validateUpdate({
          crypto: testCrypto,
          current: state,
          uploads: uploads({ targets: t2md }),
          now: NOW,
          serverKeyids,
        }),
      ),
    ).toBe('THRESHOLD_NOT_MET');
    const ok = validateUpdate({
      crypto: testCrypto,
      current: state,
      uploads: uploads({ targets: t2md, releases: sign(releases(['releases/r2'], 2), keys.other) }),
      now: NOW,
      serverKeyids,
    });
    expect(ok.delegated.get('releases')!.metadata.signed.version).toBe(2);
  });
});

describe('validateUpdate: snapshot', () => {
  it('refuses a snapshot when the server holds the snapshot key', () => {
    const state = firstPublish();
    const snap = sign(
      newSnapshot({ expires: expiresIn(NOW, DAY), meta: snapshotMetaForState(testCrypto, state as never) }),
      keys.snapshot,
    );
    expect(
      codeOf(() =>
        validateUpdate({
          crypto: testCrypto,
          current: state,
          uploads: uploads({ snapshot: snap }),
          now: NOW,
          serverKeyids,
        }),
      ),
    ).toBe('UPDATE_REFUSED');
  });

  it('with an offline snapshot key: needs a snapshot that matches the new state exactly', () => {
    const root = sign(rootV1(keys.offlineSnapshot), keys.root);
    const targets = sign(targetsV1(), keys.targets);
    const targetsStored = stored(targets);
    const meta = snapshotMetaForState(testCrypto, { targets: targetsStored, delegated: new Map() });
    const snap = sign(newSnapshot({ expires: expiresIn(NOW, DAY), meta }), keys.offlineSnapshot);
    const run = (u: Map<string, Uint8Array>) => () =>
      validateUpdate({ crypto: testCrypto, current: empty, uploads: u, now: NOW, serverKeyids });
    expect(codeOf(run(uploads({ root, targets })))).toBe('UPDATE_REFUSED');
    const ok = validateUpdate({
      crypto: testCrypto,
      current: empty,
      uploads: uploads({ root, targets, snapshot: snap }),
      now: NOW,
      serverKeyids,
    });
    expect(ok.snapshotOnline).toBe(false);
    expect(ok.snapshot!.metadata.signed.version).toBe(1);

    const wrongHash = {
      ...meta,
      'targets.json': { ...meta['targets.json']!, hashes: { sha256: '0'.repeat(64) } },
    };
    const bad = sign(newSnapshot({ expires: expiresIn(NOW, DAY), meta: wrongHash }), keys.offlineSnapshot);
    expect(codeOf(run(uploads({ root, targets, snapshot: bad })))).toBe('HASH_MISMATCH');
    const extra = { ...meta, [metaFileName('ghost')]: { version: 1, extra: {} } };
    const ghost = sign(newSnapshot({ expires: expiresIn(NOW, DAY), meta: extra }), keys.offlineSnapshot);
    expect(codeOf(run(uploads({ root, targets, snapshot: ghost })))).toBe('INVALID_METADATA');
    const byServer = sign(newSnapshot({ expires: expiresIn(NOW, DAY), meta }), keys.snapshot);
    expect(codeOf(run(uploads({ root, targets, snapshot: byServer })))).toBe('THRESHOLD_NOT_MET');
  });
});

describe('validateUpdate: replaced roles given by their stored version', () => {
  /** The state without the roles `u` uploads, and their stored versions in their place. */
  const replacing = (state: CollectionState, u: Map<string, Uint8Array>) => {
    const replacedVersions = new Map<string, number>();
    const delegated = new Map(state.delegated as ReadonlyMap<string, StoredRole<Targets>>);
    let { targets, snapshot } = state;
    for (const role of u.keys()) {
      const held = role === 'targets' ? targets : role === 'snapshot' ? snapshot : delegated.get(role);
      if (held === undefined || role === 'root') continue;
      replacedVersions.set(role, held.metadata.signed.version);
      if (role === 'targets') targets = undefined;
      else if (role === 'snapshot') snapshot = undefined;
      else delegated.delete(role);
    }
    return { current: { root: state.root, targets, snapshot, delegated }, replacedVersions };
  };
  const outcome = (run: () => ValidatedUpdate) => {
    try {
      const update = run();
      return { changed: update.changed.map((c) => [c.role, c.version]), online: update.snapshotOnline };
    } catch (err) {
      return isTufaError(err) ? { code: err.code, message: err.message, details: err.details } : { err };
    }
  };

  it('gives the same verdict as the whole state: accepted, rollback, gap, bad signature, untrusted kept role', () => {
    let state = firstPublish();
    const releases = (version: number, key = keys.releases) => {
      let r = newTargets({ expires: expiresIn(NOW, 30 * DAY), version });
      r = withTarget(r, 'releases/r1', targetFileFor(testCrypto, utf8Encode('r1')));
      return sign(r, key);
    };
    state = apply(
      validateUpdate({
        crypto: testCrypto,
        current: state,
        uploads: uploads({ releases: releases(1) }),
        now: NOW,
        serverKeyids,
      }),
    );
    const t = (version: number) => sign(bumpVersion(targetsV1(), expiresIn(NOW, DAY), version), keys.targets);
    let rotated = bumpVersion(targetsV1(), expiresIn(NOW, DAY));
    rotated = withDelegation(rotated, { name: 'releases', keys: [keys.other.key], paths: ['releases/*'] });
    const cases = [
      uploads({ targets: t(2) }),
      uploads({ targets: t(1) }),
      uploads({ targets: t(3) }),
      uploads({ targets: sign(bumpVersion(targetsV1(), expiresIn(NOW, DAY)), keys.other) }),
      uploads({ releases: releases(2) }),
      uploads({ releases: releases(1) }),
      uploads({ targets: sign(rotated, keys.targets) }),
      uploads({ targets: sign(rotated, keys.targets), releases: releases(2, keys.other) }),
    ];
    const verdicts: string[] = [];
    for (const u of cases) {
      const whole = outcome(() =>
        validateUpdate({ crypto: testCrypto, current: state, uploads: u, now: NOW, serverKeyids }),
      );
      const replaced = outcome(() =>
        validateUpdate({ crypto: testCrypto, ...replacing(state, u), uploads: u, now: NOW, serverKeyids }),
      );
      expect(replaced).toEqual(whole);
      verdicts.push('code' in whole ? String(whole.code) : 'ok');
    }
    expect(verdicts).toEqual([
      'ok',
      'ROLLBACK',
      'VERSION_MISMATCH',
      'THRESHOLD_NOT_MET',
      'ok',
      'ROLLBACK',
      'THRESHOLD_NOT_MET',
      'ok',
    ]);
  });

  it('refuses a version given for a role the update does not carry, for root, or for a role also in the state', () => {
    const state = firstPublish();
    const t2 = uploads({ targets: sign(bumpVersion(targetsV1(), expiresIn(NOW, DAY)), keys.targets) });
    const run = (current: CollectionState, replacedVersions: Map<string, number>) => () =>
      validateUpdate({ crypto: testCrypto, current, replacedVersions, uploads: t2, now: NOW, serverKeyids });
    const withoutTargets = { ...state, targets: undefined };
    expect(codeOf(run(withoutTargets, new Map([['releases', 1]])))).toBe('INVALID_ARGUMENT');
    expect(codeOf(run(withoutTargets, new Map([['root', 1]])))).toBe('INVALID_ARGUMENT');
    expect(codeOf(run(state, new Map([['targets', 1]])))).toBe('INVALID_ARGUMENT');
    expect(run(withoutTargets, new Map([['targets', 1]]))().targets.metadata.signed.version).toBe(2);
  });
});

describe('isValidRoleName', () => {
  it('accepts plain and Notary-style names, refuses ambiguous and path-like ones', () => {
    for (const ok of ['releases', 'targets/releases', 'a.b-c_d', 'v1'])
      expect(isValidRoleName(ok)).toBe(true);
    for (const bad of ['', '1.releases', '../x', 'a//b', 'a/./b', 'é', 'x'.repeat(256), ' a'])
      expect(isValidRoleName(bad)).toBe(false);
  });

  it('the parsed bytes of a stored role round-trip', () => {
    const md = sign(targetsV1(), keys.targets);
    expect(parseMetadata('targets', bytesOf(md)).signed.version).toBe(1);
  });
});

describe('parseUploaded: the exact served form, checked without encoding the document again', () => {
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  const code = (bytes: Uint8Array | string) => {
    try {
      parseUploaded('targets', typeof bytes === 'string' ? utf8Encode(bytes) : bytes, 'targets');
      return 'ok';
    } catch (err) {
      return isTufaError(err) ? err.code : String(err);
    }
  };
  const md = sign(
    withTarget(targetsV1(), 'a', targetFileFor(testCrypto, utf8Encode('a'), { custom: { note: 'x' } })),
    keys.targets,
  );
  const good = text(bytesOf(md));

  it('accepts tufa’s own serialisation and keeps the signed bytes', () => {
    expect(code(good)).toBe('ok');
    expect(parseUploaded('targets', bytesOf(md), 'targets').metadata.signedBytes).toEqual(md.signedBytes);
  });

  it('refuses any other serialisation of the same document', () => {
    const doc = JSON.parse(good);
    for (const [from, to] of [
      ['"keyid":', '"keyid" :'],
      ['"note":"x"', '"note":"\\u0078"'],
      ['],"signed":', '] ,"signed":'],
    ]) {
      expect(good.includes(from!), from).toBe(true);
      expect(code(good.replace(from!, to!))).toBe('NON_CANONICAL');
    }
    expect(code(`${good} `)).toBe('NON_CANONICAL');
    expect(code(JSON.stringify({ signed: doc.signed, signatures: doc.signatures }))).toBe('NON_CANONICAL');
  });

  it('wants control characters escaped, and checks extra envelope fields too', () => {
    const withNewline = sign(
      withTarget(
        targetsV1(),
        'b',
        targetFileFor(testCrypto, utf8Encode('b'), { custom: { note: 'line\nbreak' } }),
      ),
      keys.targets,
    );
    const served = text(bytesOf(withNewline));
    expect(served).toContain('line\\nbreak');
    expect(code(served)).toBe('ok');
    expect(code(served.replace('line\\nbreak', 'line\nbreak'))).toBe('NON_CANONICAL');
    const doc = JSON.parse(good);
    const parts = `"signatures":${JSON.stringify(doc.signatures)},"signed":${JSON.stringify(doc.signed)}`;
    expect(code(`{${parts},"z_extra":1}`)).toBe('ok');
    expect(code(`{"a_extra":1,${parts}}`)).toBe('ok');
    expect(code(`{${parts},"a_extra":1}`)).toBe('NON_CANONICAL');
  });
});

describe('parseUploaded of a large targets document: entries checked as read, made on demand', () => {
  // Past 1 MiB: 10,000 entries of about 110 bytes.
  const entries = (n: number) => {
    let t = newTargets({ expires: expiresIn(NOW, 90 * DAY) });
    const files = dict<TargetFile>();
    for (let i = 0; i < n; i++)
      files[`app/v${String(i).padStart(5, '0')}`] = targetFileFor(testCrypto, utf8Encode(`${i}`), {
        hashes: ['sha256'],
      });
    t = { ...t, targets: files };
    return t;
  };
  const md = sign(
    withDelegation(entries(10_000), { name: 'releases', keys: [keys.releases.key], paths: ['releases/*'] }),
    keys.targets,
  );
  const good = new TextDecoder().decode(bytesOf(md));
  /** What parseUploaded answers, and what the whole parse answers: the same, either way. */
  const answers = (text: string) => {
    const bytes = utf8Encode(text);
    const read = (parse: () => { metadata: Metadata; servedForm?: boolean }) => {
      try {
        const envelope = parse();
        if (envelope.servedForm === false) return { code: 'NON_CANONICAL' };
        const m = envelope.metadata;
        return {
          signed: m.signed,
          targets: { ...(m.signed as Targets).targets },
          signatures: m.signatures,
          extra: m.extra,
          signedBytes: Buffer.from(m.signedBytes).toString('hex'),
        };
      } catch (err) {
        // The whole parse says it by servedForm; parseUploaded by NON_CANONICAL.
        if (isTufaError(err, 'NON_CANONICAL')) return { code: err.code };
        return isTufaError(err)
          ? { code: err.code, message: err.message, details: err.details }
          : { err: String(err) };
      }
    };
    return {
      uploaded: read(() => parseUploaded('targets', bytes, 'targets')),
      whole: read(() => parseSignedEnvelope('targets', bytes, { role: 'targets' })),
    };
  };

  it('is large enough to be read that way, and gives the document as the whole parse does', () => {
    expect(good.length).toBeGreaterThan(1024 * 1024);
    const { uploaded, whole } = answers(good);
    expect(uploaded).toEqual(whole);
    expect(Object.keys((uploaded as { targets: object }).targets).length).toBe(10_000);
    const envelope = parseUploaded('targets', utf8Encode(good), 'targets');
    expect(Buffer.from(serializeMetadata(envelope.metadata)).toString()).toBe(good);
  });

  it('every departure gives the answer of the whole parse: unusual entries, refusals, repeated and unordered keys', () => {
    const first = '"app/v00000":';
    const second = '"app/v00001":';
    const entry = good.slice(good.indexOf(first) + first.length, good.indexOf(second) - 1);
    const variants: Record<string, string> = {
      'an unknown field in an entry': good.replace(
        `${first}${entry}`,
        `${first}${entry.slice(0, -1)},"x":1}`,
      ),
      'a custom field': good.replace(`${first}{`, `${first}{"custom":{"a":[1,2]},`),
      'an upper-case digest': good.replace(
        /("app\/v00003":\{"hashes":\{"sha256":")([0-9a-f])/,
        (_, a, b) => `${a}${b.toUpperCase() === b ? 'A' : b.toUpperCase()}`,
      ),
      'a negative length': good.replace(
        /("app\/v00004":\{"hashes":\{"sha256":"[0-9a-f]+"\},"length":)/,
        '$1-',
      ),
      'an empty path': good.replace(first, `"":${entry},${first}`),
      'a repeated path': good.replace(second, `${first}${entry},${second}`),
      'paths out of order': good.replace(first, `"app/v99999":${entry},${first}`),
      'a bad entry, then bad JSON': good.replace(`${first}{`, `${first}{"length":-1,`).replace(/\}\}$/, '}'),
      'nesting past the bound in an entry': good.replace(
        `${first}{`,
        `${first}{"custom":${'['.repeat(70)}${']'.repeat(70)},`,
      ),
      whitespace: good.replace(`${first}{`, `${first} {`),
      'a wrong type': good.replace('"_type":"targets"', '"_type":"snapshot"'),
    };
    const codes: Record<string, string> = {};
    for (const [name, text] of Object.entries(variants)) {
      expect(text, name).not.toBe(good);
      const { uploaded, whole } = answers(text);
      expect({ name, ...uploaded }).toEqual({ name, ...whole });
      codes[name] = 'code' in uploaded ? String(uploaded.code) : 'ok';
    }
    expect(codes).toEqual({
      'an unknown field in an entry': 'ok',
      'a custom field': 'ok',
      'an upper-case digest': 'INVALID_METADATA',
      'a negative length': 'INVALID_METADATA',
      'an empty path': 'INVALID_METADATA',
      'a repeated path': 'INVALID_JSON',
      'paths out of order': 'NON_CANONICAL',
      'a bad entry, then bad JSON': 'INVALID_JSON',
      'nesting past the bound in an entry': 'INVALID_JSON',
      whitespace: 'NON_CANONICAL',
      'a wrong type': 'WRONG_TYPE',
    });
  });
});

describe('snapshotMetaForState', () => {
  it('hashes each targets role, or takes the digest the caller already has', () => {
    const targets = stored(sign(targetsV1(), keys.targets));
    const state = { targets, delegated: new Map<string, StoredRole<Targets>>() };
    const computed = snapshotMetaForState(testCrypto, state)[metaFileName('targets')]!;
    const real = createHash('sha256').update(targets.bytes).digest('hex');
    expect(computed).toMatchObject({ version: 1, length: targets.bytes.length, hashes: { sha256: real } });
    // A document parsed with the digest its store already has: taken as given, not hashed again.
    const known = parseSignedEnvelope('targets', targets.bytes, { sha256: 'ab'.repeat(32) });
    const given = snapshotMetaForState(testCrypto, { ...state, targets: known })[metaFileName('targets')]!;
    expect(given).toEqual({ ...computed, hashes: { sha256: 'ab'.repeat(32) } });
    // Without one, the envelope hashes its bytes once, on first use, and keeps the digest.
    const unknown = parseSignedEnvelope('targets', targets.bytes);
    expect(
      snapshotMetaForState(testCrypto, { ...state, targets: unknown })[metaFileName('targets')]!,
    ).toEqual(computed);
    expect(unknown.sha256(testCrypto)).toBe(real);
  });
});
