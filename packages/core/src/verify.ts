/**
 * Threshold signature checks. One result type serves error messages and threshold-signing
 * status: which keys of the role signed, which are missing, which signatures were bad.
 */
import type { CryptoProvider } from './crypto.js';
import { delegatedRoleNamed } from './delegation.js';
import { TufaError } from './errors.js';
import { type Key, keyMaterialId, verifySignature } from './keys.js';
import type { Metadata, Root, Signature, Targets } from './metadata.js';
import { finish, type Steps } from './steps.js';

export interface VerificationResult {
  readonly role: string;
  readonly threshold: number;
  /** True when at least `threshold` distinct keys of the role signed validly. */
  readonly verified: boolean;
  /** Key ids of the role with a valid signature (one per distinct key). */
  readonly signed: readonly string[];
  /** Key ids of the role without a valid signature. */
  readonly missing: readonly string[];
  /** Key ids of the role whose signature did not verify (a subset of `missing`). */
  readonly invalid: readonly string[];
  /** Key ids that signed but are not keys of the role: they count for nothing. */
  readonly ignored: readonly string[];
}

export interface RoleVerifyOptions {
  /** Decodes the keys and checks the signatures. */
  crypto: CryptoProvider;
  /** The role being verified, for messages. */
  role: string;
  /** Key ids and threshold the delegator assigns to the role. */
  keyids: readonly string[];
  threshold: number;
  /** The delegator's key table (root.keys or delegations.keys). */
  keys: Readonly<Record<string, Key>>;
}

/**
 * Counts valid signatures over `signedBytes` by distinct keys of the role. A key id listed
 * twice, a repeated signature, or two key ids for the same key material count once.
 * Undecodable signatures and unknown key types count as missing; nothing here throws.
 */
export function verifyRoleSignatures(
  signedBytes: Uint8Array,
  signatures: readonly Signature[],
  options: RoleVerifyOptions,
): VerificationResult {
  return finish(verifyingRoleSignatures(signedBytes, signatures, options));
}

/** Signatures verified between two yields of the stepwise forms: a few milliseconds of work. */
export const SIGNATURES_PER_STEP = 16;

/** verifyRoleSignatures, yielding the role's name after every SIGNATURES_PER_STEP verifications. */
export function* verifyingRoleSignatures(
  signedBytes: Uint8Array,
  signatures: readonly Signature[],
  options: RoleVerifyOptions,
): Steps<VerificationResult> {
  let attempts = 0;
  const roleKeyids = new Set(options.keyids);
  const valid = new Set<string>();
  const invalid = new Set<string>();
  const ignored = new Set<string>();
  const materials = new Set<string>();
  const signed: string[] = [];
  for (const signature of signatures) {
    const keyid = signature.keyid;
    if (!roleKeyids.has(keyid)) {
      ignored.add(keyid);
      continue;
    }
    if (valid.has(keyid)) continue;
    const key = Object.hasOwn(options.keys, keyid) ? options.keys[keyid] : undefined;
    if (key !== undefined && ++attempts % SIGNATURES_PER_STEP === 0) yield options.role;
    if (key === undefined || !verifySignature(options.crypto, key, signature.sig, signedBytes)) {
      invalid.add(keyid);
      continue;
    }
    valid.add(keyid);
    invalid.delete(keyid);
    const material = keyMaterialId(options.crypto, key);
    if (materials.has(material)) continue;
    materials.add(material);
    signed.push(keyid);
  }
  const missing = [...roleKeyids].filter((k) => !valid.has(k));
  return {
    role: options.role,
    threshold: options.threshold,
    verified: signed.length >= options.threshold,
    signed,
    missing,
    invalid: [...invalid],
    ignored: [...ignored],
  };
}

export function verifyMetadataSignatures(metadata: Metadata, options: RoleVerifyOptions): VerificationResult {
  return verifyRoleSignatures(metadata.signedBytes, metadata.signatures, options);
}

/**
 * The delegator answers for its delegate: who signed `metadata` as `role`, counted against the keys
 * and threshold that `delegator` gives the role (root for the top-level roles, a targets role for
 * the roles it delegates). Never throws for signatures; NOT_FOUND when the delegator names no such role.
 */
export function verifyDelegate(
  crypto: CryptoProvider,
  delegator: Root | Targets,
  role: string,
  metadata: Metadata,
): VerificationResult {
  return finish(verifyingDelegate(crypto, delegator, role, metadata));
}

/** verifyDelegate, yielding between batches of signatures (verifyingRoleSignatures). */
export function* verifyingDelegate(
  crypto: CryptoProvider,
  delegator: Root | Targets,
  role: string,
  metadata: Metadata,
): Steps<VerificationResult> {
  if (delegator.type === 'root') {
    const roleKeys = Object.hasOwn(delegator.roles, role)
      ? delegator.roles[role as keyof Root['roles']]
      : undefined;
    if (roleKeys !== undefined) {
      return yield* verifyingRoleSignatures(metadata.signedBytes, metadata.signatures, {
        crypto,
        role,
        keyids: roleKeys.keyids,
        threshold: roleKeys.threshold,
        keys: delegator.keys,
      });
    }
  } else {
    const delegation = delegatedRoleNamed(delegator.delegations, role);
    if (delegation !== undefined) {
      return yield* verifyingRoleSignatures(metadata.signedBytes, metadata.signatures, {
        crypto,
        role,
        keyids: delegation.keyids,
        threshold: delegation.threshold,
        keys: delegator.delegations!.keys,
      });
    }
  }
  throw new TufaError('NOT_FOUND', `${role}: its delegator does not name it`, { role });
}

/** Throws THRESHOLD_NOT_MET (or BAD_SIGNATURE when signatures were present but wrong). */
export function assertVerified(result: VerificationResult, signer = 'its delegator'): void {
  if (result.verified) return;
  const code =
    result.invalid.length > 0 && result.signed.length === 0 ? 'BAD_SIGNATURE' : 'THRESHOLD_NOT_MET';
  throw new TufaError(
    code,
    `${result.role}: ${result.signed.length} of the ${result.threshold} required signatures by keys of ${signer}` +
      (result.invalid.length > 0 ? `; invalid signatures from ${result.invalid.join(', ')}` : ''),
    {
      role: result.role,
      expected: result.threshold,
      found: result.signed.length,
      details: {
        signed: result.signed,
        missing: result.missing,
        invalid: result.invalid,
        ignored: result.ignored,
      },
    },
  );
}
