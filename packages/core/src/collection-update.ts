/**
 * The repository side of the rules, in one place: a collection update, the counterpart of the
 * client's TrustedMetadataSet. It starts from a collection's current trusted state and accepts a
 * writer's documents in order (root, targets, delegated roles, snapshot). Each step throws a
 * TufaError for whatever is wrong regardless of signatures (malformed, not the next version,
 * expired, a bad delegation, targets outside the delegated paths) and otherwise returns the role's
 * signature status per threshold, without throwing: who signed, who is missing. `commit()` is the
 * server's upload check (every threshold met); `partial()` is threshold signing's (at least one
 * valid signature per role, none that counts for nothing); planners read `status()`.
 *
 * The delegator answers for its delegate (verifyDelegate): root for targets and snapshot, a targets
 * role for the roles it delegates; top-level targets is the delegated-targets step with root as its
 * delegator. Pure: the state, the documents, the reference time and the server's key ids are given.
 */

import type { CryptoProvider } from './crypto.js';
import { isHashAlgorithm } from './crypto.js';
import { allDelegatedRoles, delegatedRoleCount, delegatedRoleNamed, isDelegatedPath } from './delegation.js';
import { TufaError } from './errors.js';
import type { Key } from './keys.js';
import {
  type DelegatedRole,
  type Metadata,
  type MetaFile,
  metaFileName,
  type Root,
  type Snapshot,
  type Targets,
} from './metadata.js';
import { finish, type UpdateSteps } from './steps.js';
import { checkExpiry, checkLengthAndHashes, checkStatedLengthAndHashes } from './trusted.js';
import {
  type CollectionState,
  entryOf,
  isValidRoleName,
  metaFileOfEntry,
  parseUploaded,
  type SnapshotChanges,
  type StoredDelegatedRoles,
  type StoredRole,
  storedDelegatedRoles,
  storedSnapshotMeta,
  type ValidatedUpdate,
  type ValidateUpdateOptions,
} from './update.js';
import { assertVerified, type VerificationResult, verifyingDelegate } from './verify.js';

/** One threshold a role must meet. */
export interface ThresholdStatus {
  /** Whose keys: `root v3` (the trusted root), `root v4` (the new root itself), or a delegator (`root`, `targets`, …). */
  readonly by: string;
  readonly threshold: number;
  /** Key ids of the role with a valid signature. */
  readonly signed: readonly string[];
  /** Key ids of the role that have not signed. */
  readonly missing: readonly string[];
  /** Signatures still needed to meet the threshold. */
  readonly needed: number;
  readonly verified: boolean;
}

/** The signature status of one role of an update. */
export interface RoleStatus {
  readonly role: string;
  readonly version: number;
  /** Every one must be met (root on a rotation: the trusted root's and its own), unless `oneOf`. */
  readonly thresholds: readonly ThresholdStatus[];
  readonly complete: boolean;
  /** Present when one of the thresholds is enough: a delegated role that several delegators name. */
  readonly oneOf?: true;
  /** Present for a stored role the update does not carry, checked again because a role trusting it changed. */
  readonly kept?: true;
}

export interface CollectionUpdateOptions {
  readonly current: CollectionState;
  /** Checks every signature and hash of the update. */
  readonly crypto: CryptoProvider;
  /** Reference time, ms since the epoch. */
  readonly now: number;
  /**
   * Key ids of the online keys the server holds for this collection. A planner or co-signer that
   * does not know them leaves them out: root's timestamp role is then checked against its own keys,
   * the snapshot decision is left to the server, and the update cannot be committed.
   */
  readonly serverKeyids?: { readonly timestamp: readonly string[]; readonly snapshot: readonly string[] };
  /**
   * The stored versions of targets roles (and snapshot) that the update uploads, left out of
   * `current`: a role an update replaces is read for its version only (the next must be one more),
   * so a server need not load a large document only to replace it. Each must be uploaded.
   */
  readonly replacedVersions?: ReadonlyMap<string, number> | undefined;
}

/** Most roles one update may carry: bounds the work a single request can cause. */
export const MAX_ROLES_PER_UPDATE = 1000;

/** `what` ('an update', 'a proposal') carries 1 to MAX_ROLES_PER_UPDATE roles. */
export function checkRoleCount(uploads: ReadonlyMap<string, Uint8Array>, what: string): void {
  if (uploads.size === 0) throw new TufaError('INVALID_ARGUMENT', `${what} must carry at least one role`);
  if (uploads.size > MAX_ROLES_PER_UPDATE) {
    throw new TufaError('TOO_LARGE', `${what} carries at most ${MAX_ROLES_PER_UPDATE} roles`, {
      expected: MAX_ROLES_PER_UPDATE,
      found: uploads.size,
    });
  }
}

/** Versions move by exactly one: lower or equal is a rollback (or a lost race), higher a gap. */
export function checkNextVersion(role: string, found: number, current: number | undefined): void {
  const expected = (current ?? 0) + 1;
  if (found === expected) return;
  throw new TufaError(
    found < expected ? 'ROLLBACK' : 'VERSION_MISMATCH',
    `${role}: version ${found} is not the next version ${expected}`,
    { role, expected, found, details: { current: current ?? null } },
  );
}

/** Keys named by a role must be in the key table, and the threshold must be reachable. */
export function checkRoleKeys(
  role: string,
  keyids: readonly string[],
  threshold: number,
  keys: Readonly<Record<string, Key>>,
  where: string,
): void {
  const unknown = keyids.filter((id) => !Object.hasOwn(keys, id));
  if (unknown.length > 0) {
    throw new TufaError('INVALID_METADATA', `${where}: ${role} names keys that are not listed`, {
      role,
      found: unknown,
    });
  }
  if (threshold > keyids.length) {
    throw new TufaError('INVALID_METADATA', `${where}: ${role} threshold ${threshold} cannot be met`, {
      role,
      expected: `<= ${keyids.length}`,
      found: threshold,
    });
  }
}

const ROLE_NAME_RULE = 'segments of [A-Za-z0-9._-] separated by /, not VERSION.NAME';

export function checkDelegationsWellFormed(targets: Targets, role: string): void {
  const d = targets.delegations;
  if (d === undefined) return;
  const succinct = d.succinctRoles;
  if (succinct !== undefined) {
    // Every bin's name must be a valid role name: checking the first checks them all (same shape).
    const first = `${succinct.namePrefix}-${'0'.repeat(Math.ceil(succinct.bitLength / 4))}`;
    if (!isValidRoleName(first)) {
      throw new TufaError(
        'INVALID_METADATA',
        `${role}: succinct bin names such as ${JSON.stringify(first)}`,
        {
          role,
          found: succinct.namePrefix,
          expected: ROLE_NAME_RULE,
        },
      );
    }
    checkRoleKeys(`${succinct.namePrefix}-*`, succinct.keyids, succinct.threshold, d.keys, role);
  }
  for (const child of d.roles) {
    if (!isValidRoleName(child.name)) {
      throw new TufaError('INVALID_METADATA', `${role}: delegated role name ${JSON.stringify(child.name)}`, {
        role,
        found: child.name,
        expected: ROLE_NAME_RULE,
      });
    }
    checkRoleKeys(child.name, child.keyids, child.threshold, d.keys, role);
  }
}

/** A new root's roles name listed keys at reachable thresholds; timestamp is the server's key. */
export function checkRootRoles(r: Root, serverTimestampKeyids: readonly string[]): void {
  for (const name of ['root', 'timestamp', 'snapshot', 'targets'] as const) {
    checkRoleKeys(name, r.roles[name].keyids, r.roles[name].threshold, r.keys, 'root');
  }
  const ts = r.roles.timestamp;
  if (ts.threshold !== 1 || !ts.keyids.some((id) => serverTimestampKeyids.includes(id))) {
    throw new TufaError('INVALID_METADATA', "root: the timestamp role must be the server's timestamp key", {
      role: 'timestamp',
      expected: { keyids: serverTimestampKeyids, threshold: 1 },
      found: { keyids: ts.keyids, threshold: ts.threshold },
    });
  }
}

/** True when the server signs snapshot for this root: its snapshot role is one of the server's keys, threshold 1. */
export function isSnapshotOnline(root: Root, serverSnapshotKeyids: readonly string[]): boolean {
  const snap = root.roles.snapshot;
  return snap.threshold === 1 && snap.keyids.some((id) => serverSnapshotKeyids.includes(id));
}

/** Signatures still needed for a role: the sum over its thresholds, or the fewest of them with `oneOf`. */
export function signaturesNeeded(status: RoleStatus): number {
  const needed = status.thresholds.map((t) => t.needed);
  return status.oneOf ? Math.min(...needed) : needed.reduce((n, x) => n + x, 0);
}

/** One threshold as counted: `signer` names the keys in a refusal (`root v2 itself`, `targets`). */
interface Counted {
  readonly by: string;
  readonly signer: string;
  readonly result: VerificationResult;
}

interface RoleCheck {
  readonly status: RoleStatus;
  /** The document checked; not held for a stored role checked again (a bin upload's delegator may name 16,384). */
  readonly metadata: Metadata | undefined;
  readonly counted: readonly Counted[];
}

/** Stored roles asked for at once when an update checks them again: bounds what is parsed at a time. */
const STORED_BATCH = 256;

/** A role that delegates `name`: root (for targets) or a targets role with its delegation's paths. */
interface Delegator {
  readonly name: string;
  readonly signed: Root | Targets;
}

const ROOT = 0;
const TARGETS = 1;
const DELEGATED = 2;
const SNAPSHOT = 3;
const DONE = 4;
const STEP_NAMES = ['root', 'targets', 'delegated roles', 'snapshot', 'the commit'];

export class CollectionUpdate {
  private readonly current: CollectionState;
  private readonly now: number;
  private readonly crypto: CryptoProvider;
  private readonly serverKeyids: CollectionUpdateOptions['serverKeyids'];
  private readonly replaced: ReadonlyMap<string, number>;
  private step = ROOT;
  private root: StoredRole<Root> | undefined;
  private targets: StoredRole<Targets> | undefined;
  /** The collection's delegated roles as stored (parsed on request when the state came from a store). */
  private readonly stored: StoredDelegatedRoles;
  /** The state was given parsed: every stored role is at hand, and the result holds them all. */
  private readonly storedParsed: boolean;
  /** The stored roles that delegate: the only ones that may be another role's delegator. */
  private readonly storedDelegators: ReadonlySet<string>;
  /** The delegated roles this update carries, as read. */
  private readonly carried = new Map<string, StoredRole<Targets>>();
  private snapshot: StoredRole<Snapshot> | undefined;
  private _snapshotOnline: boolean | undefined;
  /** Every role checked, uploaded or kept, in the order checked. */
  private readonly checks = new Map<string, RoleCheck>();
  private readonly changed: { role: string; version: number; bytes: Uint8Array }[] = [];

  constructor(options: CollectionUpdateOptions) {
    this.current = options.current;
    this.now = options.now;
    this.crypto = options.crypto;
    this.serverKeyids = options.serverKeyids;
    this.replaced = options.replacedVersions ?? new Map();
    this.stored = storedDelegatedRoles(options.crypto, options.current.delegated);
    this.storedParsed = this.stored !== options.current.delegated;
    this.storedDelegators = new Set(this.stored.delegating);
  }

  /** A delegated role of the would-be state, when at hand: the update's own, else the stored one. */
  private delegatedRole(name: string): StoredRole<Targets> | undefined {
    return this.carried.get(name) ?? this.stored.document(name);
  }

  /** The roles that may delegate in the would-be state, in the stored order, then the update's new ones. */
  private *delegatingRoles(): Generator<[string, StoredRole<Targets>]> {
    for (const name of this.storedDelegators) {
      const role = this.delegatedRole(name);
      if (role === undefined) {
        throw new TufaError('INTERNAL', `${name}: a stored delegating role was not loaded`, { role: name });
      }
      yield [name, role];
    }
    for (const [name, role] of this.carried) {
      // A role without delegations delegates to none: an upload of 1,000 bins is not 1,000² lookups.
      if (this.storedDelegators.has(name) || role.metadata.signed.delegations === undefined) continue;
      yield [name, role];
    }
  }

  /** Asks the caller for the stored documents of `names` not at hand (a store parses them on request). */
  private *requesting(names: readonly string[]): UpdateSteps<void> {
    const missing = names.filter((name) => this.stored.document(name) === undefined);
    if (missing.length === 0) return;
    yield { load: missing };
    for (const name of missing) {
      if (this.stored.document(name) === undefined) {
        throw new TufaError('INTERNAL', `${name}: a stored role asked for was not loaded`, { role: name });
      }
    }
  }

  /**
   * Every document of an update, in the rules' order (never a timestamp: the server signs it).
   * Delegated roles are all read before any is checked, since one may delegate to another of the
   * same update.
   */
  apply(uploads: ReadonlyMap<string, Uint8Array>): readonly RoleStatus[] {
    return finish(this.applying(uploads));
  }

  /**
   * apply(), one role at a time: yields each role's name once it is read or checked, so that a
   * caller may let other work run between them (the server's event loop). Returns what apply does.
   */
  *applying(uploads: ReadonlyMap<string, Uint8Array>): UpdateSteps<readonly RoleStatus[]> {
    if (uploads.has('timestamp')) {
      throw new TufaError('UPDATE_REFUSED', 'timestamp is signed by the server and cannot be uploaded', {
        role: 'timestamp',
      });
    }
    this.checkReplaced(uploads);
    const root = uploads.get('root');
    if (root !== undefined) {
      yield* this.rootStep(root);
      yield 'root';
    }
    const targets = uploads.get('targets');
    if (targets !== undefined) {
      this.readDelegated(targets, 'targets');
      yield* this.checkingDelegate('targets', false);
      yield 'targets';
    }
    const names: string[] = [];
    for (const [name, bytes] of uploads) {
      if (name === 'root' || name === 'targets' || name === 'snapshot' || name === 'timestamp') continue;
      this.readDelegated(bytes, name);
      names.push(name);
      yield name;
    }
    for (const name of names) {
      yield* this.checkingDelegate(name, false);
      yield name;
    }
    const snapshot = uploads.get('snapshot');
    if (snapshot !== undefined) {
      if (this.step < SNAPSHOT) yield* this.advancing(SNAPSHOT);
      yield* this.snapshotStep(snapshot);
      yield 'snapshot';
    }
    return this.uploadedStatus();
  }

  /**
   * Root: v1 signed by itself, or the next version signed by the trusted root's threshold and by
   * its own (5.3.4-5.3.9), not expired (5.3.10), its roles naming listed keys, timestamp the server's.
   */
  updateRoot(bytes: Uint8Array): RoleStatus {
    return finish(this.rootStep(bytes));
  }

  private *rootStep(bytes: Uint8Array): UpdateSteps<RoleStatus> {
    this.enter(ROOT, 'root');
    const next = parseUploaded('root', bytes, 'root');
    const signed = next.metadata.signed;
    const trusted = this.current.root?.metadata.signed;
    checkSignatureCount('root', next.metadata, [
      ...(trusted?.roles.root.keyids ?? []),
      ...signed.roles.root.keyids,
    ]);
    const counted: Counted[] = [];
    if (trusted !== undefined) {
      const byTrusted = yield* this.verifying(trusted, 'root', next.metadata);
      this.checkNotCreatedAgain(signed, trusted, byTrusted);
      counted.push({ by: `root v${trusted.version}`, signer: `root v${trusted.version}`, result: byTrusted });
    }
    checkNextVersion('root', signed.version, trusted?.version);
    const byItself = yield* this.verifying(signed, 'root', next.metadata);
    counted.push({
      by: `root v${signed.version}`,
      signer: `root v${signed.version} itself`,
      result: byItself,
    });
    checkExpiry(signed, 'root', this.now);
    checkRootRoles(signed, this.serverKeyids?.timestamp ?? signed.roles.timestamp.keyids);
    this.root = next;
    return this.accepted(next, bytes, counted, TARGETS);
  }

  /** Top-level targets: the delegated-targets step, with root as the delegator. */
  updateTargets(bytes: Uint8Array): RoleStatus {
    return this.updateDelegatedTargets(bytes, 'targets');
  }

  /**
   * A targets role: the next version, not expired, its delegations well formed, signed by the keys
   * its delegator gives it; a delegated role must be inside the paths of a delegator that names it.
   */
  updateDelegatedTargets(bytes: Uint8Array, role: string): RoleStatus {
    this.readDelegated(bytes, role);
    return this.checkDelegate(role, false);
  }

  /**
   * A client-signed snapshot (the collection keeps its snapshot key offline): signed by root's
   * snapshot keys, the next version, not expired, listing exactly the targets roles as stored.
   */
  updateSnapshot(bytes: Uint8Array): RoleStatus {
    return finish(this.snapshotStep(bytes));
  }

  private *snapshotStep(bytes: Uint8Array): UpdateSteps<RoleStatus> {
    this.enter(SNAPSHOT, 'snapshot');
    if (this._snapshotOnline === true) {
      throw new TufaError('UPDATE_REFUSED', 'the server holds the snapshot key: do not upload snapshot', {
        role: 'snapshot',
      });
    }
    const snapshot = parseUploaded('snapshot', bytes, 'snapshot');
    const s = snapshot.metadata.signed;
    checkSignatureCount('snapshot', snapshot.metadata, this.root!.metadata.signed.roles.snapshot.keyids);
    const result = yield* this.verifying(this.root!.metadata.signed, 'snapshot', snapshot.metadata);
    const counted = [{ by: 'root', signer: 'root', result }];
    checkNextVersion('snapshot', s.version, this.storedVersion('snapshot'));
    checkExpiry(s, 'snapshot', this.now);
    yield* this.checkingSnapshotMatches(s);
    this.snapshot = snapshot;
    return this.accepted(snapshot, bytes, counted, DONE);
  }

  /** The document an accepted step of the update carries for `role`. */
  document(role: string): Metadata {
    const check = this.checks.get(role);
    // Kept roles are recorded under `NAME (kept)`: every check found by a role's name holds its document.
    if (check?.metadata === undefined) {
      throw new TufaError('NOT_FOUND', `${role} is not part of this update`, { role });
    }
    return check.metadata;
  }

  /** True when the server signs snapshot (undefined without the server's key ids); known once root is. */
  get snapshotOnline(): boolean | undefined {
    return this._snapshotOnline;
  }

  /**
   * The status of every role checked, the stored ones checked again included. No targets or
   * delegated role can be added after it: the roles kept from the current state are decided.
   */
  status(): readonly RoleStatus[] {
    this.advance(SNAPSHOT);
    return [...this.checks.values()].map((c) => c.status);
  }

  /**
   * Threshold signing: every uploaded role signed by at least one key of the role, and every
   * signature valid and by a key of the role for at least one of its thresholds (a co-signer who
   * sees a signature must be able to trust that it is what it says); a stored role the update
   * leaves untrusted cannot be signed into trust, so it is refused. Returns the uploaded roles' status.
   */
  partial(): readonly RoleStatus[] {
    return finish(this.partialling());
  }

  /** partial(), yielding each stored role checked again (see applying). */
  *partialling(): UpdateSteps<readonly RoleStatus[]> {
    yield* this.advancing(SNAPSHOT);
    for (const check of this.checks.values()) {
      const role = check.status.role;
      if (check.status.kept) {
        if (check.status.complete) continue;
        throw new TufaError(
          'UPDATE_REFUSED',
          `the proposed ${check.counted[0]!.by} changes who signs ${role}: propose ${role}, signed by the new keys, with it`,
          { role },
        );
      }
      checkSignaturesCount(
        role,
        check.metadata!,
        check.counted.map((c) => c.result),
      );
    }
    return this.uploadedStatus();
  }

  /**
   * The server's upload check: every threshold of every role met (the stored ones checked again
   * included), and a snapshot uploaded whenever the collection keeps its snapshot key offline and
   * the stored one no longer describes the collection. Returns the would-be new state.
   */
  commit(): ValidatedUpdate {
    return finish(this.committing());
  }

  /** commit(), yielding the name of each stored role as it is checked again (see applying). */
  *committing(): UpdateSteps<ValidatedUpdate> {
    if (this.serverKeyids === undefined) {
      throw new TufaError('INVALID_ARGUMENT', "an update is committed against the server's online key ids");
    }
    yield* this.advancing(DONE);
    for (const check of this.checks.values()) {
      if (check.status.complete) continue;
      const unmet = check.counted.find((c) => !c.result.verified)!;
      assertVerified(unmet.result, unmet.signer);
    }
    const root = this.root!;
    const snapshotOnline = this._snapshotOnline === true;
    if (this.snapshot === undefined && !snapshotOnline) {
      const targetsChanged = this.changed.some((c) => c.role !== 'root');
      const stale =
        targetsChanged ||
        this.current.snapshot === undefined ||
        !this.verify(root.metadata.signed, 'snapshot', this.current.snapshot.metadata).verified;
      if (stale) {
        throw new TufaError(
          'UPDATE_REFUSED',
          'the collection keeps its snapshot key offline: upload a snapshot signed by it with this update',
          { role: 'snapshot' },
        );
      }
    }
    const targets = this.targets!;
    const delegated = new Map<string, StoredRole<Targets>>();
    if (this.storedParsed) {
      for (const name of this.stored.entries.keys()) delegated.set(name, this.delegatedRole(name)!);
    }
    for (const [name, role] of this.delegatingRoles()) delegated.set(name, role);
    for (const [name, role] of this.carried) delegated.set(name, role);
    return {
      root,
      targets,
      delegated,
      declared: declaredRoles([targets, ...[...this.delegatingRoles()].map(([, role]) => role)]),
      snapshotMeta: () => this.snapshotMeta(targets),
      snapshotChanges: () => this.snapshotChanges(targets),
      snapshot: this.snapshot,
      snapshotOnline,
      changed: this.changed,
    };
  }

  /** The would-be snapshot meta: the uploaded roles' from their bytes, the stored ones' from their entries. */
  private snapshotMeta(targets: StoredRole<Targets>): Record<string, MetaFile> {
    const meta = storedSnapshotMeta(this.stored);
    for (const [name, entry] of this.changedEntries(targets)) meta[name] = entry;
    return meta;
  }

  /** The snapshot entries the update sets: targets.json, and each uploaded role's from its bytes. */
  private changedEntries(targets: StoredRole<Targets>): Map<string, MetaFile> {
    const changes = new Map<string, MetaFile>();
    changes.set(metaFileName('targets'), metaFileOfEntry(entryOf(this.crypto, targets)));
    for (const [name, role] of this.carried)
      changes.set(metaFileName(name), metaFileOfEntry(entryOf(this.crypto, role)));
    return changes;
  }

  /** The would-be snapshot as the indexed stored one and the entries the update sets (see snapshotMeta). */
  private snapshotChanges(targets: StoredRole<Targets>): SnapshotChanges | undefined {
    const base = this.stored.snapshotIndex;
    return base === undefined ? undefined : { base, changes: this.changedEntries(targets) };
  }

  /**
   * A client-signed snapshot must list exactly the collection's targets roles, as they will be
   * stored: an uploaded role checked against its bytes, a stored one against its entry (its
   * bytes only when the snapshot states a hash its entry does not know).
   */
  private *checkingSnapshotMatches(snapshot: Snapshot): UpdateSteps<void> {
    const targets = this.targets!;
    const listed = (role: string): MetaFile => {
      const name = metaFileName(role);
      const meta = Object.hasOwn(snapshot.meta, name) ? snapshot.meta[name] : undefined;
      if (meta === undefined) {
        throw new TufaError('INVALID_METADATA', `snapshot: ${name} is missing`, { role, expected: name });
      }
      return meta;
    };
    const checkVersion = (role: string, meta: MetaFile, version: number) => {
      if (meta.version === version) return;
      throw new TufaError(
        'VERSION_MISMATCH',
        `snapshot: ${metaFileName(role)} version ${meta.version} is not ${version}`,
        {
          role,
          expected: version,
          found: meta.version,
        },
      );
    };
    const checkDocument = (role: string, stored: StoredRole<Targets>) => {
      const meta = listed(role);
      checkVersion(role, meta, stored.metadata.signed.version);
      checkLengthAndHashes(this.crypto, stored.bytes, meta, role);
    };
    checkDocument('targets', targets);
    const withBytes: string[] = [];
    for (const [name, entry] of this.stored.entries) {
      const carried = this.carried.get(name) ?? (this.storedParsed ? this.stored.document(name) : undefined);
      if (carried !== undefined) {
        checkDocument(name, carried);
        continue;
      }
      const meta = listed(name);
      checkVersion(name, meta, entry.version);
      const hashes = Object.keys(meta.hashes ?? {}).filter(isHashAlgorithm);
      if (hashes.some((algorithm) => algorithm !== 'sha256')) withBytes.push(name);
      else {
        checkStatedLengthAndHashes({ length: entry.length, digest: () => entry.sha256 }, meta, name);
      }
    }
    for (let i = 0; i < withBytes.length; i += STORED_BATCH) {
      const batch = withBytes.slice(i, i + STORED_BATCH);
      yield* this.requesting(batch);
      for (const name of batch) checkDocument(name, this.stored.document(name)!);
    }
    for (const [name, role] of this.carried) if (!this.stored.entries.has(name)) checkDocument(name, role);
    for (const name of Object.keys(snapshot.meta)) {
      const role = name.slice(0, -'.json'.length);
      if (role !== 'targets' && !this.stored.entries.has(role) && !this.carried.has(role)) {
        throw new TufaError(
          'INVALID_METADATA',
          `snapshot: lists ${name}, which the collection does not have`,
          {
            role: 'snapshot',
            found: name,
          },
        );
      }
    }
  }

  /** The one place where this update counts signatures: the delegator answers for its delegate. */
  private verify(delegator: Root | Targets, role: string, metadata: Metadata): VerificationResult {
    return finish(this.verifying(delegator, role, metadata));
  }

  /** verify(), yielding between batches of signatures. */
  private verifying(
    delegator: Root | Targets,
    role: string,
    metadata: Metadata,
  ): UpdateSteps<VerificationResult> {
    return verifyingDelegate(this.crypto, delegator, role, metadata);
  }

  /**
   * Root v1 creates a collection: one signed by none of the current root keys, uploaded where a
   * root exists, is someone creating the collection again (a conflict with its state), not a
   * rollback. A v1 that current root keys signed (the collection's own, sent again) is a rollback.
   */
  private checkNotCreatedAgain(next: Root, trusted: Root, byTrusted: VerificationResult): void {
    if (next.version !== 1 || byTrusted.signed.length > 0) return;
    throw new TufaError(
      'CONFLICT',
      `root: v1 creates a collection, and this one exists already (root v${trusted.version} is published)`,
      {
        role: 'root',
        expected: trusted.version + 1,
        found: 1,
        details: { exists: true, current: { root: trusted.version } },
      },
    );
  }

  /** Reads a targets role of the update: everything but who signed it and its delegated paths. */
  private readDelegated(bytes: Uint8Array, role: string): void {
    if (role === 'targets') this.enter(TARGETS, role);
    else {
      this.enter(DELEGATED, role);
      if (!isValidRoleName(role)) {
        throw new TufaError(
          'INVALID_ARGUMENT',
          `${JSON.stringify(role.slice(0, 300))} is not a valid role name`,
          {
            role: role.slice(0, 300),
            expected: `${ROLE_NAME_RULE}, at most 255 characters`,
          },
        );
      }
      if (this.changed.some((c) => c.role === role)) {
        throw new TufaError('ORDER', `${role} has already been accepted in this update`, { role });
      }
    }
    const next = parseUploaded('targets', bytes, role);
    const signed = next.metadata.signed;
    checkNextVersion(role, signed.version, this.storedVersion(role));
    checkExpiry(signed, role, this.now);
    checkDelegationsWellFormed(signed, role);
    if (role === 'targets') this.targets = next;
    else this.carried.set(role, next);
    this.changed.push({ role, version: signed.version, bytes });
    if (role === 'targets') this.advance(DELEGATED);
  }

  /** The stored version of a role the update replaces: from the state, or the one given for it. */
  private storedVersion(role: string): number | undefined {
    const stored =
      role === 'targets'
        ? this.current.targets?.metadata.signed.version
        : role === 'snapshot'
          ? this.current.snapshot?.metadata.signed.version
          : this.stored.entries.get(role)?.version;
    return stored ?? this.replaced.get(role);
  }

  /** A replaced role given by version only must be one the update carries, and not also in the state. */
  private checkReplaced(uploads: ReadonlyMap<string, Uint8Array>): void {
    for (const role of this.replaced.keys()) {
      const inState =
        role === 'targets'
          ? this.current.targets !== undefined
          : role === 'snapshot'
            ? this.current.snapshot !== undefined
            : this.stored.entries.has(role);
      if (role === 'root' || !uploads.has(role) || inState) {
        throw new TufaError(
          'INVALID_ARGUMENT',
          `${role}: a version is given for it in place of its document, but the update does not replace it`,
          { role },
        );
      }
    }
  }

  /** Every role that delegates `name` in the would-be state: root for targets, else the targets roles. */
  private delegatorsOf(name: string): Delegator[] {
    if (name === 'targets') return [{ name: 'root', signed: this.root!.metadata.signed }];
    const out: Delegator[] = [];
    const consider = (delegator: string, parent: Targets) => {
      if (delegatedRoleNamed(parent.delegations, name) !== undefined)
        out.push({ name: delegator, signed: parent });
    };
    consider('targets', this.targets!.metadata.signed);
    for (const [other, stored] of this.delegatingRoles()) {
      if (other !== name) consider(other, stored.metadata.signed);
    }
    return out;
  }

  /**
   * Who signed a targets role, per delegator that names it and whose paths hold all its targets:
   * trusted through one of them (5.6; a role is never trusted through itself).
   */
  private checkDelegate(role: string, kept: boolean): RoleStatus {
    return finish(this.checkingDelegate(role, kept));
  }

  private *checkingDelegate(role: string, kept: boolean): UpdateSteps<RoleStatus> {
    const metadata = role === 'targets' ? this.targets!.metadata : this.delegatedRole(role)!.metadata;
    const delegators = this.delegatorsOf(role);
    if (delegators.length === 0) {
      throw new TufaError('UPDATE_REFUSED', `${role}: no role of the collection delegates to it`, { role });
    }
    // A stored role was bounded when it was uploaded; a rotation may since have given it fewer keys.
    if (!kept)
      checkSignatureCount(
        role,
        metadata,
        delegators.flatMap((d) => keyidsFor(d.signed, role)),
      );
    const counted: Counted[] = [];
    let outside: TufaError | undefined;
    for (const delegator of delegators) {
      if (delegator.signed.type === 'targets') {
        const delegation = delegatedRoleNamed(delegator.signed.delegations, role)!;
        const error = pathsError(role, metadata.signed as Targets, delegation, delegator.name);
        if (error !== undefined) {
          outside ??= error;
          continue;
        }
      }
      const result = yield* this.verifying(delegator.signed, role, metadata);
      counted.push({ by: delegator.name, signer: delegator.name, result });
    }
    if (counted.length === 0) throw outside!;
    return this.record(role, metadata, counted, kept);
  }

  /** A top-level document accepted: it goes into the update, and the step after it is next. */
  private accepted(stored: StoredRole<Root | Snapshot>, bytes: Uint8Array, counted: Counted[], next: number) {
    const role = stored.metadata.signed.type;
    this.changed.push({ role, version: stored.metadata.signed.version, bytes });
    const status = this.record(role, stored.metadata, counted, false);
    this.advance(next);
    return status;
  }

  private record(role: string, metadata: Metadata, counted: readonly Counted[], kept: boolean): RoleStatus {
    const oneOf = counted.length > 1 && role !== 'root';
    const thresholds = counted.map(({ by, result }) => thresholdStatus(by, result));
    const status: RoleStatus = {
      role,
      version: metadata.signed.version,
      thresholds,
      complete: oneOf ? thresholds.some((t) => t.verified) : thresholds.every((t) => t.verified),
      ...(oneOf ? { oneOf: true as const } : {}),
      ...(kept ? { kept: true as const } : {}),
    };
    this.checks.set(kept ? `${role} (kept)` : role, {
      status,
      metadata: kept ? undefined : metadata,
      counted,
    });
    return status;
  }

  private uploadedStatus(): RoleStatus[] {
    return [...this.checks.values()].filter((c) => !c.status.kept).map((c) => c.status);
  }

  /** A step of `role` is taken at `step`: the steps before it are closed, the ones after refused. */
  private enter(step: number, role: string): void {
    if (this.step > step) {
      throw new TufaError('ORDER', `${role} cannot be accepted after ${STEP_NAMES[this.step - 1]}`, { role });
    }
    this.advance(step);
  }

  /** Closes each step up to `step`, taking from the current state what the update does not carry. */
  private advance(step: number): void {
    finish(this.advancing(step));
  }

  /** advance(), yielding each stored role checked again. */
  private *advancing(step: number): UpdateSteps<void> {
    for (; this.step < step; this.step++) {
      if (this.step === ROOT) this.closeRoot();
      else if (this.step === TARGETS) yield* this.closingTargets();
      else if (this.step === DELEGATED) yield* this.closingDelegated();
    }
  }

  private closeRoot(): void {
    if (this.root === undefined) {
      if (this.current.root === undefined) {
        throw new TufaError('UPDATE_REFUSED', 'the first update of a collection must carry root', {
          role: 'root',
        });
      }
      this.root = this.current.root;
      // An expired targets role must stay replaceable, but only while root itself is valid.
      checkExpiry(this.root.metadata.signed, 'root', this.now);
    }
    if (this.serverKeyids !== undefined) {
      this._snapshotOnline = isSnapshotOnline(this.root.metadata.signed, this.serverKeyids.snapshot);
    }
  }

  private *closingTargets(): UpdateSteps<void> {
    if (this.targets !== undefined) return;
    if (this.current.targets === undefined) {
      throw new TufaError('UPDATE_REFUSED', 'the first update of a collection must carry targets', {
        role: 'targets',
      });
    }
    this.targets = this.current.targets;
    // A root that changes the targets keys must come with targets signed by the new keys.
    if (this.root !== this.current.root) yield* this.checkingDelegate('targets', true);
  }

  /** Stored roles whose delegator changed must still be trusted through one (or be uploaded again). */
  private *closingDelegated(): UpdateSteps<void> {
    const uploaded = new Set(this.changed.map((c) => c.role));
    uploaded.delete('root');
    if (uploaded.size === 0) return;
    // The stored roles an uploaded role delegates to, found from the uploaded side: a bin upload
    // (TAP 15) costs nothing here however many bins the collection has.
    const delegatedByUploaded = new Set<string>();
    for (const name of uploaded) {
      const signed =
        name === 'targets' ? this.targets!.metadata.signed : this.carried.get(name)?.metadata.signed;
      for (const child of allDelegatedRoles(signed?.delegations)) {
        if (!uploaded.has(child.name) && this.stored.entries.has(child.name)) {
          delegatedByUploaded.add(child.name);
        }
      }
    }
    if (delegatedByUploaded.size === 0) return;
    const again = [...this.stored.entries.keys()].filter((name) => delegatedByUploaded.has(name));
    // In batches: a changed targets in a binned collection checks every bin again, a batch at a time.
    for (let i = 0; i < again.length; i += STORED_BATCH) {
      const batch = again.slice(i, i + STORED_BATCH);
      yield* this.requesting(batch);
      for (const name of batch) {
        yield* this.checkingDelegate(name, true);
        yield name;
      }
    }
  }
}

/**
 * An uploaded document carries at most one signature per key that may sign it (the union over its
 * delegators; root on a rotation: the trusted root's and its own): refused before any is verified.
 */
function checkSignatureCount(role: string, md: Metadata, keyids: readonly string[]): void {
  const keys = new Set(keyids).size;
  if (md.signatures.length <= keys) return;
  throw new TufaError(
    'TOO_MANY_SIGNATURES',
    `${role}: ${md.signatures.length} signatures, more than the ${keys} key(s) that may sign it`,
    { role, expected: `<= ${keys}`, found: md.signatures.length },
  );
}

/** The key ids `delegator` gives `role` (which it names). */
function keyidsFor(delegator: Root | Targets, role: string): readonly string[] {
  if (delegator.type === 'root') return delegator.roles[role as keyof Root['roles']].keyids;
  return delegatedRoleNamed(delegator.delegations, role)!.keyids;
}

function thresholdStatus(by: string, result: VerificationResult): ThresholdStatus {
  return {
    by,
    threshold: result.threshold,
    signed: result.signed,
    missing: result.missing,
    needed: Math.max(0, result.threshold - result.signed.length),
    verified: result.verified,
  };
}

/** Every target a delegated role lists must be inside the paths its delegator gives it. */
function pathsError(
  name: string,
  targets: Targets,
  delegation: DelegatedRole,
  delegator: string,
): TufaError | undefined {
  const outside = Object.keys(targets.targets).filter((p) => !isDelegatedPath(delegation, p));
  if (outside.length === 0) return undefined;
  return new TufaError(
    'PATH_NOT_DELEGATED',
    `${name}: ${outside.length} target(s) outside the paths ${delegator} delegates, such as ${JSON.stringify(outside[0])}`,
    {
      role: name,
      expected: delegation.paths ?? delegation.pathHashPrefixes,
      found: outside.slice(0, 10),
      details: { delegator },
    },
  );
}

/** Threshold signing's rule for one role's signatures (see CollectionUpdate.partial). */
function checkSignaturesCount(role: string, md: Metadata, results: readonly VerificationResult[]): void {
  for (const s of md.signatures) {
    if (results.some((r) => r.invalid.includes(s.keyid))) {
      throw new TufaError('BAD_SIGNATURE', `${role}: the signature by ${s.keyid} does not verify`, {
        role,
        found: s.keyid,
        details: { reason: 'does-not-verify' },
      });
    }
    if (results.every((r) => r.ignored.includes(s.keyid))) {
      throw new TufaError('BAD_SIGNATURE', `${role}: ${s.keyid} is not a key of the role`, {
        role,
        found: s.keyid,
        details: { reason: 'not-a-role-key' },
      });
    }
  }
  if (results.every((r) => r.signed.length === 0)) {
    throw new TufaError(
      'THRESHOLD_NOT_MET',
      `${role}: a proposal must be signed by at least one key of the role`,
      {
        role,
        expected: '>= 1',
        found: 0,
      },
    );
  }
}

/** What the roles of a state declare: names across them, and succinct bins counted (TAP 15), not named. */
function declaredRoles(roles: readonly StoredRole<Targets>[]): { roles: number; bins: number } {
  const names = new Set<string>();
  let bins = 0;
  for (const role of roles) {
    const delegations = role.metadata.signed.delegations;
    for (const r of delegations?.roles ?? []) names.add(r.name);
    if (delegations?.succinctRoles !== undefined) bins += delegatedRoleCount(delegations);
  }
  return { roles: names.size, bins };
}

/**
 * Validates an update of one collection as a whole (Notary's atomic update, with TUF's rules):
 * root v1 signed by itself, or root N+1 signed by N's and its own thresholds; targets and
 * delegated roles signed at threshold by the keys their delegator assigns, version exactly the
 * next, not expired, targets inside delegated paths; canonical bytes; no timestamp; a snapshot
 * only when the server does not hold the snapshot key, matching the new state exactly.
 */
export function validateUpdate(options: ValidateUpdateOptions): ValidatedUpdate {
  return finish(validatingUpdate(options));
}

/**
 * validateUpdate, one role at a time: yields the name of each role as it is read or checked, so
 * that a server may let its readers run between them; returns (or throws) what validateUpdate does.
 */
export function* validatingUpdate(options: ValidateUpdateOptions): UpdateSteps<ValidatedUpdate> {
  checkRoleCount(options.uploads, 'an update');
  const update = new CollectionUpdate(options);
  yield* update.applying(options.uploads);
  return yield* update.committing();
}
