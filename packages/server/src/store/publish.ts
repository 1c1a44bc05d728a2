/**
 * Publishing: one atomic update of a collection (core's validateUpdate against its state, the
 * uploaded roles stored exactly as uploaded, snapshot and timestamp signed by the server, the
 * changefeed row), all in one transaction under the collection's lock; and the server's signing
 * of snapshot and timestamp, which re-signing reuses.
 */

import {
  type CryptoProvider,
  formatExpires,
  type Metadata,
  type MetaFile,
  metaFileFor,
  newSnapshot,
  newTimestamp,
  type Root,
  type Snapshot,
  type StoredRole,
  serializeMetadata,
  sha256Of,
  signMetadata,
  type Timestamp,
  TufaError,
  toHex,
  type ValidatedUpdate,
  validatingUpdate,
} from '@tufa/core';
import type pg from 'pg';
import type { AuditContext, AuditEntry } from '../audit.js';
import { prepared, transaction } from '../db.js';
import type { Change } from './changefeed.js';
import { type CollectionContext, insertRoles, lockCollection, type NewRow } from './collection.js';
import { sha256Hex } from './documents.js';
import { type OnlineKeyRow, type OnlineKeys, type OnlineRole, serverKeyidsOf, signerFor } from './keys.js';
import { type LoadedState, PARSED_ROWS_CTE, type StateRow, stateFromRows } from './state.js';

/** What publishing (and re-signing) needs beyond the collections: the keys, lifetimes and limits. */
export interface PublishContext extends CollectionContext {
  readonly keys: OnlineKeys;
  /** The server process's crypto provider: checks uploads, hashes what snapshot and timestamp list. */
  readonly crypto: CryptoProvider;
  /** Lifetimes of server-signed metadata, ms. */
  readonly timestampExpiry: number;
  readonly snapshotExpiry: number;
  /** Largest metadata document a collection may hold, bytes. */
  readonly maxMetadataSize: number;
  /** Most delegated roles a collection may declare by name. */
  readonly maxDelegatedRoles: number;
  /** Most succinct hash bins (TAP 15) a collection may declare, all its succinct delegations together. */
  readonly maxHashBins: number;
}

export interface PublishResult {
  /** The versions of root, targets, snapshot and timestamp, and of every role the update wrote. */
  versions: Record<string, number>;
}

/**
 * One atomic update: validate the would-be state with core's rules, store the uploaded roles
 * exactly as uploaded, sign snapshot and timestamp, record the change; all or nothing.
 */
export async function publish(
  ctx: PublishContext,
  request: { gun: string; uploads: ReadonlyMap<string, Uint8Array>; audit?: AuditContext | undefined },
): Promise<PublishResult> {
  const { gun, uploads, audit } = request;
  const maxSize = ctx.maxMetadataSize;
  for (const [role, bytes] of uploads) {
    if (bytes.length > maxSize) {
      throw new TufaError(
        'TOO_LARGE',
        `${role}: ${bytes.length} bytes, more than this server allows for one metadata document (${maxSize})`,
        { details: { role: role.slice(0, 300), limit: maxSize } },
      );
    }
  }
  const result = await transaction(ctx.pool, async (client) => {
    const id = await lockCollection(client, { gun, create: false, lockTimeout: ctx.lockTimeout });
    if (id === undefined) {
      throw new TufaError(
        'NOT_FOUND',
        `${gun}: no such collection; GET its timestamp.key before the first publish`,
        {
          details: { gun },
        },
      );
    }
    const now = ctx.now();
    const loaded = await loadStateAndKeys(client, ctx, id);
    const { state, timestamp, keyRows } = loaded;
    const serverKeyids = serverKeyidsOf(keyRows);
    let update: ValidatedUpdate;
    try {
      update = await loaded.run(
        validatingUpdate({ current: state, crypto: ctx.crypto, uploads, now, serverKeyids }),
      );
    } catch (err) {
      if (err instanceof TufaError && err.code === 'ROLLBACK') {
        // The usual loser of a race: someone published this version first.
        throw new TufaError(err.code, err.message, {
          role: err.role,
          expected: err.expected,
          found: err.found,
          details: { ...err.details, current: loaded.versions() },
        });
      }
      throw err;
    }
    checkDelegationCount(update, ctx);
    const changed = update.changed.map((c): NewRow => {
      const stored =
        c.role === 'root'
          ? update.root
          : c.role === 'targets'
            ? update.targets
            : c.role === 'snapshot'
              ? update.snapshot!
              : update.delegated.get(c.role)!;
      // The upload as parsed: its digest is the one the new snapshot took (hashed once).
      return { role: c.role, bytes: c.bytes, serverSigned: false, metadata: stored.metadata, stored };
    });
    const signed = await signOnline(ctx, {
      client,
      id,
      root: update.root.metadata.signed,
      snapshotOnline: update.snapshotOnline,
      resignSnapshot: true,
      snapshotMeta: update.snapshotMeta,
      currentSnapshot: update.snapshot ?? state.snapshot,
      currentTimestamp: timestamp,
      now,
      keyRows,
      alsoInsert: changed,
      change: (written): Change => {
        let entry: AuditEntry | undefined;
        if (audit !== undefined) {
          const roles: Record<string, number> = {};
          for (const c of update.changed) roles[c.role] = c.version;
          roles.snapshot = written.snapshot;
          roles.timestamp = written.timestamp.signed.version;
          entry = { ...audit, action: 'publish', gun, roles, outcome: 'accepted' };
        }
        return {
          gun,
          version: written.timestamp.signed.version,
          sha256: sha256Hex(written.timestampBytes),
          category: 'update',
          audit: entry,
        };
      },
    });
    // The top-level roles and what this update wrote: not every bin of a binned collection.
    const out: Record<string, number> = {};
    for (const role of ['root', 'targets', 'snapshot', 'timestamp']) {
      const version = loaded.version(role);
      if (version !== undefined) out[role] = version;
    }
    for (const c of update.changed) out[c.role] = c.version;
    out.snapshot = signed.snapshot;
    out.timestamp = signed.timestamp.signed.version;
    return { versions: out };
  });
  // This process's own readers must not wait for the NOTIFY to come back.
  ctx.cache?.invalidate(gun);
  return result;
}

/** The collection's state and its online keys (newest first), in one round trip. */
async function loadStateAndKeys(
  client: pg.ClientBase,
  ctx: CollectionContext,
  id: string,
): Promise<LoadedState & { keyRows: OnlineKeyRow[] }> {
  type Row = StateRow & {
    seq: string | null;
    keyid: string | null;
    public_key: string | null;
    private_key: Buffer | null;
  };
  const r = await client.query<Row>(
    prepared(
      'state_and_keys',
      `${PARSED_ROWS_CTE}
       SELECT *, NULL::bigint AS seq, NULL::text AS keyid, NULL::text AS public_key, NULL::bytea AS private_key
       FROM parsed
       UNION ALL
       SELECT role, NULL, NULL, NULL, NULL, NULL, seq, keyid, public_key, private_key
       FROM online_keys WHERE collection_id = $1`,
      [id],
    ),
  );
  const parsed: StateRow[] = [];
  const keys: (OnlineKeyRow & { seq: bigint })[] = [];
  for (const row of r.rows) {
    if (row.keyid === null) parsed.push(row);
    else {
      keys.push({
        role: row.role as OnlineRole,
        keyid: row.keyid,
        public_key: row.public_key!,
        private_key: row.private_key!,
        seq: BigInt(row.seq!),
      });
    }
  }
  keys.sort((a, b) => (a.seq > b.seq ? -1 : a.seq < b.seq ? 1 : 0));
  return { ...(await stateFromRows(client, { id, parsed, documents: ctx.documents })), keyRows: keys };
}

/**
 * What the collection would declare stays within the server's limits: role names (targets' and
 * every delegated role's delegations), and succinct hash bins apart (TAP 15: one delegation of
 * 2^bit_length bins, each a stored role, all listed in snapshot).
 */
function checkDelegationCount(
  update: ValidatedUpdate,
  limits: { maxDelegatedRoles: number; maxHashBins: number },
): void {
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

/** Signs and stores a new snapshot (when online and asked) and a new timestamp. */
export async function signOnline(
  ctx: PublishContext,
  args: {
    client: pg.ClientBase;
    id: string;
    root: Root;
    snapshotOnline: boolean;
    resignSnapshot: boolean;
    /** The meta of the snapshot to sign: every targets role of the state (version, length, sha256). */
    snapshotMeta: () => Record<string, MetaFile>;
    currentSnapshot: StoredRole<Snapshot> | undefined;
    currentTimestamp: StoredRole<Timestamp> | undefined;
    now: number;
    /** The collection's online keys when the caller read them already (one query less). */
    keyRows?: readonly OnlineKeyRow[];
    /** The caller's documents of this transaction, inserted with snapshot and timestamp. */
    alsoInsert?: readonly NewRow[];
    /** The changefeed row of what is signed, recorded in the same statement (then the last before COMMIT). */
    change?: (written: SignedOnline) => Change;
  },
): Promise<SignedOnline> {
  const { client, id } = args;
  const documents = ctx.documents;
  const signers = ctx.keys.signers(id, args.keyRows ?? (await ctx.keys.rows(client, id)));
  const rows: NewRow[] = [...(args.alsoInsert ?? [])];
  let snapshotBytes: Uint8Array;
  let snapshotVersion: number;
  let snapshotSha256: string;
  if (args.snapshotOnline && args.resignSnapshot) {
    snapshotVersion = (args.currentSnapshot?.metadata.signed.version ?? 0) + 1;
    const meta = args.snapshotMeta();
    const md = await signMetadata(
      newSnapshot({
        version: snapshotVersion,
        expires: formatExpires(args.now + ctx.snapshotExpiry),
        meta,
      }),
      [signerFor(signers, args.root, 'snapshot')],
    );
    snapshotBytes = serializeMetadata(md);
    // Hashed once, for the timestamp and the row alike.
    snapshotSha256 = toHex(ctx.crypto.hash('sha256', snapshotBytes));
    rows.push({
      role: 'snapshot',
      bytes: snapshotBytes,
      metadata: md,
      serverSigned: true,
      sha256: snapshotSha256,
    });
  } else {
    if (args.currentSnapshot === undefined) throw new TufaError('INTERNAL', 'no snapshot to time-stamp');
    snapshotBytes = args.currentSnapshot.bytes;
    snapshotVersion = args.currentSnapshot.metadata.signed.version;
    snapshotSha256 = sha256Of(ctx.crypto, args.currentSnapshot);
  }
  const timestamp = await signMetadata(
    newTimestamp({
      version: (args.currentTimestamp?.metadata.signed.version ?? 0) + 1,
      expires: formatExpires(args.now + ctx.timestampExpiry),
      snapshotMeta: metaFileFor(ctx.crypto, snapshotBytes, snapshotVersion, {
        known: { sha256: snapshotSha256 },
      }),
    }),
    [signerFor(signers, args.root, 'timestamp')],
  );
  const timestampBytes = serializeMetadata(timestamp);
  rows.push({ role: 'timestamp', bytes: timestampBytes, metadata: timestamp, serverSigned: true });
  const written: SignedOnline = { snapshot: snapshotVersion, timestamp, timestampBytes };
  // Every transaction that writes metadata ends here, with a new timestamp.
  await insertRoles(client, {
    id,
    rows,
    now: args.now,
    documents,
    crypto: ctx.crypto,
    change: args.change?.(written),
  });
  return written;
}

/** What signOnline wrote: the snapshot's version (new or kept) and the new timestamp. */
export interface SignedOnline {
  snapshot: number;
  timestamp: Metadata<Timestamp>;
  timestampBytes: Uint8Array;
}
