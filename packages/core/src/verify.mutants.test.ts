/** Signature counting and its refusal: the cases mutation testing found unchecked. */
import { refusal, signBytes, testCrypto, testKey } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { utf8Encode } from './json.js';
import type { Key } from './keys.js';
import type { Signature } from './metadata.js';
import { assertVerified, verifyRoleSignatures } from './verify.js';

const message = utf8Encode('{"_type":"targets"}');
const [a, b, c] = [testKey(41), testKey(42), testKey(43)];
const keys: Record<string, Key> = { [a.keyid]: a.key, [b.keyid]: b.key, [c.keyid]: c.key };
const sig = (k: typeof a): Signature => ({
  keyid: k.keyid,
  sig: Buffer.from(signBytes(k, message)).toString('hex'),
  extra: {},
});
const bad = (k: typeof a): Signature => ({ keyid: k.keyid, sig: '00'.repeat(64), extra: {} });
const role = (threshold: number) => ({
  crypto: testCrypto,
  role: 'targets',
  keyids: [a.keyid, b.keyid, c.keyid],
  threshold,
  keys,
});

describe('verifyRoleSignatures', () => {
  it('a bad signature after a valid one by the same key does not make that key invalid', () => {
    const r = verifyRoleSignatures(message, [sig(a), bad(a)], role(1));
    expect(r).toMatchObject({ verified: true, signed: [a.keyid], invalid: [] });
  });
});

describe('assertVerified', () => {
  it('THRESHOLD_NOT_MET, not BAD_SIGNATURE, when a valid signature sits beside an invalid one', () => {
    const result = verifyRoleSignatures(message, [sig(a), bad(b)], role(2));
    expect(refusal(() => assertVerified(result, 'root'))).toEqual({
      code: 'THRESHOLD_NOT_MET',
      message: `targets: 1 of the 2 required signatures by keys of root; invalid signatures from ${b.keyid}`,
      role: 'targets',
      expected: 2,
      found: 1,
      details: { signed: [a.keyid], missing: [b.keyid, c.keyid], invalid: [b.keyid], ignored: [] },
    });
  });

  it('lists every invalid signature, and names the delegator by default', () => {
    const result = verifyRoleSignatures(message, [bad(a), bad(c)], role(1));
    expect(refusal(() => assertVerified(result))).toMatchObject({
      code: 'BAD_SIGNATURE',
      message: `targets: 0 of the 1 required signatures by keys of its delegator; invalid signatures from ${a.keyid}, ${c.keyid}`,
    });
  });

  it('says nothing of invalid signatures when there were none', () => {
    const result = verifyRoleSignatures(message, [sig(a)], role(2));
    expect(refusal(() => assertVerified(result, 'targets')).message).toBe(
      'targets: 1 of the 2 required signatures by keys of targets',
    );
  });
});
