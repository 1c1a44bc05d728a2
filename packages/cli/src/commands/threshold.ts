import {
  bumpVersion,
  computeKeyId,
  DEFAULT_EXPIRY,
  expiresIn,
  type Key,
  type Root,
  type Signer,
  serializeMetadata,
  signMetadata,
  type Targets,
  TufaError,
  verifyMetadataSignatures,
  withDelegation,
  withRootRole,
} from '@tufa/core';
import type { Context } from '../context.js';
import { readPublicKey } from '../keystore.js';
import {
  type CollectionView,
  localSigners,
  nextTargets,
  type PartialSigning,
  parseLifetime,
  publishWithRetry,
  signRole,
} from '../publishing.js';
import { pinRoot } from '../repo.js';
import { pendingLines } from './pending.js';
import { checkRoleName } from './stage.js';

function parseThreshold(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d{0,3}$/.test(value)) {
    throw new TufaError('INVALID_ARGUMENT', 'a threshold is a positive integer', { found: value });
  }
  return Number(value);
}

/** The keys of a role and its threshold after the change, checked. */
interface RoleChange {
  keys: (current: { keyids: readonly string[]; keys: Readonly<Record<string, Key>>; threshold: number }) => {
    keys: Key[];
    threshold: number;
  };
  describe: string;
}

function applyChange(
  role: string,
  current: { keyids: readonly string[]; keys: Readonly<Record<string, Key>>; threshold: number },
  change: RoleChange,
): { keys: Key[]; threshold: number } {
  const next = change.keys(current);
  if (next.keys.length === 0)
    throw new TufaError('INVALID_ARGUMENT', `${role} would have no keys left`, { role });
  if (next.threshold > next.keys.length) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${role}: threshold ${next.threshold} with ${next.keys.length} key(s) could never be met; lower it first`,
      { role, expected: `<= ${next.keys.length}`, found: next.threshold },
    );
  }
  return next;
}

/** Root N+1 (and targets N+1 when the targets keys change), or the delegator's next version. */
async function build(
  ctx: Context,
  view: CollectionView,
  role: string,
  change: RoleChange,
  now: number,
  partial: PartialSigning,
): Promise<{ documents: Map<string, Uint8Array>; root?: Uint8Array }> {
  const documents = new Map<string, Uint8Array>();
  if (role === 'root' || role === 'targets') {
    const current = view.root.signed;
    const roleKeys = current.roles[role];
    const next = applyChange(
      role,
      { keyids: roleKeys.keyids, keys: current.keys, threshold: roleKeys.threshold },
      change,
    );
    const root: Root = withRootRole(bumpVersion(current, expiresIn(now, DEFAULT_EXPIRY.root)), role, next);
    // 5.3.4: root N+1 needs the threshold of root N's keys and of its own: every root key here signs.
    const keyids = [...new Set([...current.roles.root.keyids, ...root.roles.root.keyids])];
    const signers: Signer[] = await localSigners(ctx, keyids);
    if (signers.length === 0) {
      throw new TufaError('THRESHOLD_NOT_MET', 'root: this home holds none of the root keys', {
        role: 'root',
        expected: keyids,
      });
    }
    const md = signMetadata(root, signers);
    const enough = [current, root].every(
      (by) => verifyMetadataSignatures(md, { role: 'root', ...by.roles.root, keys: by.keys }).verified,
    );
    if (!enough) partial.incomplete.push('root');
    const rootBytes = serializeMetadata(md);
    documents.set('root', rootBytes);
    if (role === 'targets') {
      // The current targets must stay trusted under the new keys: re-signed by them, in the same update.
      const kept = view.set.targets!;
      const stillValid = verifyMetadataSignatures(kept, {
        role: 'targets',
        ...root.roles.targets,
        keys: root.keys,
      });
      if (!stillValid.verified) {
        const targets = nextTargets(await view.role('targets'), (t) => t, now);
        documents.set(
          'targets',
          serializeMetadata(await signRole(ctx, 'targets', targets, root.roles.targets, partial)),
        );
      }
    }
    return { documents, root: rootBytes };
  }
  // A delegated role: its delegator's next version with the delegation changed.
  const found = await view.client.findRole(role);
  const delegator = found.delegator;
  const parentView = await view.role(delegator);
  const parent = parentView.current;
  if (parent === undefined)
    throw new TufaError('NOT_FOUND', `${delegator}: nothing published`, { role: delegator });
  const d = found.delegation;
  const next = applyChange(
    role,
    { keyids: d.keyids, keys: parent.signed.delegations!.keys, threshold: d.threshold },
    change,
  );
  const updated: Targets = nextTargets(
    parentView,
    (t) =>
      withDelegation(t, {
        name: role,
        keys: next.keys,
        threshold: next.threshold,
        terminating: d.terminating,
        ...(d.paths !== undefined ? { paths: d.paths } : { pathHashPrefixes: d.pathHashPrefixes! }),
      }),
    now,
  );
  documents.set(delegator, serializeMetadata(await signRole(ctx, delegator, updated, parentView, partial)));
  return { documents };
}

async function run(
  ctx: Context,
  gun: string,
  role: string,
  change: RoleChange,
  options: { pendingExpires?: string },
): Promise<void> {
  if (role === 'snapshot' || role === 'timestamp') {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${role} is held by the server (or rotated with tufa key rotate)`,
      { role },
    );
  }
  if (role !== 'root') checkRoleName(role);
  const pendingExpiresIn =
    options.pendingExpires === undefined ? undefined : parseLifetime(options.pendingExpires) / 1000;
  const now = Date.now();
  let rootBytes: Uint8Array | undefined;
  const result = await publishWithRetry(
    ctx,
    gun,
    async (view, partial) => {
      const built = await build(ctx, view, role, change, now, partial);
      rootBytes = built.root;
      return built.documents;
    },
    { allowPending: true, ...(pendingExpiresIn === undefined ? {} : { pendingExpiresIn }) },
  );
  const pending = result.pending;
  if (pending !== undefined && !pending.published) {
    ctx.out.result(
      {
        gun,
        role,
        change: change.describe,
        published: false,
        pending: { id: pending.id, needed: pending.status.needed, status: pending.status },
      },
      [
        `${gun}: ${change.describe} needs more signatures; uploaded as pending update ${pending.id.slice(0, 12)}`,
        ...pendingLines(pending.status),
        `co-signers review and sign it with: tufa sign ${gun} ${pending.status.roles[0]?.role ?? role}`,
      ],
    );
    return;
  }
  if (rootBytes !== undefined) await pinRoot(ctx, gun, rootBytes);
  ctx.out.result(
    { gun, role, change: change.describe, published: true, versions: result.versions },
    `${gun}: ${change.describe}; published ${Object.entries(result.versions)
      .map(([r, v]) => `${r} v${v}`)
      .join(', ')}`,
  );
}

export async function keyAdd(
  ctx: Context,
  gun: string,
  role: string,
  files: string[],
  options: { threshold?: string; pendingExpires?: string },
): Promise<void> {
  if (files.length === 0) throw new TufaError('INVALID_ARGUMENT', 'give at least one public key file');
  const added = await Promise.all(files.map(readPublicKey));
  const threshold = parseThreshold(options.threshold);
  const ids = added.map(computeKeyId);
  await run(
    ctx,
    gun,
    role,
    {
      describe: `add ${ids.map((id) => id.slice(0, 12)).join(', ')} to ${role}${threshold === undefined ? '' : `, threshold ${threshold}`}`,
      keys: (current) => {
        const existing = current.keyids.map((id) => current.keys[id]!);
        const known = ids.filter((id) => current.keyids.includes(id));
        if (known.length > 0) {
          throw new TufaError('INVALID_ARGUMENT', `${role} already has key ${known[0]}`, {
            role,
            found: known[0],
          });
        }
        return { keys: [...existing, ...added], threshold: threshold ?? current.threshold };
      },
    },
    options,
  );
}

export async function keyRemove(
  ctx: Context,
  gun: string,
  role: string,
  keyid: string,
  options: { threshold?: string; pendingExpires?: string },
): Promise<void> {
  if (!/^[0-9a-f]{64}$/.test(keyid))
    throw new TufaError('INVALID_ARGUMENT', `not a key id: ${keyid.slice(0, 80)}`);
  const threshold = parseThreshold(options.threshold);
  await run(
    ctx,
    gun,
    role,
    {
      describe: `remove ${keyid.slice(0, 12)} from ${role}${threshold === undefined ? '' : `, threshold ${threshold}`}`,
      keys: (current) => {
        if (!current.keyids.includes(keyid)) {
          throw new TufaError('NOT_FOUND', `${keyid} is not a key of ${role}`, { role, found: keyid });
        }
        return {
          keys: current.keyids.filter((id) => id !== keyid).map((id) => current.keys[id]!),
          threshold: threshold ?? current.threshold,
        };
      },
    },
    options,
  );
}

export async function thresholdSet(
  ctx: Context,
  gun: string,
  role: string,
  value: string,
  options: { pendingExpires?: string },
): Promise<void> {
  const threshold = parseThreshold(value)!;
  await run(
    ctx,
    gun,
    role,
    {
      describe: `set the threshold of ${role} to ${threshold}`,
      keys: (current) => {
        if (current.threshold === threshold) {
          throw new TufaError('INVALID_ARGUMENT', `${role} already has threshold ${threshold}`, { role });
        }
        return { keys: current.keyids.map((id) => current.keys[id]!), threshold };
      },
    },
    options,
  );
}
