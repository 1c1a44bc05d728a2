/**
 * The public API over a live repository: trust bootstrap (pinned root, pinned key ids, trust on
 * first use), the cache (corruption, reuse, concurrent refreshes), lookups, digests, files,
 * listing, downloads, and both URL layouts.
 */
import { existsSync } from 'node:fs';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createClient, type Notice } from '@tufa/client';
import { isTufaError } from '@tufa/client/errors';
import { bumpVersion, expiresIn, newTargets, targetFileFor, withDelegation, withRootRole } from '@tufa/core';
import { createNodeCrypto } from '@tufa/core/node';
import { codeOf, DAY, GUN, NOW, testCrypto, testKey, text } from '@tufa/testing';
import { cachedVersions, type Setup, setup } from '@tufa/testing/client';
import { afterEach, describe, expect, it } from 'vitest';

let s: Setup | undefined;
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

const cacheDir = () => join(s!.dir, 'cache');
const appDigest = `sha256:${targetFileFor(testCrypto, text('app v1')).hashes.sha256}`;

describe('trust bootstrap', () => {
  it('trusts on first use with a notice naming the root key ids', async () => {
    const notices: Notice[] = [];
    s = await setup({ trust: {}, onNotice: (n) => notices.push(n) });
    const result = await s.client.refresh();
    expect(result.tofu?.keyids).toEqual([testKey(1).keyid]);
    expect(result.tofu?.message).toContain(testKey(1).keyid);
    expect(notices.map((n) => n.kind)).toEqual(['tofu']);
    expect(s.sim.requests[0]).toBe('metadata/1.root.json');
    // Later refreshes start from the cached root: no second notice.
    expect(
      (await s.newClient({ trust: {}, onNotice: (n) => notices.push(n) }).refresh()).tofu,
    ).toBeUndefined();
    expect(notices).toHaveLength(1);
  });

  it('falls back to root.json on first use when 1.root.json is not served', async () => {
    s = await setup({ trust: {} });
    s.sim.files.delete('metadata/1.root.json');
    expect((await s.client.refresh()).tofu?.rootVersion).toBe(1);
  });

  it('refuses trust on first use when it is forbidden', async () => {
    s = await setup({ trust: { allowTofu: false } });
    const err = await s.client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['UNTRUSTED_ROOT', 'root']);
    expect(s.sim.requests).toEqual([]);
  });

  it('accepts 1.root.json signed by pinned key ids, or the current root', async () => {
    s = await setup({ trust: { rootKeyIds: [testKey(1).keyid], allowTofu: false } });
    expect((await s.client.refresh()).root).toBe(1);
    await s.cleanup();
    // The pinned key only signs the current root (v2), not 1.root.json.
    s = await setup({ trust: { rootKeyIds: [testKey(9).keyid], allowTofu: false } });
    const r2 = bumpVersion(
      withRootRole(s.sim.root, 'root', { keys: [testKey(9).key] }),
      expiresIn(NOW, 365 * DAY),
    );
    s.sim.publishRoot(r2, [testKey(1), testKey(9)]);
    expect((await s.client.refresh()).root).toBe(2);
    expect(s.sim.requests).toContain('metadata/root.json');
  });

  it('a root trusted on first use does not outlive a pin given later', async () => {
    // First use without a pin trusts whatever root the server (here: an impostor) serves.
    s = await setup({ trust: { allowTofu: true } });
    expect((await s.client.refresh()).root).toBe(1);
    // Pinned to keys that never signed that root: the cached root is not evidence for the pin.
    const pinned = s.newClient({ trust: { rootKeyIds: [testKey(9).keyid], allowTofu: false } });
    const err = await pinned.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['UNTRUSTED_ROOT', 'root']);
    // With the right pin the cache is rebuilt from it, and kept on the next run.
    const right = s.newClient({ trust: { rootKeyIds: [testKey(1).keyid], allowTofu: false } });
    expect((await right.refresh()).root).toBe(1);
    const again = s.newClient({ trust: { rootKeyIds: [testKey(1).keyid], allowTofu: false } });
    const before = s.sim.requests.length;
    await again.refresh();
    expect(s.sim.requests.slice(before)).not.toContain('metadata/1.root.json');
  });

  it('refuses a root not signed by the pinned key ids', async () => {
    s = await setup({ trust: { rootKeyIds: [testKey(9).keyid], allowTofu: false } });
    const err = await s.client.refresh().catch((e) => e);
    expect([err.code, err.role]).toEqual(['UNTRUSTED_ROOT', 'root']);
    expect(existsSync(join(cacheDir(), 'root.json'))).toBe(false);
  });

  it('reads a pinned root from a file path', async () => {
    s = await setup();
    const file = join(s.dir, 'root.json');
    await writeFile(file, s.sim.files.get('metadata/1.root.json')!);
    expect((await s.newClient({ trust: { rootFile: file } }).refresh()).root).toBe(1);
    const missing = s.newClient({ repositoryCacheDir: join(s.dir, 'c2'), trust: { rootFile: `${file}.x` } });
    await expect(missing.refresh()).rejects.toMatchObject({
      code: 'FILE_UNREADABLE',
      details: { path: `${file}.x`, reason: 'ENOENT' },
    });
    const folder = s.newClient({ repositoryCacheDir: join(s.dir, 'c3'), trust: { rootFile: s.dir } });
    await expect(folder.refresh()).rejects.toMatchObject({
      code: 'FILE_UNREADABLE',
      details: { path: s.dir, reason: 'EISDIR' },
    });
  });
});

describe('refresh and cache', () => {
  it('refreshes more than once and reuses the cache', async () => {
    s = await setup();
    await s.client.refresh();
    s.sim.bump('targets');
    s.sim.publish();
    expect((await s.client.refresh()).targets).toBe(2);
    const requests = s.sim.requests.length;
    const second = s.newClient();
    expect((await second.refresh()).targets).toBe(2);
    // Only the N+1 root probe and the timestamp: snapshot and targets come from the cache.
    expect(s.sim.requests.slice(requests)).toEqual(['metadata/2.root.json', 'metadata/timestamp.json']);
  });

  it('asks for timestamp.json beside the N+1 root probe: one round trip, checked after the root chain', async () => {
    s = await setup();
    await s.client.refresh();
    let inFlight = 0;
    let most = 0;
    const counting = s.newClient({
      fetch: async (url, init) => {
        most = Math.max(most, ++inFlight);
        try {
          return await fetch(url, init);
        } finally {
          inFlight--;
        }
      },
    });
    expect((await counting.refresh()).timestamp).toBe(1);
    expect(most).toBe(2);
  });

  it('asks for the N+1 root and timestamp.json before it checks a signature of the cached root', async () => {
    s = await setup();
    await s.client.refresh();
    const events: string[] = [];
    const crypto = createNodeCrypto();
    const watched = s.newClient({
      fetch: (url, init) => {
        events.push(url.slice(url.lastIndexOf('/') + 1));
        return fetch(url, init);
      },
      crypto: {
        ...crypto,
        verifier: (key) => {
          events.push('verify');
          return crypto.verifier(key);
        },
      },
    });
    expect((await watched.refresh()).root).toBe(1);
    expect(events.slice(0, 3)).toEqual(['2.root.json', 'timestamp.json', 'verify']);
  });

  it('follows the chain from the pinned root when the cached root (which named the early probe) is not trusted', async () => {
    s = await setup();
    s.sim.rotateRoot((r) => r);
    // Trusted on first use: the cache holds root v2, under no pin.
    const tofu = s.newClient({ trust: {} });
    expect((await tofu.refresh()).root).toBe(2);
    s.sim.rotateRoot((r) => r);
    const before = s.sim.requests.length;
    // Pinned to v1: the cache is started again from v1; the early probe (3.root.json, named by the
    // cached v2) is not taken for v2, only for v3, once v2 is trusted.
    expect((await s.newClient().refresh()).root).toBe(3);
    expect(s.sim.requests.slice(before, before + 4)).toEqual([
      'metadata/3.root.json',
      'metadata/timestamp.json',
      'metadata/2.root.json',
      'metadata/4.root.json',
    ]);
  });

  it('stops the early requests when a local check refuses first', async () => {
    s = await setup();
    await s.client.refresh();
    const file = join(cacheDir(), 'root.json');
    const doc = JSON.parse(await readFile(file, 'utf8'));
    doc.signed.expires = '2099-01-01T00:00:00Z';
    await writeFile(file, JSON.stringify(doc));
    // A server that never answers: only an abort ends these requests.
    const signals: AbortSignal[] = [];
    const silent = s.newClient({
      fetch: (_url, init) => {
        signals.push(init.signal);
        return new Promise((_resolve, reject) => {
          init.signal.addEventListener('abort', () => reject(new Error('aborted')));
        });
      },
    });
    const err = await silent.refresh().catch((e) => e);
    expect([err.code, err.role, err.details.source]).toEqual(['BAD_SIGNATURE', 'root', 'cache']);
    expect(signals).toHaveLength(2);
    expect(signals.map((signal) => signal.aborted)).toEqual([true, true]);
  });

  it('makes no request before it refuses a cached root that does not parse', async () => {
    s = await setup();
    await s.client.refresh();
    await writeFile(join(cacheDir(), 'root.json'), '{"signed": trunc');
    const before = s.sim.requests.length;
    const err = await s
      .newClient()
      .refresh()
      .catch((e) => e);
    expect([err.code, err.details.source]).toEqual(['INVALID_JSON', 'cache']);
    expect(s.sim.requests.slice(before)).toEqual([]);
  });

  it('asks for gzip for metadata, and for nothing for a target file', async () => {
    s = await setup();
    const asked: [string, string | undefined][] = [];
    const client = s.newClient({
      fetch: (url, init) => {
        asked.push([url.slice(url.indexOf('/', 8)), init.headers?.['accept-encoding']]);
        return fetch(url, init);
      },
    });
    await client.downloadTarget('app/v1', join(s.dir, 'app-v1'));
    const unasked = asked.filter(([, encoding]) => encoding !== 'gzip');
    expect(unasked).toHaveLength(1);
    expect(unasked[0]![0]).toMatch(/\/targets\/app\/[0-9a-f]{64}\.v1$/);
    expect(asked.map(([path]) => path)).toContain('/metadata/timestamp.json');
  });

  it('keeps the last trusted state after a failed refresh', async () => {
    s = await setup();
    await s.client.refresh();
    s.sim.files.set('metadata/timestamp.json', text('garbage'));
    expect(await codeOf(s.client.refresh())).toBe('INVALID_JSON');
    expect((await s.client.getTarget('app/v1')).length).toBe(6);
  });

  it('refuses a corrupted cache file with a clear error, then starts again from the trusted root', async () => {
    s = await setup();
    await s.client.refresh();
    await writeFile(join(cacheDir(), 'timestamp.json'), '{"signed": trunc');
    const err = await s
      .newClient()
      .refresh()
      .catch((e) => e);
    expect(err.code).toBe('INVALID_JSON');
    expect(err.details).toMatchObject({ source: 'cache' });
    expect(err.message).toMatch(/trusted cache/);
    expect((await s.newClient().refresh()).timestamp).toBe(1);
  });

  it('refuses a tampered cache file (bad signature)', async () => {
    s = await setup();
    await s.client.refresh();
    const file = join(cacheDir(), 'snapshot.json');
    const doc = JSON.parse(await readFile(file, 'utf8'));
    doc.signed.expires = '2099-01-01T00:00:00Z';
    await writeFile(file, JSON.stringify(doc));
    const err = await s
      .newClient()
      .refresh()
      .catch((e) => e);
    expect([err.code, err.role, err.details.source]).toEqual(['BAD_SIGNATURE', 'snapshot', 'cache']);
    expect((await s.newClient().refresh()).snapshot).toBe(1);
  });

  it('refuses a corrupted cached root, and the next refresh starts from the pinned root', async () => {
    s = await setup();
    await s.client.refresh();
    await writeFile(join(cacheDir(), 'root.json'), 'not json');
    const client = s.newClient();
    const err = await client.refresh().catch((e) => e);
    expect([err.code, err.details.source]).toEqual(['INVALID_JSON', 'cache']);
    expect((await client.refresh()).root).toBe(1);
    // The same client after a success keeps the root in memory when the cache goes away.
    await writeFile(join(cacheDir(), 'root.json'), 'not json');
    expect(await codeOf(client.refresh())).toBe('INVALID_JSON');
    expect((await client.refresh()).root).toBe(1);
    // An oversized cache file is refused and discarded the same way.
    await writeFile(join(cacheDir(), 'root.json'), ' '.repeat(512 * 1024 + 1));
    const big = await client.refresh().catch((e) => e);
    expect([big.code, big.details.source]).toEqual(['TOO_LARGE', 'cache']);
    expect((await client.refresh()).root).toBe(1);
  });

  it('reads a cached targets (and delegated role) back within the length the snapshot stated for it', async () => {
    // A collection larger than maxSizes.targets: its download is bounded by the stated length,
    // and so must its cached copy be, or every other run refuses the cache as TOO_LARGE.
    s = await setup({ maxSizes: { targets: 256 } });
    expect(s.sim.published.get('targets')!.length).toBeGreaterThan(256);
    expect(s.sim.published.get('releases')!.length).toBeGreaterThan(256);
    await s.client.getTarget('releases/r1');
    for (let run = 0; run < 3; run++) {
      const client = s.newClient();
      expect((await client.refresh()).targets).toBe(1);
      expect((await client.getTarget('releases/r1')).role).toBe('releases');
    }
    const offline = s.newClient({ offline: true });
    expect((await offline.getTarget('releases/r1')).role).toBe('releases');
    // Bytes past the ceiling were never accepted: such a cache file is refused as before.
    await truncate(join(cacheDir(), 'targets.json'), 64 * 1024 * 1024 + 1); // sparse: the size is what counts
    const big = await s
      .newClient()
      .refresh()
      .catch((e) => e);
    expect([big.code, big.details.source]).toEqual(['TOO_LARGE', 'cache']);
  });

  it('shares one refresh between concurrent calls on one client', async () => {
    s = await setup();
    const [a, b] = await Promise.all([s.client.refresh(), s.client.refresh()]);
    expect(a).toBe(b);
    expect(s.sim.requests.filter((r) => r === 'metadata/timestamp.json')).toHaveLength(1);
  });

  it('refuses with NETWORK when the repository cannot be reached, and HTTP errors with the status', async () => {
    s = await setup();
    const closed = createClient(
      { metadataUrl: 'http://127.0.0.1:1/metadata/' },
      { repositoryCacheDir: join(s.dir, 'c3'), trust: { allowTofu: true } },
    );
    expect(await codeOf(closed.refresh())).toBe('NETWORK');
    s.sim.handlers.set('metadata/timestamp.json', (_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const err = await s.client.refresh().catch((e) => e);
    expect([err.code, err.details.status]).toEqual(['NETWORK', 503]);
    expect(isTufaError(err, 'NETWORK')).toBe(true);
  });

  it('refreshes automatically on the first lookup', async () => {
    s = await setup();
    expect((await s.client.getTarget('releases/r1')).role).toBe('releases');
    expect(await cachedVersions(cacheDir())).toEqual({
      root: 1,
      timestamp: 1,
      snapshot: 1,
      targets: 1,
      'delegated/releases': 1,
    });
  });
});

describe('lookups', () => {
  it('returns a trusted target entry, or NOT_FOUND', async () => {
    s = await setup();
    const t = await s.client.getTarget('app/v1');
    expect(t).toEqual({
      name: 'app/v1',
      length: 6,
      hashes: targetFileFor(testCrypto, text('app v1')).hashes,
      custom: undefined,
      role: 'targets',
    });
    expect(await codeOf(s.client.getTarget('app/v2'))).toBe('NOT_FOUND');
    expect(await codeOf(s.client.getTarget(''))).toBe('INVALID_ARGUMENT');
  });

  it('verifies a digest and says what differed', async () => {
    s = await setup();
    expect((await s.client.verifyDigest('app/v1', appDigest)).digest).toBe(appDigest);
    const wrong = `sha256:${'0'.repeat(64)}`;
    const err = await s.client.verifyDigest('app/v1', wrong).catch((e) => e);
    expect([err.code, err.expected, err.found]).toEqual(['HASH_MISMATCH', appDigest, wrong]);
    expect(await codeOf(s.client.verifyDigest('app/v1', 'sha256:xyz'))).toBe('INVALID_ARGUMENT');
  });

  it('verifies a file by path or stream, streaming through the hashes', async () => {
    s = await setup();
    const file = join(s.dir, 'artifact');
    await writeFile(file, 'app v1');
    expect((await s.client.verifyFile('app/v1', file)).digest).toBe(appDigest);
    expect((await s.client.verifyFile('app/v1', Readable.from([text('app '), text('v1')]))).length).toBe(6);
    await writeFile(file, 'app v2');
    expect(await codeOf(s.client.verifyFile('app/v1', file))).toBe('HASH_MISMATCH');
    await writeFile(file, 'app v1 longer');
    expect(await codeOf(s.client.verifyFile('app/v1', file))).toBe('LENGTH_MISMATCH');
    // A missing file is not a missing tag: its own code, with the path.
    await expect(s.client.verifyFile('app/v1', join(s.dir, 'missing'))).rejects.toMatchObject({
      code: 'FILE_UNREADABLE',
      details: { path: join(s.dir, 'missing'), reason: 'ENOENT' },
    });
    await expect(s.client.verifyFile('app/v1', s.dir)).rejects.toMatchObject({
      code: 'FILE_UNREADABLE',
      details: { path: s.dir, reason: 'EISDIR' },
    });
    const failing = (async function* () {
      yield text('app ');
      throw new Error('the pipe broke');
    })();
    await expect(s.client.verifyFile('app/v1', failing)).rejects.toMatchObject({
      code: 'FILE_UNREADABLE',
      details: { path: '(stream)', reason: 'the pipe broke' },
    });
  });

  it('lists every target visible through the delegation tree', async () => {
    s = await setup();
    const names = (await s.client.listTargets()).map((t) => [t.name, t.role]);
    expect(names).toEqual([
      ['app/v1', 'targets'],
      ['releases/r1', 'releases'],
    ]);
  });

  it('lists and finds roles while a delegation has nothing published yet', async () => {
    s = await setup({
      prepare: (sim) => {
        // "pending" is delegated before "releases", but its holder has not published anything.
        const releases = sim.targets.delegations!.roles.find((r) => r.name === 'releases')!;
        sim.targets = withDelegation(sim.targets, {
          name: 'pending',
          keys: [testKey(81).key],
          paths: ['pending/*'],
        });
        sim.targets = {
          ...sim.targets,
          delegations: {
            ...sim.targets.delegations!,
            roles: [...sim.targets.delegations!.roles.filter((r) => r.name !== 'releases'), releases],
          },
        };
        sim.publish();
      },
    });
    const names = (await s.client.listTargets()).map((t) => t.name);
    expect(names).toEqual(['app/v1', 'releases/r1']);
    const pending = await s.client.findRole('pending');
    expect([pending.delegator, pending.metadata]).toEqual(['targets', undefined]);
    expect((await s.client.findRole('releases')).metadata?.signed.targets['releases/r1']).toBeDefined();
    expect(await codeOf(s.client.findRole('nobody'))).toBe('NOT_FOUND');
    const tree = (await s.client.listDelegations()).map((d) => [
      d.name,
      d.delegator,
      d.metadata !== undefined,
    ]);
    expect(tree).toEqual([
      ['pending', 'targets', false],
      ['releases', 'targets', true],
    ]);
    expect(await codeOf(s.client.getTarget('pending/x'))).toBe('NOT_FOUND');
  });

  it('downloads a target and renames it only after verification', async () => {
    s = await setup();
    const dest = join(s.dir, 'out', 'r1');
    const result = await s.client.downloadTarget('releases/r1', dest);
    expect(await readFile(dest, 'utf8')).toBe('release 1');
    expect(result.role).toBe('releases');
    const hash = targetFileFor(testCrypto, text('release 1')).hashes.sha256;
    expect(s.sim.requests).toContain(`targets/releases/${hash}.r1`);
  });

  it('reads a repository without consistent snapshots (plain ROLE.json, plain target names)', async () => {
    s = await setup({ consistent: false });
    await s.client.refresh();
    const dest = join(s.dir, 'app');
    await s.client.downloadTarget('app/v1', dest);
    expect(s.sim.requests).toEqual([
      'metadata/2.root.json',
      'metadata/timestamp.json',
      'metadata/snapshot.json',
      'metadata/targets.json',
      'targets/app/v1',
    ]);
  });

  it('URL-encodes delegated role names', async () => {
    s = await setup({
      prepare: (sim) => {
        sim.targets = withDelegation(sim.targets, {
          name: 'team/a b',
          keys: [testKey(80).key],
          paths: ['team/*'],
        });
        sim.delegated.set('team/a b', {
          signed: newTargets({ expires: expiresIn(NOW, 30 * DAY) }),
          keys: [testKey(80)],
        });
        sim.addTarget('team/a b', 'team/tool', text('tool'));
        sim.publish();
      },
    });
    expect((await s.client.getTarget('team/tool')).role).toBe('team/a b');
    expect(s.sim.requests).toContain('metadata/1.team%2Fa%20b.json');
    expect(Object.keys(await cachedVersions(cacheDir()))).toContain('delegated/team%2Fa%20b');
  });

  it('follows at most maxRootRotations roots in one refresh', async () => {
    s = await setup({ maxRootRotations: 2 });
    for (let v = 2; v <= 4; v++)
      s.sim.publishRoot(bumpVersion(s.sim.root, expiresIn(NOW, 365 * DAY)), s.sim.keys.root);
    expect((await s.client.refresh()).root).toBe(3);
    expect((await s.client.refresh()).root).toBe(4);
  });

  it('maps a tufa server and GUN onto the Notary layout', async () => {
    s = await setup();
    const client = createClient(
      { server: s.sim.baseUrl, gun: GUN },
      { cacheDir: join(s.dir, 'caches'), clock: () => NOW, trust: { allowTofu: true } },
    );
    expect(client.metadataUrl).toBe(`${s.sim.baseUrl}/v2/${GUN}/_trust/tuf/`);
    expect((await client.verifyDigest('app/v1', appDigest)).role).toBe('targets');
    expect(client.cacheDir.startsWith(join(s.dir, 'caches', '127.0.0.1'))).toBe(true);
    expect(() => createClient({ server: s!.sim.baseUrl, gun: 'a/../b' })).toThrow(/GUN/);
    expect(() => createClient({ metadataUrl: 'file:///etc/' })).toThrow(/http/);
    expect(await codeOf(client.downloadTarget('app/v1', join(s.dir, 'x')))).toBe('INVALID_ARGUMENT');
  });
});
