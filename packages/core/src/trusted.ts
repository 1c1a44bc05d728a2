/**
 * The trusted-metadata set: every verification rule of the TUF client workflow (5.3–5.6),
 * in one place, shared by the client and the server. It only ever holds a valid set of
 * metadata: each update either accepts the new piece or throws a TufaError and leaves the
 * set exactly as it was. No I/O and no clock of its own: the reference time is given.
 */

import { type CryptoProvider, type HashAlgorithm, isHashAlgorithm } from './crypto.js';
import { delegatedRoleNamed } from './delegation.js';
import { bytesEqual, toHex } from './encoding.js';
import { TufaError } from './errors.js';
import {
  type Metadata,
  type MetaFile,
  metaFileName,
  parseMetadata,
  parseSignedEnvelope,
  type Root,
  type Signed,
  type Snapshot,
  type Targets,
  type Timestamp,
} from './metadata.js';
import {
  assertVerified,
  type VerificationResult,
  verifyDelegate,
  verifyMetadataSignatures,
} from './verify.js';

export interface UpdateOptions {
  /**
   * The bytes come from the local trusted cache rather than the repository: hashes and length
   * are not checked against the referring metadata, and an expired or not-final timestamp or
   * snapshot is still accepted as a baseline for rollback checks (it cannot be used as final).
   */
  cached?: boolean;
}

interface DelegatedEntry {
  readonly metadata: Metadata<Targets>;
  /** The delegators whose keys and threshold this metadata has been verified against. */
  readonly delegators: Set<string>;
}

/** Meta entries a client has no use for: never part of the rollback rule. */
const UNUSED_SNAPSHOT_ENTRIES = new Set(['root.json', 'timestamp.json', 'snapshot.json']);

export class TrustedMetadataSet {
  private _root: Metadata<Root>;
  private _timestamp: Metadata<Timestamp> | undefined;
  private _snapshot: Metadata<Snapshot> | undefined;
  private _targets: Metadata<Targets> | undefined;
  private readonly _delegated = new Map<string, DelegatedEntry>();
  /** The fixed update start time (ms since the epoch) every expiry is compared with. */
  readonly now: number;
  /** A publisher's view: expiry is not enforced (see fromTrustedRoot). */
  readonly allowExpired: boolean;

  /** Checks every signature and hash of this set. */
  private readonly crypto: CryptoProvider;

  private constructor(root: Metadata<Root>, now: number, allowExpired: boolean, crypto: CryptoProvider) {
    this._root = root;
    this.now = now;
    this.allowExpired = allowExpired;
    this.crypto = crypto;
  }

  /**
   * Starts from a trusted root (pinned, cached or trusted on first use). It must be signed by
   * the threshold of its own root keys; its expiry is not checked here (5.3.10 checks the final
   * root once the chain of rotations has been followed).
   *
   * `allowExpired` makes a publisher's view: every rule but expiry, so that a publisher can read the
   * current (expired) content of a role in order to re-sign it. Such a set must never answer a
   * lookup: clients never set it.
   */
  static fromTrustedRoot(
    bytes: Uint8Array,
    options: { now: number; allowExpired?: boolean; crypto: CryptoProvider },
  ): TrustedMetadataSet {
    if (!Number.isFinite(options.now))
      throw new TufaError('INVALID_ARGUMENT', 'reference time must be finite');
    const root = parseMetadata('root', bytes);
    assertVerified(
      rootVerification(options.crypto, root, root.signed),
      `root v${root.signed.version} itself`,
    );
    return new TrustedMetadataSet(root, options.now, options.allowExpired === true, options.crypto);
  }

  get root(): Metadata<Root> {
    return this._root;
  }
  get timestamp(): Metadata<Timestamp> | undefined {
    return this._timestamp;
  }
  get snapshot(): Metadata<Snapshot> | undefined {
    return this._snapshot;
  }
  get targets(): Metadata<Targets> | undefined {
    return this._targets;
  }

  /** A delegated role, as trusted through `delegator` (through any delegator when omitted). */
  delegated(role: string, delegator?: string): Metadata<Targets> | undefined {
    const entry = this._delegated.get(role);
    if (entry === undefined || (delegator !== undefined && !entry.delegators.has(delegator)))
      return undefined;
    return entry.metadata;
  }

  /** Every delegated role held, with the delegators it was verified through. */
  delegatedRoles(): { role: string; delegators: string[]; metadata: Metadata<Targets> }[] {
    return [...this._delegated.entries()].map(([role, entry]) => ({
      role,
      delegators: [...entry.delegators],
      metadata: entry.metadata,
    }));
  }

  /**
   * 5.3.4–5.3.9: root version N+1, signed by the threshold of root N's root keys and by the
   * threshold of its own. Expiry of this intermediate root is not checked.
   */
  updateRoot(bytes: Uint8Array): Metadata<Root> {
    if (this._timestamp !== undefined) {
      throw new TufaError('ORDER', 'root cannot be updated after timestamp has been loaded', {
        role: 'root',
      });
    }
    const trusted = this._root.signed;
    const next = parseMetadata('root', bytes);
    assertVerified(rootVerification(this.crypto, next, trusted), `root v${trusted.version}`);
    const expected = trusted.version + 1;
    if (next.signed.version !== expected) {
      throw new TufaError(
        next.signed.version <= trusted.version ? 'ROLLBACK' : 'VERSION_MISMATCH',
        `root: version ${next.signed.version} does not follow trusted version ${trusted.version}`,
        { role: 'root', expected, found: next.signed.version },
      );
    }
    assertVerified(rootVerification(this.crypto, next, next.signed), `root v${next.signed.version} itself`);
    this._root = next;
    return next;
  }

  /** 5.3.10: the final root must not be expired. */
  checkRootNotExpired(): void {
    this.checkExpiry(this._root.signed, 'root');
  }

  private checkExpiry(signed: Signed, role: string): void {
    if (!this.allowExpired) checkExpiry(signed, role, this.now);
  }

  /**
   * 5.4: timestamp signed by root's timestamp keys; never a lower version than the trusted one
   * (an equal version keeps the trusted one); its snapshot version never lower; not expired.
   */
  updateTimestamp(bytes: Uint8Array, options: UpdateOptions = {}): Metadata<Timestamp> {
    if (this._snapshot !== undefined) {
      throw new TufaError('ORDER', 'timestamp cannot be updated after snapshot has been loaded', {
        role: 'timestamp',
      });
    }
    this.checkRootNotExpired();
    const next = parseMetadata('timestamp', bytes);
    assertVerified(this.verifyTopLevel(next, 'timestamp'), 'root');
    const trusted = this._timestamp?.signed;
    if (trusted !== undefined) {
      if (next.signed.version < trusted.version) {
        throw new TufaError(
          'ROLLBACK',
          `timestamp: version ${next.signed.version} is lower than trusted version ${trusted.version}`,
          { role: 'timestamp', expected: `>= ${trusted.version}`, found: next.signed.version },
        );
      }
      // 5.4.3.1: keep the trusted one. Its expiry is checked before snapshot is loaded (updateSnapshot).
      if (next.signed.version === trusted.version) return this._timestamp!;
      if (next.signed.snapshotMeta.version < trusted.snapshotMeta.version) {
        throw new TufaError(
          'ROLLBACK',
          `timestamp: snapshot version ${next.signed.snapshotMeta.version} is lower than trusted ${trusted.snapshotMeta.version}`,
          {
            role: 'snapshot',
            expected: `>= ${trusted.snapshotMeta.version}`,
            found: next.signed.snapshotMeta.version,
          },
        );
      }
    }
    if (!options.cached) this.checkExpiry(next.signed, 'timestamp');
    this._timestamp = next;
    return next;
  }

  /**
   * 5.5: snapshot with the hash and length the timestamp states; signed by root's snapshot
   * keys; no targets role of the trusted snapshot missing or lower; version equal to the
   * timestamp's; not expired. A cached snapshot may fail the last two and still serve as the
   * baseline for the rollback rule.
   */
  updateSnapshot(bytes: Uint8Array, options: UpdateOptions = {}): Metadata<Snapshot> {
    if (this._timestamp === undefined) {
      throw new TufaError('ORDER', 'snapshot cannot be loaded before timestamp', { role: 'snapshot' });
    }
    if (this._targets !== undefined) {
      throw new TufaError('ORDER', 'snapshot cannot be updated after targets has been loaded', {
        role: 'snapshot',
      });
    }
    this.checkExpiry(this._timestamp.signed, 'timestamp');
    const expectedMeta = this._timestamp.signed.snapshotMeta;
    if (!options.cached) checkLengthAndHashes(this.crypto, bytes, expectedMeta, 'snapshot');
    const next = parseMetadata('snapshot', bytes);
    assertVerified(this.verifyTopLevel(next, 'snapshot'), 'root');
    const trusted = this._snapshot?.signed;
    if (trusted !== undefined) {
      if (next.signed.version < trusted.version) {
        throw new TufaError(
          'ROLLBACK',
          `snapshot: version ${next.signed.version} is lower than trusted version ${trusted.version}`,
          { role: 'snapshot', expected: `>= ${trusted.version}`, found: next.signed.version },
        );
      }
      for (const [name, old] of Object.entries(trusted.meta)) {
        if (UNUSED_SNAPSHOT_ENTRIES.has(name)) continue;
        const now = Object.hasOwn(next.signed.meta, name) ? next.signed.meta[name] : undefined;
        const role = name.slice(0, -'.json'.length);
        if (now === undefined) {
          throw new TufaError(
            'ROLLBACK',
            `snapshot: ${name} was listed in the trusted snapshot and is missing`,
            {
              role,
              expected: old.version,
              found: 'missing',
            },
          );
        }
        if (now.version < old.version) {
          throw new TufaError(
            'ROLLBACK',
            `snapshot: ${name} version ${now.version} is lower than trusted ${old.version}`,
            {
              role,
              expected: `>= ${old.version}`,
              found: now.version,
            },
          );
        }
      }
    }
    if (!options.cached) checkFinalSnapshot(next.signed, expectedMeta, this.now, this.allowExpired);
    this._snapshot = next;
    return next;
  }

  /** True when the held snapshot can be used as final (version as the timestamp says; not expired). */
  snapshotIsFinal(): boolean {
    if (this._snapshot === undefined || this._timestamp === undefined) return false;
    try {
      checkFinalSnapshot(
        this._snapshot.signed,
        this._timestamp.signed.snapshotMeta,
        this.now,
        this.allowExpired,
      );
      return true;
    } catch {
      return false;
    }
  }

  /** 5.6: top-level targets, as the snapshot states it, signed by root's targets keys, not expired. */
  updateTargets(bytes: Uint8Array, options: UpdateOptions = {}): Metadata<Targets> {
    if (this._targets !== undefined) {
      throw new TufaError('ORDER', 'targets has already been loaded in this update', { role: 'targets' });
    }
    const snapshot = this.finalSnapshot('targets');
    const meta = snapshot.meta['targets.json']!;
    if (!options.cached) checkLengthAndHashes(this.crypto, bytes, meta, 'targets');
    // Entries left as bytes until read: a refresh and one lookup never make 100,000 of them.
    const next = parseSignedEnvelope('targets', bytes, { targetsOnDemand: true }).metadata;
    assertVerified(this.verifyTopLevel(next, 'targets'), 'root');
    checkMetaVersion(next.signed, meta, 'targets');
    this.checkExpiry(next.signed, 'targets');
    this._targets = next;
    return next;
  }

  /**
   * 5.6 for a delegated role: listed in the snapshot, delegated by `delegator` (already
   * trusted), signed by the delegator's keys for it at its threshold, not expired. A role that
   * two delegators name is verified separately against each.
   */
  updateDelegatedTargets(
    bytes: Uint8Array,
    role: string,
    delegator: string,
    options: UpdateOptions = {},
  ): Metadata<Targets> {
    const parent = delegator === 'targets' ? this._targets : this._delegated.get(delegator)?.metadata;
    if (parent === undefined) {
      throw new TufaError('ORDER', `${role}: its delegator ${delegator} has not been loaded`, { role });
    }
    const delegation = delegatedRoleNamed(parent.signed.delegations, role);
    if (delegation === undefined) {
      throw new TufaError('NOT_FOUND', `${role}: ${delegator} does not delegate to it`, { role });
    }
    const snapshot = this.finalSnapshot(role);
    const fileName = metaFileName(role);
    const meta = Object.hasOwn(snapshot.meta, fileName) ? snapshot.meta[fileName] : undefined;
    if (meta === undefined) {
      throw new TufaError('NOT_FOUND', `${role}: not listed in snapshot`, { role, expected: fileName });
    }
    if (!options.cached) checkLengthAndHashes(this.crypto, bytes, meta, role);
    const next = parseSignedEnvelope('targets', bytes, { role, targetsOnDemand: true }).metadata;
    assertVerified(verifyDelegate(this.crypto, parent.signed, role, next), delegator);
    checkMetaVersion(next.signed, meta, role);
    this.checkExpiry(next.signed, role);
    const held = this._delegated.get(role);
    if (held !== undefined && bytesEqual(held.metadata.signedBytes, next.signedBytes)) {
      held.delegators.add(delegator);
      return held.metadata;
    }
    this._delegated.set(role, { metadata: next, delegators: new Set([delegator]) });
    return next;
  }

  /** The signature status of top-level metadata against the trusted root (for messages and tools). */
  verifyTopLevel(metadata: Metadata, role: 'timestamp' | 'snapshot' | 'targets'): VerificationResult {
    return verifyDelegate(this.crypto, this._root.signed, role, metadata);
  }

  private finalSnapshot(role: string): Snapshot {
    if (this._snapshot === undefined || this._timestamp === undefined) {
      throw new TufaError('ORDER', `${role} cannot be loaded before snapshot`, { role });
    }
    checkFinalSnapshot(
      this._snapshot.signed,
      this._timestamp.signed.snapshotMeta,
      this.now,
      this.allowExpired,
    );
    return this._snapshot.signed;
  }
}

function rootVerification(crypto: CryptoProvider, metadata: Metadata, by: Root): VerificationResult {
  return verifyDelegate(crypto, by, 'root', metadata);
}

/** EXPIRED unless `signed` expires after `now` (the spec's rule: expires <= now is expired). */
export function checkExpiry(signed: Signed, role: string, now: number): void {
  if (signed.expiresAt <= now) {
    throw new TufaError('EXPIRED', `${role}: expired at ${signed.expires}`, {
      role,
      expected: `expires after ${new Date(now).toISOString()}`,
      found: signed.expires,
    });
  }
}

function checkFinalSnapshot(snapshot: Snapshot, meta: MetaFile, now: number, allowExpired: boolean): void {
  if (snapshot.version !== meta.version) {
    throw new TufaError(
      snapshot.version < meta.version ? 'ROLLBACK' : 'VERSION_MISMATCH',
      `snapshot: version ${snapshot.version} is not the version ${meta.version} that timestamp states`,
      { role: 'snapshot', expected: meta.version, found: snapshot.version },
    );
  }
  if (!allowExpired) checkExpiry(snapshot, 'snapshot', now);
}

function checkMetaVersion(signed: Targets, meta: MetaFile, role: string): void {
  if (signed.version !== meta.version) {
    throw new TufaError(
      signed.version < meta.version ? 'ROLLBACK' : 'VERSION_MISMATCH',
      `${role}: version ${signed.version} is not the version ${meta.version} that snapshot states`,
      { role, expected: meta.version, found: signed.version },
    );
  }
}

/** Length and every hash the referring metadata states for these bytes (5.5.2, 5.6.2). */
export function checkLengthAndHashes(
  crypto: CryptoProvider,
  bytes: Uint8Array,
  meta: { length?: number | undefined; hashes?: Readonly<Record<string, string>> | undefined },
  role: string,
): void {
  checkStatedLengthAndHashes(
    { length: bytes.length, digest: (algorithm) => toHex(crypto.hash(algorithm, bytes)) },
    meta,
    role,
  );
}

/** checkLengthAndHashes for a document known by its length and digests (hex), e.g. a stored row's. */
export function checkStatedLengthAndHashes(
  found: { readonly length: number; digest(algorithm: HashAlgorithm): string },
  meta: { length?: number | undefined; hashes?: Readonly<Record<string, string>> | undefined },
  role: string,
): void {
  if (meta.length !== undefined && found.length !== meta.length) {
    throw new TufaError(
      'LENGTH_MISMATCH',
      `${role}: ${found.length} bytes where ${meta.length} were stated`,
      {
        role,
        expected: meta.length,
        found: found.length,
      },
    );
  }
  if (meta.hashes === undefined) return;
  const known = Object.keys(meta.hashes).filter(isHashAlgorithm);
  if (known.length === 0) {
    throw new TufaError('HASH_MISMATCH', `${role}: none of the stated hash algorithms is supported`, {
      role,
      expected: Object.keys(meta.hashes).join(', '),
    });
  }
  for (const algorithm of known) {
    const digest = found.digest(algorithm);
    const expected = meta.hashes[algorithm]!;
    if (digest !== expected) {
      throw new TufaError('HASH_MISMATCH', `${role}: ${algorithm} does not match`, {
        role,
        expected,
        found: digest,
      });
    }
  }
}

export interface RootPins {
  /** Key ids of which `threshold` must have signed the root. */
  keyids: readonly string[];
  threshold?: number;
}

/**
 * Checks a root against pinned key ids (the first root a client trusts): `threshold` (default 1)
 * of the pinned keys, as the root itself lists them, must have signed it. UNTRUSTED_ROOT if not.
 */
export function checkRootPins(
  crypto: CryptoProvider,
  root: Metadata<Root>,
  pins: RootPins,
): VerificationResult {
  const threshold = pins.threshold ?? 1;
  const result = verifyMetadataSignatures(root, {
    crypto,
    role: 'root',
    keyids: pins.keyids,
    threshold,
    keys: root.signed.keys,
  });
  if (!result.verified) {
    throw new TufaError(
      'UNTRUSTED_ROOT',
      `root v${root.signed.version}: signed by ${result.signed.length} of the ${threshold} pinned keys required`,
      {
        role: 'root',
        expected: [...pins.keyids],
        found: result.signed,
        details: { missing: result.missing },
      },
    );
  }
  return result;
}
