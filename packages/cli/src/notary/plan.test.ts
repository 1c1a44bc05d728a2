import { isDelegatedPath } from '@tufa/core';
import { codeOf, testCrypto } from '@tufa/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { compareTags, planImport, prefixPatterns, tufaRoleName } from './plan.js';
import { readNotaryCollection } from './reader.js';
import { buildCollection, GUN, type SimKeys, simKeys } from './sim.test-util.js';

const role = (paths: string[]) => ({
  name: 'r',
  keyids: [],
  threshold: 1,
  terminating: false,
  paths,
  extra: {},
});

describe("Notary's prefixes as TUF path patterns", () => {
  it('one pattern per number of slashes, from the prefix’s own to the depth asked', () => {
    expect(prefixPatterns(['releases/'], 3)).toEqual(['releases/*', 'releases/*/*', 'releases/*/*/*']);
    expect(prefixPatterns(['rel'], 1)).toEqual(['rel*', 'rel*/*']);
    expect(prefixPatterns([''], 1)).toEqual(['*', '*/*']);
  });

  it('match what the prefix matches, to the depth covered, and nothing outside it', () => {
    const patterns = role(prefixPatterns(['releases/v'], 3));
    for (const path of ['releases/v1', 'releases/v1/a', 'releases/v1/a/b', 'releases/v'])
      expect(isDelegatedPath(patterns, path)).toBe(true);
    for (const path of ['releases/x1', 'other/releases/v1', 'releasesv1', 'releases/v1/a/b/c'])
      expect(isDelegatedPath(patterns, path)).toBe(false);
  });

  it('escape the pattern characters a prefix may hold', () => {
    const patterns = role(prefixPatterns(['a*[b?'], 0));
    expect(isDelegatedPath(patterns, 'a*[b?x')).toBe(true);
    expect(isDelegatedPath(patterns, 'aZ[b?x')).toBe(false);
  });

  it('name roles in tufa’s grammar', () => {
    expect(['targets/releases', 'targets/releases/nightly'].map(tufaRoleName)).toEqual([
      'releases',
      'releases.nightly',
    ]);
  });
});

describe('the post-import check', () => {
  const t = (length: number, sha256: string, sha512?: string) => ({
    length,
    hashes: { sha256, ...(sha512 === undefined ? {} : { sha512 }) },
  });
  it('finds a tag whose length or any digest differs, and a tag missing on either side', () => {
    const notary = new Map([
      ['same', t(1, 'aa', 'bb')],
      ['length', t(1, 'aa')],
      ['digest', t(1, 'aa', 'bb')],
      ['gone', t(1, 'aa')],
    ]);
    const tufa = new Map([
      ['same', t(1, 'aa', 'bb')],
      ['length', t(2, 'aa')],
      ['digest', t(1, 'aa', 'bc')],
      ['extra', t(1, 'aa')],
    ]);
    expect(compareTags(notary, tufa).map((m) => m.tag)).toEqual(['digest', 'extra', 'gone', 'length']);
    expect(compareTags(notary, tufa).find((m) => m.tag === 'gone')).toMatchObject({ tufa: 'absent' });
    expect(compareTags(notary, new Map(notary))).toEqual([]);
  });
});

describe('the import plan', () => {
  let keys: SimKeys;
  beforeAll(() => {
    keys = simKeys();
  });

  it('maps roles level by level with their delegators, keeps custom data, and says what it cannot carry', async () => {
    const collection = await readNotaryCollection({
      gun: GUN,
      fetch: buildCollection(keys).fetch,
      crypto: testCrypto,
      now: Date.now(),
    });
    const plan = planImport(collection);
    expect(plan.levels.map((l) => l.delegations.map((d) => [d.name, d.parent]))).toEqual([
      [['releases', 'targets']],
      [['releases.nightly', 'releases']],
      [],
    ]);
    expect(plan.levels.map((l) => l.tags.map((x) => `${x.role}:${x.path}`))).toEqual([
      ['targets:v1', 'targets:v2'],
      ['releases:releases/r1'],
      ['releases.nightly:releases/nightly/n1'],
    ]);
    expect(plan.levels[0]!.tags[0]!.target.custom).toEqual({ note: 'kept' });
    expect(plan.levels[1]!.delegations[0]!.patterns).toContain('releases/nightly/*');
    expect(plan.notCarried.map((n) => n.what)).toContain('the timestamp and snapshot keys');
  });

  it('refuses two Notary roles that would get one tufa name', async () => {
    const clash = buildCollection(keys, {
      edit: {
        'targets/releases': (s) => {
          s.delegations.roles[0].name = 'targets/releases/nightly';
        },
      },
    });
    const collection = await readNotaryCollection({
      gun: GUN,
      fetch: clash.fetch,
      crypto: testCrypto,
      now: Date.now(),
    });
    expect(
      codeOf(() =>
        planImport({
          ...collection,
          roles: [...collection.roles, { ...collection.roles[1]!, name: 'targets/releases.nightly' }],
        }),
      ),
    ).toBe('INVALID_ARGUMENT');
  });
});
