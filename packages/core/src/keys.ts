/**
 * Public keys as TUF writes them, key ids, signing with ed25519, and verification of the key
 * types other repositories use (ecdsa-sha2-nistp256, rsassa-pss-sha256).
 */
import * as nodeCryptoModule from 'node:crypto';
import { currentCrypto, hashBytes, p256FromPem, p256Uncompressed, randomBytes } from './crypto.js';
import { fromHex, isLowerHex, toHex } from './encoding.js';
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
  return toHex(
    hashBytes('sha256', canonicalBytes({ keytype: key.keytype, scheme: key.scheme, keyval: key.keyval })),
  );
}

/**
 * Key material identity, for counting distinct keys towards a threshold: the decoded key (ed25519
 * bytes, the uncompressed P-256 point, RSA's SPKI DER), so that one key spelled two ways (hex in
 * another case, PEM or hex, compressed or not, `ecdsa` or `ecdsa-sha2-nistp256`) counts once.
 */
export function keyMaterialId(key: Key): string {
  return (
    verifierFor(key)?.material ??
    `unsupported\u0000${key.keytype}\u0000${key.scheme}\u0000${key.keyval.public}`
  );
}

export function ed25519PublicKey(publicKey: Uint8Array): Key {
  if (publicKey.length !== 32) throw new TufaError('INVALID_KEY', 'an ed25519 public key is 32 bytes');
  return { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: toHex(publicKey) }, extra: {} };
}

/** Something that can sign for one key id. */
export interface Signer {
  readonly keyid: string;
  readonly key: Key;
  sign(message: Uint8Array): Uint8Array;
}

export interface Ed25519KeyPair {
  readonly keyid: string;
  readonly key: Key;
  /** The 32-byte private seed. */
  readonly privateKey: Uint8Array;
}

/** Generates an ed25519 key pair; `seed` (32 bytes) is for tests and derivations only. */
export function generateEd25519Key(seed: Uint8Array = randomBytes(32)): Ed25519KeyPair {
  const key = ed25519PublicKey(currentCrypto().ed25519PublicKey(seed));
  return { keyid: computeKeyId(key), key, privateKey: seed };
}

export function ed25519Signer(privateKey: Uint8Array, keyid?: string): Signer {
  const key = ed25519PublicKey(currentCrypto().ed25519PublicKey(privateKey));
  const seed = Uint8Array.from(privateKey);
  return {
    keyid: keyid ?? computeKeyId(key),
    key,
    sign: (message) => currentCrypto().ed25519Sign(message, seed),
  };
}

// ---------------------------------------------------------------------------------------------
// Verification. Anything that cannot be decoded is an invalid signature: verifySignature never
// throws, so that a hostile key or signature counts as missing and nothing more.

interface Verifier {
  verify(signature: Uint8Array, message: Uint8Array): boolean;
  /** The decoded key, for telling keys apart. */
  material: string;
}

const verifiers = new WeakMap<Key, Verifier | null>();

/** Smallest RSA modulus accepted, in bits: smaller keys are factorable. */
export const MIN_RSA_BITS = 2048;

/** Whether `key` is of a type and scheme tufa can verify. */
export function isSupportedKey(key: Key): boolean {
  return verifierFor(key) !== null;
}

export function verifySignature(key: Key, signatureHex: string, message: Uint8Array): boolean {
  const verify = verifierFor(key);
  if (verify === null) return false;
  if (signatureHex.length === 0 || !/^[0-9a-fA-F]*$/.test(signatureHex) || signatureHex.length % 2 !== 0) {
    return false;
  }
  try {
    return verify.verify(fromHex(signatureHex, 'signature', false), message);
  } catch {
    return false;
  }
}

function verifierFor(key: Key): Verifier | null {
  let verifier = verifiers.get(key);
  if (verifier === undefined) {
    try {
      verifier = buildVerifier(key);
    } catch {
      verifier = null;
    }
    verifiers.set(key, verifier);
  }
  return verifier;
}

function buildVerifier(key: Key): Verifier | null {
  const pub = key.keyval.public;
  if (typeof pub !== 'string') return null;
  if (key.keytype === 'ed25519' && key.scheme === 'ed25519') {
    if (!isLowerHex(pub.toLowerCase(), 64)) return null;
    const raw = fromHex(pub, 'ed25519 public key', false);
    return {
      verify: (sig, msg) => currentCrypto().ed25519Verify(sig, msg, raw),
      material: `ed25519:${toHex(raw)}`,
    };
  }
  if (
    (key.keytype === 'ecdsa' || key.keytype === 'ecdsa-sha2-nistp256') &&
    key.scheme === 'ecdsa-sha2-nistp256'
  ) {
    const uncompressed = p256Point(pub);
    // Real repositories carry high-S signatures (OpenSSL makes them): both halves are accepted.
    return {
      verify: (sig, msg) => currentCrypto().p256Verify(sig, msg, uncompressed),
      material: `p256:${toHex(uncompressed)}`,
    };
  }
  if (key.keytype === 'rsa' && key.scheme === 'rsassa-pss-sha256') {
    // createPublicKey also takes a private key PEM: a private key has no place in metadata.
    if (!/^\s*-----BEGIN (RSA )?PUBLIC KEY-----/.test(pub)) return null;
    const keyObject = nodeCryptoModule.createPublicKey({ key: pub, format: 'pem' });
    if (keyObject.asymmetricKeyType !== 'rsa') return null;
    if ((keyObject.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return null;
    const der = keyObject.export({ format: 'der', type: 'spki' });
    return {
      verify: (sig, msg) =>
        nodeCryptoModule.verify(
          'sha256',
          msg,
          {
            key: keyObject,
            padding: nodeCryptoModule.constants.RSA_PKCS1_PSS_PADDING,
            saltLength: nodeCryptoModule.constants.RSA_PSS_SALTLEN_AUTO,
          },
          sig,
        ),
      material: `rsa:${der.toString('hex')}`,
    };
  }
  return null;
}

/** A P-256 public key from PEM (SPKI) or hex (uncompressed or compressed), as the uncompressed point. */
function p256Point(pub: string): Uint8Array {
  const trimmed = pub.trim();
  if (trimmed.startsWith('-----BEGIN PUBLIC KEY-----')) {
    return p256FromPem(trimmed);
  }
  // The point is checked to be on the curve here, once, not at every verify.
  return p256Uncompressed(fromHex(trimmed, 'P-256 public key', false));
}
