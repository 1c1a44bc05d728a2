import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheFileName, cacheFolderName, MetadataCache } from './cache.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tufa-cache-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('names', () => {
  it('gives each repository its own readable, collision-free folder', () => {
    const a = cacheFolderName('https://notary.example.com|registry.example.com/team/app');
    expect(a).toMatch(/^notary\.example\.com_registry\.example\.com_team_app-[0-9a-f]{16}$/);
    expect(cacheFolderName('https://x/a_b')).not.toBe(cacheFolderName('https://x/a/b'));
    expect(cacheFolderName('../../..')).toMatch(/^repo-[0-9a-f]{16}$/);
    // The first 16 hex digits of the identity's SHA-256: folders made by earlier versions are found again.
    const identity = 'http://127.0.0.1:4443|example.com/app';
    const sha256 = createHash('sha256').update(identity).digest('hex');
    expect(cacheFolderName(identity)).toBe(`127.0.0.1_4443_example.com_app-${sha256.slice(0, 16)}`);
  });

  it('encodes delegated role names so that they stay inside the folder', () => {
    expect(cacheFileName('targets')).toBe('targets.json');
    expect(cacheFileName('a/../../b')).toBe(join('delegated', 'a%2F..%2F..%2Fb.json'));
    expect(cacheFileName('..')).toBe(join('delegated', '...json'));
    expect(cacheFileName('x'.repeat(300))).toMatch(/^delegated\/sha256-[0-9a-f]{64}\.json$/);
  });
});

describe('MetadataCache', () => {
  it('writes atomically and leaves no temp file', async () => {
    const cache = new MetadataCache(join(dir, 'c'));
    await cache.write('timestamp', new TextEncoder().encode('one'));
    await cache.write('timestamp', new TextEncoder().encode('two'));
    await cache.write('some/role', new TextEncoder().encode('three'));
    expect(new TextDecoder().decode(await cache.read('timestamp', 100))).toBe('two');
    expect(await readdir(join(dir, 'c'))).toEqual(['delegated', 'timestamp.json']);
    expect(await cache.read('snapshot', 100)).toBeUndefined();
    await cache.remove('timestamp');
    expect(await cache.read('timestamp', 100)).toBeUndefined();
  });

  it('refuses a cached file larger than the bound', async () => {
    const cache = new MetadataCache(dir);
    await writeFile(join(dir, 'timestamp.json'), 'x'.repeat(101));
    await expect(cache.read('timestamp', 100)).rejects.toMatchObject({ code: 'TOO_LARGE' });
  });

  it('serialises holders of the lock', async () => {
    const cache = new MetadataCache(dir);
    const order: string[] = [];
    const hold = (name: string) =>
      cache.withLock(async () => {
        order.push(`${name}+`);
        await new Promise((r) => setTimeout(r, 30));
        order.push(`${name}-`);
      });
    await Promise.all([hold('a'), hold('b')]);
    // Either may win the race for the lock; what matters is that the two never overlap.
    expect([
      ['a+', 'a-', 'b+', 'b-'],
      ['b+', 'b-', 'a+', 'a-'],
    ]).toContainEqual(order);
    expect(existsSync(join(dir, 'lock'))).toBe(false);
  });

  it('recovers a lock left by a dead process or too old, and times out on a live one', async () => {
    const cache = new MetadataCache(dir);
    await writeFile(join(dir, 'lock'), '999999999 0 dead');
    expect(await cache.withLock(async () => 'ran')).toBe('ran');
    await writeFile(join(dir, 'lock'), `${process.ppid} 0 alive`);
    await expect(cache.withLock(async () => 'ran', { waitMs: 100 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    const old = new Date(Date.now() - 3600_000);
    await utimes(join(dir, 'lock'), old, old);
    expect(await cache.withLock(async () => 'ran', { staleMs: 60_000 })).toBe('ran');
    expect(await readFile(join(dir, 'lock'), 'utf8').catch(() => 'gone')).toBe('gone');
  });

  it('takes an empty lock file (a crash before its token reached the disk) as stale after a second', async () => {
    const cache = new MetadataCache(dir);
    await writeFile(join(dir, 'lock'), '');
    await expect(cache.withLock(async () => 'ran', { waitMs: 100 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    const old = new Date(Date.now() - 2000);
    await utimes(join(dir, 'lock'), old, old);
    expect(await cache.withLock(async () => 'ran', { waitMs: 100 })).toBe('ran');
  });

  it('counts a damaged last-refresh record (a crash while writing it) as none', async () => {
    const cache = new MetadataCache(dir);
    await cache.writeLastRefresh({ at: Date.parse('2026-01-02T03:04:05.678Z') });
    expect(await cache.readLastRefresh()).toEqual({ at: Date.parse('2026-01-02T03:04:05.678Z') });
    for (const damaged of ['', '{"refreshed_at":"2026-01-02T03:04', '\0\0\0\0']) {
      await writeFile(join(dir, 'last-refresh'), damaged);
      expect(await cache.readLastRefresh()).toBeUndefined();
    }
  });
});
