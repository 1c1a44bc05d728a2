import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { codeOf, DAY, NOW, testKey } from '@tufa/testing';
import { type Setup, setup } from '@tufa/testing/client';
import { afterEach, describe, expect, it } from 'vitest';
import type { FetchLike } from './fetcher.js';

let s: Setup;
afterEach(async () => {
  await s?.cleanup();
});

const HOUR = 3600_000;
const cacheDir = () => join(s.dir, 'cache');

/** The error a promise rejects with (fails the test when it resolves). */
async function errorOf(promise: Promise<unknown>): Promise<{ code: string; role?: string; details?: any }> {
  try {
    await promise;
  } catch (err) {
    return err as { code: string };
  }
  throw new Error('expected a refusal, but the call succeeded');
}

describe('offline answers from the trusted cache', () => {
  it('answers a lookup, a digest and a file from the cache alone, without a request', async () => {
    s = await setup();
    await s.client.getTarget('releases/r1'); // online: loads releases into the cache
    const before = s.sim.requests.length;
    const offline = s.newClient({ offline: true });
    expect(await offline.refresh()).toEqual({ root: 1, timestamp: 1, snapshot: 1, targets: 1 });
    const target = await offline.getTarget('releases/r1');
    expect(target.role).toBe('releases');
    await offline.verifyDigest('app/v1', `sha256:${(await offline.getTarget('app/v1')).hashes.sha256}`);
    await offline.verifyFile(
      'app/v1',
      (async function* () {
        yield new TextEncoder().encode('app v1');
      })(),
    );
    expect(s.sim.requests.length).toBe(before);
  });

  it('never calls the transport it was given', async () => {
    s = await setup();
    await s.client.refresh();
    let calls = 0;
    const fetch: FetchLike = async () => {
      calls++;
      throw new Error('no network here');
    };
    const offline = s.newClient({ offline: true, fetch });
    await offline.getTarget('app/v1');
    expect(calls).toBe(0);
  });

  it('is CACHE_MISSING with nothing cached, and does not create the cache folder', async () => {
    s = await setup();
    const err = await errorOf(s.newClient({ offline: true }).getTarget('app/v1'));
    expect(err.code).toBe('CACHE_MISSING');
    expect(err.details).toMatchObject({ source: 'cache', cacheDir: cacheDir() });
    expect(existsSync(cacheDir())).toBe(false);
    expect(s.sim.requests).toEqual([]);
  });

  it('is CACHE_MISSING for a delegated role the cache never got, naming the role', async () => {
    s = await setup();
    await s.client.getTarget('app/v1'); // releases not needed, so not cached
    const err = await errorOf(s.newClient({ offline: true }).getTarget('releases/r1'));
    expect(err).toMatchObject({ code: 'CACHE_MISSING', role: 'releases' });
    // A tag no role is trusted for is still NOT_FOUND offline.
    expect(await codeOf(s.newClient({ offline: true }).getTarget('elsewhere/x'))).toBe('NOT_FOUND');
  });

  it('is EXPIRED when the cached timestamp has expired at the current time', async () => {
    s = await setup();
    await s.client.refresh();
    s.clock.now = NOW + 2 * DAY; // the timestamp lives one day
    const err = await errorOf(s.newClient({ offline: true }).getTarget('app/v1'));
    expect(err).toMatchObject({ code: 'EXPIRED', role: 'timestamp' });
    expect(err.details).toMatchObject({ source: 'cache', file: join(cacheDir(), 'timestamp.json') });
    // Offline leaves the cache alone: the expired file is still there for the next online refresh.
    expect(existsSync(join(cacheDir(), 'timestamp.json'))).toBe(true);
  });

  it('is EXPIRED when the cached root has expired', async () => {
    s = await setup();
    await s.client.refresh();
    s.clock.now = NOW + 400 * DAY;
    expect(await errorOf(s.newClient({ offline: true }).refresh())).toMatchObject({
      code: 'EXPIRED',
      role: 'root',
    });
  });

  it('checks each cached file against the one that refers to it (hashes and lengths, as online)', async () => {
    s = await setup();
    await s.client.refresh();
    const oldTargets = await readFile(join(cacheDir(), 'targets.json'));
    s.sim.bump('targets');
    s.sim.addTarget('targets', 'app/v2', new TextEncoder().encode('app v2'));
    s.sim.publish();
    await s.newClient().refresh();
    // A validly signed but older targets, with the newer snapshot and timestamp beside it.
    await writeFile(join(cacheDir(), 'targets.json'), oldTargets);
    const err = await errorOf(s.newClient({ offline: true }).getTarget('app/v1'));
    expect(err).toMatchObject({ code: 'LENGTH_MISMATCH', role: 'targets' });
    expect(err.details).toMatchObject({ source: 'cache' });
  });

  it('refuses a cached snapshot older than the cached timestamp names', async () => {
    s = await setup();
    await s.client.refresh();
    const oldSnapshot = await readFile(join(cacheDir(), 'snapshot.json'));
    s.sim.publish();
    await s.newClient().refresh();
    await writeFile(join(cacheDir(), 'snapshot.json'), oldSnapshot);
    // Online the stale snapshot would be a baseline; offline it must be the final one, and is not.
    const code = await codeOf(s.newClient({ offline: true }).getTarget('app/v1'));
    expect(['HASH_MISMATCH', 'LENGTH_MISMATCH', 'VERSION_MISMATCH']).toContain(code);
  });

  it('refuses a tampered cache file with its code and leaves the file in place', async () => {
    s = await setup();
    await s.client.refresh();
    const file = join(cacheDir(), 'timestamp.json');
    const doc = JSON.parse(await readFile(file, 'utf8'));
    doc.signed.version = 9;
    await writeFile(file, JSON.stringify(doc));
    expect(await codeOf(s.newClient({ offline: true }).getTarget('app/v1'))).toBe('BAD_SIGNATURE');
    expect(JSON.parse(await readFile(file, 'utf8')).signed.version).toBe(9);
  });

  it('is CACHE_MISSING, not a silent restart, when the pins changed since the cache was filled', async () => {
    s = await setup();
    await s.client.refresh();
    const other = s.newClient({ offline: true, trust: { rootKeyIds: [testKey(99).keyid] } });
    expect(await codeOf(other.getTarget('app/v1'))).toBe('CACHE_MISSING');
    expect(existsSync(join(cacheDir(), 'timestamp.json'))).toBe(true);
  });

  it('refuses what needs the network', async () => {
    s = await setup();
    await s.client.refresh();
    const offline = s.newClient({ offline: true });
    expect(await codeOf(offline.downloadTarget('app/v1', join(s.dir, 'out')))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(offline.publisherView())).toBe('INVALID_ARGUMENT');
  });
});

describe('maxAge: the last successful refresh', () => {
  it('is recorded atomically in the cache by each successful refresh, and only then', async () => {
    s = await setup();
    expect(await s.client.lastRefresh()).toBeUndefined();
    await s.client.refresh();
    const record = join(cacheDir(), 'last-refresh');
    expect(await readFile(record, 'utf8')).toBe(`{"refreshed_at":"${new Date(NOW).toISOString()}"}\n`);
    expect(await s.client.lastRefresh()).toBe(new Date(NOW).toISOString());
    // A failed refresh later leaves the record as it was.
    s.clock.now = NOW + HOUR;
    s.sim.files.delete('metadata/timestamp.json');
    expect(await codeOf(s.newClient().refresh())).toBe('NOT_FOUND');
    expect(await s.client.lastRefresh()).toBe(new Date(NOW).toISOString());
  });

  it('answers while the cache is younger than maxAge, CACHE_STALE once older', async () => {
    s = await setup();
    await s.client.refresh();
    s.clock.now = NOW + HOUR / 2;
    await s.newClient({ offline: true, maxAge: HOUR }).getTarget('app/v1');
    s.clock.now = NOW + 2 * HOUR;
    const err = await errorOf(s.newClient({ offline: true, maxAge: HOUR }).getTarget('app/v1'));
    expect(err.code).toBe('CACHE_STALE');
    expect(err.details).toMatchObject({
      refreshedAt: new Date(NOW).toISOString(),
      maxAgeMs: HOUR,
      ageMs: 2 * HOUR,
    });
    // Without a bound the same cache still answers (its metadata has not expired).
    await s.newClient({ offline: true }).getTarget('app/v1');
  });

  it('is CACHE_STALE when there is no record, or a damaged one, or one from the future', async () => {
    s = await setup();
    await s.client.refresh();
    const record = join(cacheDir(), 'last-refresh');
    const stale = () => errorOf(s.newClient({ offline: true, maxAge: DAY }).getTarget('app/v1'));
    await rm(record);
    expect(await stale()).toMatchObject({ code: 'CACHE_STALE', details: { refreshedAt: null, ageMs: null } });
    await writeFile(record, '{"refreshed_at":"yesterday"}\n');
    expect((await stale()).code).toBe('CACHE_STALE');
    await writeFile(record, `{"refreshed_at":"${new Date(NOW + HOUR).toISOString()}"}\n`);
    expect(await stale()).toMatchObject({ code: 'CACHE_STALE', details: { ageMs: -HOUR } });
  });

  it('is refused without offline, and when not a positive whole number of ms', async () => {
    s = await setup();
    expect(() => s.newClient({ maxAge: HOUR })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    for (const maxAge of [0, -1, 1.5, Number.NaN]) {
      expect(() => s.newClient({ offline: true, maxAge })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
  });
});

describe('seed: the cache from a pinned root, without a request', () => {
  it('writes the pinned root and its anchor, and a refresh then starts from it', async () => {
    s = await setup();
    const seeded = s.newClient();
    expect(await seeded.seed()).toEqual({ root: 1 });
    expect(s.sim.requests).toEqual([]);
    expect(await readFile(join(cacheDir(), 'root.json'))).toEqual(
      Buffer.from(s.sim.files.get('metadata/1.root.json')!),
    );
    // Offline there is a root but nothing else yet.
    expect(await errorOf(s.newClient({ offline: true }).refresh())).toMatchObject({
      code: 'CACHE_MISSING',
      role: 'timestamp',
    });
    await s.newClient().getTarget('app/v1');
  });

  it('keeps a newer cached root under the same pins, and needs a pinned root file', async () => {
    s = await setup();
    s.sim.publishRoot({ ...s.sim.root, version: 2 }, s.sim.keys.root);
    s.sim.publishTimestamp();
    expect(await s.client.refresh()).toMatchObject({ root: 2 });
    expect(await s.newClient().seed()).toEqual({ root: 2 });
    expect(s.sim.requests.filter((r) => r.endsWith('root.json'))).toEqual([
      'metadata/2.root.json',
      'metadata/3.root.json',
    ]);
    const unpinned = s.newClient({ trust: { rootKeyIds: [s.sim.keys.root[0]!.keyid] } });
    expect(await codeOf(unpinned.seed())).toBe('INVALID_ARGUMENT');
  });
});
