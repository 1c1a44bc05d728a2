/**
 * `tufa init GUN`: new keys, root v1 and targets v1 signed here, published to the server. With
 * thresholds above what this home can sign, they go up as a pending update for the co-signers.
 */
import {
  allDelegatedRoles,
  DEFAULT_EXPIRY,
  expiresIn,
  isTufaError,
  type Key,
  MAX_ROLES_PER_UPDATE,
  type Metadata,
  metaFileFor,
  newRoot,
  newSnapshot,
  newTargets,
  type Signed,
  type Signer,
  serializeMetadata,
  signMetadata,
  type Targets,
  TufaError,
  withSuccinctDelegation,
} from '@tufa/core';
import type { Context } from '../context.js';
import { homeKey, readPublicKey } from '../keystore.js';
import { localSigners, parseLifetime } from '../publishing.js';
import { fetchRoleBytes, getOnlineKey, proposeUpdate, publishRoles, type RemoteOptions } from '../remote.js';
import { pinRoot, pinRootKeys, remoteOptions } from '../repo.js';
import { pendingLines } from './pending.js';

export interface InitOptions {
  localSnapshot?: boolean;
  /** Threshold signing: more keys for root and targets (public key files) and their thresholds. */
  rootKeyFile?: string[];
  rootThreshold?: string;
  targetsKey?: string[];
  targetsThreshold?: string;
  /** false: make no new key here; keys of the roles already in this keystore still sign. */
  localKey?: boolean;
  /** Keys already in this home (the keystore or a PKCS#11 token) for root and targets, instead of new ones. */
  rootKeyId?: string;
  targetsKeyId?: string;
  pendingExpires?: string;
  /** TAP 15: targets delegates every tag to this many succinct hash bins (a power of two), signed by the targets keys. */
  hashBins?: string;
}

/** The most bins `--hash-bins` makes: 2^16 (each is a document the first publish signs and uploads). */
export const MAX_HASH_BINS = 65536;

/** The bit length of `--hash-bins N`: N a power of two from 2 to MAX_HASH_BINS. */
export function hashBinBits(value: string): number {
  const n = Number(value);
  const bits = Math.log2(n);
  if (!/^[1-9]\d*$/.test(value) || !Number.isInteger(bits) || bits < 1 || n > MAX_HASH_BINS) {
    throw new TufaError('INVALID_ARGUMENT', `--hash-bins must be a power of two from 2 to ${MAX_HASH_BINS}`, {
      found: value,
      expected: `2, 4, 8, …, ${MAX_HASH_BINS}`,
    });
  }
  return bits;
}

/** The name prefix of the bins `tufa init --hash-bins` makes: bins `bins-0` … `bins-ffff`. */
export const HASH_BIN_PREFIX = 'bins';

function threshold(value: string | undefined, keys: number, role: string): number {
  if (value === undefined) return 1;
  const n = Number(value);
  if (!/^[1-9]\d{0,3}$/.test(value) || n > keys) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `--${role}-threshold must be from 1 to the number of ${role} keys (${keys})`,
      {
        role,
        found: value,
      },
    );
  }
  return n;
}

/** A collection is created once: init of one that exists says so, and how to join it instead. */
async function refuseExisting(remote: RemoteOptions, gun: string): Promise<void> {
  try {
    await fetchRoleBytes(remote, gun, 'root.json');
  } catch (err) {
    if (isTufaError(err, 'NOT_FOUND')) return;
    throw err;
  }
  throw new TufaError(
    'CONFLICT',
    `${gun} already exists on ${remote.server}: tufa init only creates new collections. ` +
      'To work with this one, pin its root with --trust-root ROOT.json (from one of its publishers) ' +
      'or --root-key KEYID, or let the first command take it by trust on first use (it prints the root key ids); ' +
      'to publish to it, have its owners give one of your keys a role (tufa delegation add, tufa key add)',
    { details: { exists: true } },
  );
}

export async function init(ctx: Context, gun: string, options: InitOptions): Promise<void> {
  if ((ctx.options.rootKey ?? []).length > 0) {
    // Everywhere else --root-key pins a root key id: a file given there here would be misread.
    throw new TufaError(
      'INVALID_ARGUMENT',
      'tufa init takes another root key as a public key file with --root-key-file FILE; --root-key KEYID pins a root for the other commands',
      { found: '--root-key' },
    );
  }
  const remote = await remoteOptions(ctx);
  const now = Date.now();
  const localKey = options.localKey !== false;
  if (!localKey && (options.rootKeyId !== undefined || options.targetsKeyId !== undefined)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      '--root-key-id and --targets-key-id name local keys: drop --no-local-key',
    );
  }
  // Checked before the server is asked: a key id this home does not hold is refused at once.
  const given = {
    root:
      options.rootKeyId === undefined
        ? undefined
        : await homeKey(ctx.keystore, options.rootKeyId, '--root-key-id'),
    targets:
      options.targetsKeyId === undefined
        ? undefined
        : await homeKey(ctx.keystore, options.targetsKeyId, '--targets-key-id'),
  };
  const extraRoot = await Promise.all((options.rootKeyFile ?? []).map(readPublicKey));
  const extraTargets = await Promise.all((options.targetsKey ?? []).map(readPublicKey));
  if (!localKey && (extraRoot.length === 0 || extraTargets.length === 0)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'without a local key, give the keys of root and targets with --root-key-file and --targets-key',
    );
  }
  const rootThreshold = threshold(options.rootThreshold, extraRoot.length + (localKey ? 1 : 0), 'root');
  const targetsThreshold = threshold(
    options.targetsThreshold,
    extraTargets.length + (localKey ? 1 : 0),
    'targets',
  );
  const pendingExpiresIn =
    options.pendingExpires === undefined ? undefined : parseLifetime(options.pendingExpires) / 1000;
  const binBits = options.hashBins === undefined ? undefined : hashBinBits(options.hashBins);
  if (binBits !== undefined && options.localSnapshot) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      '--hash-bins needs the server to hold the snapshot key: drop --local-snapshot',
    );
  }
  // Ask the server first: a bad GUN, an unreachable server or a collection that exists fails
  // before any key is made.
  await refuseExisting(remote, gun);
  const timestampKey = await getOnlineKey(remote, gun, 'timestamp');
  const serverSnapshotKey = options.localSnapshot ? undefined : await getOnlineKey(remote, gun, 'snapshot');

  let rootInfo: { keyid: string; key: Key } | undefined;
  let targetsInfo: { keyid: string; key: Key } | undefined;
  if (localKey) {
    rootInfo = given.root;
    targetsInfo = given.targets;
    if (rootInfo === undefined) {
      const rootPass = await ctx.passphrases.get('root', `the new root key of ${gun}`, true);
      rootInfo = await ctx.keystore.generate({ role: 'root', gun, passphrase: rootPass });
    }
    if (targetsInfo === undefined) {
      const targetsPass = await ctx.passphrases.get('targets', `the new targets key of ${gun}`, true);
      targetsInfo = await ctx.keystore.generate({ role: 'targets', gun, passphrase: targetsPass });
    }
  }
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

  const root = newRoot({
    expires: expiresIn(now, DEFAULT_EXPIRY.root),
    roles: {
      root: { keys: [...(rootInfo ? [rootInfo.key] : []), ...extraRoot], threshold: rootThreshold },
      targets: {
        keys: [...(targetsInfo ? [targetsInfo.key] : []), ...extraTargets],
        threshold: targetsThreshold,
      },
      snapshot: { keys: [snapshotKey] },
      timestamp: { keys: [timestampKey] },
    },
  });
  // Every key of root and targets held here signs (new ones, and imported ones given as files).
  const rootSigners = await localSigners(ctx, root.roles.root.keyids);
  const targetsSigners = await localSigners(ctx, root.roles.targets.keyids);
  for (const [role, signers] of [
    ['root', rootSigners],
    ['targets', targetsSigners],
  ] as const) {
    if (signers.length === 0) {
      throw new TufaError(
        'THRESHOLD_NOT_MET',
        `${role}: this home holds none of its keys, so nothing here can sign it`,
        {
          role,
        },
      );
    }
  }
  const unsigned = [
    ...(rootSigners.length < rootThreshold ? ['root'] : []),
    ...(targetsSigners.length < targetsThreshold ? ['targets'] : []),
  ];
  const complete = unsigned.length === 0;
  if (!complete && snapshotSigner !== undefined) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'threshold signing needs the server to hold the snapshot key: drop --local-snapshot',
    );
  }
  const documents = new Map<string, Uint8Array>();
  const sign = <T extends Signed>(signed: T, signers: Signer[]): Promise<Metadata<T>> =>
    signMetadata(signed, signers);
  const rootBytes = serializeMetadata(await sign(root, rootSigners));
  let targets: Targets = newTargets({ expires: expiresIn(now, DEFAULT_EXPIRY.targets) });
  if (binBits !== undefined) {
    // One key set for every bin: the targets keys and threshold.
    targets = withSuccinctDelegation(targets, {
      keys: [...(targetsInfo ? [targetsInfo.key] : []), ...extraTargets],
      threshold: targetsThreshold,
      bitLength: binBits,
      namePrefix: HASH_BIN_PREFIX,
    });
  }
  const targetsBytes = serializeMetadata(await sign(targets, targetsSigners));
  documents.set('root', rootBytes);
  documents.set('targets', targetsBytes);
  // Every bin exists from the start (an empty v1), as TAP 15 repositories publish them: a client
  // then finds every bin in snapshot, and a tag that is in none is plainly not found.
  const bins = new Map<string, Uint8Array>();
  const succinct = targets.delegations?.succinctRoles;
  if (succinct !== undefined) {
    const empty = newTargets({ expires: expiresIn(now, DEFAULT_EXPIRY.targets) });
    for (const bin of allDelegatedRoles(targets.delegations)) {
      bins.set(bin.name, serializeMetadata(await sign(empty, targetsSigners)));
    }
  }
  if (snapshotSigner !== undefined) {
    const snapshot = newSnapshot({
      expires: expiresIn(now, DEFAULT_EXPIRY.snapshot),
      meta: { 'targets.json': metaFileFor(ctx.crypto, targetsBytes, 1) },
    });
    documents.set('snapshot', serializeMetadata(await sign(snapshot, [snapshotSigner])));
  }
  const summary = {
    gun,
    root: { keyid: rootInfo?.keyid ?? null, keyids: root.roles.root.keyids, threshold: rootThreshold },
    targets: {
      keyid: targetsInfo?.keyid ?? null,
      keyids: root.roles.targets.keyids,
      threshold: targetsThreshold,
    },
    hashBins:
      succinct === undefined
        ? null
        : { bins: bins.size, bitLength: succinct.bitLength, namePrefix: succinct.namePrefix },
    snapshot: { keyid: snapshotSigner?.keyid ?? null, serverManaged: snapshotSigner === undefined },
    keystore: ctx.keystore.dir,
  };
  // This home made the root: it pins it (the signed root, or while root still needs signatures,
  // its root keys and threshold), so that no later command here takes a root on first use.
  const pin = async (): Promise<'root' | 'root-keys'> => {
    if (unsigned.includes('root')) {
      await pinRootKeys(ctx, gun, root.roles.root.keyids, rootThreshold);
      return 'root-keys';
    }
    await pinRoot(ctx, gun, rootBytes);
    return 'root';
  };
  if (!complete) {
    if (bins.size + documents.size > MAX_ROLES_PER_UPDATE) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        `with signatures still missing, root, targets and every bin go up as one pending update: at most ${MAX_ROLES_PER_UPDATE - 2} bins`,
        { found: bins.size },
      );
    }
    for (const [name, bytes] of bins) documents.set(name, bytes);
    // Threshold signing: root v1 and targets v1 wait on the server for the other signers.
    const pending = await proposeUpdate(remote, gun, documents, pendingExpiresIn);
    const pinned = await pin();
    ctx.out.result(
      {
        ...summary,
        pinned,
        published: pending.published,
        pending: { id: pending.id, needed: pending.status.needed, status: pending.status },
      },
      [
        `${gun}: ${unsigned.join(' and ')} v1 need${unsigned.length === 1 ? 's' : ''} more signatures; root v1 and targets v1 uploaded as pending update ${pending.id.slice(0, 12)}`,
        ...pendingLines(pending.status),
        `co-signers review and sign with: ${unsigned.map((role) => `tufa sign ${gun} ${role}`).join(', then ')}`,
        `this home pins ${pinned === 'root' ? 'that root' : 'its root keys'}; clients can pin the root, once published, with: --root-key ${root.roles.root.keyids[0]}`,
      ],
    );
    return;
  }
  // The server takes at most MAX_ROLES_PER_UPDATE roles at once: the bins follow in batches.
  const binList = [...bins];
  const first = binList.splice(0, MAX_ROLES_PER_UPDATE - documents.size);
  await publishRoles(remote, gun, new Map([...documents, ...first]));
  while (binList.length > 0)
    await publishRoles(remote, gun, new Map(binList.splice(0, MAX_ROLES_PER_UPDATE)));
  const pinned = await pin();
  ctx.out.result({ ...summary, pinned }, [
    `initialized ${gun}`,
    `root key ids: ${root.roles.root.keyids.join(', ')} (threshold ${rootThreshold})`,
    `targets key ids: ${root.roles.targets.keyids.join(', ')} (threshold ${targetsThreshold})`,
    ...(succinct === undefined
      ? []
      : [
          `targets delegates every tag to ${bins.size} hash bins (${HASH_BIN_PREFIX}-…), signed by the targets keys`,
        ]),
    snapshotSigner === undefined
      ? 'snapshot and timestamp keys: held by the server'
      : `snapshot key id: ${snapshotSigner.keyid} (local)`,
    `private keys: ${ctx.keystore.dir}`,
    `clients can pin this root with: --root-key ${root.roles.root.keyids[0]}`,
  ]);
}
