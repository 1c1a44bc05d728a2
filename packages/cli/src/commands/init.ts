/** `tufa init GUN`: new keys, root v1 and targets v1 signed here, published to the server. */
import {
  DEFAULT_EXPIRY,
  expiresIn,
  type Key,
  type Metadata,
  metaFileFor,
  newRoot,
  newSnapshot,
  newTargets,
  type Signed,
  type Signer,
  serializeMetadata,
  signMetadata,
} from '@tufa/core';
import type { Context } from '../context.js';
import { getOnlineKey, publishRoles } from '../remote.js';
import { pinRoot, remoteOptions } from '../repo.js';

export async function init(ctx: Context, gun: string, options: { localSnapshot?: boolean }): Promise<void> {
  const remote = await remoteOptions(ctx);
  const now = Date.now();
  // Ask the server first: a bad GUN or an unreachable server fails before any key is made.
  const timestampKey = await getOnlineKey(remote, gun, 'timestamp');
  const serverSnapshotKey = options.localSnapshot ? undefined : await getOnlineKey(remote, gun, 'snapshot');

  const rootPass = await ctx.passphrases.get('root', `the new root key of ${gun}`, true);
  const targetsPass = await ctx.passphrases.get('targets', `the new targets key of ${gun}`, true);
  const rootInfo = await ctx.keystore.generate({ role: 'root', gun, passphrase: rootPass });
  const targetsInfo = await ctx.keystore.generate({ role: 'targets', gun, passphrase: targetsPass });
  let snapshotKey: Key;
  let snapshotSigner: Signer | undefined;
  if (serverSnapshotKey === undefined) {
    const pass = await ctx.passphrases.get('snapshot', `the new snapshot key of ${gun}`, true);
    const info = await ctx.keystore.generate({ role: 'snapshot', gun, passphrase: pass });
    snapshotSigner = await ctx.keystore.unlock(info.keyid, pass);
    snapshotKey = info.key;
  } else {
    snapshotKey = serverSnapshotKey;
  }
  const rootSigner = await ctx.keystore.unlock(rootInfo.keyid, rootPass);
  const targetsSigner = await ctx.keystore.unlock(targetsInfo.keyid, targetsPass);

  const root = newRoot({
    expires: expiresIn(now, DEFAULT_EXPIRY.root),
    roles: {
      root: { keys: [rootInfo.key] },
      targets: { keys: [targetsInfo.key] },
      snapshot: { keys: [snapshotKey] },
      timestamp: { keys: [timestampKey] },
    },
  });
  const documents = new Map<string, Uint8Array>();
  const sign = <T extends Signed>(signed: T, signer: Signer): Metadata<T> => signMetadata(signed, [signer]);
  const rootBytes = serializeMetadata(sign(root, rootSigner));
  const targetsBytes = serializeMetadata(
    sign(newTargets({ expires: expiresIn(now, DEFAULT_EXPIRY.targets) }), targetsSigner),
  );
  documents.set('root', rootBytes);
  documents.set('targets', targetsBytes);
  if (snapshotSigner !== undefined) {
    const snapshot = newSnapshot({
      expires: expiresIn(now, DEFAULT_EXPIRY.snapshot),
      meta: { 'targets.json': metaFileFor(targetsBytes, 1) },
    });
    documents.set('snapshot', serializeMetadata(sign(snapshot, snapshotSigner)));
  }
  await publishRoles(remote, gun, documents);
  await pinRoot(ctx, gun, rootBytes);
  ctx.out.result(
    {
      gun,
      root: { keyid: rootInfo.keyid },
      targets: { keyid: targetsInfo.keyid },
      snapshot: { keyid: snapshotSigner?.keyid ?? null, serverManaged: snapshotSigner === undefined },
      keystore: ctx.keystore.dir,
    },
    [
      `initialized ${gun}`,
      `root key id: ${rootInfo.keyid}`,
      `targets key id: ${targetsInfo.keyid}`,
      snapshotSigner === undefined
        ? 'snapshot and timestamp keys: held by the server'
        : `snapshot key id: ${snapshotSigner.keyid} (local)`,
      `private keys: ${ctx.keystore.dir}`,
      `clients can pin this root with: --root-key ${rootInfo.keyid}`,
    ],
  );
}
