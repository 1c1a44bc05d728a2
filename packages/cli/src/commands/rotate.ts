/**
 * `tufa key rotate GUN ROLE`: a new key for a role, named by a new root (version + 1) that the
 * current root keys sign (and, for root itself, the new key too). Everything goes up in one update.
 */
import {
  bumpVersion,
  CollectionUpdate,
  DEFAULT_EXPIRY,
  expiresIn,
  type Key,
  type Root,
  type Signer,
  serializeMetadata,
  signMetadata,
  TufaError,
  withRootRole,
} from '@tufa/core';
import type { Context } from '../context.js';
import { homeKey, type KeyRole } from '../keystore.js';
import {
  type CollectionView,
  collectionState,
  localSigners,
  localSnapshot,
  publishWithRetry,
  signKeptRoles,
} from '../publishing.js';
import { getOnlineKey, rotateOnlineKey } from '../remote.js';
import { pinRoot, remoteOptions } from '../repo.js';

type RotatableRole = 'root' | 'targets' | 'snapshot' | 'timestamp';

/** A root rotation changes who can change everything: asked for on a terminal, --yes in scripts. */
async function confirmRootRotation(gun: string): Promise<void> {
  if (!process.stdin.isTTY) {
    throw new TufaError('INVALID_ARGUMENT', 'rotating the root key needs --yes when not run on a terminal');
  }
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(
      `Rotate the root key of ${gun}? Clients follow the new root. Type yes: `,
    );
    if (answer.trim() !== 'yes') throw new TufaError('INVALID_ARGUMENT', 'root rotation not confirmed');
  } finally {
    rl.close();
  }
}

async function newLocalKey(ctx: Context, gun: string, role: KeyRole): Promise<Signer & { key: Key }> {
  const passphrase = await ctx.passphrases.get(role, `the new ${role} key of ${gun}`, true);
  const info = await ctx.keystore.generate({ role, gun, passphrase });
  return ctx.keystore.unlock(info.keyid, passphrase);
}

/**
 * Root N+1 with `role` given to `keys`, signed by the current root keys here (and `extra`), with
 * what the collection update says of it: refused unless both root thresholds (N's, N+1's) are met.
 */
async function rotatedRoot(
  ctx: Context,
  view: CollectionView,
  plan: CollectionUpdate,
  role: RotatableRole,
  keys: Key[],
  now: number,
  extraSigners: Signer[] = [],
): Promise<{ root: Root; bytes: Uint8Array }> {
  const current = view.root.signed;
  const root = withRootRole(bumpVersion(current, expiresIn(now, DEFAULT_EXPIRY.root)), role, {
    keys,
    threshold: role === 'root' ? Math.min(current.roles.root.threshold, keys.length) : 1,
  });
  const oldSigners = await localSigners(ctx, current.roles.root.keyids);
  const bytes = serializeMetadata(await signMetadata(root, [...oldSigners, ...extraSigners]));
  const unmet = plan.updateRoot(bytes).thresholds.find((t) => !t.verified);
  if (unmet !== undefined) {
    throw new TufaError(
      'THRESHOLD_NOT_MET',
      `root: this home holds ${unmet.signed.length} of the ${unmet.threshold} keys of ${unmet.by} needed`,
      { role: 'root', expected: unmet.threshold, found: unmet.signed.length },
    );
  }
  return { root, bytes };
}

export async function keyRotate(
  ctx: Context,
  gun: string,
  role: string,
  options: { serverManaged?: boolean; yes?: boolean; keyId?: string },
): Promise<void> {
  if (!['root', 'targets', 'snapshot', 'timestamp'].includes(role)) {
    throw new TufaError('INVALID_ARGUMENT', 'ROLE must be root, targets, snapshot or timestamp', {
      found: role,
    });
  }
  if (options.keyId !== undefined && (role === 'timestamp' || options.serverManaged)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `--key-id names a key of this home: the server holds the new ${role} key`,
    );
  }
  // Checked before anything is asked or made: the role moves onto a key this home holds.
  const existing =
    options.keyId === undefined ? undefined : await homeKey(ctx.keystore, options.keyId, '--key-id');
  if (role === 'root' && options.yes !== true) await confirmRootRotation(gun);
  const remote = await remoteOptions(ctx);
  const now = Date.now();
  // Keys are made once, before any attempt: a retry after a lost race reuses them.
  let newSigner: (Signer & { key: Key }) | undefined;
  let serverKey: Key | undefined;
  if (role === 'timestamp') serverKey = await rotateOnlineKey(remote, gun, 'timestamp');
  else if (role === 'snapshot' && options.serverManaged)
    serverKey = await getOnlineKey(remote, gun, 'snapshot');
  else if (existing !== undefined) {
    const [signer] = await localSigners(ctx, [existing.keyid]);
    newSigner = signer!;
  } else newSigner = await newLocalKey(ctx, gun, role as KeyRole);
  const newKey = (serverKey ?? newSigner?.key) as Key;

  let pinned: Uint8Array | undefined;
  const result = await publishWithRetry(ctx, gun, async (view) => {
    const documents = new Map<string, Uint8Array>();
    if (
      role === 'snapshot' &&
      options.serverManaged &&
      view.root.signed.roles.snapshot.keyids.includes(newSigner?.keyid ?? '')
    ) {
      throw new TufaError('INVALID_ARGUMENT', 'the snapshot key is already held by the server');
    }
    const plan = new CollectionUpdate({ current: collectionState(view), crypto: ctx.crypto, now });
    const { root, bytes } = await rotatedRoot(
      ctx,
      view,
      plan,
      role as RotatableRole,
      [newKey],
      now,
      role === 'root' && newSigner !== undefined ? [newSigner] : [],
    );
    documents.set('root', bytes);
    pinned = bytes;
    // Every tag stays valid: targets, when its key changes, re-signed by the new key in the same update.
    for (const [kept, keptBytes] of await signKeptRoles(ctx, view, plan, now)) documents.set(kept, keptBytes);
    if (role === 'snapshot' && !options.serverManaged) {
      const rotated: CollectionView = { ...view, root: { ...view.root, signed: root } };
      documents.set('snapshot', await localSnapshot(ctx, rotated, new Map(), new Map(), now));
    }
    return documents;
  });
  if (pinned !== undefined) await pinRoot(ctx, gun, pinned);
  const keyid = newSigner?.keyid ?? null;
  ctx.out.result({ gun, role, keyid, serverManaged: serverKey !== undefined, versions: result.versions }, [
    `rotated the ${role} key of ${gun}${serverKey !== undefined ? ' (held by the server)' : `: new key ${keyid}`}`,
    `published ${Object.entries(result.versions)
      .map(([r, v]) => `${r} v${v}`)
      .join(', ')}`,
  ]);
}
