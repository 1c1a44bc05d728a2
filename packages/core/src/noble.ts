/**
 * The pure-JavaScript crypto provider (`@tufa/core/noble`): @noble/ed25519, @noble/hashes and
 * @noble/curves, audited and minimal, no Node API. It gives the same answers as node:crypto on
 * every input (the tests check both), except that it has no RSA: an `rsassa-pss-sha256` key is
 * unsupported with it (counts as missing). Each `createNobleCrypto()` has its own key caches.
 */
import { p256 } from '@noble/curves/nist.js';
import * as ed from '@noble/ed25519';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import {
  type CryptoProvider,
  checkSeed,
  type HashAlgorithm,
  type IncrementalHash,
  type KeyVerifier,
} from './crypto.js';
import { acceptablePublicKey, isTorsionFree } from './ed25519-points.js';
import { toHex } from './encoding.js';
import { TufaError } from './errors.js';
import { keyVerifier, type VerifierBackend } from './key-verifier.js';
import type { Key } from './keys.js';

// @noble/ed25519 computes SHA-512 through this hook when used synchronously.
ed.hashes.sha512 = sha512;

const nobleHashes = { sha256, sha384, sha512 } as const;

// SPKI DER prefixes of a P-256 public key, uncompressed (65-byte point) and compressed (33).
const P256_SPKI_UNCOMPRESSED = '3059301306072a8648ce3d020106082a8648ce3d030107034200';
const P256_SPKI_COMPRESSED = '3039301306072a8648ce3d020106082a8648ce3d030107032200';
const PEM = /^-----BEGIN PUBLIC KEY-----\r?\n((?:[A-Za-z0-9+/=]+\r?\n)+)-----END PUBLIC KEY-----\s*$/;

/** A new pure-JavaScript provider with caches of its own. */
export function createNobleCrypto(): CryptoProvider {
  const acceptedKeys = new Map<string, boolean>();
  const verifiers = new WeakMap<Key, KeyVerifier | null>();

  const provider = {
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
      if (
        signature.length !== 64 ||
        publicKey.length !== 32 ||
        !acceptablePublicKey(publicKey, acceptedKeys)
      ) {
        return false;
      }
      try {
        if (!ed.verify(signature, message, publicKey, { zip215: false })) return false;
        // noble checks the cofactored equation: with a torsion-free R it is the cofactorless one.
        return isTorsionFree(ed.Point.fromBytes(signature.subarray(0, 32), false));
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
    verifier(key: Key): KeyVerifier | null {
      return keyVerifier(key, backend, verifiers);
    },
  };

  const backend: VerifierBackend = {
    ed25519Verify: provider.ed25519Verify,
    p256Verify: provider.p256Verify,
    p256Uncompressed,
    p256FromPem(pem: string): Uint8Array {
      const body = PEM.exec(pem)?.[1];
      if (body === undefined) throw new TufaError('INVALID_KEY', 'not a PEM public key');
      const base64 = body.replace(/\s+/g, '');
      if (base64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) {
        throw new TufaError('INVALID_KEY', 'a PEM public key is not base64');
      }
      const der = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      // A named-curve P-256 SPKI is one of two fixed prefixes followed by the point.
      const prefix =
        der.length === 91 ? P256_SPKI_UNCOMPRESSED : der.length === 59 ? P256_SPKI_COMPRESSED : '';
      if (prefix === '' || toHex(der.subarray(0, prefix.length / 2)) !== prefix)
        throw new TufaError('INVALID_KEY', 'not a P-256 key');
      return p256Uncompressed(der.subarray(prefix.length / 2));
    },
    rsaPssVerifier: () => null,
  };

  return Object.freeze(provider);
}

function p256Uncompressed(point: Uint8Array): Uint8Array {
  const shape =
    (point.length === 65 && point[0] === 0x04) ||
    (point.length === 33 && (point[0] === 0x02 || point[0] === 0x03));
  if (!shape) throw new TufaError('INVALID_KEY', 'not a P-256 point');
  return p256.Point.fromBytes(point).toBytes(false);
}
