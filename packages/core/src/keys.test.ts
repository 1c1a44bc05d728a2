/**
 * Key ids and signature verification for every key type tufa reads: ed25519 (its own),
 * ECDSA P-256 (PEM and hex keys; DER and raw, low-S and high-S signatures) and RSA-PSS, with keys
 * generated here by node:crypto. Whatever the input, verifySignature answers true or false.
 */

import * as nodeCryptoModule from 'node:crypto';
import { testCrypto } from '@tufa/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from './encoding.js';
import { isTufaError } from './errors.js';
import { canonicalJson } from './json.js';
import {
  computeKeyId,
  ed25519PublicKey,
  ed25519Signer,
  generateEd25519Key,
  isSupportedKey,
  type Key,
  keyMaterialId,
  keyToJson,
  verifySignature,
} from './keys.js';
import { createNobleCrypto } from './noble.js';
import { verifyRoleSignatures } from './verify.js';

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);
const sha256Hex = (text: string | Uint8Array): string =>
  nodeCryptoModule.createHash('sha256').update(text).digest('hex');

function makeKey(keytype: string, scheme: string, pub: string, extra: Key['extra'] = {}): Key {
  return { keytype, scheme, keyval: { public: pub }, extra };
}

/** Every way a well-formed signature can be spoiled; none may verify. */
function spoiled(sigHex: string): [string, string][] {
  const flipped =
    sigHex.slice(0, -2) + ((Number.parseInt(sigHex.slice(-2), 16) ^ 1) | 0x100).toString(16).slice(1);
  return [
    ['empty', ''],
    ['not hex', 'zz'.repeat(sigHex.length / 2)],
    ['hex with a 0x prefix', `0x${sigHex}`],
    ['hex with spaces', sigHex.replace(/(..)/g, '$1 ')],
    ['odd-length', sigHex.slice(0, -1)],
    ['one byte short', sigHex.slice(0, -2)],
    ['half of it', sigHex.slice(0, sigHex.length / 2)],
    ['one byte longer', `${sigHex}00`],
    ['doubled', sigHex + sigHex],
    ['last bit flipped', flipped],
    ['all zero', '00'.repeat(sigHex.length / 2)],
  ];
}

const MESSAGE = ascii('{"signed":"the canonical bytes of signed"}');
const OTHER_MESSAGE = ascii('{"signed":"other canonical bytes"}');

// RFC 8032 7.1 TEST 1: a key with a known public half.
const RFC_SEED = fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
const RFC_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';

describe('key ids', () => {
  it('are the sha256 of the canonical JSON of {keytype, scheme, keyval}', () => {
    const key = makeKey('ed25519', 'ed25519', RFC_PUBLIC);
    const canonical = `{"keytype":"ed25519","keyval":{"public":"${RFC_PUBLIC}"},"scheme":"ed25519"}`;
    expect(canonicalJson({ keytype: 'ed25519', scheme: 'ed25519', keyval: { public: RFC_PUBLIC } })).toBe(
      canonical,
    );
    expect(computeKeyId(key)).toBe(sha256Hex(canonical));
    expect(computeKeyId(key)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keep the raw newlines of a PEM public key (canonical JSON escapes only " and \\)', () => {
    const { publicKey } = nodeCryptoModule.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(pem).toContain('\n');
    const key = makeKey('ecdsa', 'ecdsa-sha2-nistp256', pem);
    const canonical = `{"keytype":"ecdsa","keyval":{"public":"${pem}"},"scheme":"ecdsa-sha2-nistp256"}`;
    expect(computeKeyId(key)).toBe(sha256Hex(canonical));
    // JSON.stringify would have escaped the newlines: a different (wrong) key id.
    expect(computeKeyId(key)).not.toBe(
      sha256Hex(JSON.stringify({ keytype: 'ecdsa', keyval: { public: pem } })),
    );
  });

  it('cover every field of keyval but not fields outside the three', () => {
    const base = makeKey('ed25519', 'ed25519', RFC_PUBLIC);
    const withExtra = makeKey('ed25519', 'ed25519', RFC_PUBLIC, { keyid_hash_algorithms: ['sha256'] });
    expect(computeKeyId(withExtra)).toBe(computeKeyId(base));
    const withKeyvalField: Key = { ...base, keyval: { public: RFC_PUBLIC, note: 'x' } };
    expect(computeKeyId(withKeyvalField)).toBe(
      sha256Hex(`{"keytype":"ed25519","keyval":{"note":"x","public":"${RFC_PUBLIC}"},"scheme":"ed25519"}`),
    );
    expect(computeKeyId(withKeyvalField)).not.toBe(computeKeyId(base));
    expect(computeKeyId(makeKey('ed25519', 'other', RFC_PUBLIC))).not.toBe(computeKeyId(base));
  });

  it('keyToJson writes the extra fields back beside keytype, scheme and keyval', () => {
    const key = makeKey('ed25519', 'ed25519', RFC_PUBLIC, { keyid_hash_algorithms: ['sha256', 'sha512'] });
    expect(keyToJson(key)).toEqual({
      keytype: 'ed25519',
      scheme: 'ed25519',
      keyval: { public: RFC_PUBLIC },
      keyid_hash_algorithms: ['sha256', 'sha512'],
    });
  });

  it('generateEd25519Key derives the RFC 8032 public key from its seed and names it by its key id', () => {
    const pair = generateEd25519Key(testCrypto, RFC_SEED);
    expect(pair.key).toEqual({
      keytype: 'ed25519',
      scheme: 'ed25519',
      keyval: { public: RFC_PUBLIC },
      extra: {},
    });
    expect(pair.keyid).toBe(computeKeyId(pair.key));
    expect(toHex(pair.privateKey)).toBe(toHex(RFC_SEED));
  });

  it('generateEd25519Key without a seed makes a fresh key each time', () => {
    const a = generateEd25519Key(testCrypto);
    const b = generateEd25519Key(testCrypto);
    expect(a.privateKey).toHaveLength(32);
    expect(a.keyid).not.toBe(b.keyid);
    expect(a.keyid).toBe(computeKeyId(a.key));
  });

  it('ed25519Signer uses the computed key id unless given one (real repositories have others)', () => {
    const signer = ed25519Signer(testCrypto, RFC_SEED);
    expect(signer.keyid).toBe(computeKeyId(makeKey('ed25519', 'ed25519', RFC_PUBLIC)));
    expect(signer.key.keyval.public).toBe(RFC_PUBLIC);
    expect(ed25519Signer(testCrypto, RFC_SEED, 'legacy-key-id').keyid).toBe('legacy-key-id');
  });

  it('a wrong-length ed25519 key or seed is INVALID_KEY', () => {
    for (const bad of [new Uint8Array(0), new Uint8Array(31), new Uint8Array(33)]) {
      expect(() => ed25519PublicKey(bad)).toThrow(expect.objectContaining({ code: 'INVALID_KEY' }));
      expect(() => generateEd25519Key(testCrypto, bad)).toThrow(
        expect.objectContaining({ code: 'INVALID_KEY' }),
      );
      try {
        ed25519Signer(testCrypto, bad);
        expect.unreachable('a bad seed was accepted');
      } catch (err) {
        expect(isTufaError(err, 'INVALID_KEY')).toBe(true);
      }
    }
  });
});

describe('ed25519 signatures', () => {
  const signer = ed25519Signer(testCrypto, RFC_SEED);
  const key = makeKey('ed25519', 'ed25519', RFC_PUBLIC);
  const sig = toHex(testCrypto.ed25519Sign(MESSAGE, RFC_SEED));

  it('verify over the signed bytes', async () => {
    expect(toHex(await signer.sign(MESSAGE))).toBe(sig);
    expect(isSupportedKey(testCrypto, key)).toBe(true);
    expect(verifySignature(testCrypto, key, sig, MESSAGE)).toBe(true);
    expect(verifySignature(testCrypto, signer.key, sig, MESSAGE)).toBe(true);
    // The RFC's own TEST 1 signature over the empty message.
    const rfcSig =
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155' +
      '5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';
    expect(verifySignature(testCrypto, key, rfcSig, new Uint8Array(0))).toBe(true);
  });

  it('keys, key ids and signatures are the same under both crypto providers', async () => {
    for (const provider of [createNobleCrypto(), testCrypto]) {
      const pair = generateEd25519Key(provider, RFC_SEED);
      expect(pair.key.keyval.public).toBe(RFC_PUBLIC);
      expect(pair.keyid).toBe(computeKeyId(key));
      expect(toHex(await ed25519Signer(provider, RFC_SEED).sign(MESSAGE))).toBe(sig);
      expect(verifySignature(provider, key, sig, MESSAGE)).toBe(true);
      expect(verifySignature(provider, key, sig, OTHER_MESSAGE)).toBe(false);
    }
  });

  it('a signature for a different message or by a different key is false', () => {
    expect(verifySignature(testCrypto, key, sig, OTHER_MESSAGE)).toBe(false);
    const other = generateEd25519Key(testCrypto);
    expect(verifySignature(testCrypto, other.key, sig, MESSAGE)).toBe(false);
  });

  for (const [what, bad] of spoiled(sig)) {
    it(`a signature that is ${what} is false`, () => {
      expect(verifySignature(testCrypto, key, bad, MESSAGE)).toBe(false);
    });
  }

  it('keys that are not 32 bytes of hex, or another scheme, are not supported and never verify', () => {
    const bad = [
      makeKey('ed25519', 'ed25519', RFC_PUBLIC.slice(0, 62)),
      makeKey('ed25519', 'ed25519', `${RFC_PUBLIC}00`),
      makeKey('ed25519', 'ed25519', RFC_PUBLIC.replace(/^../, 'zz')),
      makeKey('ed25519', 'ed25519', ''),
      makeKey('ed25519', 'ed25519-sha256', RFC_PUBLIC),
      makeKey('ed25519', 'ecdsa-sha2-nistp256', RFC_PUBLIC),
      makeKey('ecdsa', 'ed25519', RFC_PUBLIC),
    ];
    for (const k of bad) {
      expect(isSupportedKey(testCrypto, k)).toBe(false);
      expect(verifySignature(testCrypto, k, sig, MESSAGE)).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// ECDSA P-256.

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const P256_P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const P256_B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;

const toBig = (bytes: Uint8Array): bigint => (bytes.length === 0 ? 0n : BigInt(`0x${toHex(bytes)}`));
const toFixed = (n: bigint, length: number): Uint8Array => fromHex(n.toString(16).padStart(length * 2, '0'));

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
    e >>= 1n;
  }
  return result;
}

/** DER INTEGER of a non-negative value, minimal, with a leading zero when the top bit is set. */
function derInteger(n: bigint): Uint8Array {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = fromHex(hex);
  if (bytes[0]! & 0x80) bytes = Uint8Array.from([0, ...bytes]);
  return Uint8Array.from([0x02, bytes.length, ...bytes]);
}

function derSignature(r: bigint, s: bigint): Uint8Array {
  const body = Uint8Array.from([...derInteger(r), ...derInteger(s)]);
  return Uint8Array.from([0x30, body.length, ...body]);
}

/** Reads SEQUENCE { INTEGER r, INTEGER s } (short-form lengths: P-256 signatures are ≤ 72 bytes). */
function parseDerSignature(der: Uint8Array): { r: bigint; s: bigint } {
  expect(der[0]).toBe(0x30);
  expect(der[1]).toBe(der.length - 2);
  let at = 2;
  const read = (): bigint => {
    expect(der[at]).toBe(0x02);
    const length = der[at + 1]!;
    const value = toBig(der.subarray(at + 2, at + 2 + length));
    at += 2 + length;
    return value;
  };
  const r = read();
  const s = read();
  expect(at).toBe(der.length);
  return { r, s };
}

const rawSignature = (r: bigint, s: bigint): Uint8Array =>
  Uint8Array.from([...toFixed(r, 32), ...toFixed(s, 32)]);

interface P256Key {
  privateKey: nodeCryptoModule.KeyObject;
  publicKey: nodeCryptoModule.KeyObject;
  pem: string;
  uncompressed: string;
  compressed: string;
}

function p256Key(): P256Key {
  const { privateKey, publicKey } = nodeCryptoModule.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x!, 'base64url');
  const y = Buffer.from(jwk.y!, 'base64url');
  expect(x).toHaveLength(32);
  expect(y).toHaveLength(32);
  return {
    privateKey,
    publicKey,
    pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    uncompressed: `04${x.toString('hex')}${y.toString('hex')}`,
    compressed: `${y[31]! & 1 ? '03' : '02'}${x.toString('hex')}`,
  };
}

/** A signature by node:crypto in both encodings and both halves of S. */
function p256Signatures(key: P256Key, message: Uint8Array) {
  const der = new Uint8Array(nodeCryptoModule.sign('sha256', message, key.privateKey));
  const { r, s } = parseDerSignature(der);
  const lowS = s > P256_N / 2n ? P256_N - s : s;
  const highS = P256_N - lowS;
  expect(lowS <= P256_N / 2n && highS > P256_N / 2n).toBe(true);
  return {
    r,
    s,
    der,
    derLow: derSignature(r, lowS),
    derHigh: derSignature(r, highS),
    rawLow: rawSignature(r, lowS),
    rawHigh: rawSignature(r, highS),
  };
}

describe('ECDSA P-256 (verify only)', () => {
  const keys = [p256Key(), p256Key(), p256Key()];
  const KEYTYPES = ['ecdsa', 'ecdsa-sha2-nistp256'] as const;
  const ENCODINGS = ['pem', 'uncompressed', 'compressed'] as const;

  it('node:crypto itself accepts both S halves and both encodings (the test data is sound)', () => {
    for (const key of keys) {
      const sigs = p256Signatures(key, MESSAGE);
      for (const der of [sigs.derLow, sigs.derHigh]) {
        expect(nodeCryptoModule.verify('sha256', MESSAGE, key.publicKey, der)).toBe(true);
      }
      for (const raw of [sigs.rawLow, sigs.rawHigh]) {
        expect(
          nodeCryptoModule.verify('sha256', MESSAGE, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, raw),
        ).toBe(true);
      }
      const p1363 = nodeCryptoModule.sign('sha256', MESSAGE, {
        key: key.privateKey,
        dsaEncoding: 'ieee-p1363',
      });
      expect(p1363).toHaveLength(64);
    }
  });

  for (const keytype of KEYTYPES) {
    for (const encoding of ENCODINGS) {
      it(`${keytype} key as ${encoding}: DER and raw, low-S and high-S signatures all verify`, () => {
        for (const key of keys) {
          const k = makeKey(keytype, 'ecdsa-sha2-nistp256', key[encoding]);
          expect(isSupportedKey(testCrypto, k)).toBe(true);
          const sigs = p256Signatures(key, MESSAGE);
          expect(verifySignature(testCrypto, k, toHex(sigs.der), MESSAGE)).toBe(true);
          for (const sig of [sigs.derLow, sigs.derHigh, sigs.rawLow, sigs.rawHigh]) {
            expect(verifySignature(testCrypto, k, toHex(sig), MESSAGE)).toBe(true);
            expect(verifySignature(testCrypto, k, toHex(sig), OTHER_MESSAGE)).toBe(false);
          }
          // node's own raw (IEEE P1363) encoding.
          const p1363 = nodeCryptoModule.sign('sha256', MESSAGE, {
            key: key.privateKey,
            dsaEncoding: 'ieee-p1363',
          });
          expect(verifySignature(testCrypto, k, p1363.toString('hex'), MESSAGE)).toBe(true);
        }
      });
    }
  }

  it('a signature by another P-256 key is false', () => {
    const sigs = p256Signatures(keys[0]!, MESSAGE);
    const other = makeKey('ecdsa', 'ecdsa-sha2-nistp256', keys[1]!.pem);
    for (const sig of [sigs.derLow, sigs.derHigh, sigs.rawLow, sigs.rawHigh]) {
      expect(verifySignature(testCrypto, other, toHex(sig), MESSAGE)).toBe(false);
    }
  });

  it('accepts uppercase hex signatures and a PEM without its final newline', () => {
    const key = keys[0]!;
    const sigs = p256Signatures(key, MESSAGE);
    expect(
      verifySignature(
        testCrypto,
        makeKey('ecdsa', 'ecdsa-sha2-nistp256', key.pem.trim()),
        toHex(sigs.der),
        MESSAGE,
      ),
    ).toBe(true);
    const k = makeKey('ecdsa', 'ecdsa-sha2-nistp256', key.uncompressed);
    expect(verifySignature(testCrypto, k, toHex(sigs.rawHigh).toUpperCase(), MESSAGE)).toBe(true);
  });

  describe('spoiled signatures are false', () => {
    const key = keys[0]!;
    const k = makeKey('ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp256', key.uncompressed);
    const sigs = p256Signatures(key, MESSAGE);
    for (const [name, sig] of [
      ['DER', sigs.derHigh],
      ['raw', sigs.rawLow],
    ] as const) {
      for (const [what, bad] of spoiled(toHex(sig))) {
        it(`${name} signature ${what}`, () => {
          expect(verifySignature(testCrypto, k, bad, MESSAGE)).toBe(false);
        });
      }
    }

    it('r and s swapped, s = 0, r = 0, r = n, s = n, s = n + s', () => {
      const { r, s } = sigs;
      const bad: Uint8Array[] = [
        derSignature(s, r),
        rawSignature(s, r),
        derSignature(r, 0n),
        derSignature(0n, s),
        rawSignature(r, 0n),
        rawSignature(0n, s),
        derSignature(P256_N, s),
        derSignature(r, P256_N),
        rawSignature(P256_N, s),
        rawSignature(r, P256_N),
        derSignature(r, P256_N + s),
      ];
      for (const sig of bad) expect(verifySignature(testCrypto, k, toHex(sig), MESSAGE)).toBe(false);
    });

    it('DER with trailing bytes, a wrong tag or a wrong length is false', () => {
      const der = sigs.derLow;
      const trailing = Uint8Array.from([...der, 0x00]);
      const wrongTag = Uint8Array.from(der);
      wrongTag[0] = 0x31;
      const wrongLength = Uint8Array.from(der);
      wrongLength[1]! += 1;
      for (const sig of [trailing, wrongTag, wrongLength]) {
        expect(verifySignature(testCrypto, k, toHex(sig), MESSAGE)).toBe(false);
      }
    });

    it('an ed25519 or RSA-sized signature on a P-256 key is false', () => {
      expect(
        verifySignature(
          testCrypto,
          k,
          toHex(testCrypto.ed25519Sign(MESSAGE, RFC_SEED)).slice(0, 126),
          MESSAGE,
        ),
      ).toBe(false);
      expect(verifySignature(testCrypto, k, 'ab'.repeat(256), MESSAGE)).toBe(false);
    });
  });

  describe('keys that are not P-256 points are not supported and never verify', () => {
    const key = keys[0]!;
    const sig = toHex(p256Signatures(key, MESSAGE).derLow);
    const x = toBig(fromHex(key.uncompressed.slice(2, 66)));
    const y = toBig(fromHex(key.uncompressed.slice(66)));

    /** An x for which x³ - 3x + b is not a square mod p: no point has it. */
    function xOffTheCurve(): bigint {
      for (let candidate = 1n; ; candidate++) {
        const rhs =
          (((candidate * candidate * candidate - 3n * candidate + P256_B) % P256_P) + P256_P) % P256_P;
        if (modPow(rhs, (P256_P - 1n) / 2n, P256_P) === P256_P - 1n) return candidate;
      }
    }

    const p384 = nodeCryptoModule.generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const rsa = nodeCryptoModule.generateKeyPairSync('rsa', { modulusLength: 1024 });
    const ed = nodeCryptoModule.generateKeyPairSync('ed25519');
    const pemOf = (k: nodeCryptoModule.KeyObject): string =>
      k.export({ type: 'spki', format: 'pem' }).toString();
    const cases: [string, Key][] = [
      [
        'a point off the curve (y + 1)',
        makeKey(
          'ecdsa',
          'ecdsa-sha2-nistp256',
          `04${toHex(toFixed(x, 32))}${toHex(toFixed((y + 1n) % P256_P, 32))}`,
        ),
      ],
      [
        'a compressed x with no point',
        makeKey('ecdsa', 'ecdsa-sha2-nistp256', `02${toHex(toFixed(xOffTheCurve(), 32))}`),
      ],
      ['the point at infinity (00)', makeKey('ecdsa', 'ecdsa-sha2-nistp256', '00')],
      [
        'an uncompressed point with a wrong prefix',
        makeKey('ecdsa', 'ecdsa-sha2-nistp256', `05${key.uncompressed.slice(2)}`),
      ],
      [
        'a compressed point with a wrong prefix',
        makeKey('ecdsa', 'ecdsa-sha2-nistp256', `04${key.compressed.slice(2)}`),
      ],
      ['a point one byte short', makeKey('ecdsa', 'ecdsa-sha2-nistp256', key.uncompressed.slice(0, -2))],
      ['odd-length hex', makeKey('ecdsa', 'ecdsa-sha2-nistp256', key.uncompressed.slice(0, -1))],
      ['not hex', makeKey('ecdsa', 'ecdsa-sha2-nistp256', `04${'zz'.repeat(64)}`)],
      ['an empty key', makeKey('ecdsa', 'ecdsa-sha2-nistp256', '')],
      [
        'a PEM with a broken body',
        makeKey('ecdsa', 'ecdsa-sha2-nistp256', key.pem.replace(/\n[A-Za-z0-9+/]{8}/, '\n!!!!????')),
      ],
      ['a PEM cut short', makeKey('ecdsa', 'ecdsa-sha2-nistp256', key.pem.slice(0, key.pem.length / 2))],
      [
        'a PEM header alone',
        makeKey('ecdsa', 'ecdsa-sha2-nistp256', '-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n'),
      ],
      ['a P-384 key', makeKey('ecdsa', 'ecdsa-sha2-nistp256', pemOf(p384.publicKey))],
      ['an RSA key', makeKey('ecdsa', 'ecdsa-sha2-nistp256', pemOf(rsa.publicKey))],
      ['an ed25519 key', makeKey('ecdsa', 'ecdsa-sha2-nistp256', pemOf(ed.publicKey))],
      ['scheme ecdsa-sha2-nistp384', makeKey('ecdsa', 'ecdsa-sha2-nistp384', key.pem)],
      ['keytype ecdsa-sha2-nistp384', makeKey('ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp256', key.pem)],
    ];
    for (const [what, k] of cases) {
      it(what, () => {
        expect(isSupportedKey(testCrypto, k)).toBe(false);
        expect(verifySignature(testCrypto, k, sig, MESSAGE)).toBe(false);
      });
    }

    it('the curve equation holds for a real key and fails for the off-curve x (test data check)', () => {
      const rhs = (v: bigint): bigint => (((v * v * v - 3n * v + P256_B) % P256_P) + P256_P) % P256_P;
      expect((y * y) % P256_P).toBe(rhs(x));
      expect(modPow(rhs(x), (P256_P - 1n) / 2n, P256_P)).toBe(1n);
      expect(modPow(rhs(xOffTheCurve()), (P256_P - 1n) / 2n, P256_P)).toBe(P256_P - 1n);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// RSA-PSS.

describe('RSA-PSS (rsa / rsassa-pss-sha256, PEM; verify only)', () => {
  const rsa = nodeCryptoModule.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const key = makeKey('rsa', 'rsassa-pss-sha256', pem);
  const pss = (message: Uint8Array, saltLength: number): string =>
    nodeCryptoModule
      .sign('sha256', message, {
        key: rsa.privateKey,
        padding: nodeCryptoModule.constants.RSA_PKCS1_PSS_PADDING,
        saltLength,
      })
      .toString('hex');
  const sig = pss(MESSAGE, 32);

  it('verifies PSS signatures with a digest-length salt and with the longest salt', () => {
    expect(isSupportedKey(testCrypto, key)).toBe(true);
    expect(verifySignature(testCrypto, key, sig, MESSAGE)).toBe(true);
    expect(
      verifySignature(
        testCrypto,
        key,
        pss(MESSAGE, nodeCryptoModule.constants.RSA_PSS_SALTLEN_MAX_SIGN),
        MESSAGE,
      ),
    ).toBe(true);
    expect(verifySignature(testCrypto, key, pss(MESSAGE, 0), MESSAGE)).toBe(true);
  });

  it('accepts a PKCS#1 ("BEGIN RSA PUBLIC KEY") PEM as well as SPKI', () => {
    const pkcs1 = rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(verifySignature(testCrypto, makeKey('rsa', 'rsassa-pss-sha256', pkcs1), sig, MESSAGE)).toBe(true);
  });

  it('a signature for another message, by another key, or with PKCS#1 v1.5 padding is false', () => {
    expect(verifySignature(testCrypto, key, sig, OTHER_MESSAGE)).toBe(false);
    const other = nodeCryptoModule.generateKeyPairSync('rsa', { modulusLength: 1024 });
    const otherKey = makeKey(
      'rsa',
      'rsassa-pss-sha256',
      other.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    );
    expect(verifySignature(testCrypto, otherKey, sig, MESSAGE)).toBe(false);
    const pkcs1v15 = nodeCryptoModule.sign('sha256', MESSAGE, rsa.privateKey).toString('hex');
    expect(verifySignature(testCrypto, key, pkcs1v15, MESSAGE)).toBe(false);
    // PSS over SHA-384 is another scheme.
    const sha384 = nodeCryptoModule
      .sign('sha384', MESSAGE, {
        key: rsa.privateKey,
        padding: nodeCryptoModule.constants.RSA_PKCS1_PSS_PADDING,
      })
      .toString('hex');
    expect(verifySignature(testCrypto, key, sha384, MESSAGE)).toBe(false);
  });

  for (const [what, bad] of spoiled(sig)) {
    it(`a signature that is ${what} is false`, () => {
      expect(verifySignature(testCrypto, key, bad, MESSAGE)).toBe(false);
    });
  }

  it('other schemes, non-RSA PEM keys and bad PEM are not supported and never verify', () => {
    const ec = nodeCryptoModule.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const ed = nodeCryptoModule.generateKeyPairSync('ed25519');
    const bad: Key[] = [
      makeKey('rsa', 'rsassa-pss-sha384', pem),
      makeKey('rsa', 'rsa-pkcs1v15-sha256', pem),
      makeKey('rsa', 'rsassa-pss-sha512', pem),
      makeKey('rsassa-pss-sha256', 'rsassa-pss-sha256', pem),
      makeKey('rsa', 'rsassa-pss-sha256', ec.publicKey.export({ type: 'spki', format: 'pem' }).toString()),
      makeKey('rsa', 'rsassa-pss-sha256', ed.publicKey.export({ type: 'spki', format: 'pem' }).toString()),
      makeKey('rsa', 'rsassa-pss-sha256', pem.slice(0, 100)),
      makeKey('rsa', 'rsassa-pss-sha256', pem.replace('PUBLIC KEY', 'PRIVATE KEY')),
      makeKey(
        'rsa',
        'rsassa-pss-sha256',
        Buffer.from(rsa.publicKey.export({ type: 'spki', format: 'der' })).toString('hex'),
      ),
      makeKey('rsa', 'rsassa-pss-sha256', 'not a key'),
    ];
    for (const k of bad) {
      expect(isSupportedKey(testCrypto, k)).toBe(false);
      expect(verifySignature(testCrypto, k, sig, MESSAGE)).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Anything else.

describe('one key in several spellings is one key (threshold counting)', () => {
  it('the same spelling under two key ids counts once', () => {
    const pair = generateEd25519Key(testCrypto, RFC_SEED);
    const sig = toHex(testCrypto.ed25519Sign(MESSAGE, RFC_SEED));
    expect(keyMaterialId(testCrypto, pair.key)).toBe(
      keyMaterialId(testCrypto, { ...pair.key, extra: { note: 'x' } }),
    );
    const result = verifyRoleSignatures(
      MESSAGE,
      [
        { keyid: 'a', sig, extra: {} },
        { keyid: 'b', sig, extra: {} },
      ],
      {
        crypto: testCrypto,
        role: 'targets',
        keyids: ['a', 'b'],
        threshold: 2,
        keys: { a: pair.key, b: pair.key },
      },
    );
    expect(result.verified).toBe(false);
    expect(result.signed).toEqual(['a']);
  });

  // Regression test (a bug this suite found, now fixed): keyMaterialId compares the public key text as written, so one key spelled
  // twice (hex in upper and lower case; a P-256 point as PEM, uncompressed and compressed hex; or
  // keytype 'ecdsa' and 'ecdsa-sha2-nistp256') counts as distinct keys, and a single signature
  // meets a threshold of 2 in verifyRoleSignatures.
  it('hex case, PEM or hex, compressed or not, ecdsa or ecdsa-sha2-nistp256: one key material', () => {
    const ed = makeKey('ed25519', 'ed25519', RFC_PUBLIC);
    const edUpper = makeKey('ed25519', 'ed25519', RFC_PUBLIC.toUpperCase());
    const p = p256Key();
    const spellings = [
      makeKey('ecdsa', 'ecdsa-sha2-nistp256', p.pem),
      makeKey('ecdsa', 'ecdsa-sha2-nistp256', p.uncompressed),
      makeKey('ecdsa', 'ecdsa-sha2-nistp256', p.compressed),
      makeKey('ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp256', p.uncompressed),
    ];
    const failures: string[] = [];
    if (keyMaterialId(testCrypto, ed) !== keyMaterialId(testCrypto, edUpper))
      failures.push('ed25519 hex case');
    spellings.forEach((k, i) => {
      if (keyMaterialId(testCrypto, k) !== keyMaterialId(testCrypto, spellings[0]!))
        failures.push(`P-256 spelling ${i}`);
    });
    const sig = toHex(testCrypto.ed25519Sign(MESSAGE, RFC_SEED));
    const result = verifyRoleSignatures(
      MESSAGE,
      [
        { keyid: 'a', sig, extra: {} },
        { keyid: 'b', sig, extra: {} },
      ],
      { crypto: testCrypto, role: 'targets', keyids: ['a', 'b'], threshold: 2, keys: { a: ed, b: edUpper } },
    );
    if (result.verified) failures.push('one ed25519 signature met a threshold of 2');
    expect(failures).toEqual([]);
  });
});

describe('unknown and hostile keys: isSupportedKey false, verifySignature false, never a throw', () => {
  const sig = toHex(testCrypto.ed25519Sign(MESSAGE, RFC_SEED));
  const hostile: [string, Key][] = [
    ['an unknown key type', makeKey('dsa', 'dsa-sha256', RFC_PUBLIC)],
    ['ed448', makeKey('ed448', 'ed448', 'ab'.repeat(57))],
    ['an empty key type', makeKey('', '', RFC_PUBLIC)],
    ['sphincs', makeKey('sphincs', 'sphincs-shake-128s', RFC_PUBLIC)],
    ['__proto__ as key type', makeKey('__proto__', '__proto__', RFC_PUBLIC)],
    [
      'a number as public key',
      { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: 42 }, extra: {} } as unknown as Key,
    ],
    ['no keyval', { keytype: 'ed25519', scheme: 'ed25519', extra: {} } as unknown as Key],
    [
      'keyval null',
      { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: null, extra: {} } as unknown as Key,
    ],
    [
      'a public key object',
      { keytype: 'rsa', scheme: 'rsassa-pss-sha256', keyval: { public: {} }, extra: {} } as unknown as Key,
    ],
  ];
  for (const [what, key] of hostile) {
    it(what, () => {
      expect(isSupportedKey(testCrypto, key)).toBe(false);
      expect(verifySignature(testCrypto, key, sig, MESSAGE)).toBe(false);
    });
  }

  it('random key types, public keys and signatures never make verifySignature throw', () => {
    const p256 = p256Key();
    fc.assert(
      fc.property(
        fc.constantFrom('ed25519', 'ecdsa', 'ecdsa-sha2-nistp256', 'rsa', 'x'),
        fc.constantFrom('ed25519', 'ecdsa-sha2-nistp256', 'rsassa-pss-sha256', 'y'),
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.stringMatching(/^[0-9a-f]{0,140}$/),
          fc.constantFrom(
            RFC_PUBLIC,
            p256.pem,
            p256.uncompressed,
            p256.compressed,
            `-----BEGIN PUBLIC KEY-----\n`,
          ),
        ),
        fc.oneof(fc.string({ maxLength: 200 }), fc.stringMatching(/^[0-9a-fA-F]{0,160}$/)),
        fc.uint8Array({ maxLength: 64 }),
        (keytype, scheme, pub, signature, message) => {
          const key = makeKey(keytype, scheme, pub);
          expect(typeof isSupportedKey(testCrypto, key)).toBe('boolean');
          expect(verifySignature(testCrypto, key, signature, message)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});
