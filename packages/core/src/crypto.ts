/**
 * One small crypto interface. Two providers give identical results (tested on RFC 8032 vectors,
 * edge cases and random inputs): `nodeCrypto` (node:crypto; the default: 9-14x faster here for
 * SHA-2 and ed25519 verify, 35x for P-256 verify) and `nobleCrypto` (@noble/ed25519,
 * @noble/hashes, @noble/curves: pure JavaScript), which lives in its own entry point
 * (`@tufa/core/noble`) so that a process that does not use it does not load it (about 30 ms of a
 * CLI start). Select one with `useCrypto`.
 */
import * as nodeCryptoModule from 'node:crypto';
import * as ed from '@noble/ed25519';
import { TufaError } from './errors.js';

/** Hash algorithms tufa computes; other names in `hashes` maps are kept but not checked. */
export const HASH_ALGORITHMS = Object.freeze(['sha256', 'sha384', 'sha512'] as const);
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];
/** Hex length of each supported digest. */
export const HASH_HEX_LENGTH: Readonly<Record<HashAlgorithm, number>> = Object.freeze({
  sha256: 64,
  sha384: 96,
  sha512: 128,
});

export function isHashAlgorithm(name: string): name is HashAlgorithm {
  return (HASH_ALGORITHMS as readonly string[]).includes(name);
}

export interface IncrementalHash {
  update(data: Uint8Array): void;
  digest(): Uint8Array;
}

export interface CryptoProvider {
  readonly name: string;
  hash(algorithm: HashAlgorithm, data: Uint8Array): Uint8Array;
  createHash(algorithm: HashAlgorithm): IncrementalHash;
  /**
   * Verifies an ed25519 signature; never throws. Both providers give the same answer on every
   * input: public keys must be canonical, torsion-free and not of small order, R must be
   * torsion-free, S < L, and the cofactorless equation must hold (OpenSSL's rule).
   */
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  ed25519Sign(message: Uint8Array, seed: Uint8Array): Uint8Array;
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  /**
   * ECDSA P-256 with SHA-256 over `message`; `publicKey` is an uncompressed point (65 bytes);
   * `signature` is DER, or raw r||s when 64 bytes. High-S signatures are accepted (OpenSSL makes
   * them). Never throws.
   */
  p256Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

const acceptedKeys = new Map<string, boolean>();

/**
 * Whether an ed25519 public key is one both providers treat alike: canonically encoded, not of
 * small order, torsion-free. OpenSSL accepts small-order keys (the identity verifies anything);
 * noble refuses them; mixed-order keys make cofactored and cofactorless checks disagree.
 */
export function acceptablePublicKey(publicKey: Uint8Array): boolean {
  const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.length).toString('hex');
  let ok = acceptedKeys.get(id);
  if (ok === undefined) {
    try {
      const point = ed.Point.fromBytes(publicKey, false);
      ok = !point.isSmallOrder() && point.isTorsionFree();
    } catch {
      ok = false;
    }
    if (acceptedKeys.size >= 1024) acceptedKeys.clear();
    acceptedKeys.set(id, ok);
  }
  return ok;
}

export function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) {
    throw new TufaError('INVALID_KEY', 'an ed25519 private key is 32 bytes');
  }
}

// DER prefixes that wrap a raw 32-byte ed25519 key for node:crypto.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

const nodePublicKeys = new Map<string, nodeCryptoModule.KeyObject>();

function nodePublicKey(raw: Uint8Array): nodeCryptoModule.KeyObject {
  // Building a KeyObject costs about half a verify: keep the last few hundred.
  const id = Buffer.from(raw).toString('hex');
  let key = nodePublicKeys.get(id);
  if (key === undefined) {
    key = nodeCryptoModule.createPublicKey({
      key: Buffer.concat([ED25519_SPKI_PREFIX, raw]),
      format: 'der',
      type: 'spki',
    });
    if (nodePublicKeys.size >= 512) nodePublicKeys.clear();
    nodePublicKeys.set(id, key);
  }
  return key;
}

// Building a private KeyObject costs about a millisecond: keep one per seed object (a signer
// holds its seed for its lifetime), weakly, so nothing outlives the signer.
const nodePrivateKeys = new WeakMap<Uint8Array, nodeCryptoModule.KeyObject>();

function nodePrivateKey(seed: Uint8Array): nodeCryptoModule.KeyObject {
  checkSeed(seed);
  let key = nodePrivateKeys.get(seed);
  if (key === undefined) {
    key = nodeCryptoModule.createPrivateKey({
      key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
      format: 'der',
      type: 'pkcs8',
    });
    nodePrivateKeys.set(seed, key);
  }
  return key;
}

export const nodeCrypto: CryptoProvider = Object.freeze({
  name: 'node',
  hash(algorithm: HashAlgorithm, data: Uint8Array): Uint8Array {
    return new Uint8Array(nodeCryptoModule.createHash(algorithm).update(data).digest());
  },
  createHash(algorithm: HashAlgorithm): IncrementalHash {
    const h = nodeCryptoModule.createHash(algorithm);
    return {
      update: (data) => {
        h.update(data);
      },
      digest: () => new Uint8Array(h.digest()),
    };
  },
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    if (signature.length !== 64 || publicKey.length !== 32 || !acceptablePublicKey(publicKey)) return false;
    try {
      return nodeCryptoModule.verify(null, message, nodePublicKey(publicKey), signature);
    } catch {
      return false;
    }
  },
  ed25519Sign(message: Uint8Array, seed: Uint8Array): Uint8Array {
    return new Uint8Array(nodeCryptoModule.sign(null, message, nodePrivateKey(seed)));
  },
  ed25519PublicKey(seed: Uint8Array): Uint8Array {
    const spki = nodeCryptoModule
      .createPublicKey(nodePrivateKey(seed))
      .export({ format: 'der', type: 'spki' });
    return new Uint8Array(spki.subarray(ED25519_SPKI_PREFIX.length));
  },
  p256Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    try {
      return nodeCryptoModule.verify(
        'sha256',
        message,
        { key: p256KeyObject(publicKey), dsaEncoding: signature.length === 64 ? 'ieee-p1363' : 'der' },
        signature,
      );
    } catch {
      return false;
    }
  },
});

// SPKI DER prefixes of a P-256 public key, uncompressed (65-byte point) and compressed (33).
const P256_SPKI_UNCOMPRESSED = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const P256_SPKI_COMPRESSED = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');
const p256Keys = new Map<string, nodeCryptoModule.KeyObject>();

function p256KeyObject(point: Uint8Array): nodeCryptoModule.KeyObject {
  const id = Buffer.from(point).toString('hex');
  let key = p256Keys.get(id);
  if (key === undefined) {
    const prefix = point.length === 65 ? P256_SPKI_UNCOMPRESSED : P256_SPKI_COMPRESSED;
    key = nodeCryptoModule.createPublicKey({
      key: Buffer.concat([prefix, point]),
      format: 'der',
      type: 'spki',
    });
    if (p256Keys.size >= 512) p256Keys.clear();
    p256Keys.set(id, key);
  }
  return key;
}

/**
 * A P-256 public key (uncompressed 04||x||y or compressed 02/03||x, as bytes) checked to be on
 * the curve and returned uncompressed; throws when it is not a P-256 point.
 */
export function p256Uncompressed(point: Uint8Array): Uint8Array {
  const shape =
    (point.length === 65 && point[0] === 0x04) ||
    (point.length === 33 && (point[0] === 0x02 || point[0] === 0x03));
  if (!shape) throw new TufaError('INVALID_KEY', 'not a P-256 point');
  return p256FromJwk(p256KeyObject(point));
}

/** The uncompressed point of a P-256 public key in PEM (SPKI). */
export function p256FromPem(pem: string): Uint8Array {
  return p256FromJwk(nodeCryptoModule.createPublicKey({ key: pem, format: 'pem' }));
}

// Not exported: a KeyObject in a public signature would make core's types need @types/node.
function p256FromJwk(key: nodeCryptoModule.KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.x || !jwk.y)
    throw new TufaError('INVALID_KEY', 'not a P-256 key');
  return Uint8Array.from([0x04, ...Buffer.from(jwk.x, 'base64url'), ...Buffer.from(jwk.y, 'base64url')]);
}

let provider: CryptoProvider = nodeCrypto;

/** Selects the provider every tufa function uses from now on; returns the previous one. */
export function useCrypto(next: CryptoProvider): CryptoProvider {
  const previous = provider;
  provider = next;
  return previous;
}

export function currentCrypto(): CryptoProvider {
  return provider;
}

export function hashBytes(algorithm: HashAlgorithm, data: Uint8Array): Uint8Array {
  return provider.hash(algorithm, data);
}

export function createHash(algorithm: HashAlgorithm): IncrementalHash {
  return provider.createHash(algorithm);
}

/** Random bytes from the platform CSPRNG. */
export function randomBytes(length: number): Uint8Array {
  return new Uint8Array(nodeCryptoModule.randomBytes(length));
}
