/**
 * The pure-JavaScript crypto provider: @noble/ed25519, @noble/hashes and @noble/curves, audited
 * and minimal. It gives the same answers as node:crypto on every input (the tests check both);
 * it lives in its own entry point (`@tufa/core/noble`) so that processes that do not use it do
 * not pay for loading it. `useCrypto(nobleCrypto)` selects it.
 */
import { p256 } from '@noble/curves/nist.js';
import * as ed from '@noble/ed25519';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import {
  acceptablePublicKey,
  type CryptoProvider,
  checkSeed,
  type HashAlgorithm,
  type IncrementalHash,
} from './crypto.js';

ed.hashes.sha512 = sha512;

const nobleHashes = { sha256, sha384, sha512 } as const;

export const nobleCrypto: CryptoProvider = Object.freeze({
  name: 'noble',
  hash(algorithm: HashAlgorithm, data: Uint8Array): Uint8Array {
    return nobleHashes[algorithm](data);
  },
  createHash(algorithm: HashAlgorithm): IncrementalHash {
    const h = nobleHashes[algorithm].create();
    return {
      update: (data) => {
        h.update(data);
      },
      digest: () => h.digest(),
    };
  },
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    if (signature.length !== 64 || publicKey.length !== 32 || !acceptablePublicKey(publicKey)) return false;
    try {
      if (!ed.verify(signature, message, publicKey, { zip215: false })) return false;
      // noble checks the cofactored equation: with a torsion-free R it is the cofactorless one.
      return ed.Point.fromBytes(signature.subarray(0, 32), false).isTorsionFree();
    } catch {
      return false;
    }
  },
  ed25519Sign(message: Uint8Array, seed: Uint8Array): Uint8Array {
    checkSeed(seed);
    return ed.sign(message, seed);
  },
  ed25519PublicKey(seed: Uint8Array): Uint8Array {
    checkSeed(seed);
    return ed.getPublicKey(seed);
  },
  p256Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    try {
      const format = signature.length === 64 ? 'compact' : 'der';
      return p256.verify(signature, message, publicKey, { lowS: false, prehash: true, format });
    } catch {
      return false;
    }
  },
});
