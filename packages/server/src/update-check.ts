/**
 * The server's check of one update, the same on the event loop and in the verification worker
 * (verifier.ts): core's validatingUpdate, the server's delegation limit, and the compact facts
 * the store needs to write the update. The facts are small whatever the documents' size, so the
 * worker hands back these and never the parsed documents.
 */
import {
  type CollectionState,
  type CryptoProvider,
  delegatedRoleCount,
  type MetaFile,
  sha256Of,
  snapshotMetaForState,
  type Targets,
  TufaError,
  type ValidatedUpdate,
  validatingUpdate,
} from '@tufa/core';

/** What an update check is given. */
export interface UpdateCheck {
  readonly current: CollectionState;
  /** Stored versions of roles the update uploads, in place of their documents (core's replacedVersions). */
  readonly replacedVersions?: ReadonlyMap<string, number> | undefined;
  readonly uploads: ReadonlyMap<string, Uint8Array>;
  readonly now: number;
  readonly serverKeyids: { readonly timestamp: readonly string[]; readonly snapshot: readonly string[] };
  /** Most delegated roles a collection may declare. */
  readonly maxDelegatedRoles: number;
  readonly crypto: CryptoProvider;
}

/** What the store needs of an accepted update: no parsed document, whatever their size. */
export interface UpdateFacts {
  /** The uploaded roles, in the order they are stored; their bytes are the uploads'. */
  readonly changed: readonly {
    readonly role: string;
    readonly version: number;
    readonly expiresAt: number;
    readonly sha256: string;
  }[];
  /** True when the server signs snapshot for this collection. */
  readonly snapshotOnline: boolean;
  /** The key ids the would-be root gives the online roles: who signs the new snapshot and timestamp. */
  readonly onlineKeyids: { readonly timestamp: readonly string[]; readonly snapshot: readonly string[] };
  /** What the server's next snapshot lists (every targets role of the would-be state), when it signs one. */
  readonly snapshotMeta: Readonly<Record<string, MetaFile>> | undefined;
}

/** The check, one role at a time (see validatingUpdate): the facts, and the update they come from. */
export function* checkingUpdate(
  check: UpdateCheck,
): Generator<string, { facts: UpdateFacts; update: ValidatedUpdate }, void> {
  const update = yield* validatingUpdate(check);
  checkDelegationCount(update, check.maxDelegatedRoles);
  const root = update.root.metadata.signed;
  const facts: UpdateFacts = {
    changed: update.changed.map((c) => {
      const stored = storedOf(update, c.role);
      return {
        role: c.role,
        version: c.version,
        expiresAt: stored.metadata.signed.expiresAt,
        // The upload as parsed: hashed once, and the new snapshot takes the same digest.
        sha256: sha256Of(check.crypto, stored),
      };
    }),
    snapshotOnline: update.snapshotOnline,
    onlineKeyids: { timestamp: root.roles.timestamp.keyids, snapshot: root.roles.snapshot.keyids },
    snapshotMeta: update.snapshotOnline ? snapshotMetaForState(check.crypto, update) : undefined,
  };
  return { facts, update };
}

/** The accepted document of `role` in an update. */
export function storedOf(update: ValidatedUpdate, role: string) {
  if (role === 'root') return update.root;
  if (role === 'targets') return update.targets;
  if (role === 'snapshot') return update.snapshot!;
  return update.delegated.get(role)!;
}

/** The collection's declared delegations (targets' and every delegated role's) stay within the limit. */
function checkDelegationCount(update: ValidatedUpdate, limit: number): void {
  const names = new Set<string>();
  let bins = 0; // succinct bins (TAP 15): counted, not named one by one
  const add = (t: Targets) => {
    for (const r of t.delegations?.roles ?? []) names.add(r.name);
    if (t.delegations?.succinctRoles !== undefined) bins += delegatedRoleCount(t.delegations);
  };
  add(update.targets.metadata.signed);
  for (const d of update.delegated.values()) add(d.metadata.signed);
  if (names.size + bins > limit) {
    throw new TufaError(
      'DELEGATION_LIMIT',
      `the collection would declare ${names.size + bins} delegated roles, more than this server allows (${limit})`,
      { details: { limit, found: names.size + bins } },
    );
  }
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
