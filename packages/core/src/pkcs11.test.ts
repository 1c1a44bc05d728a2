import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { codeOf } from '@tufa/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { derSignature } from './pkcs11.js';

describe('PKCS#11 signatures', () => {
  it('derSignature turns a token’s r||s into the DER that OpenSSL verifies (high bits, leading zeros)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (message) => {
        const raw = sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        const der = derSignature(raw);
        expect(der[0]).toBe(0x30);
        expect(verify('sha256', message, { key: publicKey, dsaEncoding: 'der' }, der)).toBe(true);
      }),
      { numRuns: 300 },
    );
    // r with its top bit set and s with leading zero bytes: a sign byte added, zeros dropped.
    const raw = Uint8Array.from([...new Uint8Array(32).fill(0x80), ...new Uint8Array(31), 0x05]);
    expect(Buffer.from(derSignature(raw)).toString('hex')).toBe(`3026022100${'80'.repeat(32)}020105`);
    expect(codeOf(() => derSignature(new Uint8Array(63)))).toBe('TOKEN_UNAVAILABLE');
  });
});
