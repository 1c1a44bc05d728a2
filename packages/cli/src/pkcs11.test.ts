import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { codeOf } from '@tufa/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { derSignature, modulePathFor, pinSource } from './pkcs11.js';

describe('PKCS#11 signatures and settings', () => {
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

  it('the PIN comes from TUFA_PKCS11_PIN or a terminal prompt, never a hang on a pipe', async () => {
    const asked: string[] = [];
    const terminal = {
      isTTY: true,
      prompt: async (q: string) => {
        asked.push(q);
        return '4321';
      },
    };
    expect(await pinSource({ TUFA_PKCS11_PIN: '1234' }, terminal).get('token "t"')).toBe('1234');
    expect(await pinSource({}, terminal).get('token "t"')).toBe('4321');
    expect(asked).toEqual(['PIN for token "t": ']);
    const none = await pinSource({}, { isTTY: false, prompt: terminal.prompt })
      .get('token "t"')
      .catch((err) => err);
    expect([none.code, none.message]).toEqual([
      'PIN_REQUIRED',
      'token "t": no PIN: set TUFA_PKCS11_PIN or run on a terminal',
    ]);
  });

  it('the module: --module, then TUFA_PKCS11_MODULE, then the one the key was recorded with', () => {
    const uri = { id: Uint8Array.from([1]), modulePath: '/recorded.so' };
    expect(modulePathFor({ TUFA_PKCS11_MODULE: '/env.so' }, '/option.so', uri)).toBe('/option.so');
    expect(modulePathFor({ TUFA_PKCS11_MODULE: '/env.so' }, undefined, uri)).toBe('/env.so');
    expect(modulePathFor({ TUFA_PKCS11_MODULE: '' }, undefined, uri)).toBe('/recorded.so');
    expect(codeOf(() => modulePathFor({}, undefined, { id: uri.id }))).toBe('INVALID_ARGUMENT');
  });
});
