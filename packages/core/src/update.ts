/**
 * The repository side of the rules: a server (or any writer) receives signed documents for one
 * collection and must decide whether the collection's would-be new state is valid before it signs
 * snapshot and timestamp and stores anything. Pure: the current state, the uploads, the reference
 * time and the server's online key ids are given; the new state is returned or a TufaError thrown.
 *
 * Root chains reuse the trusted-metadata set; signature counting reuses verify.ts; what the set
 * cannot express (a writer validates targets before the snapshot that will list them exists) is
 * written here, once.
 */

import { isDelegatedPath } from './delegation.js';
import { TufaError } from './errors.js';
import { jsonObject } from './json.js';
import type { Key } from './keys.js';
import {
  type DelegatedRole,
  type Metadata,
  type MetaFile,
  metaFileName,
  parseSignedEnvelope,
  type Root,
  type Signed,
  type Snapshot,
  sha256Of,
  type Targets,
} from './metadata.js';
import { metaFileFor } from './repository.js';
import { checkExpiry, checkLengthAndHashes, TrustedMetadataSet } from './trusted.js';
import { assertVerified, type VerificationResult, verifyMetadataSignatures } from './verify.js';

/** A role as stored: the exact bytes and their parsed form. */
export interface StoredRole<T extends Signed = Signed> {
  readonly bytes: Uint8Array;
  readonly metadata: Metadata<T>;
}

/** The current state of one collection (nothing at all before its first publish). */
export interface CollectionState {
  readonly root?: StoredRole<Root> | undefined;
  readonly targets?: StoredRole<Targets> | undefined;
  /** Delegated targets roles by name, latest version of each. */
  readonly delegated: ReadonlyMap<string, StoredRole<Targets>>;
  /** The latest snapshot (server-signed or client-signed). */
  readonly snapshot?: StoredRole<Snapshot> | undefined;
}

export interface ValidateUpdateOptions {
  readonly current: CollectionState;
  /** Role name → exact uploaded bytes. */
  readonly uploads: ReadonlyMap<string, Uint8Array>;
  /** Reference time, ms since the epoch. */
  readonly now: number;
  /** Key ids of the online keys the server holds for this collection. */
  readonly serverKeyids: { readonly timestamp: readonly string[]; readonly snapshot: readonly string[] };
}

export interface ValidatedUpdate {
  readonly root: StoredRole<Root>;
  readonly targets: StoredRole<Targets>;
  readonly delegated: ReadonlyMap<string, StoredRole<Targets>>;
  /** A client-signed snapshot, when the collection keeps its snapshot key offline. */
  readonly snapshot: StoredRole<Snapshot> | undefined;
  /** True when the server signs snapshot for this collection (its key is the root's snapshot key). */
  readonly snapshotOnline: boolean;
  /** The uploaded roles, validated, in the order they should be stored. */
  readonly changed: readonly {
    readonly role: string;
    readonly version: number;
    readonly bytes: Uint8Array;
  }[];
}

/** Most roles one update may carry: bounds the work a single request can cause. */
export const MAX_ROLES_PER_UPDATE = 1000;

// A segment never starts with '.', so '.' and '..' are never segments.
const ROLE_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * Role names the server accepts for delegated roles: they become URL path parts and must not be
 * confused with `VERSION.ROLE.json`; segments like a GUN's, at most 255 characters.
 */
export function isValidRoleName(name: string): boolean {
  if (name.length === 0 || name.length > 255 || /^\d+\./.test(name)) return false;
  return name.split('/').every((s) => ROLE_SEGMENT.test(s));
}

/** Parses uploaded bytes strictly and refuses anything but the canonical JSON of what they parse to. */
export function parseUploaded<T extends 'root' | 'targets' | 'snapshot'>(
  type: T,
  bytes: Uint8Array,
  role: string,
): StoredRole<Extract<Signed, { type: T }>> {
  const envelope = parseSignedEnvelope(type, bytes, { role });
  if (!envelope.servedForm) {
    throw new TufaError('NON_CANONICAL', `${role}: the uploaded bytes are not canonical JSON`, {
      role,
      expected: 'OLPC canonical JSON of the document',
    });
  }
  // The envelope itself: a stored role that hashes its bytes at most once (snapshotMetaForState).
  return envelope as StoredRole<Extract<Signed, { type: T }>>;
}

/**
 * Snapshot meta for a state: every targets role with version, length and sha256 of its exact bytes
 * (a parsed envelope's own digest: each document is hashed at most once, sha256Of).
 */
export function snapshotMetaForState(state: {
  targets: StoredRole<Targets>;
  delegated: ReadonlyMap<string, StoredRole<Targets>>;
}): Record<string, MetaFile> {
  const metaFor = (role: StoredRole<Targets>) =>
    metaFileFor(role.bytes, role.metadata.signed.version, { known: { sha256: sha256Of(role) } });
  const meta: Record<string, MetaFile> = jsonObject();
  meta[metaFileName('targets')] = metaFor(state.targets);
  for (const [name, role] of state.delegated) meta[metaFileName(name)] = metaFor(role);
  return meta;
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

/**
 * Root v1 creates a collection: one signed by none of the current root keys, uploaded where a
 * root exists, is someone creating the collection again (a conflict with its state), not a
 * rollback. A v1 that current root keys signed (the collection's own, sent again) is a rollback.
 */
export function checkNotCreatedAgain(uploaded: Metadata<Root>, current: Metadata<Root> | undefined): void {
  if (uploaded.signed.version !== 1 || current === undefined) return;
  const trusted = current.signed;
  const byCurrent = verifyMetadataSignatures(uploaded, {
    role: 'root',
    ...trusted.roles.root,
    keys: trusted.keys,
  });
  if (byCurrent.signed.length > 0) return;
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

export function checkDelegationsWellFormed(targets: Targets, role: string): void {
  const d = targets.delegations;
  if (d === undefined) return;
  for (const child of d.roles) {
    if (!isValidRoleName(child.name)) {
      throw new TufaError('INVALID_METADATA', `${role}: delegated role name ${JSON.stringify(child.name)}`, {
        role,
        found: child.name,
        expected: 'segments of [A-Za-z0-9._-] separated by /, not VERSION.NAME',
      });
    }
    checkRoleKeys(child.name, child.keyids, child.threshold, d.keys, role);
  }
}

function verifyTopLevel(md: Metadata, role: 'targets' | 'snapshot', root: Root): VerificationResult {
  const keys = root.roles[role];
  return verifyMetadataSignatures(md, {
    role,
    keyids: keys.keyids,
    threshold: keys.threshold,
    keys: root.keys,
  });
}

/** Every delegation of `name` in the state, with the role that makes it. */
export function delegatorsOf(
  name: string,
  targets: Targets,
  delegated: ReadonlyMap<string, StoredRole<Targets>>,
): { delegator: string; parent: Targets; delegation: DelegatedRole }[] {
  const out: { delegator: string; parent: Targets; delegation: DelegatedRole }[] = [];
  const consider = (delegator: string, parent: Targets) => {
    const delegation = parent.delegations?.roles.find((r) => r.name === name);
    if (delegation !== undefined) out.push({ delegator, parent, delegation });
  };
  consider('targets', targets);
  for (const [other, stored] of delegated) if (other !== name) consider(other, stored.metadata.signed);
  return out;
}

/** Every target a delegated role lists must be inside the paths its delegator gives it. */
export function checkDelegatedPaths(
  name: string,
  targets: Targets,
  delegation: DelegatedRole,
  delegator: string,
): void {
  const outside = Object.keys(targets.targets).filter((p) => !isDelegatedPath(delegation, p));
  if (outside.length > 0) {
    throw new TufaError(
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
}

/**
 * A delegated role must be signed by the keys one of its delegators assigns at that threshold,
 * and every target it lists must be inside that delegation's paths.
 */
function checkDelegatedRole(
  name: string,
  md: Metadata<Targets>,
  targets: Targets,
  delegated: ReadonlyMap<string, StoredRole<Targets>>,
): void {
  const delegators = delegatorsOf(name, targets, delegated);
  if (delegators.length === 0) {
    throw new TufaError('UPDATE_REFUSED', `${name}: no role of the collection delegates to it`, {
      role: name,
    });
  }
  let firstError: TufaError | undefined;
  for (const { delegator, parent, delegation } of delegators) {
    try {
      assertVerified(
        verifyMetadataSignatures(md, {
          role: name,
          keyids: delegation.keyids,
          threshold: delegation.threshold,
          keys: parent.delegations!.keys,
        }),
        delegator,
      );
      checkDelegatedPaths(name, md.signed, delegation, delegator);
      return;
    } catch (err) {
      if (!(err instanceof TufaError)) throw err;
      firstError ??= err;
    }
  }
  throw firstError!;
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

/**
 * Validates an update of one collection as a whole (Notary's atomic update, with TUF's rules):
 * root v1 signed by itself, or root N+1 signed by N's and its own thresholds; targets and
 * delegated roles signed at threshold by the keys their delegator assigns, version exactly the
 * next, not expired, targets inside delegated paths; canonical bytes; no timestamp; a snapshot
 * only when the server does not hold the snapshot key, matching the new state exactly.
 */
export function validateUpdate(options: ValidateUpdateOptions): ValidatedUpdate {
  const { current, uploads, now } = options;
  if (uploads.size === 0) throw new TufaError('INVALID_ARGUMENT', 'an update must carry at least one role');
  if (uploads.size > MAX_ROLES_PER_UPDATE) {
    throw new TufaError('TOO_LARGE', `an update carries at most ${MAX_ROLES_PER_UPDATE} roles`, {
      expected: MAX_ROLES_PER_UPDATE,
      found: uploads.size,
    });
  }
  if (uploads.has('timestamp')) {
    throw new TufaError('UPDATE_REFUSED', 'timestamp is signed by the server and cannot be uploaded', {
      role: 'timestamp',
    });
  }
  const changed: { role: string; version: number; bytes: Uint8Array }[] = [];

  // Root: 5.3.4-5.3.10 through the trusted-metadata set, which holds those rules.
  let root: StoredRole<Root>;
  const rootBytes = uploads.get('root');
  if (rootBytes !== undefined) {
    const uploaded = parseUploaded('root', rootBytes, 'root');
    let set: TrustedMetadataSet;
    if (current.root === undefined) {
      set = TrustedMetadataSet.fromTrustedRoot(rootBytes, { now });
      checkNextVersion('root', uploaded.metadata.signed.version, undefined);
    } else {
      checkNotCreatedAgain(uploaded.metadata, current.root.metadata);
      set = TrustedMetadataSet.fromTrustedRoot(current.root.bytes, { now });
      set.updateRoot(rootBytes);
    }
    set.checkRootNotExpired();
    const r = uploaded.metadata.signed;
    checkRootRoles(r, options.serverKeyids.timestamp);
    root = uploaded;
    changed.push({ role: 'root', version: r.version, bytes: rootBytes });
  } else if (current.root === undefined) {
    throw new TufaError('UPDATE_REFUSED', 'the first update of a collection must carry root', {
      role: 'root',
    });
  } else {
    root = current.root;
    // An expired targets role must stay replaceable, but only while root itself is valid.
    checkExpiry(root.metadata.signed, 'root', now);
  }
  const rootSigned = root.metadata.signed;
  const rootChanged = rootBytes !== undefined;
  const snapshotOnline = isSnapshotOnline(rootSigned, options.serverKeyids.snapshot);

  // Targets: signed by the (new) root's targets keys, next version, not expired.
  let targets: StoredRole<Targets>;
  const targetsBytes = uploads.get('targets');
  if (targetsBytes !== undefined) {
    targets = parseUploaded('targets', targetsBytes, 'targets');
    assertVerified(verifyTopLevel(targets.metadata, 'targets', rootSigned), 'root');
    checkNextVersion('targets', targets.metadata.signed.version, current.targets?.metadata.signed.version);
    checkExpiry(targets.metadata.signed, 'targets', now);
    checkDelegationsWellFormed(targets.metadata.signed, 'targets');
    changed.push({ role: 'targets', version: targets.metadata.signed.version, bytes: targetsBytes });
  } else if (current.targets === undefined) {
    throw new TufaError('UPDATE_REFUSED', 'the first update of a collection must carry targets', {
      role: 'targets',
    });
  } else {
    targets = current.targets;
    // A root that changes the targets keys must come with targets signed by the new keys.
    if (rootChanged) assertVerified(verifyTopLevel(targets.metadata, 'targets', rootSigned), 'root');
  }

  // Delegated roles: parse all first, since one may delegate to another uploaded in the same update.
  const delegated = new Map(current.delegated);
  const uploadedDelegated: string[] = [];
  for (const [name, bytes] of uploads) {
    if (name === 'root' || name === 'targets' || name === 'snapshot') continue;
    if (!isValidRoleName(name)) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        `${JSON.stringify(name.slice(0, 300))} is not a valid role name`,
        {
          role: name.slice(0, 300),
          expected: 'segments of [A-Za-z0-9._-] separated by /, not VERSION.NAME, at most 255 characters',
        },
      );
    }
    const md = parseUploaded('targets', bytes, name);
    checkNextVersion(name, md.metadata.signed.version, current.delegated.get(name)?.metadata.signed.version);
    checkExpiry(md.metadata.signed, name, now);
    checkDelegationsWellFormed(md.metadata.signed, name);
    delegated.set(name, md);
    uploadedDelegated.push(name);
  }
  const targetsSigned = targets.metadata.signed;
  for (const name of uploadedDelegated) {
    checkDelegatedRole(name, delegated.get(name)!.metadata, targetsSigned, delegated);
  }
  // Stored roles whose delegator changed must still be trusted through it (or be re-uploaded).
  const changedDelegators = new Set(uploadedDelegated);
  if (targetsBytes !== undefined) changedDelegators.add('targets');
  if (changedDelegators.size > 0) {
    for (const [name, stored] of delegated) {
      if (uploadedDelegated.includes(name)) continue;
      const delegators = delegatorsOf(name, targetsSigned, delegated);
      if (!delegators.some((d) => changedDelegators.has(d.delegator))) continue;
      checkDelegatedRole(name, stored.metadata, targetsSigned, delegated);
    }
  }
  for (const name of uploadedDelegated) {
    const md = delegated.get(name)!;
    changed.push({ role: name, version: md.metadata.signed.version, bytes: md.bytes });
  }

  // Snapshot: the server signs it when it holds the key; otherwise the client must, exactly.
  let snapshot: StoredRole<Snapshot> | undefined;
  const snapshotBytes = uploads.get('snapshot');
  const targetsChanged = targetsBytes !== undefined || uploadedDelegated.length > 0;
  if (snapshotBytes !== undefined) {
    if (snapshotOnline) {
      throw new TufaError('UPDATE_REFUSED', 'the server holds the snapshot key: do not upload snapshot', {
        role: 'snapshot',
      });
    }
    snapshot = parseUploaded('snapshot', snapshotBytes, 'snapshot');
    const s = snapshot.metadata.signed;
    assertVerified(verifyTopLevel(snapshot.metadata, 'snapshot', rootSigned), 'root');
    checkNextVersion('snapshot', s.version, current.snapshot?.metadata.signed.version);
    checkExpiry(s, 'snapshot', now);
    checkSnapshotMatches(s, targets, delegated);
    changed.push({ role: 'snapshot', version: s.version, bytes: snapshotBytes });
  } else if (!snapshotOnline) {
    const stale =
      targetsChanged ||
      current.snapshot === undefined ||
      !verifyTopLevel(current.snapshot.metadata, 'snapshot', rootSigned).verified;
    if (stale) {
      throw new TufaError(
        'UPDATE_REFUSED',
        'the collection keeps its snapshot key offline: upload a snapshot signed by it with this update',
        { role: 'snapshot' },
      );
    }
  }
  return { root, targets, delegated, snapshot, snapshotOnline, changed };
}

/** A client-signed snapshot must list exactly the collection's targets roles, as they will be stored. */
function checkSnapshotMatches(
  snapshot: Snapshot,
  targets: StoredRole<Targets>,
  delegated: ReadonlyMap<string, StoredRole<Targets>>,
): void {
  const expected = new Map<string, StoredRole<Targets>>([['targets', targets], ...delegated]);
  for (const [role, stored] of expected) {
    const name = metaFileName(role);
    const meta = Object.hasOwn(snapshot.meta, name) ? snapshot.meta[name] : undefined;
    if (meta === undefined) {
      throw new TufaError('INVALID_METADATA', `snapshot: ${name} is missing`, { role, expected: name });
    }
    if (meta.version !== stored.metadata.signed.version) {
      throw new TufaError(
        'VERSION_MISMATCH',
        `snapshot: ${name} version ${meta.version} is not ${stored.metadata.signed.version}`,
        { role, expected: stored.metadata.signed.version, found: meta.version },
      );
    }
    checkLengthAndHashes(stored.bytes, meta, role);
  }
  for (const name of Object.keys(snapshot.meta)) {
    const role = name.slice(0, -'.json'.length);
    if (!expected.has(role)) {
      throw new TufaError('INVALID_METADATA', `snapshot: lists ${name}, which the collection does not have`, {
        role: 'snapshot',
        found: name,
      });
    }
  }
}
