import { DAY, NOW, testCrypto, testKey } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import {
  allDelegatedRoles,
  DEFAULT_MAX_DELEGATIONS,
  delegatedRoleCount,
  delegatedRoleNamed,
  delegationsFor,
  isDelegatedPath,
  matchPathPattern,
  searchTarget,
  succinctBinNameFor,
  succinctBinRole,
} from './delegation.js';
import { toHex } from './encoding.js';
import { TufaError } from './errors.js';
import { utf8Encode } from './json.js';
import type { DelegatedRole, SuccinctRoles, Targets } from './metadata.js';
import {
  type DelegationSpec,
  expiresIn,
  newTargets,
  targetFileFor,
  withDelegation,
  withSuccinctDelegation,
  withTarget,
} from './repository.js';

describe('matchPathPattern', () => {
  it.each([
    ['releases/*', 'releases/v1', true],
    ['releases/*', 'releases/a/b', false],
    ['releases/*', 'releases/', true],
    ['releases/*', 'other/v1', false],
    ['*', 'file', true],
    ['*', 'dir/file', false],
    ['*/*', 'dir/file', true],
    ['a/*.tgz', 'a/pkg.tgz', true],
    ['a/*.tgz', 'a/pkg.tar', false],
    ['v?', 'v1', true],
    ['v?', 'v10', false],
    ['v[0-9]', 'v7', true],
    ['v[0-9]', 'vx', false],
    ['v[!0-9]', 'vx', true],
    ['v[!0-9]', 'v7', false],
    ['a.b', 'axb', false],
    ['a+b', 'a+b', true],
    ['(x)', '(x)', true],
    ['[unclosed', '[unclosed', true],
    ['x/**', 'x/a/b', false],
    ['', '', true],
  ])('%s matches %s: %s', (pattern, path, expected) => {
    expect(matchPathPattern(pattern, path)).toBe(expected);
  });
});

describe('isDelegatedPath', () => {
  const role = (extra: Partial<DelegatedRole>): DelegatedRole => ({
    name: 'r',
    keyids: [],
    threshold: 1,
    terminating: false,
    extra: {},
    ...extra,
  });

  it('uses path hash prefixes of sha256(path)', () => {
    const digest = toHex(testCrypto.hash('sha256', utf8Encode('some/target')));
    expect(isDelegatedPath(role({ pathHashPrefixes: [digest.slice(0, 2)] }), 'some/target')).toBe(true);
    expect(
      isDelegatedPath(role({ pathHashPrefixes: [digest.slice(0, 2) === '00' ? '01' : '00'] }), 'some/target'),
    ).toBe(false);
    expect(isDelegatedPath(role({ pathHashPrefixes: [digest] }), 'some/target')).toBe(true);
  });

  it('matches any of several paths', () => {
    expect(isDelegatedPath(role({ paths: ['a/*', 'b/*'] }), 'b/x')).toBe(true);
    expect(isDelegatedPath(role({ paths: [] }), 'b/x')).toBe(false);
  });
});

/** A tree of roles in memory: name → targets; search needs no I/O. */
function tree(
  build: (
    add: (parent: string, spec: Omit<DelegationSpec, 'keys'>) => void,
    put: (role: string, path: string) => void,
  ) => void,
) {
  const roles = new Map<string, Targets>([['targets', newTargets({ expires: expiresIn(NOW, DAY) })]]);
  const key = testKey(30).key;
  build(
    (parent, spec) => {
      roles.set(
        parent,
        withDelegation(roles.get(parent) ?? newTargets({ expires: expiresIn(NOW, DAY) }), {
          ...spec,
          keys: [key],
        }),
      );
      if (!roles.has(spec.name)) roles.set(spec.name, newTargets({ expires: expiresIn(NOW, DAY) }));
    },
    (role, path) => {
      roles.set(
        role,
        withTarget(roles.get(role)!, path, targetFileFor(testCrypto, utf8Encode(`${role}:${path}`))),
      );
    },
  );
  const loads: string[] = [];
  const search = (path: string, maxRoles?: number) => {
    // Emulates the client: load what the search needs, ask again.
    for (;;) {
      const loaded = new Set(loads);
      const result = searchTarget({
        path,
        targets: roles.get('targets')!,
        getRole: (name) => (loaded.has(name) ? roles.get(name) : undefined),
        ...(maxRoles === undefined ? {} : { maxRoles }),
      });
      if (result.kind !== 'need') return result;
      loads.push(result.role.name);
    }
  };
  return { search, loads };
}

describe('searchTarget', () => {
  it('finds a target in top-level targets without loading anything', () => {
    const t = tree((_add, put) => put('targets', 'app'));
    expect(t.search('app')).toMatchObject({ kind: 'found', role: 'targets', chain: ['targets'] });
    expect(t.loads).toEqual([]);
  });

  it('walks preorder depth-first in the order delegations are listed', () => {
    const t = tree((add, put) => {
      add('targets', { name: 'a', paths: ['*'] });
      add('targets', { name: 'b', paths: ['*'] });
      add('a', { name: 'a1', paths: ['*'] });
      put('a1', 'x');
      put('b', 'x');
    });
    expect(t.search('x')).toMatchObject({ kind: 'found', role: 'a1', chain: ['targets', 'a', 'a1'] });
    expect(t.loads).toEqual(['a', 'a1']);
  });

  it('does not follow a delegation whose paths exclude the target', () => {
    const t = tree((add, put) => {
      add('targets', { name: 'releases', paths: ['releases/*'] });
      put('releases', 'other/file'); // signed by the role, outside its paths
    });
    expect(t.search('other/file').kind).toBe('not-found');
    expect(t.loads).toEqual([]);
  });

  it('requires every delegation along the chain to match', () => {
    const t = tree((add, put) => {
      add('targets', { name: 'a', paths: ['a/*'] });
      add('a', { name: 'wide', paths: ['*/*'] });
      put('wide', 'b/x');
    });
    expect(t.search('b/x').kind).toBe('not-found');
  });

  it('stops at a terminating delegation: later roles are hidden', () => {
    const t = tree((add, put) => {
      add('targets', { name: 'first', paths: ['*'], terminating: true });
      add('targets', { name: 'second', paths: ['*'] });
      put('second', 'x');
    });
    expect(t.search('x').kind).toBe('not-found');
    expect(t.loads).toEqual(['first']);
  });

  it('a terminating delegation also hides roles pending higher up', () => {
    const t = tree((add, put) => {
      add('targets', { name: 'a', paths: ['*'] });
      add('targets', { name: 'b', paths: ['*'] });
      add('a', { name: 'a1', paths: ['*'], terminating: true });
      put('b', 'x');
    });
    expect(t.search('x').kind).toBe('not-found');
  });

  it('a non-matching terminating delegation does not stop the search', () => {
    const t = tree((add, put) => {
      add('targets', { name: 'first', paths: ['other/*'], terminating: true });
      add('targets', { name: 'second', paths: ['*'] });
      put('second', 'x');
    });
    expect(t.search('x')).toMatchObject({ kind: 'found', role: 'second' });
  });

  it('uses path hash prefixes', () => {
    const digest = toHex(testCrypto.hash('sha256', utf8Encode('bin/tool')));
    const t = tree((add, put) => {
      add('targets', { name: 'other-bin', pathHashPrefixes: [digest[0] === '0' ? '1' : '0'] });
      add('targets', { name: 'bin', pathHashPrefixes: [digest.slice(0, 1)] });
      put('bin', 'bin/tool');
    });
    expect(t.search('bin/tool')).toMatchObject({ kind: 'found', role: 'bin' });
    expect(t.loads).toEqual(['bin']);
  });

  it('visits a role once: a cycle ends', () => {
    const t = tree((add) => {
      add('targets', { name: 'a', paths: ['*'] });
      add('a', { name: 'b', paths: ['*'] });
      add('b', { name: 'a', paths: ['*'] });
    });
    expect(t.search('x')).toMatchObject({ kind: 'not-found', visited: 3 });
  });

  it('refuses to visit more roles than the bound', () => {
    const t = tree((add) => {
      for (let i = 0; i < 40; i++) add(i === 0 ? 'targets' : `r${i - 1}`, { name: `r${i}`, paths: ['*'] });
    });
    try {
      t.search('x');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(TufaError);
      expect((err as TufaError).code).toBe('DELEGATION_LIMIT');
      expect((err as TufaError).expected).toBe(DEFAULT_MAX_DELEGATIONS);
    }
    expect(t.search('x', 64).kind).toBe('not-found');
  });
});

describe('TAP 15 succinct hash bins', () => {
  const bins = (bitLength: number, namePrefix = 'bins'): SuccinctRoles => ({
    keyids: ['ab'.repeat(32)],
    threshold: 1,
    bitLength,
    namePrefix,
    extra: {},
  });

  it('names the bin of a path from the first bit_length bits of sha256(path), padded to ceil(bits / 4) digits', () => {
    // sha256("") starts e3b0c442 = 1110 0011 1011 0000 1100 0100 0100 0010.
    expect(succinctBinNameFor(bins(1), '')).toBe('bins-1');
    expect(succinctBinNameFor(bins(4), '')).toBe('bins-e');
    expect(succinctBinNameFor(bins(8), '')).toBe('bins-e3');
    expect(succinctBinNameFor(bins(10), '')).toBe('bins-38e');
    expect(succinctBinNameFor(bins(13), '')).toBe('bins-1c76');
    expect(succinctBinNameFor(bins(32), '')).toBe('bins-e3b0c442');
    // sha256("abc") starts ba7816bf; bin 0 of 2^14 is padded to 4 digits.
    expect(succinctBinNameFor(bins(14, 'x'), 'abc')).toBe(
      `x-${(0xba7816bf >>> 18).toString(16).padStart(4, '0')}`,
    );
    expect(succinctBinRole(bins(14), 0).name).toBe('bins-0000');
    expect(succinctBinRole(bins(5), 31).name).toBe('bins-1f');
  });

  it('a bin stands for the delegated role of its hash prefixes: each path is in its own bin only', () => {
    for (const bitLength of [1, 2, 3, 4, 5, 7, 8, 9, 12, 14]) {
      const s = bins(bitLength);
      for (let i = 0; i < 40; i++) {
        const path = `app/v${i}/${bitLength}`;
        const name = succinctBinNameFor(s, path);
        const role = delegatedRoleNamed({ keys: {}, roles: [], succinctRoles: s, extra: {} }, name)!;
        expect(role.terminating).toBe(true);
        expect(isDelegatedPath(role, path), `${path} in ${name}`).toBe(true);
        const other = succinctBinRole(s, (Number.parseInt(name.slice(5), 16) + 1) % 2 ** bitLength);
        expect(isDelegatedPath(other, path), `${path} not in ${other.name}`).toBe(false);
      }
    }
  });

  it('knows its bins by name, and no other name', () => {
    const d = { keys: {}, roles: [], succinctRoles: bins(6), extra: {} };
    expect(delegatedRoleNamed(d, 'bins-3f')?.pathHashPrefixes).toEqual(['fc', 'fd', 'fe', 'ff']);
    expect(delegatedRoleNamed(d, 'bins-00')?.keyids).toEqual(['ab'.repeat(32)]);
    for (const name of [
      'bins-40',
      'bins-3F',
      'bins-f',
      'bins-03f',
      'bins3f',
      'other-3f',
      'bins-+f',
      'bins- f',
    ]) {
      expect(delegatedRoleNamed(d, name), name).toBeUndefined();
    }
    expect(delegatedRoleCount(d)).toBe(64);
    expect([...allDelegatedRoles(d)].map((r) => r.name).slice(0, 3)).toEqual([
      'bins-00',
      'bins-01',
      'bins-02',
    ]);
    expect(delegationsFor(d, 'a/b').map((r) => r.name)).toEqual([succinctBinNameFor(bins(6), 'a/b')]);
  });

  it('a search goes straight to the one bin of the path', () => {
    const key = testKey(3);
    const targets = withSuccinctDelegation(newTargets({ expires: expiresIn(NOW, DAY) }), {
      keys: [key.key],
      bitLength: 8,
      namePrefix: 'bins',
    });
    const s = targets.delegations!.succinctRoles!;
    const path = 'releases/v1';
    const binName = succinctBinNameFor(s, path);
    const bin = withTarget(
      newTargets({ expires: expiresIn(NOW, DAY) }),
      path,
      targetFileFor(testCrypto, utf8Encode('v1')),
    );
    const asked: string[] = [];
    const getRole = (name: string) => {
      asked.push(name);
      return name === binName ? bin : newTargets({ expires: expiresIn(NOW, DAY) });
    };
    const found = searchTarget({ path, targets, getRole });
    expect(found).toMatchObject({ kind: 'found', role: binName, chain: ['targets', binName] });
    expect(asked).toEqual([binName]);
    const missing = searchTarget({ path: 'nothing', targets, getRole });
    expect(missing).toEqual({ kind: 'not-found', visited: 2 });
    expect(asked.at(-1)).toBe(succinctBinNameFor(s, 'nothing'));
  });

  it('withSuccinctDelegation refuses bounds outside 1..32 and named delegations beside it', () => {
    const base = newTargets({ expires: expiresIn(NOW, DAY) });
    const key = testKey(3).key;
    for (const bitLength of [0, 33, 1.5]) {
      expect(() => withSuccinctDelegation(base, { keys: [key], bitLength, namePrefix: 'b' })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
    const named = withDelegation(base, { name: 'r', keys: [key], paths: ['*'] });
    expect(() => withSuccinctDelegation(named, { keys: [key], bitLength: 2, namePrefix: 'b' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    const binned = withSuccinctDelegation(base, { keys: [key], bitLength: 2, namePrefix: 'b' });
    expect(() => withDelegation(binned, { name: 'r', keys: [key], paths: ['*'] })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});
