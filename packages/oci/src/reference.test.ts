import { describe, expect, it } from 'vitest';
import { checkManifestDigest, parseImageReference, pinnedReference } from './reference.js';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('image references, as Docker reads them', () => {
  it('defaults: docker.io, library/ for one segment, latest', () => {
    expect(parseImageReference('alpine')).toEqual({
      registry: 'docker.io',
      repository: 'library/alpine',
      tag: 'latest',
      gun: 'docker.io/library/alpine',
      apiHost: 'registry-1.docker.io',
    });
    expect(parseImageReference('team/app:v1')).toMatchObject({ gun: 'docker.io/team/app', tag: 'v1' });
    expect(parseImageReference('index.docker.io/library/alpine:3')).toMatchObject({
      gun: 'docker.io/library/alpine',
      apiHost: 'registry-1.docker.io',
    });
  });

  it('a registry is a first segment with a dot, a port or localhost; its port stays in the GUN', () => {
    expect(parseImageReference('127.0.0.1:5000/team/app:v1.2')).toEqual({
      registry: '127.0.0.1:5000',
      repository: 'team/app',
      tag: 'v1.2',
      gun: '127.0.0.1:5000/team/app',
      apiHost: '127.0.0.1:5000',
    });
    expect(parseImageReference('localhost/app')).toMatchObject({ gun: 'localhost/app', tag: 'latest' });
    expect(parseImageReference('registry.example.com/app:1')).toMatchObject({ repository: 'app' });
    expect(parseImageReference('localhost:5000/app')).toMatchObject({
      apiHost: 'localhost:5000',
      tag: 'latest',
    });
  });

  it('refuses a digest, a bad tag, and names outside the GUN grammar, with INVALID_ARGUMENT', () => {
    for (const bad of [
      `app@sha256:${'a'.repeat(64)}`,
      'app:',
      'app:-x',
      `app:${'t'.repeat(129)}`,
      'Team/App:v1',
      'registry.example.com//app',
      '',
      'x'.repeat(600),
    ]) {
      expect(
        codeOf(() => parseImageReference(bad)),
        bad,
      ).toBe('INVALID_ARGUMENT');
    }
  });

  it('pins by digest; a manifest digest is sha256 and 64 hex digits', () => {
    const ref = parseImageReference('127.0.0.1:5000/team/app:v1');
    const digest = `sha256:${'b'.repeat(64)}`;
    expect(pinnedReference(ref, checkManifestDigest(digest))).toBe(`127.0.0.1:5000/team/app@${digest}`);
    expect(codeOf(() => checkManifestDigest(`sha512:${'b'.repeat(128)}`))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => checkManifestDigest(`sha256:${'B'.repeat(64)}`))).toBe('INVALID_ARGUMENT');
  });
});
