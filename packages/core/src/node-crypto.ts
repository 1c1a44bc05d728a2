/**
 * The node:crypto provider (`@tufa/core/node`): what the server, the CLI and the client use by
 * default. Each `createNodeCrypto()` is a new instance with its own key caches (public and private
 * KeyObjects, accepted ed25519 keys, verifiers per key): nothing is shared between instances and
 * nothing lives at module level. P-256 and RSA-PSS keys are decoded by OpenSSL.
 */
import * as nodeCryptoModule from 'node:crypto';
import {
  type CryptoProvider,
  checkSeed,
  type HashAlgorithm,
  type IncrementalHash,
  type KeyVerifier,
} from './crypto.js';
import { acceptablePublicKey } from './ed25519-points.js';
import { TufaError } from './errors.js';
import { keyVerifier, type VerifierBackend } from './key-verifier.js';
import { type Key, MIN_RSA_BITS } from './keys.js';

// DER prefixes that wrap a raw 32-byte ed25519 key for node:crypto.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
// SPKI DER prefixes of a P-256 public key, uncompressed (65-byte point) and compressed (33).
const P256_SPKI_UNCOMPRESSED = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const P256_SPKI_COMPRESSED = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');
/** Most public KeyObjects of each kind one instance keeps. */
const MAX_KEY_OBJECTS = 512;

const hexOf = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');

/** A new node:crypto provider with caches of its own. */
export function createNodeCrypto(): CryptoProvider {
  const acceptedKeys = new Map<string, boolean>();
  const ed25519Keys = new Map<string, nodeCryptoModule.KeyObject>();
  const p256Keys = new Map<string, nodeCryptoModule.KeyObject>();
  // Building a private KeyObject costs about a millisecond: one per seed object (a signer holds
  // its seed for its lifetime), weakly, so nothing outlives the signer.
  const privateKeys = new WeakMap<Uint8Array, nodeCryptoModule.KeyObject>();
  const verifiers = new WeakMap<Key, KeyVerifier | null>();

  // Building a KeyObject costs about half a verify: keep the last few hundred.
  function ed25519KeyObject(raw: Uint8Array): nodeCryptoModule.KeyObject {
    const id = hexOf(raw);
    let key = ed25519Keys.get(id);
    if (key === undefined) {
      key = nodeCryptoModule.createPublicKey({
        key: Buffer.concat([ED25519_SPKI_PREFIX, raw]),
        format: 'der',
        type: 'spki',
      });
      if (ed25519Keys.size >= MAX_KEY_OBJECTS) ed25519Keys.clear();
      ed25519Keys.set(id, key);
    }
    return key;
  }

  function privateKeyObject(seed: Uint8Array): nodeCryptoModule.KeyObject {
    checkSeed(seed);
    let key = privateKeys.get(seed);
    if (key === undefined) {
      key = nodeCryptoModule.createPrivateKey({
        key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
        format: 'der',
        type: 'pkcs8',
      });
      privateKeys.set(seed, key);
    }
    return key;
  }

  function p256KeyObject(point: Uint8Array): nodeCryptoModule.KeyObject {
    const id = hexOf(point);
    let key = p256Keys.get(id);
    if (key === undefined) {
      const prefix = point.length === 65 ? P256_SPKI_UNCOMPRESSED : P256_SPKI_COMPRESSED;
      key = nodeCryptoModule.createPublicKey({
        key: Buffer.concat([prefix, point]),
        format: 'der',
        type: 'spki',
      });
      if (p256Keys.size >= MAX_KEY_OBJECTS) p256Keys.clear();
      p256Keys.set(id, key);
    }
    return key;
  }

  const provider = {
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
      if (
        signature.length !== 64 ||
        publicKey.length !== 32 ||
        !acceptablePublicKey(publicKey, acceptedKeys)
      ) {
        return false;
      }
      try {
        return nodeCryptoModule.verify(null, message, ed25519KeyObject(publicKey), signature);
      } catch {
        return false;
      }
    },
    ed25519Sign(message: Uint8Array, seed: Uint8Array): Uint8Array {
      return new Uint8Array(nodeCryptoModule.sign(null, message, privateKeyObject(seed)));
    },
    ed25519PublicKey(seed: Uint8Array): Uint8Array {
      const spki = nodeCryptoModule
        .createPublicKey(privateKeyObject(seed))
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
    verifier(key: Key): KeyVerifier | null {
      return keyVerifier(key, backend, verifiers);
    },
  };

  const backend: VerifierBackend = {
    ed25519Verify: provider.ed25519Verify,
    p256Verify: provider.p256Verify,
    p256Uncompressed(point: Uint8Array): Uint8Array {
      const shape =
        (point.length === 65 && point[0] === 0x04) ||
        (point.length === 33 && (point[0] === 0x02 || point[0] === 0x03));
      if (!shape) throw new TufaError('INVALID_KEY', 'not a P-256 point');
      return p256FromKeyObject(p256KeyObject(point));
    },
    p256FromPem(pem: string): Uint8Array {
      return p256FromKeyObject(nodeCryptoModule.createPublicKey({ key: pem, format: 'pem' }));
    },
    rsaPssVerifier(pem: string): KeyVerifier | null {
      const keyObject = nodeCryptoModule.createPublicKey({ key: pem, format: 'pem' });
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
    },
  };

  return Object.freeze(provider);
}

function p256FromKeyObject(key: nodeCryptoModule.KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.x || !jwk.y)
    throw new TufaError('INVALID_KEY', 'not a P-256 key');
  return Uint8Array.from([0x04, ...Buffer.from(jwk.x, 'base64url'), ...Buffer.from(jwk.y, 'base64url')]);
}
