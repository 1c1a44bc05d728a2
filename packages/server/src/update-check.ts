/**
 * The server's check of one update, the same on the event loop and in the verification worker
 * (verifier.ts): core's validatingUpdate, the server's limits on what a collection declares, and
 * the compact facts the store needs to write the update. The facts are small whatever the
 * documents' size, so the worker hands back these and never the parsed documents.
 */
import {
  type CollectionState,
  type CryptoProvider,
  type MetaFile,
  type StoredRole,
  sha256Of,
  type Targets,
  TufaError,
  type UpdateSteps,
  type ValidatedUpdate,
  validatingUpdate,
} from '@tufa/core';

/** The server's limits on what a collection declares. */
export interface DelegationLimits {
  /** Most delegated roles a collection may declare by name. */
  readonly maxDelegatedRoles: number;
  /** Most succinct hash bins (TAP 15) a collection may declare, all its succinct delegations together. */
  readonly maxHashBins: number;
}

/** What an update check is given. */
export interface UpdateCheck extends DelegationLimits {
  readonly current: CollectionState;
  /** Stored versions of roles the update uploads, in place of their documents (core's replacedVersions). */
  readonly replacedVersions?: ReadonlyMap<string, number> | undefined;
  readonly uploads: ReadonlyMap<string, Uint8Array>;
  readonly now: number;
  readonly serverKeyids: { readonly timestamp: readonly string[]; readonly snapshot: readonly string[] };
  readonly crypto: CryptoProvider;
}

/** One uploaded role as the store writes it. */
export interface ChangedFact {
  readonly role: string;
  readonly version: number;
  /** Its expiry, ms since the epoch. */
  readonly expiresAt: number;
  readonly sha256: string;
  /** Whether the document has delegations (the row's `delegates`). */
  readonly delegates: boolean;
}

/** What the store needs of an accepted update: no parsed document, whatever their size. */
export interface UpdateFacts {
  /** The uploaded roles, in the order they are stored; their bytes are the uploads'. */
  readonly changed: readonly ChangedFact[];
  /** True when the server signs snapshot for this collection. */
  readonly snapshotOnline: boolean;
  /** The key ids the would-be root gives the online roles: who signs the new snapshot and timestamp. */
  readonly onlineKeyids: { readonly timestamp: readonly string[]; readonly snapshot: readonly string[] };
  /**
   * What the server's next snapshot lists (every targets role of the would-be state), when it
   * signs one and the stored snapshot is not indexed (else `snapshotChanges`).
   */
  readonly snapshotMeta: Readonly<Record<string, MetaFile>> | undefined;
  /**
   * When the server signs the next snapshot and the state's entries were the indexed stored
   * snapshot's: the entries the update sets in it (core's SnapshotChanges, less the base the
   * caller holds), a few whatever the number of roles.
   */
  readonly snapshotChanges?: readonly (readonly [string, MetaFile])[] | undefined;
}

/**
 * The check in the worker, one role at a time (see validatingUpdate; a step may be a RoleRequest):
 * the facts of the accepted update.
 */
export function* checkingUpdate(check: UpdateCheck): UpdateSteps<UpdateFacts> {
  const update = yield* validatingUpdate(check);
  checkDelegationCount(update, check);
  const root = update.root.metadata.signed;
  const delta = update.snapshotOnline ? update.snapshotChanges() : undefined;
  return {
    changed: update.changed.map((c) => changedFact(check.crypto, c.role, storedOf(update, c.role))),
    snapshotOnline: update.snapshotOnline,
    onlineKeyids: { timestamp: root.roles.timestamp.keyids, snapshot: root.roles.snapshot.keyids },
    snapshotMeta: update.snapshotOnline && delta === undefined ? update.snapshotMeta() : undefined,
    snapshotChanges: delta && [...delta.changes],
  };
}

/** An accepted document's facts: the upload as parsed, hashed once (the new snapshot takes the same digest). */
export function changedFact(crypto: CryptoProvider, role: string, stored: StoredRole): ChangedFact {
  const signed = stored.metadata.signed;
  return {
    role,
    version: signed.version,
    expiresAt: signed.expiresAt,
    sha256: sha256Of(crypto, stored),
    delegates: signed.type === 'targets' && signed.delegations !== undefined,
  };
}

/** The accepted document of `role` in an update. */
export function storedOf(update: ValidatedUpdate, role: string): StoredRole {
  if (role === 'root') return update.root;
  if (role === 'targets') return update.targets;
  if (role === 'snapshot') return update.snapshot!;
  return update.delegated.get(role) as StoredRole<Targets>;
}

/**
 * What the collection would declare stays within the server's limits: role names (targets' and
 * every delegated role's delegations), and succinct hash bins apart (TAP 15: one delegation of
 * 2^bit_length bins, each a stored role, all listed in snapshot).
 */
export function checkDelegationCount(update: ValidatedUpdate, limits: DelegationLimits): void {
  const { roles, bins } = update.declared;
  if (roles > limits.maxDelegatedRoles) {
    throw new TufaError(
      'DELEGATION_LIMIT',
      `the collection would declare ${roles} delegated roles, more than this server allows (${limits.maxDelegatedRoles})`,
      { details: { limit: limits.maxDelegatedRoles, found: roles } },
    );
  }
  if (bins > limits.maxHashBins) {
    throw new TufaError(
      'DELEGATION_LIMIT',
      `the collection would declare ${bins} succinct hash bins, more than this server allows (${limits.maxHashBins})`,
      { details: { limit: limits.maxHashBins, found: bins, bins: true } },
    );
  }
}

/** A ROLLBACK (the usual loser of a race) names the collection's current versions. */
export function withCurrentVersions(err: unknown, versions: () => Record<string, number>): unknown {
  if (!(err instanceof TufaError) || err.code !== 'ROLLBACK') return err;
  return new TufaError(err.code, err.message, {
    role: err.role,
    expected: err.expected,
    found: err.found,
    details: { ...err.details, current: versions() },
  });
}

/** A TufaError as a message between threads: every field a client sees. */
export interface ErrorMessage {
  readonly code: TufaError['code'];
  readonly message: string;
  readonly role: string | undefined;
  readonly expected: unknown;
  readonly found: unknown;
  readonly details: Record<string, unknown> | undefined;
}

export function errorMessage(err: TufaError): ErrorMessage {
  return {
    code: err.code,
    message: err.message,
    role: err.role,
    expected: err.expected,
    found: err.found,
    details: err.details,
  };
}

export function errorFromMessage(m: ErrorMessage): TufaError {
  return new TufaError(m.code, m.message, {
    role: m.role,
    expected: m.expected,
    found: m.found,
    details: m.details,
  });
}
