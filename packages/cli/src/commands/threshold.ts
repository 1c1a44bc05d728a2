import {
  bumpVersion,
  CollectionUpdate,
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
  withDelegation,
  withRootRole,
} from '@tufa/core';
import type { Context } from '../context.js';
import { readPublicKey } from '../keystore.js';
import {
  type CollectionView,
  collectionState,
  localSigners,
  nextTargets,
  type PartialSigning,
  parseLifetime,
  publishWithRetry,
  signKeptRoles,
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

/** The keys of a role and its threshold after the change (core's builders refuse an unreachable threshold). */
interface RoleChange {
  keys: (current: { keyids: readonly string[]; keys: Readonly<Record<string, Key>>; threshold: number }) => {
    keys: Key[];
    threshold: number;
  };
  describe: string;
}

/**
 * Root N+1, or the delegator's next version, with the role's keys changed; then whatever the
 * collection update reports: root's own thresholds (5.3.4: root N's and N+1's) and the stored
 * roles the change leaves untrusted, signed again by the new keys in the same update.
 */
async function build(
  ctx: Context,
  view: CollectionView,
  role: string,
  change: RoleChange,
  now: number,
  partial: PartialSigning,
): Promise<{ documents: Map<string, Uint8Array>; root?: Uint8Array }> {
  const documents = new Map<string, Uint8Array>();
  let plan: CollectionUpdate;
  let rootBytes: Uint8Array | undefined;
  if (role === 'root' || role === 'targets') {
    plan = new CollectionUpdate({ current: collectionState(view), crypto: ctx.crypto, now });
    const current = view.root.signed;
    const roleKeys = current.roles[role];
    const next = change.keys({ keyids: roleKeys.keyids, keys: current.keys, threshold: roleKeys.threshold });
    const root: Root = withRootRole(bumpVersion(current, expiresIn(now, DEFAULT_EXPIRY.root)), role, next);
    // Every root key here signs: of root N's and of its own.
    const keyids = [...new Set([...current.roles.root.keyids, ...root.roles.root.keyids])];
    const signers: Signer[] = await localSigners(ctx, keyids);
    if (signers.length === 0) {
      throw new TufaError('THRESHOLD_NOT_MET', 'root: this home holds none of the root keys', {
        role: 'root',
        expected: keyids,
      });
    }
    rootBytes = serializeMetadata(await signMetadata(root, signers));
    documents.set('root', rootBytes);
    if (!plan.updateRoot(rootBytes).complete) partial.incomplete.push('root');
  } else {
    // A delegated role: its delegator's next version with the delegation changed.
    const found = await view.client.findRole(role);
    const delegator = found.delegator;
    const parentView = await view.role(delegator);
    const parent = parentView.current;
    if (parent === undefined)
      throw new TufaError('NOT_FOUND', `${delegator}: nothing published`, { role: delegator });
    const d = found.delegation;
    const next = change.keys({
      keyids: d.keyids,
      keys: parent.signed.delegations!.keys,
      threshold: d.threshold,
    });
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
    const bytes = serializeMetadata(await signRole(ctx, delegator, updated, parentView, partial));
    documents.set(delegator, bytes);
    // The state as loaded now: the role, its delegator and theirs.
    plan = new CollectionUpdate({ current: collectionState(view), crypto: ctx.crypto, now });
    plan.updateDelegatedTargets(bytes, delegator);
  }
  for (const [kept, bytes] of await signKeptRoles(ctx, view, plan, now, partial)) documents.set(kept, bytes);
  return rootBytes === undefined ? { documents } : { documents, root: rootBytes };
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
  if (files.length === 0) {
    throw new TufaError('INVALID_ARGUMENT', 'give at least one public key file or key id of this home');
  }
  // A key id this home holds (keystore or token) stands for its public key; anything else is a file.
  const added = await Promise.all(
    files.map(async (file) =>
      /^[0-9a-f]{64}$/.test(file) && (await ctx.keystore.has(file))
        ? (await ctx.keystore.info(file)).key
        : readPublicKey(file),
    ),
  );
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
