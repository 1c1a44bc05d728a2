/**
 * The attack suite: one test per attack, against a misbehaving repository over real HTTP. Each
 * asserts the error code and that the cache still holds the last good state.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_MAX_LENGTHS, DEFAULT_MAX_SIZES } from '@tufa/client';
import {
  bumpVersion,
  canonicalBytes,
  computeKeyId,
  expiresIn,
  type JsonObject,
  type Key,
  metaFileFor,
  newSnapshot,
  newTargets,
  newTimestamp,
  type Root,
  signedToJson,
  targetFileFor,
  toHex,
  utf8Encode,
  withDelegation,
  withRootRole,
  withTarget,
} from '@tufa/core';
import {
  codeOf,
  DAY,
  endless,
  hang,
  NOW,
  type RepoSim,
  signBytes,
  signedBytes,
  signRaw,
  type TestKey,
  testCrypto,
  testKey,
  text,
  trickle,
} from '@tufa/testing';
import { cachedVersions, type Setup, setup } from '@tufa/testing/client';
import { afterEach, describe, expect, it } from 'vitest';

let s: Setup | undefined;
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

/** A repository, a client that has refreshed once, and the cache versions at that point. */
async function good(options: Parameters<typeof setup>[0] = {}) {
  s = await setup(options);
  await s.client.refresh();
  await s.client.getTarget('releases/r1'); // loads (and caches) the delegated role too
  const before = await cachedVersions(join(s.dir, 'cache'));
  return { s, sim: s.sim, client: s.client, before };
}

async function cacheNow(): Promise<Record<string, number>> {
  return cachedVersions(join(s!.dir, 'cache'));
}

/** The cache holds what it held before the attack (for the roles named, or all of them). */
async function expectLastGood(before: Record<string, number>, roles?: string[]): Promise<void> {
  const after = await cacheNow();
  if (roles === undefined) expect(after).toEqual(before);
  else for (const role of roles) expect(after[role], role).toBe(before[role]);
}

const ROOT_EXPIRES = expiresIn(NOW, 365 * DAY);

/** Publishes root N+1 changing one role's keys, signed by `signers` (default: the current root keys). */
function rotate(
  sim: RepoSim,
  role: 'root' | 'timestamp' | 'snapshot' | 'targets',
  keys: TestKey[],
  options: { threshold?: number; signers?: TestKey[] } = {},
): Root {
  const next = bumpVersion(
    withRootRole(sim.root, role, { keys: keys.map((k) => k.key), threshold: options.threshold ?? 1 }),
    ROOT_EXPIRES,
  );
  sim.publishRoot(next, options.signers ?? sim.keys.root);
  if (role !== 'root') sim.keys[role] = keys;
  return next;
}

describe('arbitrary software', () => {
  const original = targetFileFor(testCrypto, text('app v1'));

  it('refuses a target with the wrong hash', async () => {
    const { sim, client, before } = await good();
    sim.serveTarget('app/v1', text('app v2'), original.hashes);
    const dest = join(s!.dir, 'out', 'app');
    expect(await codeOf(client.downloadTarget('app/v1', dest))).toBe('HASH_MISMATCH');
    expect(existsSync(dest)).toBe(false);
    expect(await readdir(join(s!.dir, 'out'))).toEqual([]); // no temp file left
    await expectLastGood(before);
  });

  it('refuses a target with the wrong length', async () => {
    const { sim, client, before } = await good();
    sim.serveTarget('app/v1', text('app v'), original.hashes);
    const dest = join(s!.dir, 'out', 'app');
    expect(await codeOf(client.downloadTarget('app/v1', dest))).toBe('LENGTH_MISMATCH');
    expect(existsSync(dest)).toBe(false);
    await expectLastGood(before);
  });

  it('refuses a target longer than stated, declared or not', async () => {
    const { sim, client, before } = await good();
    sim.serveTarget('app/v1', text('app v1 and then some'), original.hashes);
    const dest = join(s!.dir, 'out', 'app');
    expect(await codeOf(client.downloadTarget('app/v1', dest))).toBe('LENGTH_MISMATCH');
    sim.handlers.set(`targets/app/${original.hashes.sha256}.v1`, endless());
    expect(await codeOf(client.downloadTarget('app/v1', dest))).toBe('LENGTH_MISMATCH');
    expect(existsSync(dest)).toBe(false);
    await expectLastGood(before);
  });
});

describe('rollback', () => {
  it('refuses a timestamp rollback', async () => {
    const { sim, client } = await good();
    const old = sim.files.get('metadata/timestamp.json')!;
    sim.publish();
    await client.refresh();
    const before = await cacheNow();
    sim.files.set('metadata/timestamp.json', old);
    expect(await codeOf(client.refresh())).toBe('ROLLBACK');
    await expectLastGood(before);
  });

  it('refuses a snapshot rollback (timestamp naming an older snapshot)', async () => {
    const { sim, client } = await good();
    const oldSnapshot = sim.published.get('snapshot')!;
    sim.publish();
    await client.refresh();
    const before = await cacheNow();
    sim.publishTimestamp({ snapshotMeta: metaFileFor(testCrypto, oldSnapshot, 1) });
    const err = await client.refresh().catch((e) => e);
    expect(err.code).toBe('ROLLBACK');
    expect(err.role).toBe('snapshot');
    await expectLastGood(before, ['snapshot', 'targets']);
    expect((await cacheNow()).timestamp).toBe(before.timestamp);
  });

  it('refuses a targets rollback inside snapshot', async () => {
    const { sim, client } = await good();
    const v1 = sim.targets;
    sim.bump('targets');
    sim.publish();
    await client.refresh();
    const before = await cacheNow();
    sim.targets = v1;
    sim.publish();
    const err = await client.refresh().catch((e) => e);
    expect(err.code).toBe('ROLLBACK');
    expect(err.role).toBe('targets');
    await expectLastGood(before, ['snapshot', 'targets']);
  });

  it('refuses a delegated role rollback inside snapshot', async () => {
    const { sim, client } = await good();
    const releases = sim.delegated.get('releases')!;
    const v1 = releases.signed;
    sim.bump('releases');
    sim.publish();
    await client.refresh();
    await client.getTarget('releases/r1');
    const before = await cacheNow();
    expect(before['delegated/releases']).toBe(2);
    releases.signed = v1;
    sim.publish();
    const err = await client.refresh().catch((e) => e);
    expect(err.code).toBe('ROLLBACK');
    expect(err.role).toBe('releases');
    await expectLastGood(before, ['snapshot', 'targets', 'delegated/releases']);
  });

  it('refuses targets older than the version snapshot states', async () => {
    const { sim, client, before } = await good();
    sim.metaHashes = false;
    const v1Bytes = sim.published.get('targets')!;
    sim.bump('targets');
    sim.publish();
    sim.files.set('metadata/2.targets.json', v1Bytes);
    const err = await client.refresh().catch((e) => e);
    expect(err.code).toBe('ROLLBACK');
    expect(err.role).toBe('targets');
    expect([err.expected, err.found]).toEqual([2, 1]);
    await expectLastGood(before, ['targets', 'delegated/releases']);
  });
});

describe('indefinite freeze', () => {
  it('refuses an expired timestamp', async () => {
    const { client, before } = await good();
    s!.clock.now = NOW + 2 * DAY;
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['EXPIRED', 'timestamp']);
    await expectLastGood(before);
  });

  it('refuses an expired snapshot', async () => {
    const { sim, client, before } = await good();
    sim.snapshotExpires = expiresIn(NOW, -60_000);
    sim.publish();
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['EXPIRED', 'snapshot']);
    await expectLastGood(before, ['snapshot', 'targets']);
  });

  it('refuses expired targets', async () => {
    const { sim, client, before } = await good();
    sim.targets = bumpVersion(sim.targets, expiresIn(NOW, -60_000));
    sim.publish();
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['EXPIRED', 'targets']);
    await expectLastGood(before, ['targets']);
  });

  it('refuses an expired delegated role', async () => {
    const { sim, client, before } = await good();
    const releases = sim.delegated.get('releases')!;
    releases.signed = bumpVersion(releases.signed, expiresIn(NOW, -60_000));
    sim.publish();
    await client.refresh();
    const err = await client.getTarget('releases/r1').catch((e) => e);
    expect([err.code, err.role]).toEqual(['EXPIRED', 'releases']);
    await expectLastGood(before, ['delegated/releases']);
  });

  it('refuses an expired final root', async () => {
    const { client, before } = await good();
    s!.clock.now = NOW + 400 * DAY;
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['EXPIRED', 'root']);
    await expectLastGood(before);
  });
});

describe('mix-and-match', () => {
  it('refuses a snapshot listing a targets version the repository does not have', async () => {
    const { sim, client, before } = await good();
    sim.bump('targets');
    sim.publish();
    sim.files.delete('metadata/2.targets.json');
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['NOT_FOUND', 'targets']);
    await expectLastGood(before, ['targets']);
  });

  it('refuses targets whose hash does not match snapshot meta', async () => {
    const { sim, client, before } = await good();
    sim.bump('targets');
    sim.publish();
    // Another, validly signed, version 2 of targets: not the one snapshot names.
    const other = withTarget(sim.targets, 'app/v1', targetFileFor(testCrypto, text('app v9'))); // same length
    sim.files.set('metadata/2.targets.json', signedBytes(other, sim.keys.targets));
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['HASH_MISMATCH', 'targets']);
    await expectLastGood(before, ['targets']);
    expect((await client.getTarget('app/v1')).hashes).toEqual(
      targetFileFor(testCrypto, text('app v1')).hashes,
    );
  });
});

describe('fast-forward', () => {
  it('recovers from a compromised timestamp key pushing a huge version once the key is rotated', async () => {
    const { sim, client } = await good();
    sim.timestampVersion = 999;
    sim.publishTimestamp(); // the attacker, holding the timestamp key
    expect((await client.refresh()).timestamp).toBe(1000);
    sim.timestampVersion = 1;
    sim.publishTimestamp(); // the real repository: version 2
    expect(await codeOf(client.refresh())).toBe('ROLLBACK');
    expect((await cacheNow()).timestamp).toBe(1000);
    rotate(sim, 'timestamp', [testKey(40)]);
    sim.publishTimestamp(); // version 3, by the new key
    const result = await client.refresh();
    expect(result).toMatchObject({ root: 2, timestamp: 3 });
    expect(await cacheNow()).toMatchObject({ root: 2, timestamp: 3 });
  });
});

describe('endless data', () => {
  it('refuses an oversized root', async () => {
    const { sim, client, before } = await good();
    sim.files.set('metadata/2.root.json', new Uint8Array(512 * 1024 + 1).fill(0x20));
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['TOO_LARGE', 'root']);
    sim.files.delete('metadata/2.root.json');
    sim.handlers.set('metadata/2.root.json', endless());
    expect(await codeOf(client.refresh())).toBe('TOO_LARGE');
    await expectLastGood(before);
  });

  it('refuses an oversized timestamp', async () => {
    const { sim, client, before } = await good();
    sim.files.set('metadata/timestamp.json', new Uint8Array(16 * 1024 + 1).fill(0x20));
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['TOO_LARGE', 'timestamp']);
    await expectLastGood(before);
  });

  it('refuses a snapshot longer than the timestamp states', async () => {
    const { sim, client, before } = await good();
    sim.publish();
    const real = sim.published.get('snapshot')!;
    sim.files.set('metadata/2.snapshot.json', new Uint8Array(real.length + 100).fill(0x20));
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['TOO_LARGE', 'snapshot']);
    await expectLastGood(before, ['snapshot']);
  });

  it('refuses a snapshot above the default bound when no length is stated', async () => {
    const { sim, client, before } = await good({ maxSizes: { snapshot: 4096 } });
    sim.metaHashes = false;
    sim.publish();
    sim.handlers.set('metadata/2.snapshot.json', endless());
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['TOO_LARGE', 'snapshot']);
    await expectLastGood(before, ['snapshot']);
  });

  it('refuses oversized targets', async () => {
    const { sim, client, before } = await good({ maxSizes: { targets: 8192 } });
    sim.metaHashes = false;
    sim.bump('targets');
    sim.publish();
    sim.files.set('metadata/2.targets.json', new Uint8Array(8193).fill(0x20));
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['TOO_LARGE', 'targets']);
    await expectLastGood(before, ['targets']);
  });

  it('refuses a snapshot length the timestamp states above the ceiling, before requesting it', async () => {
    const { sim, client, before } = await good();
    sim.publish();
    const real = sim.published.get('snapshot')!;
    // A compromised server signs any length: 2^53-1, with a body far past the ceiling behind it.
    const body = new Uint8Array(256 * 1024).fill(0x20);
    body.set(real);
    sim.files.set('metadata/2.snapshot.json', body);
    sim.publishTimestamp({
      snapshotMeta: { ...metaFileFor(testCrypto, real, 2), length: Number.MAX_SAFE_INTEGER },
    });
    const asked = sim.requests.length;
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role, err.expected, err.found]).toEqual([
      'TOO_LARGE',
      'snapshot',
      `<= ${DEFAULT_MAX_LENGTHS.snapshot}`,
      Number.MAX_SAFE_INTEGER,
    ]);
    // Refused on the stated length alone: not one byte of the snapshot was asked for.
    expect(sim.requests.slice(asked)).toContain('metadata/timestamp.json');
    expect(sim.requests.slice(asked)).not.toContain('metadata/2.snapshot.json');
    await expectLastGood(before, ['snapshot']);
  });

  it('refuses a targets length the snapshot states above the ceiling, before requesting it', async () => {
    const { sim, client, before } = await good();
    sim.bump('targets');
    sim.publish();
    const targets = sim.published.get('targets')!;
    const lying = signedBytes(
      newSnapshot({
        expires: sim.snapshotExpires,
        version: 3,
        meta: {
          'targets.json': { ...metaFileFor(testCrypto, targets, 2), length: Number.MAX_SAFE_INTEGER },
          'releases.json': metaFileFor(testCrypto, sim.bytes('releases'), 1),
        },
      }),
      sim.keys.snapshot,
    );
    sim.serveRole('snapshot', 3, lying);
    sim.snapshotVersion = 3;
    sim.publishTimestamp({ snapshotMeta: metaFileFor(testCrypto, lying, 3) });
    const asked = sim.requests.length;
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role, err.found]).toEqual(['TOO_LARGE', 'targets', Number.MAX_SAFE_INTEGER]);
    expect(sim.requests.slice(asked)).not.toContain('metadata/2.targets.json');
    await expectLastGood(before, ['targets']);
  });

  it('takes the ceiling on stated lengths from maxLengths', async () => {
    const { sim, before } = await good();
    sim.bump('targets');
    sim.publish();
    const stated = sim.published.get('targets')!.length;
    const asked = sim.requests.length;
    const err = await s!
      .newClient({ maxLengths: { targets: stated - 1 } })
      .refresh()
      .catch((e) => e);
    expect([err.code, err.role, err.expected, err.found]).toEqual([
      'TOO_LARGE',
      'targets',
      `<= ${stated - 1}`,
      stated,
    ]);
    expect(sim.requests.slice(asked)).not.toContain('metadata/2.targets.json');
    await expectLastGood(before, ['targets']);
    // At the ceiling exactly, the same targets is accepted.
    expect((await s!.newClient({ maxLengths: { targets: stated } }).refresh()).targets).toBe(2);
  });

  it('cuts off a response that never ends', async () => {
    const { sim, client, before } = await good();
    sim.handlers.set('metadata/timestamp.json', endless());
    const err = await client.refresh().catch((e) => e);
    // Cut off at the byte bound (not by a timeout): the outcome and the bound, not the wall clock.
    expect([err.code, err.role]).toEqual(['TOO_LARGE', 'timestamp']);
    const bound = DEFAULT_MAX_SIZES.timestamp;
    expect([err.expected, err.found]).toEqual([`<= ${bound}`, `> ${bound}`]);
    await expectLastGood(before);
  });

  it('refuses a slow retrieval (a peer that trickles bytes)', async () => {
    const { sim, before } = await good();
    const client = s!.newClient({
      timeouts: { connectMs: 1000, idleMs: 1000, totalMs: 10_000, minBytesPerSecond: 200, rateGraceMs: 300 },
    });
    sim.handlers.set('metadata/timestamp.json', trickle(sim.files.get('metadata/timestamp.json')!, 50));
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['TIMEOUT', 'timestamp']);
    expect(err.details.guard).toMatch(/rate/);
    await expectLastGood(before);
  });

  it('refuses a peer that stops sending, or never answers', async () => {
    const { sim, before } = await good();
    const client = s!.newClient({
      timeouts: { connectMs: 300, idleMs: 300, totalMs: 10_000, minBytesPerSecond: 1, rateGraceMs: 10_000 },
    });
    sim.handlers.set('metadata/timestamp.json', (_req, res) => {
      res.setHeader('content-length', 1000);
      res.write('{"signed":');
    });
    let err = await client.refresh().catch((e) => e);
    expect([err.code, err.details.guard]).toEqual(['TIMEOUT', 'idle time between chunks (ms)']);
    sim.handlers.set('metadata/timestamp.json', hang());
    err = await client.refresh().catch((e) => e);
    expect([err.code, err.details.guard]).toEqual(['TIMEOUT', 'connect timeout (ms)']);
    await expectLastGood(before);
  });
});

describe('signatures', () => {
  const k4 = testKey(4);
  const k41 = testKey(41);

  function timestampJson(sim: RepoSim): JsonObject {
    sim.timestampVersion += 1;
    return signedToJson(
      newTimestamp({
        version: sim.timestampVersion,
        expires: sim.timestampExpires,
        snapshotMeta: metaFileFor(testCrypto, sim.published.get('snapshot')!, sim.snapshotVersion),
      }),
    );
  }

  /** Root v2 gives timestamp two keys and threshold 2; the client trusts it and a timestamp by both. */
  async function twoKeyTimestamp() {
    const { sim, client } = await good();
    rotate(sim, 'timestamp', [k4, k41], { threshold: 2 });
    sim.publishTimestamp();
    await client.refresh();
    return { sim, client, before: await cacheNow() };
  }

  it('refuses a timestamp below its threshold', async () => {
    const { sim, client, before } = await twoKeyTimestamp();
    sim.keys.timestamp = [k4];
    sim.publishTimestamp();
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role, err.expected, err.found]).toEqual(['THRESHOLD_NOT_MET', 'timestamp', 2, 1]);
    await expectLastGood(before);
  });

  it('refuses one key id twice in the signatures, which would otherwise count once', async () => {
    const { sim, client, before } = await twoKeyTimestamp();
    sim.files.set('metadata/timestamp.json', signRaw(timestampJson(sim), [k4, k4]));
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role, err.found]).toEqual(['DUPLICATE_SIGNATURE', 'timestamp', k4.keyid]);
    await expectLastGood(before);
  });

  it('ignores signatures by keys outside the role', async () => {
    const { sim, client, before } = await good();
    sim.files.set('metadata/timestamp.json', signRaw(timestampJson(sim), [testKey(1), testKey(3)]));
    const err = await client.refresh().catch((e) => e);
    expect(err.code).toBe('THRESHOLD_NOT_MET');
    expect(err.details.ignored).toHaveLength(2);
    await expectLastGood(before);
  });

  it('does not count a key of an unknown type, and still accepts a known one beside it', async () => {
    const { sim, client } = await good();
    const unknownKey = { keytype: 'quantum-42', scheme: 'quantum-42', keyval: { public: 'abcd' } };
    const unknownId = computeKeyId({ ...unknownKey, extra: {} } as Key);
    const rootJson = signedToJson(bumpVersion(sim.root, ROOT_EXPIRES));
    (rootJson.keys as JsonObject)[unknownId] = unknownKey;
    (rootJson.roles as Record<string, JsonObject>).timestamp = {
      keyids: [unknownId, k4.keyid],
      threshold: 1,
    };
    sim.files.set('metadata/2.root.json', signRaw(rootJson, sim.keys.root));
    const fake = { keyid: unknownId, sig: 'abcd' };
    sim.files.set('metadata/timestamp.json', signRaw(timestampJson(sim), [k4], [fake]));
    expect((await client.refresh()).timestamp).toBe(sim.timestampVersion);
    const before = await cacheNow();
    sim.files.set('metadata/timestamp.json', signRaw(timestampJson(sim), [], [fake]));
    expect(await codeOf(client.refresh())).toBe('BAD_SIGNATURE');
    await expectLastGood(before);
  });

  it('refuses empty and undecodable signatures', async () => {
    const { sim, client, before } = await good();
    for (const sig of ['', 'zz', '00', 'not hex at all']) {
      sim.files.set('metadata/timestamp.json', signRaw(timestampJson(sim), [], [{ keyid: k4.keyid, sig }]));
      expect(await codeOf(client.refresh()), sig).toBe('BAD_SIGNATURE');
    }
    await expectLastGood(before);
  });

  it('refuses a root listing one key id twice', async () => {
    const { sim, client, before } = await good();
    const rootJson = signedToJson(bumpVersion(sim.root, ROOT_EXPIRES));
    (rootJson.roles as Record<string, JsonObject>).timestamp = { keyids: [k4.keyid, k4.keyid], threshold: 2 };
    sim.files.set('metadata/2.root.json', signRaw(rootJson, sim.keys.root));
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['INVALID_METADATA', 'root']);
    await expectLastGood(before);
  });

  it('counts two key ids of the same key once', async () => {
    const { sim, client } = await good();
    // The same key material under a second key id (an extra field in keyval changes the id).
    const twin = { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: k4.key.keyval.public, x: '1' } };
    const twinId = computeKeyId({ ...twin, extra: {} } as Key);
    const rootJson = signedToJson(bumpVersion(sim.root, ROOT_EXPIRES));
    (rootJson.keys as JsonObject)[twinId] = twin;
    (rootJson.roles as Record<string, JsonObject>).timestamp = { keyids: [k4.keyid, twinId], threshold: 2 };
    sim.files.set('metadata/2.root.json', signRaw(rootJson, sim.keys.root));
    const ts = timestampJson(sim);
    const sig = toHex(signBytes(k4, canonicalBytes(ts)));
    sim.files.set('metadata/timestamp.json', signRaw(ts, [k4], [{ keyid: twinId, sig }]));
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.found]).toEqual(['THRESHOLD_NOT_MET', 1]);
    const after = await cacheNow();
    expect(after.root).toBe(2); // the root itself is valid
    expect(after.timestamp).toBeUndefined(); // 5.3.11: timestamp keys changed, the old baseline is gone
  });
});

describe('root rotation', () => {
  it('follows a good chain of 5 roots', async () => {
    const { sim, client } = await good();
    let keys = sim.keys.root;
    for (let v = 2; v <= 5; v++) {
      const next = [testKey(100 + v)];
      rotate(sim, 'root', next, { signers: [...keys, ...next] });
      keys = next;
    }
    expect((await client.refresh()).root).toBe(5);
    expect((await cacheNow()).root).toBe(5);
  });

  it('stops at a missing intermediate version', async () => {
    const { sim, client, before } = await good();
    rotate(sim, 'root', sim.keys.root); // v2
    rotate(sim, 'timestamp', [testKey(42)]); // v3 rotates the timestamp key
    sim.files.delete('metadata/2.root.json');
    sim.publishTimestamp();
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['THRESHOLD_NOT_MET', 'timestamp']);
    expect(sim.requests).toContain('metadata/2.root.json');
    expect(sim.requests).not.toContain('metadata/3.root.json');
    await expectLastGood(before);
  });

  it('refuses a new root not signed by the old root threshold', async () => {
    const { sim, client, before } = await good();
    const next = [testKey(111)];
    rotate(sim, 'root', next, { signers: next });
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['THRESHOLD_NOT_MET', 'root']);
    await expectLastGood(before);
  });

  it('refuses a new root not signed by its own threshold', async () => {
    const { sim, client, before } = await good();
    rotate(sim, 'root', [testKey(112)], { signers: sim.keys.root });
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['THRESHOLD_NOT_MET', 'root']);
    await expectLastGood(before);
  });

  it('refuses a raised threshold that the new root does not meet', async () => {
    const { sim, client, before } = await good();
    rotate(sim, 'root', [...sim.keys.root, testKey(113)], { threshold: 2, signers: sim.keys.root });
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role, err.expected, err.found]).toEqual(['THRESHOLD_NOT_MET', 'root', 2, 1]);
    await expectLastGood(before);
  });

  it('refuses a root signed only by a key that was removed', async () => {
    const { sim, client } = await good();
    const old = sim.keys.root;
    const next = [testKey(114)];
    rotate(sim, 'root', next, { signers: [...old, ...next] }); // v2 removes the old key
    expect((await client.refresh()).root).toBe(2);
    const before = await cacheNow();
    rotate(sim, 'root', next, { signers: old }); // v3 signed by the removed key only
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['THRESHOLD_NOT_MET', 'root']);
    await expectLastGood(before);
  });

  it('refuses a root that skips a version', async () => {
    const { sim, client, before } = await good();
    const skipping = bumpVersion(sim.root, ROOT_EXPIRES, 3);
    sim.files.set('metadata/2.root.json', signedBytes(skipping, sim.keys.root));
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.role, err.expected, err.found]).toEqual(['VERSION_MISMATCH', 'root', 2, 3]);
    await expectLastGood(before);
  });
});

describe('delegations', () => {
  function delegate(
    sim: RepoSim,
    parent: string,
    spec: {
      name: string;
      key: TestKey;
      paths?: string[];
      pathHashPrefixes?: string[];
      terminating?: boolean;
    },
  ): void {
    const d = {
      name: spec.name,
      keys: [spec.key.key],
      ...(spec.paths !== undefined ? { paths: spec.paths } : {}),
      ...(spec.pathHashPrefixes !== undefined ? { pathHashPrefixes: spec.pathHashPrefixes } : {}),
      terminating: spec.terminating ?? false,
    };
    if (parent === 'targets') sim.targets = withDelegation(sim.targets, d);
    else {
      const p = sim.delegated.get(parent)!;
      p.signed = withDelegation(p.signed, d);
    }
    if (!sim.delegated.has(spec.name)) {
      sim.delegated.set(spec.name, {
        signed: newTargets({ expires: expiresIn(NOW, 90 * DAY) }),
        keys: [spec.key],
      });
    }
  }

  it('does not trust a target outside the delegated paths', async () => {
    const { sim, client } = await good();
    sim.addTarget('releases', 'app/evil', text('evil'));
    sim.bump('releases');
    sim.publish();
    await client.refresh();
    const before = await cacheNow();
    expect(await codeOf(client.getTarget('app/evil'))).toBe('NOT_FOUND');
    expect((await client.listTargets()).map((t) => t.name)).toEqual(['app/v1', 'releases/r1']);
    await expectLastGood(before, ['root', 'timestamp', 'snapshot', 'targets']);
  });

  it('stops at a terminating delegation', async () => {
    for (const terminating of [true, false]) {
      s = await setup({
        prepare: (sim) => {
          delegate(sim, 'targets', { name: 'first', key: testKey(50), paths: ['shared/*'], terminating });
          delegate(sim, 'targets', { name: 'second', key: testKey(51), paths: ['shared/*'] });
          sim.addTarget('second', 'shared/x', text('x'));
          sim.publish();
        },
      });
      await s.client.refresh();
      const before = await cacheNow();
      if (terminating) {
        expect(await codeOf(s.client.getTarget('shared/x'))).toBe('NOT_FOUND');
        // The role after the terminating delegation was never fetched.
        expect(s.sim.requests.some((r) => r.endsWith('.second.json'))).toBe(false);
        await expectLastGood(before, ['root', 'timestamp', 'snapshot', 'targets']);
      } else expect((await s.client.getTarget('shared/x')).role).toBe('second');
      await s.cleanup();
      s = undefined;
    }
  });

  it('follows path_hash_prefixes', async () => {
    const prefixOf = (path: string) => toHex(testCrypto.hash('sha256', utf8Encode(path))).slice(0, 2);
    let other = 'bin/two';
    for (let i = 0; prefixOf(other) === prefixOf('bin/one'); i++) other = `bin/two${i}`;
    s = await setup({
      prepare: (sim) => {
        delegate(sim, 'targets', { name: 'bins', key: testKey(52), pathHashPrefixes: [prefixOf('bin/one')] });
        sim.addTarget('bins', 'bin/one', text('one'));
        sim.addTarget('bins', other, text('two'));
        sim.publish();
      },
    });
    expect((await s.client.getTarget('bin/one')).role).toBe('bins');
    expect(await codeOf(s.client.getTarget(other))).toBe('NOT_FOUND');
  });

  it('terminates on a cycle and bounds a deep chain', async () => {
    s = await setup({
      prepare: (sim) => {
        delegate(sim, 'targets', { name: 'a', key: testKey(53), paths: ['*', '*/*'] });
        delegate(sim, 'a', { name: 'b', key: testKey(54), paths: ['*', '*/*'] });
        delegate(sim, 'b', { name: 'a', key: testKey(53), paths: ['*', '*/*'] });
        let parent = 'b';
        for (let i = 0; i < 40; i++) {
          delegate(sim, parent, { name: `deep${i}`, key: testKey(55), paths: ['deep/*'] });
          parent = `deep${i}`;
        }
        sim.addTarget(parent, 'deep/end', text('end'));
        sim.publish();
      },
    });
    expect(await codeOf(s.client.getTarget('nothing'))).toBe('NOT_FOUND');
    const before = await cacheNow();
    const err = await s.client.getTarget('deep/end').catch((e) => e);
    expect(err.code).toBe('DELEGATION_LIMIT');
    expect(await codeOf(s.client.listTargets())).toBe('DELEGATION_LIMIT');
    // Only validly signed roles were cached on the way; the top-level state is untouched.
    await expectLastGood(before, ['root', 'timestamp', 'snapshot', 'targets', 'delegated/a', 'delegated/b']);
  });

  it('verifies a role delegated by two parents against each parent’s keys', async () => {
    const s1 = testKey(60);
    const s2 = testKey(61);
    s = await setup({
      prepare: (sim) => {
        delegate(sim, 'targets', { name: 'p1', key: testKey(62), paths: ['x/*'] });
        delegate(sim, 'targets', { name: 'p2', key: testKey(63), paths: ['y/*'] });
        delegate(sim, 'p1', { name: 'shared', key: s1, paths: ['x/*'] });
        delegate(sim, 'p2', { name: 'shared', key: s2, paths: ['y/*'] });
        sim.addTarget('shared', 'x/a', text('a'));
        sim.addTarget('shared', 'y/b', text('b'));
        sim.publish(); // shared is signed by s1 only
      },
    });
    expect((await s.client.getTarget('x/a')).role).toBe('shared');
    const before = await cacheNow();
    const err = await s.client.getTarget('y/b').catch((e) => e);
    expect([err.code, err.role]).toEqual(['THRESHOLD_NOT_MET', 'shared']);
    const roles = ['root', 'timestamp', 'snapshot', 'targets', 'delegated/p1', 'delegated/shared'];
    await expectLastGood(before, roles);
    // Through a new client, the cached copy is checked against p2's keys too, and refused.
    expect(await codeOf(s.newClient().getTarget('y/b'))).toBe('THRESHOLD_NOT_MET');
    await expectLastGood(before, roles);
  });
});

describe('unknown fields', () => {
  it('accepts unknown fields anywhere and still verifies the signatures', async () => {
    s = await setup({
      prepare: (sim) => {
        const x = { x_vendor: { note: 'unknown', n: 1 } };
        const add = (obj: JsonObject) => Object.assign(obj, x);
        const withExtras = (json: JsonObject) => {
          add(json);
          for (const v of Object.values((json.keys as JsonObject) ?? {})) add(v as JsonObject);
          for (const v of Object.values((json.roles as JsonObject) ?? {})) add(v as JsonObject);
          for (const v of Object.values((json.meta as JsonObject) ?? {})) add(v as JsonObject);
          for (const v of Object.values((json.targets as JsonObject) ?? {})) add(v as JsonObject);
          const del = json.delegations as JsonObject | undefined;
          if (del !== undefined) {
            add(del);
            for (const v of Object.values(del.keys as JsonObject)) add(v as JsonObject);
            for (const r of del.roles as JsonObject[]) add(r);
          }
          return json;
        };
        const envelope = (bytes: Uint8Array) => {
          const doc = JSON.parse(new TextDecoder().decode(bytes));
          doc.x_envelope = true;
          for (const sg of doc.signatures) sg.x_sig = 'extra';
          return canonicalBytes(doc);
        };
        const signExtra = (json: JsonObject, keys: TestKey[]) => envelope(signRaw(withExtras(json), keys));
        const root = signExtra(signedToJson(sim.root), sim.keys.root);
        sim.files.set('metadata/1.root.json', root);
        sim.files.set('metadata/root.json', root);
        const targets = signExtra(signedToJson(sim.targets), sim.keys.targets);
        const releases = sim.delegated.get('releases')!;
        const rel = signExtra(signedToJson(releases.signed), releases.keys);
        sim.serveRole('targets', 1, targets);
        sim.serveRole('releases', 1, rel);
        const snapshotJson = signedToJson(bumpVersion(snapshotOf(sim, targets, rel), sim.snapshotExpires, 2));
        const snapshot = signExtra(snapshotJson, sim.keys.snapshot);
        sim.serveRole('snapshot', 2, snapshot);
        sim.snapshotVersion = 2;
        sim.publishTimestamp({ snapshotMeta: metaFileFor(testCrypto, snapshot, 2) });
        const ts = JSON.parse(new TextDecoder().decode(sim.files.get('metadata/timestamp.json')!));
        sim.files.set('metadata/timestamp.json', signExtra(withExtras(ts.signed), sim.keys.timestamp));
      },
      trust: { allowTofu: true },
    });
    const result = await s.client.refresh();
    expect(result).toMatchObject({ root: 1, snapshot: 2, targets: 1 });
    expect((await s.client.getTarget('releases/r1')).role).toBe('releases');
    const dest = join(s.dir, 'r1');
    await s.client.downloadTarget('releases/r1', dest);
    expect(existsSync(dest)).toBe(true);
  });
});

function snapshotOf(sim: RepoSim, targets: Uint8Array, releases: Uint8Array) {
  return newSnapshot({
    expires: sim.snapshotExpires,
    meta: {
      'targets.json': metaFileFor(testCrypto, targets, 1),
      'releases.json': metaFileFor(testCrypto, releases, 1),
    },
  });
}
