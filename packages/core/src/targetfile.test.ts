import { codeOf as code, testCrypto } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import type { TufaError } from './errors.js';
import { utf8Encode } from './json.js';
import type { TargetFile } from './metadata.js';
import { targetFileFor } from './repository.js';
import { checkDigest, formatDigest, parseDigest, preferredDigest, TargetVerifier } from './targetfile.js';

const content = utf8Encode('the artifact');
const target = targetFileFor(testCrypto, content);
const sha256 = target.hashes.sha256!;

describe('digests', () => {
  it('parses ALGORITHM:HEX strictly', () => {
    expect(parseDigest(`sha256:${sha256}`)).toEqual({ algorithm: 'sha256', hex: sha256 });
    expect(formatDigest(parseDigest(`sha256:${sha256}`))).toBe(`sha256:${sha256}`);
    for (const bad of [
      sha256,
      `md5:${sha256}`,
      `sha256:${sha256.toUpperCase()}`,
      `sha256:${sha256}0`,
      'sha256:',
      ':',
      '',
    ]) {
      expect(code(() => parseDigest(bad))).toBe('INVALID_ARGUMENT');
    }
  });

  it('compares with the trusted digest', () => {
    expect(code(() => checkDigest(target, parseDigest(`sha256:${sha256}`)))).toBe('ok');
    expect(code(() => checkDigest(target, parseDigest(`sha256:${'0'.repeat(64)}`)))).toBe('HASH_MISMATCH');
    expect(code(() => checkDigest(target, parseDigest(`sha384:${'0'.repeat(96)}`)))).toBe('HASH_MISMATCH');
  });

  it('prefers sha256, and refuses a target with no computable hash', () => {
    expect(preferredDigest(target).algorithm).toBe('sha256');
    const onlyUnknown: TargetFile = { length: 1, hashes: { blake3: 'ab' }, extra: {} };
    expect(code(() => preferredDigest(onlyUnknown))).toBe('HASH_MISMATCH');
    expect(code(() => new TargetVerifier(testCrypto, onlyUnknown))).toBe('HASH_MISMATCH');
  });
});

describe('TargetVerifier', () => {
  it('accepts the right content in any chunking', () => {
    const v = new TargetVerifier(testCrypto, target);
    for (let i = 0; i < content.length; i += 3) v.update(content.subarray(i, i + 3));
    expect(() => v.finish()).not.toThrow();
    expect(v.bytesReceived).toBe(content.length);
  });

  it('refuses more bytes than trusted as soon as they arrive', () => {
    const v = new TargetVerifier(testCrypto, target);
    v.update(content);
    expect(code(() => v.update(utf8Encode('x')))).toBe('LENGTH_MISMATCH');
  });

  it('refuses short content and changed content', () => {
    const short = new TargetVerifier(testCrypto, target);
    short.update(content.subarray(1));
    expect(code(() => short.finish())).toBe('LENGTH_MISMATCH');
    const changed = Uint8Array.from(content);
    changed[0] = changed[0]! ^ 1;
    const v = new TargetVerifier(testCrypto, target, { path: 'tag' });
    v.update(changed);
    try {
      v.finish();
      expect.unreachable();
    } catch (err) {
      expect((err as TufaError).code).toBe('HASH_MISMATCH');
      expect((err as TufaError).message).toMatch(/^tag: sha(256|512)/);
    }
  });

  it('checks every supported hash the target states', () => {
    const wrong512: TargetFile = { ...target, hashes: { ...target.hashes, sha512: '0'.repeat(128) } };
    const v = new TargetVerifier(testCrypto, wrong512);
    v.update(content);
    expect(code(() => v.finish())).toBe('HASH_MISMATCH');
  });
});
