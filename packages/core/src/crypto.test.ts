/**
 * The two crypto providers: identical hashes and ed25519 results (property tests over random
 * seeds and messages), the RFC 8032 section 7.1 vectors, and malformed inputs that must give
 * `false` rather than an exception.
 */
import * as nodeCryptoModule from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ed from '@noble/ed25519';
import { bytesOf, DAY, NOW, rolesOf, sign, testKey } from '@tufa/testing';
import { build } from 'esbuild';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CryptoProvider,
  HASH_ALGORITHMS,
  HASH_HEX_LENGTH,
  type HashAlgorithm,
  isHashAlgorithm,
  sha256Id,
} from './crypto.js';
import { fromHex, toHex } from './encoding.js';
import { isTufaError } from './errors.js';
import { createNobleCrypto } from './noble.js';
import { createNodeCrypto } from './node-crypto.js';
import { expiresIn, newRoot, targetFileFor } from './repository.js';
import { TargetVerifier } from './targetfile.js';
import { TrustedMetadataSet } from './trusted.js';

const nobleCrypto = createNobleCrypto();
const nodeCrypto = createNodeCrypto();
const PROVIDERS: readonly CryptoProvider[] = [nobleCrypto, nodeCrypto];
const hex = (text: string): Uint8Array => fromHex(text.replace(/\s+/g, ''));
const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Hashes with node:crypto directly: an oracle that is neither provider's code path. */
function oracleHash(algorithm: HashAlgorithm, data: Uint8Array): string {
  return nodeCryptoModule.createHash(algorithm).update(data).digest('hex');
}

describe('hashes', () => {
  // FIPS 180-2 appendix examples ("abc") and the empty message.
  const KNOWN: Record<HashAlgorithm, { abc: string; empty: string }> = {
    sha256: {
      abc: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      empty: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    },
    sha384: {
      abc: 'cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7',
      empty:
        '38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b',
    },
    sha512: {
      abc:
        'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a' +
        '2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
      empty:
        'cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce' +
        '47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e',
    },
  };

  it('names the supported algorithms and their hex lengths', () => {
    expect([...HASH_ALGORITHMS]).toEqual(['sha256', 'sha384', 'sha512']);
    for (const algorithm of HASH_ALGORITHMS) {
      expect(isHashAlgorithm(algorithm)).toBe(true);
      expect(HASH_HEX_LENGTH[algorithm]).toBe(KNOWN[algorithm].abc.length);
    }
    expect(isHashAlgorithm('md5')).toBe(false);
    expect(isHashAlgorithm('SHA256')).toBe(false);
    expect(isHashAlgorithm('__proto__')).toBe(false);
  });

  for (const provider of PROVIDERS) {
    for (const algorithm of HASH_ALGORITHMS) {
      it(`${provider.name} ${algorithm}: FIPS 180 examples, one-shot and incremental`, () => {
        expect(toHex(provider.hash(algorithm, ascii('abc')))).toBe(KNOWN[algorithm].abc);
        expect(toHex(provider.hash(algorithm, new Uint8Array(0)))).toBe(KNOWN[algorithm].empty);
        const h = provider.createHash(algorithm);
        h.update(ascii('a'));
        h.update(new Uint8Array(0));
        h.update(ascii('bc'));
        expect(toHex(h.digest())).toBe(KNOWN[algorithm].abc);
        expect(toHex(provider.createHash(algorithm).digest())).toBe(KNOWN[algorithm].empty);
      });
    }
  }

  it('both providers agree with each other and with node:crypto, one-shot and in any chunking', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...HASH_ALGORITHMS),
        fc.uint8Array({ maxLength: 2048 }),
        fc.array(fc.nat({ max: 2048 }), { maxLength: 6 }),
        (algorithm, data, cuts) => {
          const expected = oracleHash(algorithm, data);
          const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
          for (const provider of PROVIDERS) {
            expect(toHex(provider.hash(algorithm, data))).toBe(expected);
            const h = provider.createHash(algorithm);
            let from = 0;
            for (const to of [...points, data.length]) {
              h.update(data.subarray(from, to));
              from = to;
            }
            expect(toHex(h.digest())).toBe(expected);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('hashes a view into a larger buffer by its own bytes only', () => {
    const backing = ascii('xxabcxx');
    const view = backing.subarray(2, 5);
    for (const provider of PROVIDERS) {
      expect(toHex(provider.hash('sha256', view))).toBe(KNOWN.sha256.abc);
      const h = provider.createHash('sha256');
      h.update(view);
      expect(toHex(h.digest())).toBe(KNOWN.sha256.abc);
    }
  });

  it('an update after another hash has been digested does not disturb it (independent states)', () => {
    for (const provider of PROVIDERS) {
      const a = provider.createHash('sha512');
      const b = provider.createHash('sha512');
      a.update(ascii('abc'));
      b.update(ascii('ab'));
      expect(toHex(a.digest())).toBe(KNOWN.sha512.abc);
      b.update(ascii('c'));
      expect(toHex(b.digest())).toBe(KNOWN.sha512.abc);
    }
  });

  it('sha256Id, for identifiers, is SHA-256 whatever the provider', () => {
    expect(sha256Id(ascii('abc'))).toBe(KNOWN.sha256.abc);
    expect(sha256Id(new Uint8Array(0))).toBe(KNOWN.sha256.empty);
  });
});

// RFC 8032 section 7.1, typed in from the RFC: SECRET KEY, PUBLIC KEY, MESSAGE, SIGNATURE.
const RFC8032_VECTORS = [
  {
    name: 'TEST 1',
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155' +
      '5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da' +
      '085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3',
    secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac' +
      '18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
  {
    name: 'TEST SHA(abc)',
    secret: '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42',
    public: 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf',
    message:
      'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a' +
      '2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    signature:
      'dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589' +
      '09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704',
  },
] as const;

describe('ed25519: RFC 8032 section 7.1 vectors', () => {
  it('the SHA(abc) message is SHA-512 of "abc"', () => {
    expect(RFC8032_VECTORS[3].message).toBe(oracleHash('sha512', ascii('abc')));
  });

  for (const provider of PROVIDERS) {
    for (const v of RFC8032_VECTORS) {
      it(`${provider.name}: ${v.name}: public key, signature, verification`, () => {
        const secret = hex(v.secret);
        const message = hex(v.message);
        expect(toHex(provider.ed25519PublicKey(secret))).toBe(v.public);
        expect(toHex(provider.ed25519Sign(message, secret))).toBe(v.signature);
        expect(provider.ed25519Verify(hex(v.signature), message, hex(v.public))).toBe(true);
      });

      it(`${provider.name}: ${v.name}: a flipped bit anywhere is refused`, () => {
        const signature = hex(v.signature);
        const message = hex(v.message);
        const publicKey = hex(v.public);
        for (const at of [0, 31, 32, 63]) {
          const bad = Uint8Array.from(signature);
          bad[at]! ^= 0x01;
          expect(provider.ed25519Verify(bad, message, publicKey)).toBe(false);
        }
        const longer = Uint8Array.from([...message, 0x00]);
        expect(provider.ed25519Verify(signature, longer, publicKey)).toBe(false);
        if (message.length > 0) {
          const changed = Uint8Array.from(message);
          changed[changed.length - 1]! ^= 0x80;
          expect(provider.ed25519Verify(signature, changed, publicKey)).toBe(false);
        }
        const otherKey = hex(RFC8032_VECTORS.find((w) => w.name !== v.name)!.public);
        expect(provider.ed25519Verify(signature, message, otherKey)).toBe(false);
      });
    }
  }
});

describe('ed25519: both providers give identical results', () => {
  const seeds = fc.uint8Array({ minLength: 32, maxLength: 32 });
  const messages = fc.uint8Array({ maxLength: 512 });

  it('public key derivation and signatures are identical; each verifies the other', () => {
    fc.assert(
      fc.property(seeds, messages, (seed, message) => {
        const publicKey = nobleCrypto.ed25519PublicKey(seed);
        expect(toHex(nodeCrypto.ed25519PublicKey(seed))).toBe(toHex(publicKey));
        // ed25519 signatures are deterministic (RFC 8032 5.1.6): both must give the same bytes.
        const signature = nobleCrypto.ed25519Sign(message, seed);
        expect(toHex(nodeCrypto.ed25519Sign(message, seed))).toBe(toHex(signature));
        for (const provider of PROVIDERS) {
          expect(provider.ed25519Verify(signature, message, publicKey)).toBe(true);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('a signature by another key, over another message or with a changed byte fails for both', () => {
    fc.assert(
      fc.property(
        seeds,
        seeds,
        messages,
        messages,
        fc.nat({ max: 63 }),
        fc.integer({ min: 1, max: 255 }),
        (seedA, seedB, message, other, at, flip) => {
          fc.pre(toHex(seedA) !== toHex(seedB) && toHex(message) !== toHex(other));
          const signature = nodeCrypto.ed25519Sign(message, seedA);
          const keyA = nodeCrypto.ed25519PublicKey(seedA);
          const keyB = nodeCrypto.ed25519PublicKey(seedB);
          const changed = Uint8Array.from(signature);
          changed[at]! ^= flip;
          for (const provider of PROVIDERS) {
            expect(provider.ed25519Verify(signature, message, keyB)).toBe(false);
            expect(provider.ed25519Verify(signature, other, keyA)).toBe(false);
            expect(provider.ed25519Verify(changed, message, keyA)).toBe(false);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('random 64-byte signatures and random 32-byte keys give the same answer (false) from both', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        messages,
        (signature, publicKey, message) => {
          const answers = PROVIDERS.map((p) => p.ed25519Verify(signature, message, publicKey));
          expect(answers).toEqual([false, false]);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('ed25519: malformed inputs return false, never throw', () => {
  const v = RFC8032_VECTORS[1];
  const signature = hex(v.signature);
  const message = hex(v.message);
  const publicKey = hex(v.public);
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  const littleEndian = (n: bigint): Uint8Array =>
    Uint8Array.from(hex(n.toString(16).padStart(64, '0'))).reverse();
  const scalarOf = (bytes: Uint8Array): bigint => BigInt(`0x${toHex(Uint8Array.from(bytes).reverse())}`);

  const cases: [string, Uint8Array, Uint8Array][] = [
    ['an empty signature', new Uint8Array(0), publicKey],
    ['a 63-byte signature', signature.subarray(0, 63), publicKey],
    ['a 65-byte signature', Uint8Array.from([...signature, 0]), publicKey],
    ['a 128-byte signature', Uint8Array.from([...signature, ...signature]), publicKey],
    ['an empty public key', signature, new Uint8Array(0)],
    ['a 31-byte public key', signature, publicKey.subarray(0, 31)],
    ['a 33-byte public key', signature, Uint8Array.from([...publicKey, 0])],
    ['a 64-byte public key', signature, Uint8Array.from([...publicKey, ...publicKey])],
    ['a public key of all 0xff (not a canonical point)', signature, new Uint8Array(32).fill(0xff)],
    ['an all-zero signature', new Uint8Array(64), publicKey],
    [
      'S replaced by S + L (non-canonical S, RFC 8032 5.1.7 step 1)',
      Uint8Array.from([...signature.subarray(0, 32), ...littleEndian(scalarOf(signature.subarray(32)) + L)]),
      publicKey,
    ],
    [
      'S of all 0xff',
      Uint8Array.from([...signature.subarray(0, 32), ...new Uint8Array(32).fill(0xff)]),
      publicKey,
    ],
  ];

  for (const provider of PROVIDERS) {
    for (const [what, sig, key] of cases) {
      it(`${provider.name}: ${what}`, () => {
        expect(provider.ed25519Verify(sig, message, key)).toBe(false);
      });
    }

    it(`${provider.name}: signing or deriving with a seed of the wrong length is INVALID_KEY`, () => {
      for (const seed of [new Uint8Array(0), new Uint8Array(31), new Uint8Array(33), new Uint8Array(64)]) {
        expect(() => provider.ed25519Sign(message, seed)).toThrow(
          expect.objectContaining({ name: 'TufaError', code: 'INVALID_KEY' }),
        );
        expect(() => provider.ed25519PublicKey(seed)).toThrow(
          expect.objectContaining({ name: 'TufaError', code: 'INVALID_KEY' }),
        );
      }
      try {
        provider.ed25519Sign(message, new Uint8Array(16));
        expect.unreachable('a 16-byte seed was accepted');
      } catch (err) {
        expect(isTufaError(err, 'INVALID_KEY')).toBe(true);
      }
    });
  }
});

describe('ed25519: edge cases where the providers must agree', () => {
  // The eight points of small order on edwards25519, canonically encoded.
  const SMALL_ORDER_POINTS = [
    '0100000000000000000000000000000000000000000000000000000000000000',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0000000000000000000000000000000000000000000000000000000000000080',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  ];
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  const fromLittleEndian = (bytes: Uint8Array): bigint =>
    BigInt(`0x${toHex(Uint8Array.from(bytes).reverse())}`);
  const toLittleEndian = (n: bigint): Uint8Array =>
    Uint8Array.from(hex(n.toString(16).padStart(64, '0'))).reverse();

  it('the eight small-order encodings are points of order dividing 8 (test data check)', () => {
    for (const p of SMALL_ORDER_POINTS) {
      const point = ed.Point.fromBytes(hex(p));
      expect(point.multiply(8n, false).is0()).toBe(true);
    }
  });

  // Regression test (a bug this suite found, now fixed): nodeCrypto (OpenSSL) accepts signatures by a small-order public key that
  // nobleCrypto (zip215: false) refuses; e.g. the identity key with R = identity, S = 0 verifies
  // for any message through node:crypto. Both should refuse small-order public keys.
  it('small-order public keys are refused by both providers, for any R with S = 0', () => {
    const results: string[] = [];
    for (const a of SMALL_ORDER_POINTS) {
      for (const r of SMALL_ORDER_POINTS) {
        for (const m of ['a', 'b', 'c', 'd']) {
          const signature = Uint8Array.from([...hex(r), ...new Uint8Array(32)]);
          const answers = PROVIDERS.map((p) => p.ed25519Verify(signature, ascii(m), hex(a)));
          if (answers.some((x) => x)) results.push(`${a.slice(0, 8)} ${r.slice(0, 8)} ${m}: ${answers}`);
        }
      }
    }
    expect(results).toEqual([]);
  });

  // Regression test (a bug this suite found, now fixed): noble checks the cofactored equation [8][S]B = [8]R + [8][k]A, OpenSSL the
  // cofactorless [S]B = R + [k]A. A signer can add a small-order component to R; noble then
  // accepts what node:crypto refuses, so a server and a client on different providers disagree.
  it('a signature whose R carries a small-order component gets the same answer from both', () => {
    const seed = new Uint8Array(32).fill(9);
    const h = nodeCryptoModule.createHash('sha512').update(seed).digest();
    const clamped = Uint8Array.from(h.subarray(0, 32));
    clamped[0]! &= 248;
    clamped[31]! &= 127;
    clamped[31]! |= 64;
    const a = fromLittleEndian(clamped) % L;
    const publicKey = nobleCrypto.ed25519PublicKey(seed);
    expect(toHex(ed.Point.BASE.multiply(a).toBytes())).toBe(toHex(publicKey));
    const torsion = ed.Point.fromBytes(hex(SMALL_ORDER_POINTS[1]!)); // order 2
    const r = 123456789n;
    const R = ed.Point.BASE.multiply(r).add(torsion).toBytes();
    const message = ascii('hello');
    const k =
      fromLittleEndian(
        new Uint8Array(
          nodeCryptoModule
            .createHash('sha512')
            .update(Uint8Array.from([...R, ...publicKey, ...message]))
            .digest(),
        ),
      ) % L;
    const signature = Uint8Array.from([...R, ...toLittleEndian((r + k * a) % L)]);
    const answers = PROVIDERS.map((p) => p.ed25519Verify(signature, message, publicKey));
    expect(answers[0]).toBe(answers[1]);
  });
});

describe('P-256 keys as metadata writes them: both providers decode and verify alike', () => {
  const MESSAGE = ascii('{"_type":"root"}');
  const keyOf = (keytype: string, pub: string) => ({
    keytype,
    scheme: 'ecdsa-sha2-nistp256',
    keyval: { public: pub },
    extra: {},
  });
  const pairs = [0, 1, 2].map(() => nodeCryptoModule.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));

  it('PEM, uncompressed and compressed hex give one material, and the same answers, from both', () => {
    for (const { privateKey, publicKey } of pairs) {
      const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const jwk = publicKey.export({ format: 'jwk' });
      const x = Buffer.from(jwk.x!, 'base64url');
      const y = Buffer.from(jwk.y!, 'base64url');
      const uncompressed = `04${x.toString('hex')}${y.toString('hex')}`;
      const compressed = `${(y[31]! & 1) === 1 ? '03' : '02'}${x.toString('hex')}`;
      const der = toHex(nodeCryptoModule.sign('sha256', MESSAGE, privateKey));
      const raw = toHex(
        nodeCryptoModule.sign('sha256', MESSAGE, { key: privateKey, dsaEncoding: 'ieee-p1363' }),
      );
      for (const pub of [pem, pem.trim(), uncompressed, compressed]) {
        const materials = PROVIDERS.map((p) => p.verifier(keyOf('ecdsa', pub))?.material);
        expect(materials[0]).toBe(`p256:${uncompressed}`);
        expect(materials[1]).toBe(materials[0]);
        for (const sig of [der, raw]) {
          const answers = PROVIDERS.map((p) =>
            p.verifier(keyOf('ecdsa', pub))!.verify(fromHex(sig), MESSAGE),
          );
          expect(answers).toEqual([true, true]);
          const other = PROVIDERS.map((p) =>
            p.verifier(keyOf('ecdsa', pub))!.verify(fromHex(sig), ascii('other')),
          );
          expect(other).toEqual([false, false]);
        }
      }
    }
  });

  it('keys that are not P-256 public keys are refused by both (no verifier)', () => {
    const pem = pairs[0]!.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const pemOf = (k: nodeCryptoModule.KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();
    const bad = [
      pem.replace(/\n[A-Za-z0-9+/]{8}/, '\n!!!!????'),
      pem.slice(0, pem.length / 2),
      '-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n',
      pemOf(nodeCryptoModule.generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey),
      pemOf(nodeCryptoModule.generateKeyPairSync('ed25519').publicKey),
      pemOf(nodeCryptoModule.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey),
      pairs[0]!.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      '00',
      `05${'11'.repeat(64)}`,
      `02${'ff'.repeat(32)}`,
    ];
    for (const pub of bad) {
      expect(PROVIDERS.map((p) => p.verifier(keyOf('ecdsa', pub)))).toEqual([null, null]);
    }
  });

  it('RSA-PSS keys: node:crypto verifies them, the pure provider has no RSA (unsupported, never an exception)', () => {
    const { publicKey } = nodeCryptoModule.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const key = {
      keytype: 'rsa',
      scheme: 'rsassa-pss-sha256',
      keyval: { public: publicKey.export({ type: 'spki', format: 'pem' }).toString() },
      extra: {},
    };
    expect(nodeCrypto.verifier(key)?.material).toMatch(/^rsa:30/);
    expect(nobleCrypto.verifier(key)).toBeNull();
  });
});

describe('providers are instances: chosen by the caller, nothing shared', () => {
  const key = {
    keytype: 'ed25519',
    scheme: 'ed25519',
    keyval: { public: RFC8032_VECTORS[0].public },
    extra: {},
  };

  it('each instance remembers verifiers in its own cache; two instances share none', () => {
    for (const create of [createNodeCrypto, createNobleCrypto]) {
      const a = create();
      const b = create();
      const fromA = a.verifier(key);
      expect(fromA).not.toBeNull();
      expect(a.verifier(key)).toBe(fromA); // remembered by a
      const fromB = b.verifier(key);
      expect(fromB).not.toBe(fromA); // b built its own
      expect(b.verifier(key)).toBe(fromB);
      expect(fromB!.material).toBe(fromA!.material);
      const signature = hex(RFC8032_VECTORS[0].signature);
      expect([
        fromA!.verify(signature, new Uint8Array(0)),
        fromB!.verify(signature, new Uint8Array(0)),
      ]).toEqual([true, true]);
    }
  });

  it('the rules hash and verify with the provider they are given', () => {
    const calls: string[] = [];
    const inner = createNodeCrypto();
    const counting: CryptoProvider = {
      ...inner,
      name: 'counting',
      hash(algorithm, data) {
        calls.push(`hash:${algorithm}`);
        return inner.hash(algorithm, data);
      },
      createHash(algorithm) {
        calls.push(`createHash:${algorithm}`);
        return inner.createHash(algorithm);
      },
      verifier(key) {
        calls.push('verifier');
        return inner.verifier(key);
      },
    };
    const key = testKey(7);
    const root = sign(
      newRoot({
        expires: expiresIn(NOW, DAY),
        roles: rolesOf({ root: key, targets: key, snapshot: key, timestamp: key }),
      }),
      key,
    );
    TrustedMetadataSet.fromTrustedRoot(bytesOf(root), { crypto: counting, now: NOW });
    expect(calls).toEqual(['verifier', 'verifier']); // the signature, then its key's material
    calls.length = 0;
    const content = ascii('abc');
    const verifier = new TargetVerifier(counting, targetFileFor(counting, content));
    verifier.update(content);
    verifier.finish();
    expect(calls).toEqual(['hash:sha256', 'hash:sha512', 'createHash:sha256', 'createHash:sha512']);
  });

  it('no crypto module keeps mutable state at module level (no let, no Map, WeakMap or Set)', () => {
    const here = dirname(fileURLToPath(import.meta.url));
    const modules = [
      'crypto.ts',
      'keys.ts',
      'key-verifier.ts',
      'ed25519-points.ts',
      'node-crypto.ts',
      'noble.ts',
      'verify.ts',
    ];
    const found: string[] = [];
    for (const name of modules) {
      readFileSync(join(here, name), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (
            /^(export )?(let|var) /.test(line) ||
            /^(export )?const \w+(: [^=]+)? = new (Weak)?(Map|Set)\b/.test(line)
          ) {
            found.push(`${name}:${i + 1}: ${line}`);
          }
        });
    }
    expect(found).toEqual([]);
  });

  it("core's main entry imports no node: module and neither @noble/ed25519 nor @noble/curves (a browser build is possible)", async () => {
    const here = dirname(fileURLToPath(import.meta.url));
    // platform 'neutral' knows no Node built-in: a node: import anywhere in the graph fails the build.
    const result = await build({
      entryPoints: [join(here, 'index.ts')],
      bundle: true,
      write: false,
      metafile: true,
      platform: 'neutral',
      format: 'esm',
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((p) => p.endsWith('core/src/index.ts'))).toBe(true);
    expect(inputs.filter((p) => /node:|@noble\/(curves|ed25519)|node-crypto|noble\.ts/.test(p))).toEqual([]);
  });
});
