/**
 * Target-file checks, refusal by refusal: the code, the message a user reads, and what was
 * expected and found (mutation testing showed these were unchecked).
 */

import { refusal, testCrypto } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { utf8Encode } from './json.js';
import type { TargetFile } from './metadata.js';
import { targetFileFor } from './repository.js';
import { checkDigest, parseDigest, preferredDigest, TargetVerifier } from './targetfile.js';

const content = utf8Encode('the artifact');
const target = targetFileFor(testCrypto, content);
const sha256 = target.hashes.sha256!;
const sha512 = target.hashes.sha512!;
const ALGORITHM_MESSAGE = 'digest must be ALGORITHM:HEX with one of sha256, sha384, sha512';

describe('parseDigest refusals', () => {
  it('without a colon the whole text is the algorithm, never its first characters', () => {
    // `sha256a` would parse as algorithm sha256 if the text before a missing colon were read.
    expect(refusal(() => parseDigest('sha256a'))).toEqual({
      code: 'INVALID_ARGUMENT',
      message: ALGORITHM_MESSAGE,
      found: 'sha256a',
    });
    expect(refusal(() => parseDigest(`:${sha256}`))).toMatchObject({ message: ALGORITHM_MESSAGE });
  });

  it('an unknown algorithm is named as such, not as a hex length', () => {
    expect(refusal(() => parseDigest(`md5:${'0'.repeat(32)}`))).toEqual({
      code: 'INVALID_ARGUMENT',
      message: ALGORITHM_MESSAGE,
      found: `md5:${'0'.repeat(32)}`,
    });
  });

  it('a wrong hex length names the algorithm and its length', () => {
    expect(refusal(() => parseDigest(`sha384:${'0'.repeat(64)}`))).toEqual({
      code: 'INVALID_ARGUMENT',
      message: 'sha384 digest must be 96 lowercase hex digits',
      found: '0'.repeat(64),
    });
  });

  it('quotes at most 80 characters of what it refuses', () => {
    const at = (n: number) => refusal(() => parseDigest('x'.repeat(n))).found;
    expect(at(80)).toBe('x'.repeat(80));
    expect(at(81)).toBe(`${'x'.repeat(77)}...`);
    const hexAt = (n: number) => refusal(() => parseDigest(`sha256:${'a'.repeat(n)}`)).found;
    expect(hexAt(80)).toBe('a'.repeat(80));
    expect(hexAt(81)).toBe(`${'a'.repeat(77)}...`);
  });
});

describe('preferredDigest', () => {
  it('takes sha256, then sha512, then sha384', () => {
    const only = (hashes: Record<string, string>): TargetFile => ({ length: 1, hashes, extra: {} });
    expect(preferredDigest(only({ sha384: 'c', sha512: 'b' }))).toEqual({ algorithm: 'sha512', hex: 'b' });
    expect(preferredDigest(only({ sha384: 'c', blake3: 'd' }))).toEqual({ algorithm: 'sha384', hex: 'c' });
    expect(preferredDigest(only({ sha512: 'b', sha256: 'a' }))).toEqual({ algorithm: 'sha256', hex: 'a' });
  });

  it('names the role and the hashes it cannot compute', () => {
    const unknown: TargetFile = { length: 1, hashes: { blake3: 'ab', md5: 'cd' }, extra: {} };
    const expected = {
      code: 'HASH_MISMATCH',
      message: 'the target states no hash that tufa can compute',
      role: 'releases',
      expected: 'sha256, sha384 or sha512',
      found: 'blake3, md5',
    };
    expect(refusal(() => preferredDigest(unknown, 'releases'))).toEqual(expected);
    expect(refusal(() => new TargetVerifier(testCrypto, unknown, { role: 'releases' }))).toEqual(expected);
  });
});

describe('checkDigest refusals', () => {
  it('a digest of an algorithm the target does not state', () => {
    const bare: TargetFile = { length: 1, hashes: { sha256, sha512 }, extra: {} };
    const digest = parseDigest(`sha384:${'0'.repeat(96)}`);
    expect(refusal(() => checkDigest(bare, digest, { path: 'app/v1', role: 'targets' }))).toEqual({
      code: 'HASH_MISMATCH',
      message: 'app/v1: the trusted metadata states no sha384 hash',
      role: 'targets',
      expected: 'sha256, sha512',
      found: 'sha384',
    });
    expect(refusal(() => checkDigest(bare, digest)).message).toBe(
      'target: the trusted metadata states no sha384 hash',
    );
  });

  it('a different digest', () => {
    const digest = parseDigest(`sha256:${'0'.repeat(64)}`);
    expect(refusal(() => checkDigest(target, digest, { path: 'app/v1', role: 'targets' }))).toEqual({
      code: 'HASH_MISMATCH',
      message: 'app/v1: sha256 differs from the trusted one',
      role: 'targets',
      expected: `sha256:${sha256}`,
      found: `sha256:${'0'.repeat(64)}`,
    });
    expect(refusal(() => checkDigest(target, digest)).message).toBe(
      'target: sha256 differs from the trusted one',
    );
  });
});

describe('TargetVerifier refusals', () => {
  it('more bytes than trusted', () => {
    const named = new TargetVerifier(testCrypto, target, { path: 'app/v1', role: 'targets' });
    named.update(content);
    expect(refusal(() => named.update(utf8Encode('x')))).toEqual({
      code: 'LENGTH_MISMATCH',
      message: `app/v1: more than the trusted ${content.length} bytes`,
      role: 'targets',
      expected: content.length,
      found: `> ${content.length}`,
    });
    const unnamed = new TargetVerifier(testCrypto, target);
    expect(refusal(() => unnamed.update(utf8Encode(`${'x'.repeat(content.length)}!`))).message).toBe(
      `target: more than the trusted ${content.length} bytes`,
    );
  });

  it('fewer bytes than trusted', () => {
    const named = new TargetVerifier(testCrypto, target, { path: 'app/v1', role: 'targets' });
    named.update(content.subarray(2));
    expect(refusal(() => named.finish())).toEqual({
      code: 'LENGTH_MISMATCH',
      message: `app/v1: ${content.length - 2} bytes where ${content.length} are trusted`,
      role: 'targets',
      expected: content.length,
      found: content.length - 2,
    });
    expect(refusal(() => new TargetVerifier(testCrypto, target).finish()).message).toBe(
      `target: 0 bytes where ${content.length} are trusted`,
    );
  });

  it('content of the right length with another hash: says which hash and both values', () => {
    const changed = Uint8Array.from(content);
    changed[0] = changed[0]! ^ 1;
    const only512: TargetFile = { length: content.length, hashes: { sha512 }, extra: {} };
    const v = new TargetVerifier(testCrypto, only512, { path: 'app/v1', role: 'targets' });
    v.update(changed);
    const found = targetFileFor(testCrypto, changed).hashes.sha512!;
    expect(refusal(() => v.finish())).toEqual({
      code: 'HASH_MISMATCH',
      message: 'app/v1: sha512 differs from the trusted one',
      role: 'targets',
      expected: `sha512:${sha512}`,
      found: `sha512:${found}`,
    });
    const unnamed = new TargetVerifier(testCrypto, only512);
    unnamed.update(changed);
    expect(refusal(() => unnamed.finish()).message).toBe('target: sha512 differs from the trusted one');
  });
});
