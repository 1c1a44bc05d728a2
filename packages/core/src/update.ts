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
import { metaFileFor } from './repository.js';

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

/**
 * Snapshot meta for a state: every targets role with version, length and sha256 of its exact bytes
 * (a parsed envelope's own digest: each document is hashed at most once, sha256Of).
 */
export function snapshotMetaForState(
  crypto: CryptoProvider,
  state: {
    targets: StoredRole<Targets>;
    delegated: ReadonlyMap<string, StoredRole<Targets>>;
  },
): Record<string, MetaFile> {
  const metaFor = (role: StoredRole<Targets>) =>
    metaFileFor(crypto, role.bytes, role.metadata.signed.version, {
      known: { sha256: sha256Of(crypto, role) },
    });
  const meta: Record<string, MetaFile> = jsonObject();
  meta[metaFileName('targets')] = metaFor(state.targets);
  for (const [name, role] of state.delegated) meta[metaFileName(name)] = metaFor(role);
  return meta;
}
