/** Deterministic ed25519 keys and signing, so that every test run signs the same bytes. */
import {
  type CryptoProvider,
  canonicalBytes,
  type Ed25519KeyPair,
  ed25519Signer,
  generateEd25519Key,
  type JsonObject,
  type Key,
  type Metadata,
  type NewRootOptions,
  type Signature,
  type Signed,
  type Signer,
  serializeMetadata,
  signedToJson,
  toHex,
} from '@tufa/core';
import { createNodeCrypto } from '@tufa/core/node';

/** The provider every test signs, verifies and hashes with (node:crypto, as the Node packages use). */
export const testCrypto: CryptoProvider = createNodeCrypto();

export type TestKey = Ed25519KeyPair & { signer: Signer };

/** A key pair derived from a small number: the same number gives the same key in every test. */
export function testKey(n: number): TestKey {
  const seed = new Uint8Array(32);
  seed[0] = n & 0xff;
  seed[1] = (n >> 8) & 0xff;
  seed[31] = 0x5a;
  const pair = generateEd25519Key(testCrypto, seed);
  return { ...pair, signer: ed25519Signer(testCrypto, pair.privateKey) };
}

/** A test key's signature over `message`, at once (core's Signer is asynchronous, as a token is). */
export function signBytes(key: Pick<TestKey, 'privateKey'>, message: Uint8Array): Uint8Array {
  return testCrypto.ed25519Sign(message, key.privateKey);
}

/**
 * `signed` signed by each of `keys`, in that order, as core's signMetadata signs it (one signature
 * per key id), but synchronously: hundreds of tests build documents inline.
 */
export function sign<T extends Signed>(signed: T, ...keys: readonly TestKey[]): Metadata<T> {
  const signedBytes = canonicalBytes(signedToJson(signed));
  const seen = new Set<string>();
  const signatures: Signature[] = [];
  for (const k of keys) {
    if (seen.has(k.keyid)) continue;
    seen.add(k.keyid);
    signatures.push({ keyid: k.keyid, sig: toHex(signBytes(k, signedBytes)), extra: {} });
  }
  return { signed, signatures, extra: {}, signedBytes };
}

/** The bytes a repository serves for a document. */
export const bytesOf = (md: Metadata): Uint8Array => serializeMetadata(md);

/** `signed` signed by `keys`, as served bytes. */
export const signedBytes = <T extends Signed>(signed: T, keys: readonly TestKey[]): Uint8Array =>
  bytesOf(sign(signed, ...keys));

/** Signs a raw `signed` JSON object (for documents core's helpers would refuse to build). */
export function signRaw(
  signed: JsonObject,
  keys: readonly TestKey[],
  extraSignatures: JsonObject[] = [],
): Uint8Array {
  const bytes = canonicalBytes(signed);
  const signatures: JsonObject[] = keys.map((k) => ({ keyid: k.keyid, sig: toHex(signBytes(k, bytes)) }));
  return canonicalBytes({ signed, signatures: [...signatures, ...extraSignatures] });
}

/** newRoot's `roles`: each top-level role with the public keys of the pairs given (threshold 1). */
export function rolesOf(
  keys: Record<'root' | 'targets' | 'snapshot' | 'timestamp', { key: Key } | readonly { key: Key }[]>,
): NewRootOptions['roles'] {
  const keysOf = (k: { key: Key } | readonly { key: Key }[]) => ({
    keys: (Array.isArray(k) ? k : [k]).map((p: { key: Key }) => p.key),
  });
  return {
    root: keysOf(keys.root),
    targets: keysOf(keys.targets),
    snapshot: keysOf(keys.snapshot),
    timestamp: keysOf(keys.timestamp),
  };
}
