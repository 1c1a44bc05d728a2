/**
 * Public keys as TUF writes them, key ids, signing with ed25519, and verification of the key
 * types other repositories use (ecdsa-sha2-nistp256, rsassa-pss-sha256).
 */
import { type CryptoProvider, randomBytes, sha256Id } from './crypto.js';
import { fromHex, toHex } from './encoding.js';
import { TufaError } from './errors.js';
import { canonicalBytes, type JsonObject } from './json.js';

/** A public key object as it stands in root and delegations. */
export interface Key {
  readonly keytype: string;
  readonly scheme: string;
  /** Holds `public` (a string) and whatever else the writer put there. */
  readonly keyval: Readonly<JsonObject> & { readonly public: string };
  /** Fields this version of tufa does not know: kept so that signatures still verify. */
  readonly extra: Readonly<JsonObject>;
}

export function keyToJson(key: Key): JsonObject {
  return { ...key.extra, keytype: key.keytype, scheme: key.scheme, keyval: { ...key.keyval } };
}

/** The spec's key id: sha256 of the canonical JSON of the public key object. */
export function computeKeyId(key: Key): string {
  return sha256Id(canonicalBytes({ keytype: key.keytype, scheme: key.scheme, keyval: key.keyval }));
}

/**
 * Key material identity, for counting distinct keys towards a threshold: the decoded key (ed25519
 * bytes, the uncompressed P-256 point, RSA's SPKI DER), so that one key spelled two ways (hex in
 * another case, PEM or hex, compressed or not, `ecdsa` or `ecdsa-sha2-nistp256`) counts once.
 */
export function keyMaterialId(crypto: CryptoProvider, key: Key): string {
  return (
    crypto.verifier(key)?.material ??
    `unsupported\u0000${key.keytype}\u0000${key.scheme}\u0000${key.keyval.public}`
  );
}

export function ed25519PublicKey(publicKey: Uint8Array): Key {
  if (publicKey.length !== 32) throw new TufaError('INVALID_KEY', 'an ed25519 public key is 32 bytes');
  return { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: toHex(publicKey) }, extra: {} };
}

/** The TUF key object of a P-256 public key, as securesystemslib writes it (SPKI PEM). */
export function p256PublicKey(spkiPem: string): Key {
  return { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: spkiPem.trim() }, extra: {} };
}

/**
 * Something that can sign for one key id: the one signing interface of tufa (the CLI's keystore,
 * a PKCS#11 token, the server's online keys). Asynchronous, as a token or a remote signer is.
 * `sign` returns the signature bytes as they go, hex-encoded, into `sig`: for ecdsa-sha2-nistp256
 * the DER form that securesystemslib and tuf-js expect.
 */
export interface Signer {
  readonly keyid: string;
  readonly key: Key;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

export interface Ed25519KeyPair {
  readonly keyid: string;
  readonly key: Key;
  /** The 32-byte private seed. */
  readonly privateKey: Uint8Array;
}

/** Generates an ed25519 key pair; `seed` (32 bytes) is for tests and derivations only. */
export function generateEd25519Key(
  crypto: CryptoProvider,
  seed: Uint8Array = randomBytes(32),
): Ed25519KeyPair {
  const key = ed25519PublicKey(crypto.ed25519PublicKey(seed));
  return { keyid: computeKeyId(key), key, privateKey: seed };
}

/** A signer for an ed25519 private key (32-byte seed); `crypto` signs for it for its lifetime. */
export function ed25519Signer(crypto: CryptoProvider, privateKey: Uint8Array, keyid?: string): Signer {
  const key = ed25519PublicKey(crypto.ed25519PublicKey(privateKey));
  const seed = Uint8Array.from(privateKey);
  return {
    keyid: keyid ?? computeKeyId(key),
    key,
    sign: async (message) => crypto.ed25519Sign(message, seed),
  };
}

// ---------------------------------------------------------------------------------------------
// Verification. Anything that cannot be decoded is an invalid signature: verifySignature never
// throws, so that a hostile key or signature counts as missing and nothing more. The provider
// decodes the key (once per key object and provider instance) and does the arithmetic.

/** Smallest RSA modulus accepted, in bits: smaller keys are factorable. */
export const MIN_RSA_BITS = 2048;

/** Whether `key` is of a type and scheme `crypto` can verify (RSA needs node:crypto). */
export function isSupportedKey(crypto: CryptoProvider, key: Key): boolean {
  return crypto.verifier(key) !== null;
}

export function verifySignature(
  crypto: CryptoProvider,
  key: Key,
  signatureHex: string,
  message: Uint8Array,
): boolean {
  const verifier = crypto.verifier(key);
  if (verifier === null) return false;
  if (signatureHex.length === 0 || !/^[0-9a-fA-F]*$/.test(signatureHex) || signatureHex.length % 2 !== 0) {
    return false;
  }
  try {
    return verifier.verify(fromHex(signatureHex, 'signature', false), message);
  } catch {
    return false;
  }
}
