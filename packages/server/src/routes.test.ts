import { isTufaError } from '@tufa/core';
import { describe, expect, it } from 'vitest';
import { statusOf } from './http.js';
import { parseRoute } from './routes.js';

/** `STATUS CODE` of the refusal, or the route. */
function answer(path: string): unknown {
  try {
    return parseRoute(path);
  } catch (err) {
    if (isTufaError(err)) return `${statusOf(err)} ${err.code}`;
    throw err;
  }
}

const ID = 'ab'.repeat(32);

describe('the route table', () => {
  it('routes every collection route on the GUN as sent', () => {
    expect(answer('/v2/acme/app/_trust/pending')).toEqual({ kind: 'pending', gun: 'acme/app' });
    expect(answer('/v2/acme/app/_trust/pending/')).toEqual({ kind: 'pending', gun: 'acme/app' });
    expect(answer(`/v2/acme/app/_trust/pending/${ID}`)).toEqual({
      kind: 'pending_one',
      gun: 'acme/app',
      id: ID,
    });
    expect(answer(`/v2/acme/app/_trust/pending/${ID}/signatures`)).toEqual({
      kind: 'pending_signatures',
      gun: 'acme/app',
      id: ID,
    });
    expect(answer('/v2/acme/app/_trust/pending/xyz')).toBe('404 NOT_FOUND');
    expect(answer(`/v2/acme/app/_trust/pending/${ID}/`)).toBe('404 NOT_FOUND');
    expect(answer(`/v2/acme/app/_trust/pending/${ID.toUpperCase()}`)).toBe('404 NOT_FOUND');
    // A role name may hold a raw `/` too.
    expect(answer('/v2/a/_trust/tuf/targets/releases.json')).toEqual({
      kind: 'metadata',
      gun: 'a',
      role: 'targets/releases',
    });
    expect(answer('/v2/a/_trust/tuf/2.snapshot.json')).toEqual({
      kind: 'metadata',
      gun: 'a',
      role: 'snapshot',
      version: 2,
    });
  });

  it('never decodes what it matches: an encoded route or GUN names nothing or is refused', () => {
    // find-my-way decodes paths before matching; none of these may reach a route by decoding.
    expect(answer('/v2/_admin/%61udit')).toBeUndefined();
    expect(answer('/_heal%74h')).toBeUndefined();
    expect(answer('/v2/a/_trust/%74uf/root.json')).toBeUndefined();
    expect(answer('/v2/a/_trust/pending%2F')).toBeUndefined();
    expect(answer('/v2/_admin/tokens/%61bc')).toBe('400 INVALID_ARGUMENT');
    expect(answer('/v2/_admin/tokens/a%2Fb')).toBe('400 INVALID_ARGUMENT');
    expect(answer('/v2/acme/%2e%2e/x/_trust/tuf/root.json')).toBe('400 INVALID_ARGUMENT');
    expect(answer('/v2/acme%2Fapp/_trust/tuf/root.json')).toBe('400 INVALID_ARGUMENT');
    // The role file is decoded once, by the route: `%252F` is a `%2F` in the name, not a `/`.
    expect(answer('/v2/a/_trust/tuf/targets%2Freleases.json')).toEqual({
      kind: 'metadata',
      gun: 'a',
      role: 'targets/releases',
    });
    expect(answer('/v2/a/_trust/tuf/targets%252Freleases.json')).toBe('400 INVALID_ARGUMENT');
    expect(answer('/v2/a/_trust/tuf/%E0%A4%A.json')).toBe('400 INVALID_ARGUMENT');
  });

  it('a GUN ends at the last /_trust/: a second one makes it no GUN', () => {
    expect(answer('/v2/a/_b/_trust/tuf/root.json')).toBe('400 INVALID_ARGUMENT');
    expect(answer('/v2/a/_trust/tuf/x/_trust/changefeed')).toBe('400 INVALID_ARGUMENT');
    expect(answer('/v2/a/_trust/pending/x/_trust/tuf/')).toBe('400 INVALID_ARGUMENT');
    expect(answer('/v2/a/_trust/tuf/_trust/root.json')).toBeUndefined();
    expect(answer('/v2//_trust/tuf/root.json')).toBe('400 INVALID_ARGUMENT');
    expect(answer('/v2/_trust/tuf/root.json')).toBeUndefined();
    expect(answer('/_trust/tuf/root.json')).toBeUndefined();
  });

  it('takes parameters of any length and refuses them by its own rules', () => {
    // find-my-way's default refuses parameters over 100 characters (a 404): here the name rule answers.
    expect(answer(`/v2/_admin/tokens/${'a'.repeat(150)}`)).toBe('400 INVALID_ARGUMENT');
    expect(answer('/v2/_admin/tokens/')).toBeUndefined();
    expect(answer('/v2/_admin/tokens/a/b')).toBeUndefined();
    expect(answer('*')).toBeUndefined();
    expect(answer('/v2/_trust/changefeed/')).toBeUndefined();
  });
});
