/**
 * What a token answers is checked before it is trusted (SoftHSM2 as the token): a private key that
 * is not the pair of the public key the home recorded signs nothing (BAD_SIGNATURE), and a public
 * key whose point is not on the curve is UNSUPPORTED_KEY, not an OpenSSL stack trace. The token's
 * objects are rearranged beforehand with pkcs11js itself, as a faulty or tampered token would hold them.
 */
import { rmSync } from 'node:fs';
import { codeOf } from '@tufa/testing';
import { SOFTHSM_MODULE, softhsmToken } from '@tufa/testing/server';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pkcs11Tokens } from './pkcs11.js';
import { parsePkcs11Uri } from './pkcs11-uri.js';

const LABEL = 'tufa-core';
const PIN = '123456';
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

let token: { dir: string; conf: string };
const savedConf = process.env.SOFTHSM2_CONF;

/** Runs `work` in a logged-in session of its own, then finalizes (the module starts afresh after). */
function rearrange(work: (p: pkcs11js.PKCS11, session: Buffer) => void): void {
  const p = new pkcs11js.PKCS11();
  p.load(SOFTHSM_MODULE);
  p.C_Initialize();
  try {
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === LABEL)!;
    const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    p.C_Login(session, pkcs11js.CKU_USER, PIN);
    work(p, session);
    p.C_Logout(session);
    p.C_CloseSession(session);
  } finally {
    p.C_Finalize();
  }
}

function only(p: pkcs11js.PKCS11, session: Buffer, template: pkcs11js.Template): Buffer {
  p.C_FindObjectsInit(session, template);
  const found = p.C_FindObjects(session, 2);
  p.C_FindObjectsFinal(session);
  expect(found).toHaveLength(1);
  return found[0]!;
}

function pair(p: pkcs11js.PKCS11, session: Buffer, id: Buffer, label: string): void {
  const common = [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_ID, value: id },
    { type: pkcs11js.CKA_LABEL, value: label },
  ];
  p.C_GenerateKeyPair(
    session,
    { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
    [...common, { type: pkcs11js.CKA_EC_PARAMS, value: P256 }, { type: pkcs11js.CKA_VERIFY, value: true }],
    [...common, { type: pkcs11js.CKA_PRIVATE, value: true }, { type: pkcs11js.CKA_SIGN, value: true }],
  );
}

beforeAll(async () => {
  token = await softhsmToken(LABEL, PIN);
  process.env.SOFTHSM2_CONF = token.conf;
  rearrange((p, session) => {
    // Pair A at id 01 and pair B at id 02; then A's private key goes and B's takes its id and label.
    pair(p, session, Buffer.from([1]), 'swapped');
    pair(p, session, Buffer.from([2]), 'other');
    const privateOf = (id: number) =>
      only(p, session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_ID, value: Buffer.from([id]) },
      ]);
    p.C_DestroyObject(session, privateOf(1));
    p.C_SetAttributeValue(session, privateOf(2), [
      { type: pkcs11js.CKA_ID, value: Buffer.from([1]) },
      { type: pkcs11js.CKA_LABEL, value: 'swapped' },
    ]);
    // A public key whose point (0x04 || 64 bytes of 0x01) is not on P-256.
    p.C_CreateObject(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_ID, value: Buffer.from([3]) },
      { type: pkcs11js.CKA_LABEL, value: 'off-curve' },
      { type: pkcs11js.CKA_EC_PARAMS, value: P256 },
      { type: pkcs11js.CKA_EC_POINT, value: Buffer.from([0x04, 0x41, 0x04, ...new Array(64).fill(1)]) },
    ]);
  });
}, 60_000);

afterAll(() => {
  if (savedConf === undefined) delete process.env.SOFTHSM2_CONF;
  else process.env.SOFTHSM2_CONF = savedConf;
  if (token !== undefined) rmSync(token.dir, { recursive: true, force: true });
});

describe('a token’s answers are checked', () => {
  it('a private key that is not the pair of the recorded public key signs nothing: BAD_SIGNATURE', async () => {
    const tokens = new Pkcs11Tokens({ get: async () => PIN });
    const uri = parsePkcs11Uri(`pkcs11:token=${LABEL};id=%01`);
    const adopted = await tokens.adopt(uri, SOFTHSM_MODULE);
    const signer = await tokens.signer({ uri, modulePath: SOFTHSM_MODULE, keyid: adopted.keyid });
    const signing = signer.sign(new TextEncoder().encode('{"signed":{}}'));
    await expect(signing).rejects.toThrow('is not the pair of its public key');
    expect(await codeOf(signing)).toBe('BAD_SIGNATURE');
  });

  it('a public key off the curve is UNSUPPORTED_KEY', async () => {
    const tokens = new Pkcs11Tokens({ get: async () => PIN });
    const uri = parsePkcs11Uri(`pkcs11:token=${LABEL};id=%03`);
    expect(await codeOf(tokens.adopt(uri, SOFTHSM_MODULE))).toBe('UNSUPPORTED_KEY');
  });

  it('a wrong PIN is tried once per token, however the URIs name the token', async () => {
    let asked = 0;
    const tokens = new Pkcs11Tokens({
      get: async () => {
        asked++;
        return '000000';
      },
    });
    // The same SoftHSM2 token by its label, then by its model (another URI, the same slot).
    expect(await codeOf(tokens.login(SOFTHSM_MODULE, { token: LABEL }))).toBe('WRONG_PIN');
    expect(await codeOf(tokens.login(SOFTHSM_MODULE, { model: 'SoftHSM v2' }))).toBe('WRONG_PIN');
    expect(asked).toBe(1);
  });

  it('logins asked for at the same time share one PIN and one try', async () => {
    let asked = 0;
    const tokens = new Pkcs11Tokens({
      get: async () => {
        asked++;
        return '000000';
      },
    });
    const codes = await Promise.all([
      codeOf(tokens.login(SOFTHSM_MODULE, { token: LABEL })),
      codeOf(tokens.login(SOFTHSM_MODULE, { token: LABEL })),
    ]);
    expect(codes).toEqual(['WRONG_PIN', 'WRONG_PIN']);
    expect(asked).toBe(1);
  });
});
