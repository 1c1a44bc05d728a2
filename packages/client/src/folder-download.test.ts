import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { targetFileFor } from '@tufa/core';
import { codeOf, testCrypto, text } from '@tufa/testing';
import { type Setup, setup } from '@tufa/testing/client';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheFileName } from './cache.js';
import { localFileName, repositoryFileName, targetFileName } from './file-names.js';

let s: Setup | undefined;
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

describe('local file names', () => {
  it('never leave the folder, never start with a dot, and never differ by case alone', () => {
    expect(targetFileName('a/b')).toBe('a%2Fb');
    expect(targetFileName('a%2Fb')).toBe('a%252%46b');
    expect(targetFileName('..')).toBe('%2E.');
    expect(targetFileName('.')).toBe('%2E');
    expect(targetFileName('.hidden')).toBe('%2Ehidden');
    expect(targetFileName('..\\..\\x')).toBe('%2E.%5C..%5Cx');
    expect(targetFileName('App')).toBe('%41pp');
    expect(targetFileName('app')).toBe('app');
    expect(targetFileName('v1.2.3_rc-1')).toBe('v1.2.3_rc-1');
    expect(targetFileName('é')).toBe('%C3%A9');
    expect(targetFileName('x'.repeat(300))).toMatch(/^sha256-[0-9a-f]{64}$/);
    // A name that looks like the hashed form is escaped, so it never meets a long name's hash.
    const hashed = targetFileName('y'.repeat(300));
    expect(targetFileName(hashed)).toBe(`%73${hashed.slice(1)}`);
    expect(() => targetFileName('\ud800')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('are injective and case-fold safe for any name (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }),
        (a, b) => {
          const [x, y] = [targetFileName(a), targetFileName(b)];
          expect(x).not.toMatch(/[/\\]/);
          expect(x.startsWith('.')).toBe(false);
          expect(x).toMatch(/^[a-z0-9._%A-F-]+$/);
          if (a !== b) expect(x.toLowerCase()).not.toBe(y.toLowerCase());
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("the cache's delegated role files use the same encoding (case-fold safe since now)", () => {
    expect(cacheFileName('Releases')).toBe(join('delegated', '%52eleases.json'));
    expect(cacheFileName('releases')).toBe(join('delegated', 'releases.json'));
    expect(localFileName('team/a b')).toBe('team%2Fa%20b');
  });

  it("an exported repository's names are python-tuf's quote(name, safe='')", () => {
    expect(repositoryFileName('releases')).toBe('releases');
    expect(repositoryFileName('Team_A.b~c-d')).toBe('Team_A.b~c-d');
    expect(repositoryFileName('team/a b')).toBe('team%2Fa%20b');
    expect(repositoryFileName("a!*'()")).toBe('a%21%2A%27%28%29');
    expect(repositoryFileName('..')).toBe('..');
    expect(repositoryFileName('é')).toBe('%C3%A9');
  });
});

describe('downloadTarget(tag, { dir })', () => {
  it('picks a safe name inside the folder, returns it, and keeps two look-alike paths apart', async () => {
    s = await setup({
      prepare: (sim) => {
        // A top-level target whose name holds the escape of the delegated target's path.
        const content = text('not release 1');
        sim.addTarget('targets', 'releases%2Fr1', content);
        for (const hash of Object.values(targetFileFor(testCrypto, content).hashes)) {
          sim.files.set(`targets/${hash}.releases%252Fr1`, content);
        }
        sim.bump('targets');
        sim.publish();
      },
    });
    const dir = join(s.dir, 'downloads');
    const one = await s.client.downloadTarget('releases/r1', { dir });
    const two = await s.client.downloadTarget('releases%2Fr1', { dir });
    expect(one.path).toBe(join(dir, 'releases%2Fr1'));
    expect(two.path).toBe(join(dir, 'releases%252%46r1'));
    expect(await readFile(one.path, 'utf8')).toBe('release 1');
    expect(await readFile(two.path, 'utf8')).toBe('not release 1');
    expect((await readdir(dir)).sort()).toEqual(['releases%252%46r1', 'releases%2Fr1']);
    // A file path is still taken as it is, and returned too.
    const file = join(s.dir, 'app.bin');
    expect((await s.client.downloadTarget('app/v1', file)).path).toBe(file);
  });

  it('is FILE_UNWRITABLE when the folder cannot be made, never a bare system error', async () => {
    s = await setup();
    const notAFolder = join(s.dir, 'file');
    await writeFile(notAFolder, 'x');
    const err = await s.client.downloadTarget('app/v1', { dir: notAFolder }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'FILE_UNWRITABLE' });
    expect((err as { details: { reason: string } }).details.reason).toMatch(/^E[A-Z]+$/);
  });
});

describe('findCachedTarget', () => {
  it('says whether the local file already matches, without downloading it', async () => {
    s = await setup();
    const dir = join(s.dir, 'downloads');
    expect(await s.client.findCachedTarget('app/v1', { dir })).toBeUndefined();
    const downloaded = await s.client.downloadTarget('app/v1', { dir });
    const requests = s.sim.requests.length;
    const found = await s.client.findCachedTarget('app/v1', { dir });
    expect(found).toMatchObject({ path: downloaded.path, digest: downloaded.digest, role: 'targets' });
    expect(s.sim.requests.length).toBe(requests);
    await writeFile(downloaded.path, 'app v2'); // same length, other bytes
    expect(await s.client.findCachedTarget('app/v1', { dir })).toBeUndefined();
    await writeFile(downloaded.path, 'app v1 and more');
    expect(await s.client.findCachedTarget('app/v1', downloaded.path)).toBeUndefined();
  });

  it('answers offline too, and refuses a folder where the file should be', async () => {
    s = await setup();
    const dir = join(s.dir, 'downloads');
    await s.client.downloadTarget('app/v1', { dir });
    const offline = s.newClient({ offline: true });
    expect(await offline.findCachedTarget('app/v1', { dir })).toMatchObject({ role: 'targets' });
    // No local file: the lookup still runs (offline, releases was never cached; a bad tag is NOT_FOUND).
    expect(await codeOf(offline.findCachedTarget('releases/r1', { dir }))).toBe('CACHE_MISSING');
    expect(await codeOf(offline.findCachedTarget('no/such/tag', { dir }))).toBe('NOT_FOUND');
    await mkdir(join(dir, 'releases%2Fr1'));
    expect(await codeOf(s.client.findCachedTarget('releases/r1', { dir }))).toBe('FILE_UNREADABLE');
  });
});

describe('verifyFile on a file that cannot be read', () => {
  it('is FILE_UNREADABLE, not NOT_FOUND, whatever the tag: a path, a folder, a file stream', async () => {
    s = await setup();
    const missing = join(s.dir, 'missing.bin');
    for (const tag of ['app/v1', 'no/such/tag']) {
      const byPath = await s.client.verifyFile(tag, missing).catch((e: unknown) => e);
      expect(byPath).toMatchObject({ code: 'FILE_UNREADABLE', details: { path: missing, reason: 'ENOENT' } });
      const byStream = await s.client.verifyFile(tag, createReadStream(missing)).catch((e: unknown) => e);
      expect(byStream).toMatchObject({
        code: 'FILE_UNREADABLE',
        details: { path: missing, reason: 'ENOENT' },
      });
      const folder = await s.client.verifyFile(tag, s.dir).catch((e: unknown) => e);
      expect(folder).toMatchObject({ code: 'FILE_UNREADABLE', details: { path: s.dir, reason: 'EISDIR' } });
    }
    // A readable file for a tag that does not exist is still NOT_FOUND.
    const file = join(s.dir, 'present.bin');
    await writeFile(file, 'app v1');
    expect(await codeOf(s.client.verifyFile('no/such/tag', file))).toBe('NOT_FOUND');
    expect((await s.client.verifyFile('app/v1', createReadStream(file))).role).toBe('targets');
  });
});
