/**
 * What publishing commands share: the trusted view of a collection, the local keys that can sign
 * for a role, the next version of a role, and one atomic upload (retried once after a lost race).
 */
import type { FoundRole, TufaClient } from '@tufa/client';
import {
  bumpVersion,
  type CollectionState,
  type CollectionUpdate,
  DEFAULT_EXPIRY,
  type DelegatedRole,
  expiresIn,
  isTufaError,
  type Metadata,
  metaFileFor,
  metaFileName,
  newTargets,
  type RoleKeys,
  type Root,
  type Signed,
  type Signer,
  type Snapshot,
  type StoredRole,
  serializeMetadata,
  signMetadata,
  type Targets,
  type TrustedMetadataSet,
  TufaError,
} from '@tufa/core';
import type { Context } from './context.js';
import type { KeyRole } from './keystore.js';
import { type ProposeAnswer, proposeUpdate, publishRoles } from './remote.js';
import { openClient, remoteOptions } from './repo.js';

export interface CollectionView {
  client: TufaClient;
  set: TrustedMetadataSet;
  root: Metadata<Root>;
  /** The targets role or a delegated role, with the keys and threshold that may sign it. */
  role(name: string): Promise<RoleView>;
}

export interface RoleView {
  name: string;
  /** The current metadata; undefined for a delegated role nothing was published for yet. */
  current: Metadata<Targets> | undefined;
  keyids: readonly string[];
  threshold: number;
  /** For a delegated role: the delegation that trusts it (its paths), as its delegator states it. */
  delegation?: DelegatedRole;
}

/**
 * The trusted state of the collection. `expiredOk` reads through expired roles (for `renew`):
 * every other rule still applies.
 */
export async function openCollection(ctx: Context, gun: string, expiredOk = false): Promise<CollectionView> {
  const client = await openClient(ctx, gun);
  let set: TrustedMetadataSet;
  let findRole: (name: string) => Promise<FoundRole>;
  if (expiredOk) {
    const view = await client.publisherView();
    set = view.set;
    findRole = view.findRole;
  } else {
    await client.refresh();
    set = await client.trustedMetadata();
    findRole = (name) => client.findRole(name);
  }
  const root = set.root;
  return {
    client,
    set,
    root,
    async role(name) {
      if (name === 'targets') {
        const r = root.signed.roles.targets;
        return { name, current: set.targets, keyids: r.keyids, threshold: r.threshold };
      }
      const found = await findRole(name);
      return {
        name,
        current: found.metadata,
        keyids: found.delegation.keyids,
        threshold: found.delegation.threshold,
        delegation: found.delegation,
      };
    },
  };
}

/** The trusted state of a collection as core's repository-side rules (CollectionUpdate) take it. */
export function collectionState(view: CollectionView): CollectionState {
  const stored = <T extends Metadata>(md: T) => ({ bytes: serializeMetadata(md), metadata: md });
  const delegated = new Map<string, StoredRole<Targets>>();
  for (const d of view.set.delegatedRoles()) delegated.set(d.role, stored(d.metadata));
  return {
    root: stored(view.set.root),
    targets: view.set.targets === undefined ? undefined : stored(view.set.targets),
    snapshot: view.set.snapshot === undefined ? undefined : stored(view.set.snapshot),
    delegated,
  };
}

/**
 * The stored roles that a planned update leaves untrusted (its root or a delegator changes who
 * signs them), as the collection update reports them: their next version, signed by this home's
 * keys among the new ones, to go up in the same update.
 */
export async function signKeptRoles(
  ctx: Context,
  view: CollectionView,
  plan: CollectionUpdate,
  now: number,
  partial?: PartialSigning,
): Promise<Map<string, Uint8Array>> {
  const documents = new Map<string, Uint8Array>();
  for (const status of plan.status()) {
    if (!status.kept || status.complete) continue;
    const by = status.thresholds[0]!;
    const keys = { keyids: [...by.signed, ...by.missing], threshold: by.threshold };
    const next = nextTargets(await view.role(status.role), (t) => t, now);
    documents.set(status.role, serializeMetadata(await signRole(ctx, status.role, next, keys, partial)));
  }
  return documents;
}

/**
 * Starts decrypting the local keys a publish of `roles` (key roles) will most likely sign with
 * (scrypt runs on the thread pool) while the trusted state downloads; localSigners then finds
 * them decrypted or under way. Only keys made for this collection (or for none) and those roles,
 * with tufa's default scrypt cost (a file asking for more is left until it is needed), one at a
 * time (as many scrypt runs at once would take as much memory, and the thread pool that DNS
 * lookups need), and only when the passphrase is known without asking: no prompt is ever shown
 * for a key that may not be needed. Failures are left for localSigners to report, if the key is
 * needed at all.
 */
export function prefetchSigners(ctx: Context, gun: string, roles: readonly KeyRole[]): void {
  void (async () => {
    for (const info of await ctx.keystore.list()) {
      if (!roles.includes(info.role) || (info.gun !== undefined && info.gun !== gun)) continue;
      const passphrase = ctx.passphrases.known(info.role);
      if (passphrase === undefined || !(await ctx.keystore.hasDefaultCost(info.keyid))) continue;
      await ctx.keystore.unlock(info.keyid, passphrase).catch(() => undefined);
    }
  })().catch(() => undefined);
}

/**
 * The signers of the keys among `keyids` that this home holds: keystore keys unlocked (asking for
 * each key's passphrase), keys on a PKCS#11 token opened there (asking for its PIN once).
 */
export async function localSigners(ctx: Context, keyids: readonly string[]): Promise<Signer[]> {
  const signers: Signer[] = [];
  for (const keyid of keyids) {
    if (!(await ctx.keystore.has(keyid))) continue;
    const info = await ctx.keystore.info(keyid);
    if (info.pkcs11 !== undefined) {
      // The native binding loads here, on first use of a hardware key, never at start-up.
      const { tokensOf } = await import('./pkcs11.js');
      signers.push(await tokensOf(ctx).signer({ keyid, pkcs11: info.pkcs11 }));
      continue;
    }
    const passphrase = await ctx.passphrases.get(info.role, `${info.role} key ${keyid.slice(0, 12)}…`);
    signers.push(await ctx.keystore.unlock(keyid, passphrase));
  }
  return signers;
}

/**
 * Where a publish may go pending (threshold signing): the roles signed by fewer local keys than
 * their threshold. Without one, signing under the threshold is refused.
 */
export interface PartialSigning {
  readonly incomplete: string[];
}

/**
 * Signs with the local keys of a role; THRESHOLD_NOT_MET when they are not enough, unless
 * `partial` is given and at least one key is here: then the role is signed so far and noted.
 */
export async function signRole<T extends Signed>(
  ctx: Context,
  role: string,
  signed: T,
  keys: { keyids: readonly string[]; threshold: number },
  partial?: PartialSigning,
): Promise<Metadata<T>> {
  const signers = await localSigners(ctx, keys.keyids);
  if (partial !== undefined && signers.length > 0 && signers.length < keys.threshold) {
    partial.incomplete.push(role);
    return signMetadata(signed, signers);
  }
  if (signers.length < keys.threshold) {
    throw new TufaError(
      'THRESHOLD_NOT_MET',
      `${role}: this home holds ${signers.length} of the ${keys.threshold} keys needed to sign it`,
      { role, expected: keys.threshold, found: signers.length, details: { keyids: keys.keyids } },
    );
  }
  return signMetadata(signed, signers);
}

// The one duration parser of the CLI lives in lifetime.ts, so that `verify --max-age` loads it alone.
export { parseLifetime } from './lifetime.js';

/** The next version of a targets role with a fresh expiry (`lifetime` ms, else the default). */
export function nextTargets(
  view: RoleView,
  change: (t: Targets) => Targets,
  now: number,
  lifetime?: number,
): Targets {
  lifetime ??= view.name === 'targets' ? DEFAULT_EXPIRY.targets : DEFAULT_EXPIRY.delegation;
  const base = view.current?.signed ?? { ...newTargets({ expires: expiresIn(now, lifetime) }), version: 0 };
  return change(bumpVersion(base as Targets, expiresIn(now, lifetime)));
}

/** True when the snapshot key is held here (the collection keeps it offline). */
export async function holdsSnapshotKey(ctx: Context, root: Root): Promise<boolean> {
  for (const keyid of root.roles.snapshot.keyids) if (await ctx.keystore.has(keyid)) return true;
  return false;
}

/** A client-signed snapshot listing the new versions of the changed roles. */
export async function localSnapshot(
  ctx: Context,
  view: CollectionView,
  changed: ReadonlyMap<string, Uint8Array>,
  versions: ReadonlyMap<string, number>,
  now: number,
): Promise<Uint8Array> {
  const current = view.set.snapshot!.signed;
  const meta = { ...current.meta };
  for (const [role, bytes] of changed) {
    if (role === 'root' || role === 'snapshot') continue;
    meta[metaFileName(role)] = metaFileFor(ctx.crypto, bytes, versions.get(role)!);
  }
  const next: Snapshot = { ...bumpVersion(current, expiresIn(now, DEFAULT_EXPIRY.snapshot)), meta };
  const keys: RoleKeys = view.root.signed.roles.snapshot;
  return serializeMetadata(await signRole(ctx, 'snapshot', next, keys));
}

/**
 * Builds the documents from the trusted state and uploads them; when another publisher won the
 * race (CONFLICT), refreshes and builds once more from the new state, then reports.
 */
export async function publishWithRetry(
  ctx: Context,
  gun: string,
  build: (view: CollectionView, partial: PartialSigning) => Promise<Map<string, Uint8Array>>,
  options: { expiredOk?: boolean; allowPending?: boolean; pendingExpiresIn?: number } = {},
): Promise<{ versions: Record<string, number>; retried: boolean; pending?: ProposeAnswer }> {
  const remote = await remoteOptions(ctx);
  for (let attempt = 1; ; attempt++) {
    const view = await openCollection(ctx, gun, options.expiredOk === true);
    const partial: PartialSigning = { incomplete: [] };
    const documents = await build(view, partial);
    try {
      if (partial.incomplete.length > 0) {
        if (options.allowPending !== true) {
          throw new TufaError('THRESHOLD_NOT_MET', `${partial.incomplete.join(', ')}: not enough keys here`);
        }
        // Threshold signing: the signed-so-far update waits on the server for the other signers.
        const pending = await proposeUpdate(remote, gun, documents, options.pendingExpiresIn);
        return { versions: pending.versions ?? {}, retried: attempt > 1, pending };
      }
      return { versions: await publishRoles(remote, gun, documents), retried: attempt > 1 };
    } catch (err) {
      if (attempt === 1 && isTufaError(err, 'CONFLICT')) {
        ctx.out.note(`tufa: ${gun} changed on the server while publishing; refreshing and trying once more`);
        continue;
      }
      throw err;
    }
  }
}
