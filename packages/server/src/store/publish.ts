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
  serializeMetadata,
  signMetadata,
  type Timestamp,
  TufaError,
  type ValidatedUpdate,
} from '@tufa/core';
import type pg from 'pg';
import type { AuditContext, AuditEntry } from '../audit.js';
import { prepared, transaction } from '../db.js';
import { yielding } from '../steps.js';
import { checkingUpdate, storedOf } from '../update-check.js';
import type { Checked, UpdateVerifier } from '../verifier.js';
import { recordChange } from './changefeed.js';
import {
  type CollectionContext,
  insertRoles,
  LATEST_ROLES_CTE,
  type LatestRow,
  lockCollection,
  type NewRow,
  stateFrom,
} from './collection.js';
import { sha256Hex } from './documents.js';
import { type OnlineKeyRow, type OnlineKeys, type OnlineRole, serverKeyidsOf, signerFor } from './keys.js';

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
  /** Most delegated roles a collection may declare. */
  readonly maxDelegatedRoles: number;
  /** Checks large updates off the event loop. */
  readonly verifier: UpdateVerifier;
}

export interface PublishResult {
  versions: Record<string, number>;
}

/**
 * One atomic update: validate the would-be state with core's rules, store the uploaded roles
 * exactly as uploaded, sign snapshot and timestamp, record the change; all or nothing. An update
 * with more bytes to parse than the verifier's threshold is checked in its worker (ADR 0013).
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
    const { latest, keyRows } = await latestAndKeys(client, id);
    const serverKeyids = serverKeyidsOf(keyRows);
    const versions: Record<string, number> = {};
    for (const row of latest) versions[row.role] = row.version;
    let checked: Checked & { update?: ValidatedUpdate; snapshotBytes?: Uint8Array };
    try {
      checked = ctx.verifier.inWorker(bytesToParse(ctx, id, latest, uploads))
        ? await checkInWorker(ctx, { client, id, latest, uploads, now, serverKeyids })
        : await checkHere(ctx, { client, id, latest, uploads, now, serverKeyids });
    } catch (err) {
      if (err instanceof TufaError && err.code === 'ROLLBACK') {
        // The usual loser of a race: someone published this version first.
        throw new TufaError(err.code, err.message, {
          role: err.role,
          expected: err.expected,
          found: err.found,
          details: { ...err.details, current: versions },
        });
      }
      throw err;
    }
    const { facts, update } = checked;
    const changed = facts.changed.map(
      (c): NewRow => ({
        role: c.role,
        bytes: checked.uploads.get(c.role)!,
        version: c.version,
        expiresAt: c.expiresAt,
        serverSigned: false,
        sha256: c.sha256,
        // Checked here: the parsed upload is kept for the next update of this collection.
        ...(update === undefined ? {} : { stored: storedOf(update, c.role) }),
      }),
    );
    const uploadedSnapshot = facts.changed.find((c) => c.role === 'snapshot');
    const signed = await signOnline(ctx, {
      client,
      id,
      onlineKeyids: facts.onlineKeyids,
      snapshotOnline: facts.snapshotOnline,
      resignSnapshot: true,
      snapshotMeta: () => facts.snapshotMeta!,
      currentSnapshot:
        uploadedSnapshot !== undefined
          ? { bytes: checked.uploads.get('snapshot')!, version: uploadedSnapshot.version }
          : checked.snapshotBytes === undefined
            ? undefined
            : { bytes: checked.snapshotBytes, version: versions.snapshot! },
      currentTimestampVersion: versions.timestamp,
      now,
      keyRows,
      alsoInsert: changed,
    });
    const out: Record<string, number> = { ...versions };
    for (const c of facts.changed) out[c.role] = c.version;
    out.snapshot = signed.snapshot;
    out.timestamp = signed.timestamp.signed.version;
    let entry: AuditEntry | undefined;
    if (audit !== undefined) {
      const roles: Record<string, number> = {};
      for (const c of facts.changed) roles[c.role] = c.version;
      roles.snapshot = signed.snapshot;
      roles.timestamp = signed.timestamp.signed.version;
      entry = { ...audit, action: 'publish', gun, roles, outcome: 'accepted' };
    }
    await recordChange(client, {
      gun,
      version: signed.timestamp.signed.version,
      sha256: sha256Hex(signed.timestampBytes),
      category: 'update',
      audit: entry,
    });
    return { versions: out };
  });
  // This process's own readers must not wait for the NOTIFY to come back.
  ctx.cache?.invalidate(gun);
  return result;
}

/** The latest row of a role, with the length of its bytes. */
type SizedRow = LatestRow & { length: number };

interface CheckRequest {
  client: pg.ClientBase;
  id: string;
  latest: readonly SizedRow[];
  uploads: ReadonlyMap<string, Uint8Array>;
  now: number;
  serverKeyids: { timestamp: string[]; snapshot: string[] };
}

/** Bytes the event loop would parse to check the update here: the uploads and the stored documents not held parsed. */
function bytesToParse(
  ctx: PublishContext,
  id: string,
  latest: readonly SizedRow[],
  uploads: ReadonlyMap<string, Uint8Array>,
): number {
  let bytes = 0;
  for (const upload of uploads.values()) bytes += upload.length;
  for (const row of latest) {
    if (row.role !== 'timestamp' && ctx.documents.get(id, row.role, row.sha256) === undefined)
      bytes += row.length;
  }
  return bytes;
}

/** The check on the event loop, in steps: the state parsed (and kept), then core's rules. */
async function checkHere(
  ctx: PublishContext,
  request: CheckRequest,
): Promise<Checked & { update: ValidatedUpdate; snapshotBytes?: Uint8Array }> {
  const { client, id, latest, uploads, now, serverKeyids } = request;
  const { state } = await stateFrom(client, { id, latest, documents: ctx.documents });
  const checked = await yielding(
    checkingUpdate({
      current: state,
      uploads,
      now,
      serverKeyids,
      maxDelegatedRoles: ctx.maxDelegatedRoles,
      crypto: ctx.crypto,
    }),
  );
  return {
    ...checked,
    uploads,
    ...(state.snapshot === undefined ? {} : { snapshotBytes: state.snapshot.bytes }),
  };
}

/**
 * The check in the verification worker: it gets the stored documents' bytes (those held parsed
 * give theirs), less the roles the update replaces, which are given by version only (core's
 * replacedVersions): a large document is never parsed here, nor loaded only to be replaced.
 */
async function checkInWorker(
  ctx: PublishContext,
  request: CheckRequest,
): Promise<Checked & { snapshotBytes?: Uint8Array }> {
  const { client, id, latest, uploads, now, serverKeyids } = request;
  const replacedVersions: [string, number][] = [];
  const stored: { role: string; sha256: string; bytes: Uint8Array }[] = [];
  const fetch: SizedRow[] = [];
  for (const row of latest) {
    if (row.role === 'timestamp') continue;
    if (row.role !== 'root' && uploads.has(row.role)) replacedVersions.push([row.role, row.version]);
    else {
      const held = ctx.documents.get(id, row.role, row.sha256);
      if (held !== undefined) stored.push({ role: row.role, sha256: row.sha256, bytes: held.bytes });
      else fetch.push(row);
    }
  }
  if (fetch.length > 0) {
    const r = await client.query<{ role: string; data: Buffer; sha256: string }>(
      'SELECT role, data, sha256 FROM metadata WHERE collection_id = $1 AND (role, version) IN (SELECT * FROM unnest($2::text[], $3::int[]))',
      [id, fetch.map((row) => row.role), fetch.map((row) => row.version)],
    );
    for (const row of r.rows) stored.push({ role: row.role, sha256: row.sha256, bytes: row.data });
  }
  // The uploads' buffers move to the worker and come back with its answer.
  const checked = await ctx.verifier.check({
    uploads: [...uploads],
    stored,
    replacedVersions,
    now,
    serverKeyids,
    maxDelegatedRoles: ctx.maxDelegatedRoles,
  });
  const snapshot = stored.find((s) => s.role === 'snapshot');
  return { ...checked, ...(snapshot === undefined ? {} : { snapshotBytes: snapshot.bytes }) };
}

/** The latest row of each role (with its length) and the collection's online keys (newest first), in one round trip. */
async function latestAndKeys(
  client: pg.ClientBase,
  id: string,
): Promise<{ latest: SizedRow[]; keyRows: OnlineKeyRow[] }> {
  const r = await client.query<{
    role: string;
    version: number | null;
    sha256: string | null;
    length: number | null;
    seq: string | null;
    keyid: string | null;
    private_key: Buffer | null;
  }>(
    prepared(
      'state_and_keys',
      `${LATEST_ROLES_CTE}
       SELECT role, version, sha256, length, NULL::bigint AS seq, NULL::text AS keyid, NULL::bytea AS private_key
       FROM latest
       UNION ALL
       SELECT role, NULL, NULL, NULL, seq, keyid, private_key FROM online_keys WHERE collection_id = $1`,
      [id],
    ),
  );
  const latest: SizedRow[] = [];
  const keys: (OnlineKeyRow & { seq: bigint })[] = [];
  for (const row of r.rows) {
    if (row.keyid === null) {
      latest.push({ role: row.role, version: row.version!, sha256: row.sha256!, length: row.length! });
    } else {
      keys.push({
        role: row.role as OnlineRole,
        keyid: row.keyid,
        private_key: row.private_key!,
        seq: BigInt(row.seq!),
      });
    }
  }
  keys.sort((a, b) => (a.seq > b.seq ? -1 : a.seq < b.seq ? 1 : 0));
  return { latest, keyRows: keys };
}

/** Signs and stores a new snapshot (when online and asked) and a new timestamp. */
export async function signOnline(
  ctx: PublishContext,
  args: {
    client: pg.ClientBase;
    id: string;
    /** The key ids root gives timestamp and snapshot: the server signs with the one of them it holds. */
    onlineKeyids: { readonly timestamp: readonly string[]; readonly snapshot: readonly string[] };
    snapshotOnline: boolean;
    resignSnapshot: boolean;
    /** What the new snapshot lists (asked only when the server signs one). */
    snapshotMeta: () => Readonly<Record<string, MetaFile>>;
    /** The snapshot the new timestamp names when the server signs none: its bytes and version. */
    currentSnapshot: { bytes: Uint8Array; version: number } | undefined;
    currentTimestampVersion: number | undefined;
    now: number;
    /** The collection's online keys when the caller read them already (one query less). */
    keyRows?: readonly OnlineKeyRow[];
    /** The caller's documents of this transaction, inserted with snapshot and timestamp. */
    alsoInsert?: readonly NewRow[];
  },
): Promise<{ snapshot: number; timestamp: Metadata<Timestamp>; timestampBytes: Uint8Array }> {
  const { client, id } = args;
  const documents = ctx.documents;
  const signers = ctx.keys.signers(id, args.keyRows ?? (await ctx.keys.rows(client, id)));
  const rows: NewRow[] = [...(args.alsoInsert ?? [])];
  let snapshotBytes: Uint8Array;
  let snapshotVersion: number;
  if (args.snapshotOnline && args.resignSnapshot) {
    snapshotVersion = (args.currentSnapshot?.version ?? 0) + 1;
    const md = signMetadata(
      newSnapshot({
        version: snapshotVersion,
        expires: formatExpires(args.now + ctx.snapshotExpiry),
        meta: args.snapshotMeta() as Record<string, MetaFile>,
      }),
      [signerFor(signers, args.onlineKeyids.snapshot, 'snapshot')],
    );
    snapshotBytes = serializeMetadata(md);
    rows.push(serverSigned('snapshot', snapshotBytes, md));
  } else {
    if (args.currentSnapshot === undefined) throw new TufaError('INTERNAL', 'no snapshot to time-stamp');
    snapshotBytes = args.currentSnapshot.bytes;
    snapshotVersion = args.currentSnapshot.version;
  }
  const timestamp = signMetadata(
    newTimestamp({
      version: (args.currentTimestampVersion ?? 0) + 1,
      expires: formatExpires(args.now + ctx.timestampExpiry),
      snapshotMeta: metaFileFor(ctx.crypto, snapshotBytes, snapshotVersion),
    }),
    [signerFor(signers, args.onlineKeyids.timestamp, 'timestamp')],
  );
  const timestampBytes = serializeMetadata(timestamp);
  rows.push(serverSigned('timestamp', timestampBytes, timestamp));
  // Every transaction that writes metadata ends here, with a new timestamp.
  await insertRoles(client, { id, rows, now: args.now, documents, crypto: ctx.crypto });
  return { snapshot: snapshotVersion, timestamp, timestampBytes };
}

/** A document the server signed, kept parsed for the next update. */
function serverSigned(role: string, bytes: Uint8Array, metadata: Metadata): NewRow {
  const { version, expiresAt } = metadata.signed;
  return { role, bytes, version, expiresAt, serverSigned: true, stored: { bytes, metadata } };
}
