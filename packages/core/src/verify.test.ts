import { signBytes, testCrypto, testKey } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import type { TufaError } from './errors.js';
import { utf8Encode } from './json.js';
import type { Key } from './keys.js';
import type { Signature } from './metadata.js';
import { assertVerified, verifyRoleSignatures } from './verify.js';

const message = utf8Encode('{"_type":"targets"}');
const [a, b, c, outsider] = [testKey(21), testKey(22), testKey(23), testKey(24)];
const keys: Record<string, Key> = {
  [a.keyid]: a.key,
  [b.keyid]: b.key,
  [c.keyid]: c.key,
  [outsider.keyid]: outsider.key,
};
const sig = (k: typeof a, msg = message): Signature => ({
  keyid: k.keyid,
  sig: Buffer.from(signBytes(k, msg)).toString('hex'),
  extra: {},
});
const role = (threshold: number) => ({
  crypto: testCrypto,
  role: 'targets',
  keyids: [a.keyid, b.keyid, c.keyid],
  threshold,
  keys,
});

describe('verifyRoleSignatures', () => {
  it('counts distinct valid signatures of the role', () => {
    const r = verifyRoleSignatures(message, [sig(a), sig(b)], role(2));
    expect(r).toMatchObject({
      verified: true,
      signed: [a.keyid, b.keyid],
      missing: [c.keyid],
      invalid: [],
      ignored: [],
    });
  });

  it('counts a repeated signature from one key once', () => {
    const r = verifyRoleSignatures(message, [sig(a), sig(a), sig(a)], role(2));
    expect(r.verified).toBe(false);
    expect(r.signed).toEqual([a.keyid]);
  });

  it('ignores signatures by keys outside the role', () => {
    const r = verifyRoleSignatures(message, [sig(a), sig(outsider)], role(2));
    expect(r).toMatchObject({ verified: false, signed: [a.keyid], ignored: [outsider.keyid] });
  });

  it('counts the same key material under two key ids once', () => {
    const alias = 'f'.repeat(64);
    const r = verifyRoleSignatures(message, [sig(a), { ...sig(a), keyid: alias }], {
      crypto: testCrypto,
      role: 'targets',
      keyids: [a.keyid, alias],
      threshold: 2,
      keys: { ...keys, [alias]: a.key },
    });
    expect(r.verified).toBe(false);
    expect(r.signed).toEqual([a.keyid]);
  });

  it('treats empty, undecodable, wrong and foreign signatures as missing, never throwing', () => {
    const bad: Signature[] = [
      { keyid: a.keyid, sig: '', extra: {} },
      { keyid: b.keyid, sig: 'zz', extra: {} },
      { keyid: c.keyid, sig: sig(c, utf8Encode('other')).sig, extra: {} },
    ];
    const r = verifyRoleSignatures(message, bad, role(1));
    expect(r).toMatchObject({ verified: false, signed: [], invalid: [a.keyid, b.keyid, c.keyid] });
  });

  it('accepts a valid signature after an invalid one from the same key', () => {
    const r = verifyRoleSignatures(message, [{ keyid: a.keyid, sig: '00', extra: {} }, sig(a)], role(1));
    expect(r).toMatchObject({ verified: true, signed: [a.keyid], invalid: [] });
  });

  it('treats a role key missing from the key table, or of an unknown type, as missing', () => {
    const unknownType: Key = {
      keytype: 'dilithium',
      scheme: 'dilithium',
      keyval: { public: 'ab' },
      extra: {},
    };
    const r = verifyRoleSignatures(message, [sig(a), sig(b)], {
      crypto: testCrypto,
      role: 'targets',
      keyids: [a.keyid, b.keyid],
      threshold: 1,
      keys: { [b.keyid]: unknownType },
    });
    expect(r).toMatchObject({ verified: false, invalid: [a.keyid, b.keyid] });
  });

  it('does not read key ids from the prototype', () => {
    const r = verifyRoleSignatures(message, [{ keyid: 'constructor', sig: 'ab', extra: {} }], {
      crypto: testCrypto,
      role: 'targets',
      keyids: ['constructor'],
      threshold: 1,
      keys: {},
    });
    expect(r.verified).toBe(false);
  });
});

describe('assertVerified', () => {
  it('says BAD_SIGNATURE when the only signatures were invalid, THRESHOLD_NOT_MET otherwise', () => {
    const code = (sigs: Signature[], threshold: number) => {
      try {
        assertVerified(verifyRoleSignatures(message, sigs, role(threshold)), 'root');
        return 'ok';
      } catch (err) {
        return (err as TufaError).code;
      }
    };
    expect(code([{ keyid: a.keyid, sig: '00', extra: {} }], 1)).toBe('BAD_SIGNATURE');
    expect(code([], 1)).toBe('THRESHOLD_NOT_MET');
    expect(code([sig(a)], 2)).toBe('THRESHOLD_NOT_MET');
    expect(code([sig(a), sig(b)], 2)).toBe('ok');
  });

  it('reports who signed and who is missing', () => {
    try {
      assertVerified(verifyRoleSignatures(message, [sig(a)], role(3)), 'root');
      expect.unreachable();
    } catch (err) {
      const e = err as TufaError;
      expect(e).toMatchObject({ code: 'THRESHOLD_NOT_MET', role: 'targets', expected: 3, found: 1 });
      expect(e.details).toMatchObject({ signed: [a.keyid], missing: [b.keyid, c.keyid] });
      expect(e.message).toMatch(/1 of the 3 required signatures by keys of root/);
    }
  });
});
