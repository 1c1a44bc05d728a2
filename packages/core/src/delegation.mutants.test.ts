/** Delegation search: path patterns, the visit bound and terminating delegations, as mutation testing asked. */

import { DAY, NOW, refusal, testCrypto, testKey } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { isDelegatedPath, matchPathPattern, searchTarget } from './delegation.js';
import { utf8Encode } from './json.js';
import type { DelegatedRole, Targets } from './metadata.js';
import { expiresIn, newTargets, targetFileFor, withDelegation, withTarget } from './repository.js';

describe('matchPathPattern sets', () => {
  it.each([
    // A `]` right after `[` belongs to the set (as in the shell).
    ['[]a]', ']', true],
    ['[]a]', 'a', true],
    ['[]a]', 'b', false],
    // A `]` before the set does not close it.
    ['a]b[c]', 'a]bc', true],
    ['a]b[c]', 'a]bd', false],
    // `[!…]` negates; the `!` itself is not in the set.
    ['[!a]', '!', true],
    ['[!a]', 'b', true],
    ['[!a]', 'a', false],
    ['[!a]', '/', false],
    // `^` and `\` are characters of the set, not regular-expression syntax.
    ['[^a]', '^', true],
    ['[^a]', 'a', true],
    ['[^a]', 'b', false],
    // A set holds its own characters only.
    ['[ab]', 'e', false],
    ['[ab]', 'b', true],
    ['[\\]', '\\', true],
  ])('%s matches %s: %s', (pattern, path, expected) => {
    expect(matchPathPattern(pattern, path)).toBe(expected);
  });
});

describe('isDelegatedPath', () => {
  it('a role with neither paths nor path hash prefixes is trusted for nothing', () => {
    const role: DelegatedRole = { name: 'r', keyids: [], threshold: 1, terminating: false, extra: {} };
    expect(isDelegatedPath(role, 'any/thing')).toBe(false);
  });
});

const key = testKey(31).key;
const empty = () => newTargets({ expires: expiresIn(NOW, DAY) });
const delegate = (t: Targets, name: string, terminating = false) =>
  withDelegation(t, { name, keys: [key], paths: ['*'], terminating });

describe('searchTarget', () => {
  /** A chain targets → r0 → r1 → … → r(n-1), every role loaded. */
  function chain(n: number) {
    const roles = new Map<string, Targets>();
    for (let i = 0; i < n; i++) roles.set(`r${i}`, i + 1 < n ? delegate(empty(), `r${i + 1}`) : empty());
    return { targets: delegate(empty(), 'r0'), getRole: (name: string) => roles.get(name) };
  }

  it('visits exactly maxRoles roles, and refuses the next one with the bound and the path', () => {
    // targets and r0..r2: four roles.
    expect(searchTarget({ path: 'x', ...chain(3), maxRoles: 4 })).toEqual({ kind: 'not-found', visited: 4 });
    expect(refusal(() => searchTarget({ path: 'x', ...chain(4), maxRoles: 4 }))).toEqual({
      code: 'DELEGATION_LIMIT',
      message: 'more than 4 roles visited looking for x',
      role: 'r3',
      expected: 4,
      details: { path: 'x' },
    });
  });

  it('a matching delegation that is not terminating lets the search go on to the next one', () => {
    const targets = delegate(delegate(empty(), 'a'), 'b');
    const b = withTarget(empty(), 'x', targetFileFor(testCrypto, utf8Encode('b:x')));
    const roles = new Map([
      ['a', empty()],
      ['b', b],
    ]);
    const found = searchTarget({ path: 'x', targets, getRole: (name) => roles.get(name) });
    expect(found).toMatchObject({ kind: 'found', role: 'b', chain: ['targets', 'b'] });
    // The same delegations with `a` terminating: b is never looked at.
    const stop = delegate(delegate(empty(), 'a', true), 'b');
    expect(searchTarget({ path: 'x', targets: stop, getRole: (name) => roles.get(name) })).toEqual({
      kind: 'not-found',
      visited: 2,
    });
  });
});
