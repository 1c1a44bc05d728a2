/**
 * The crypto interface tufa's rules call, and the few stateless helpers beside it. No provider
 * lives here and none is chosen here: the caller creates one and passes it in (ADR 0012).
 * `createNodeCrypto()` (`@tufa/core/node`, node:crypto: 9-14x faster here for SHA-2 and ed25519
 * verify, 35x for P-256 verify) and `createNobleCrypto()` (`@tufa/core/noble`, @noble/*: pure
 * JavaScript, no RSA) give identical answers; each instance owns its key caches. This module, like
 * the rest of the main entry, imports no `node:` module, so core can be bundled for a browser.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex } from './encoding.js';
import { TufaError } from './errors.js';
import type { Key } from './keys.js';

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

/** Verifies signatures by one public key; built once per key and provider. */
export interface KeyVerifier {
  /** Never throws: anything that cannot be decoded is `false`. */
  verify(signature: Uint8Array, message: Uint8Array): boolean;
  /** The decoded key (`ed25519:HEX`, `p256:HEX`, `rsa:SPKI-HEX`), for telling keys apart. */
  readonly material: string;
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
  /**
   * The verifier for a key as metadata writes it, remembered for this instance (per key object);
   * `null` when this provider cannot verify that key type, scheme or encoding.
   */
  verifier(key: Key): KeyVerifier | null;
}

export function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) {
    throw new TufaError('INVALID_KEY', 'an ed25519 private key is 32 bytes');
  }
}

/**
 * Hex sha256 of a short identifier (key ids, hash-bin names, local file names): the same answer
 * for every caller without a provider. Content (target files, metadata bytes) goes through one.
 */
export function sha256Id(data: Uint8Array): string {
  return toHex(sha256(data));
}

/** Random bytes from the platform CSPRNG (Web Crypto: Node 20 and browsers). */
export function randomBytes(length: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(length));
}
