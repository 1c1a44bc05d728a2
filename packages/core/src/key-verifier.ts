/**
 * How a key as metadata writes it (keytype, scheme, keyval.public) becomes a verifier: one
 * decoding rule for every provider, which supplies the arithmetic. Used by the providers, not
 * exported from the main entry.
 */
import type { KeyVerifier } from './crypto.js';
import { fromHex, isLowerHex, toHex } from './encoding.js';
import type { Key } from './keys.js';

/** What a provider supplies to build verifiers. */
export interface VerifierBackend {
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  p256Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  /** A P-256 point (uncompressed or compressed bytes) checked on the curve, uncompressed; throws if not one. */
  p256Uncompressed(point: Uint8Array): Uint8Array;
  /** The uncompressed point of a P-256 public key in PEM (SPKI); throws if not one. */
  p256FromPem(pem: string): Uint8Array;
  /** An RSA-PSS (SHA-256) verifier for a PEM public key; null when the provider has no RSA or the key is refused. */
  rsaPssVerifier(pem: string): KeyVerifier | null;
}

/**
 * The verifier for `key`, remembered in `memo` (the provider instance's, keyed by the key object);
 * null for a key that cannot be verified. Never throws.
 */
export function keyVerifier(
  key: Key,
  backend: VerifierBackend,
  memo: WeakMap<Key, KeyVerifier | null>,
): KeyVerifier | null {
  let verifier = memo.get(key);
  if (verifier === undefined) {
    try {
      verifier = buildVerifier(key, backend);
    } catch {
      verifier = null;
    }
    memo.set(key, verifier);
  }
  return verifier;
}

function buildVerifier(key: Key, backend: VerifierBackend): KeyVerifier | null {
  const pub = key.keyval.public;
  if (typeof pub !== 'string') return null;
  if (key.keytype === 'ed25519' && key.scheme === 'ed25519') {
    if (!isLowerHex(pub.toLowerCase(), 64)) return null;
    const raw = fromHex(pub, 'ed25519 public key', false);
    return {
      verify: (sig, msg) => backend.ed25519Verify(sig, msg, raw),
      material: `ed25519:${toHex(raw)}`,
    };
  }
  if (
    (key.keytype === 'ecdsa' || key.keytype === 'ecdsa-sha2-nistp256') &&
    key.scheme === 'ecdsa-sha2-nistp256'
  ) {
    const trimmed = pub.trim();
    // The point is checked to be on the curve here, once, not at every verify.
    const uncompressed = trimmed.startsWith('-----BEGIN PUBLIC KEY-----')
      ? backend.p256FromPem(trimmed)
      : backend.p256Uncompressed(fromHex(trimmed, 'P-256 public key', false));
    // Real repositories carry high-S signatures (OpenSSL makes them): both halves are accepted.
    return {
      verify: (sig, msg) => backend.p256Verify(sig, msg, uncompressed),
      material: `p256:${toHex(uncompressed)}`,
    };
  }
  if (key.keytype === 'rsa' && key.scheme === 'rsassa-pss-sha256') {
    // A PEM parser may also take a private key: a private key has no place in metadata.
    if (!/^\s*-----BEGIN (RSA )?PUBLIC KEY-----/.test(pub)) return null;
    return backend.rsaPssVerifier(pub);
  }
  return null;
}
