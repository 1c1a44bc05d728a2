/**
 * What a writer uploads, read the repository's way: the state of a collection as stored, the
 * uploaded documents parsed strictly and held to their canonical form, role names the server
 * accepts, and the snapshot meta of a state. The rules an update must meet are CollectionUpdate's
 * (collection-update.ts), where validateUpdate runs them.
 */

import type { CryptoProvider } from './crypto.js';
import { TufaError } from './errors.js';
import { jsonObject } from './json.js';
import {
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
import type { SnapshotIndex } from './snapshot-bytes.js';

/** A role as stored: the exact bytes and their parsed form. */
export interface StoredRole<T extends Signed = Signed> {
  readonly bytes: Uint8Array;
  readonly metadata: Metadata<T>;
}

/** A stored delegated role as its row (or the stored snapshot) knows it, without parsing its document. */
export interface StoredRoleEntry {
  readonly version: number;
  /** Length and sha256 (hex) of its exact bytes: its snapshot entry. */
  readonly length: number;
  readonly sha256: string;
  /** That entry as the stored snapshot lists it, when it lists exactly these (reused, not rebuilt). */
  readonly metaFile?: MetaFile | undefined;
}

/**
 * A collection's delegated targets roles as a server stores them: every role's entry, and the
 * documents parsed only when an update needs them. `document` answers for every role named in
 * `delegating`, and for any other only after the update yielded a RoleRequest naming it (until its
 * next request): a publish into one of 16,384 bins parses that bin's delegators, not the bins.
 */
export interface StoredDelegatedRoles {
  /** Every stored delegated role by name, in a stable order. */
  readonly entries: ReadonlyMap<string, StoredRoleEntry>;
  /** The stored roles whose documents have delegations: the only ones that may delegate to another. */
  readonly delegating: Iterable<string>;
  document(name: string): StoredRole<Targets> | undefined;
  /** When the entries are exactly a stored snapshot's meta but targets.json: that record (copied, not rebuilt). */
  readonly snapshotMeta?: Readonly<Record<string, MetaFile>> | undefined;
  /**
   * When the entries are exactly this stored snapshot's but targets.json, checked in the shape a
   * server writes: the next snapshot is that one with the update's entries changed (snapshotChanges).
   */
  readonly snapshotIndex?: SnapshotIndex | undefined;
}

/** The would-be snapshot meta as the stored snapshot's and what the update changes in it. */
export interface SnapshotChanges {
  /** The stored snapshot, indexed: every entry the update leaves as it is. */
  readonly base: SnapshotIndex;
  /** The entries the update sets (targets.json and each uploaded role's): snapshotWithChanges's. */
  readonly changes: ReadonlyMap<string, MetaFile>;
}

/** A step of an update that asks its caller to make these stored roles' documents available. */
export interface RoleRequest {
  readonly load: readonly string[];
}

/** An update's steps: each yields a role's name, or a RoleRequest (see StoredDelegatedRoles). */
export type UpdateSteps<T> = Generator<string | RoleRequest, T, void>;

/** The current state of one collection (nothing at all before its first publish). */
export interface CollectionState {
  readonly root?: StoredRole<Root> | undefined;
  readonly targets?: StoredRole<Targets> | undefined;
  /** Delegated targets roles by name, latest version of each: all parsed, or as stored. */
  readonly delegated: ReadonlyMap<string, StoredRole<Targets>> | StoredDelegatedRoles;
  /** The latest snapshot (server-signed or client-signed). */
  readonly snapshot?: StoredRole<Snapshot> | undefined;
}

export interface ValidateUpdateOptions {
  readonly current: CollectionState;
  /** Checks every signature and hash of the update. */
  readonly crypto: CryptoProvider;
  /** Role name → exact uploaded bytes. */
  readonly uploads: ReadonlyMap<string, Uint8Array>;
  /** Reference time, ms since the epoch. */
  readonly now: number;
  /** Key ids of the online keys the server holds for this collection. */
  readonly serverKeyids: { readonly timestamp: readonly string[]; readonly snapshot: readonly string[] };
  /** Stored versions of roles the update uploads, given instead of their documents (see CollectionUpdateOptions). */
  readonly replacedVersions?: ReadonlyMap<string, number> | undefined;
}

export interface ValidatedUpdate {
  readonly root: StoredRole<Root>;
  readonly targets: StoredRole<Targets>;
  /**
   * The would-be state's delegated roles held parsed: every one when the state was given parsed;
   * from a StoredDelegatedRoles, the uploaded ones and the stored roles that delegate.
   */
  readonly delegated: ReadonlyMap<string, StoredRole<Targets>>;
  /** What the would-be state declares: role names across every delegating role, and succinct bins (TAP 15). */
  readonly declared: { readonly roles: number; readonly bins: number };
  /** The would-be snapshot meta: every targets role with version, length and sha256 (stored entries as they are); a new jsonObject record at each call, the caller's to hand to newSnapshot. */
  snapshotMeta(): Record<string, MetaFile>;
  /**
   * The same meta as the stored snapshot's and the entries it changes, when the state's entries are
   * an indexed stored snapshot's (StoredDelegatedRoles.snapshotIndex): no record of every entry.
   */
  snapshotChanges(): SnapshotChanges | undefined;
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

/** Uploads from this size on have their target entries checked as read and made on demand (ADR 0013). */
const ENTRIES_ON_DEMAND = 1024 * 1024;

/** Parses uploaded bytes strictly and refuses anything but the canonical JSON of what they parse to. */
export function parseUploaded<T extends 'root' | 'targets' | 'snapshot'>(
  type: T,
  bytes: Uint8Array,
  role: string,
): StoredRole<Extract<Signed, { type: T }>> {
  // A large targets upload is checked entry by entry, not held as objects unless a rule reads them.
  const envelope = parseSignedEnvelope(type, bytes, {
    role,
    targetsOnDemand: bytes.length >= ENTRIES_ON_DEMAND,
  });
  if (!envelope.servedForm) {
    throw new TufaError('NON_CANONICAL', `${role}: the uploaded bytes are not canonical JSON`, {
      role,
      expected: 'OLPC canonical JSON of the document',
    });
  }
  // The envelope itself: a stored role that hashes its bytes at most once (snapshotMetaForState).
  return envelope as StoredRole<Extract<Signed, { type: T }>>;
}

/** A state's delegated roles as stored entries: a parsed map hashes a document only when asked. */
export function storedDelegatedRoles(
  crypto: CryptoProvider,
  delegated: CollectionState['delegated'],
): StoredDelegatedRoles {
  if (!isParsedMap(delegated)) return delegated;
  const entries = new Map<string, StoredRoleEntry>();
  for (const [name, role] of delegated) entries.set(name, entryOf(crypto, role));
  return { entries, delegating: [...delegated.keys()], document: (name) => delegated.get(name) };
}

function isParsedMap(
  delegated: CollectionState['delegated'],
): delegated is ReadonlyMap<string, StoredRole<Targets>> {
  return !('document' in delegated);
}

/** A parsed role's entry: its digest computed on first use (a parsed envelope's own, sha256Of). */
export function entryOf(crypto: CryptoProvider, role: StoredRole<Targets>): StoredRoleEntry {
  let sha256: string | undefined;
  return {
    version: role.metadata.signed.version,
    length: role.bytes.length,
    get sha256() {
      sha256 ??= sha256Of(crypto, role);
      return sha256;
    },
  };
}

/** A role's snapshot entry (version, length, sha256) from what its row knows. */
export function metaFileOfEntry(entry: StoredRoleEntry): MetaFile {
  if (entry.metaFile !== undefined) return entry.metaFile;
  return { version: entry.version, length: entry.length, hashes: { sha256: entry.sha256 }, extra: {} };
}

/**
 * Snapshot meta for a state: every targets role with version, length and sha256 of its exact bytes
 * (a parsed envelope's own digest: each document is hashed at most once, sha256Of; a stored
 * role's from its row, unparsed).
 */
export function snapshotMetaForState(
  crypto: CryptoProvider,
  state: {
    targets: StoredRole<Targets>;
    delegated: CollectionState['delegated'];
  },
): Record<string, MetaFile> {
  const stored = storedDelegatedRoles(crypto, state.delegated);
  const meta = storedSnapshotMeta(stored);
  meta[metaFileName('targets')] = metaFileOfEntry(entryOf(crypto, state.targets));
  return meta;
}

/**
 * The stored roles' entries as snapshot meta, in a new record (jsonObject): read from the indexed
 * stored snapshot, its meta copied as a whole, or one entry per role.
 */
export function storedSnapshotMeta(stored: StoredDelegatedRoles): Record<string, MetaFile> {
  if (stored.snapshotIndex !== undefined) return stored.snapshotIndex.meta();
  const meta: Record<string, MetaFile> = jsonObject();
  if (stored.snapshotMeta !== undefined) Object.assign(meta, stored.snapshotMeta);
  else for (const [name, entry] of stored.entries) meta[metaFileName(name)] = metaFileOfEntry(entry);
  return meta;
}
