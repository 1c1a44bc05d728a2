import { join } from 'node:path';
import { codeOf } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { modulePathFor, pinSource } from './pkcs11.js';

describe('PKCS#11 settings of the CLI', () => {
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
    // A relative path is this run's: made absolute, so the home records where the module is.
    expect(modulePathFor({}, 'lib/softhsm2.so')).toBe(join(process.cwd(), 'lib/softhsm2.so'));
    expect(modulePathFor({ TUFA_PKCS11_MODULE: './env.so' })).toBe(join(process.cwd(), 'env.so'));
  });
});
