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
  metaWithChanges,
  newSnapshot,
  newTimestamp,
  parseIndexedSnapshot,
  type Snapshot,
  type SnapshotChanges,
  type SnapshotIndex,
  type StoredRole,
  serializeMetadata,
  sha256Of,
  signMetadata,
  snapshotIndexOf,
  snapshotWithChanges,
  type Timestamp,
  TufaError,
  toHex,
  type ValidatedUpdate,
  validatingUpdate,
} from '@tufa/core';
import type pg from 'pg';
import type { AuditContext, AuditEntry } from '../audit.js';
import { prepared, transaction } from '../db.js';
import { checkDelegationCount, storedOf, withCurrentVersions } from '../update-check.js';
import type { EntryColumns, StoredBytes, UpdateVerifier, WorkerReply } from '../verifier.js';
import type { Change } from './changefeed.js';
import { type CollectionContext, insertRoles, lockCollection, type NewRow } from './collection.js';
import { sha256Hex, TOP_LEVEL_ROLES } from './documents.js';
import { type OnlineKeyRow, type OnlineKeys, type OnlineRole, serverKeyidsOf, signerFor } from './keys.js';
import { EVERY_ROW, fetchDocuments, PARSED_ROWS_CTE, type StateRow, stateFromRows } from './state.js';

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
  /** Checks large updates off the event loop. */
  readonly verifier: UpdateVerifier;
  /** What this process's publishes did so far (Store.publishCounts). */
  readonly counts: PublishCounts;
}

/** Updates checked in the verification worker, and server-signed snapshots spliced from the stored one or made whole. */
export interface PublishCounts {
  checkedInWorker: number;
  snapshotsSpliced: number;
  snapshotsWhole: number;
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
    const { rows, keyRows } = await rowsAndKeys(client, id);
    await readStoredSnapshot(ctx, client, id, rows);
    const serverKeyids = serverKeyidsOf(keyRows);
    const check: CheckRequest = { client, id, rows, uploads, now, serverKeyids };
    const checked = ctx.verifier.inWorker(bytesToParse(ctx, id, rows, uploads))
      ? await checkInWorker(ctx, check)
      : await checkHere(ctx, check);
    const { changed } = checked;
    const signed = await signOnline(ctx, {
      client,
      id,
      onlineKeyids: checked.onlineKeyids,
      snapshotOnline: checked.snapshotOnline,
      resignSnapshot: true,
      snapshotMeta: checked.snapshotMeta,
      snapshotChanges: checked.snapshotChanges,
      currentSnapshot: checked.currentSnapshot,
      currentTimestampVersion: rows.find((row) => row.role === 'timestamp')?.version,
      now,
      keyRows,
      alsoInsert: changed,
      change: (written): Change => {
        let entry: AuditEntry | undefined;
        if (audit !== undefined) {
          const roles: Record<string, number> = {};
          for (const c of changed) roles[c.role] = c.version;
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
    for (const row of rows) if (TOP_LEVEL_ROLES.has(row.role)) out[row.role] = row.version;
    for (const c of changed) out[c.role] = c.version;
    out.snapshot = signed.snapshot;
    out.timestamp = signed.timestamp.signed.version;
    return { versions: out };
  });
  // This process's own readers must not wait for the NOTIFY to come back.
  ctx.cache?.invalidate(gun);
  return result;
}

/** The latest rows an update parses (PARSED_ROWS_CTE) and the online keys (newest first), in one round trip. */
async function rowsAndKeys(
  client: pg.ClientBase,
  id: string,
): Promise<{ rows: StateRow[]; keyRows: OnlineKeyRow[] }> {
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
  const rows: StateRow[] = [];
  const keys: (OnlineKeyRow & { seq: bigint })[] = [];
  for (const row of r.rows) {
    if (row.keyid === null) rows.push(row);
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
  return { rows, keyRows: keys };
}

interface CheckRequest {
  client: pg.ClientBase;
  id: string;
  /** The latest rows an update parses (PARSED_ROWS_CTE). */
  rows: readonly StateRow[];
  uploads: ReadonlyMap<string, Uint8Array>;
  now: number;
  serverKeyids: { timestamp: string[]; snapshot: string[] };
}

/** An accepted update, as the store writes it and signs snapshot and timestamp for it. */
interface Checked {
  /** The uploaded roles, in the order they are stored. */
  changed: NewRow[];
  snapshotOnline: boolean;
  onlineKeyids: { readonly timestamp: readonly string[]; readonly snapshot: readonly string[] };
  snapshotMeta: () => Record<string, MetaFile>;
  snapshotChanges?: (() => SnapshotChanges | undefined) | undefined;
  /** The snapshot the new timestamp names when the server signs none. */
  currentSnapshot: CurrentSnapshot | undefined;
}

/**
 * A server-signed snapshot another process wrote, read by one scan when it is in the server's
 * shape (core's parseIndexedSnapshot) and held parsed: its 2.1 MB at 16,384 bins are then no
 * bytes to parse (bytesToParse), and the next snapshot is spliced from its index on either side.
 * One that is not is left to the check (parsed in full, in the worker when large).
 */
async function readStoredSnapshot(
  ctx: PublishContext,
  client: pg.ClientBase,
  id: string,
  rows: readonly StateRow[],
): Promise<void> {
  const row = rows.find((r) => r.role === 'snapshot');
  if (row?.server_signed !== true || ctx.documents.get(id, 'snapshot', row.sha256) !== undefined) return;
  const [fetched] = await fetchDocuments(client, id, [row]);
  if (fetched === undefined) return;
  const stored = parseIndexedSnapshot(new Uint8Array(fetched.data), { sha256: fetched.sha256 });
  if (stored !== undefined) ctx.documents.remember(id, 'snapshot', fetched.sha256, stored);
}

/** Bytes the event loop would parse to check the update here: the uploads and the stored documents not held parsed. */
function bytesToParse(
  ctx: PublishContext,
  id: string,
  rows: readonly StateRow[],
  uploads: ReadonlyMap<string, Uint8Array>,
): number {
  let bytes = 0;
  for (const upload of uploads.values()) bytes += upload.length;
  for (const row of rows) {
    if (row.role !== 'timestamp' && ctx.documents.get(id, row.role, row.sha256) === undefined)
      bytes += row.length;
  }
  return bytes;
}

/** The check on the event loop, in steps: the state loaded lazily (state.ts), then core's rules. */
async function checkHere(ctx: PublishContext, request: CheckRequest): Promise<Checked> {
  const { client, id, rows, uploads, now, serverKeyids } = request;
  const loaded = await stateFromRows(client, { id, parsed: rows, documents: ctx.documents });
  const { state } = loaded;
  let update: ValidatedUpdate;
  try {
    update = await loaded.run(
      validatingUpdate({ current: state, crypto: ctx.crypto, uploads, now, serverKeyids }),
    );
  } catch (err) {
    throw withCurrentVersions(err, loaded.versions);
  }
  checkDelegationCount(update, ctx);
  const changed = update.changed.map((c): NewRow => {
    const stored = storedOf(update, c.role);
    const { signed } = stored.metadata;
    // The upload as parsed: its digest is the one the new snapshot took (hashed once).
    return {
      role: c.role,
      bytes: c.bytes,
      version: signed.version,
      expiresAt: signed.expiresAt,
      delegates: signed.type === 'targets' && signed.delegations !== undefined,
      serverSigned: false,
      stored,
    };
  });
  const snapshot = update.snapshot ?? state.snapshot;
  const root = update.root.metadata.signed;
  return {
    changed,
    snapshotOnline: update.snapshotOnline,
    onlineKeyids: { timestamp: root.roles.timestamp.keyids, snapshot: root.roles.snapshot.keyids },
    snapshotMeta: update.snapshotMeta,
    snapshotChanges: update.snapshotChanges,
    currentSnapshot: snapshot && {
      bytes: snapshot.bytes,
      version: snapshot.metadata.signed.version,
      sha256: () => sha256Of(ctx.crypto, snapshot),
    },
  };
}

/**
 * The check in the verification worker (ADR 0013), against the state the event loop's check would
 * load (state.ts), sent as bytes for the worker to parse: the documents of the rows an update
 * parses, less targets and snapshot when the update replaces them (given by version only, core's
 * replacedVersions) and less replaced delegating roles; every other role an entry, from the
 * server-signed snapshot the worker parses or, when the snapshot is the client's, from the rows.
 * The documents the steps ask for (a RoleRequest) are read here and parsed there.
 */
async function checkInWorker(ctx: PublishContext, request: CheckRequest): Promise<Checked> {
  ctx.counts.checkedInWorker++;
  const { client, id, rows, uploads, now, serverKeyids } = request;
  const replacedVersions: [string, number][] = [];
  const sent = new Map<string, StoredBytes>();
  const fetch: StateRow[] = [];
  const versions: Record<string, number> = {};
  const delegating: string[] = [];
  for (const row of rows) {
    versions[row.role] = row.version;
    if (!TOP_LEVEL_ROLES.has(row.role)) delegating.push(row.role);
    if (row.role === 'timestamp') continue;
    if (row.role !== 'root' && uploads.has(row.role)) {
      // Targets and snapshot by version; a delegated role's version is its entry's.
      if (TOP_LEVEL_ROLES.has(row.role)) replacedVersions.push([row.role, row.version]);
      continue;
    }
    const held = ctx.documents.get(id, row.role, row.sha256);
    if (held !== undefined)
      sent.set(row.role, { role: row.role, sha256: row.sha256, bytes: own(held.bytes) });
    else fetch.push(row);
  }
  for (const doc of await storedBytes(client, id, fetch)) sent.set(doc.role, doc);
  const snapshotRow = rows.find((row) => row.role === 'snapshot');
  let entries: EntryColumns | undefined;
  if (snapshotRow?.server_signed !== true) {
    const every = await everyRow(client, id, rows, uploads);
    for (const doc of every.documents) sent.set(doc.role, doc);
    ({ entries } = every);
    delegating.splice(0, delegating.length, ...every.delegating!);
    Object.assign(versions, every.versions);
  }
  // The uploads' buffers move to the worker and come back with its answer.
  const checked = await ctx.verifier.check(
    {
      uploads: [...uploads],
      parsed: [...sent.values()],
      delegating,
      entries,
      versions,
      replacedVersions,
      now,
      serverKeyids,
      maxDelegatedRoles: ctx.maxDelegatedRoles,
      maxHashBins: ctx.maxHashBins,
    },
    async (ask) =>
      'load' in ask
        ? { documents: await storedBytes(client, id, ask.load) }
        : everyRow(client, id, rows, uploads),
  );
  const { facts } = checked;
  const delta = facts.snapshotChanges;
  let base: SnapshotIndex | undefined;
  if (delta !== undefined) {
    // The worker read the entries from the stored snapshot's index: the same bytes index here.
    const storedDoc = sent.get('snapshot');
    const held = ctx.documents.get(id, 'snapshot', storedDoc?.sha256 ?? '');
    const stored = held ?? (storedDoc && parseIndexedSnapshot(storedDoc.bytes, { sha256: storedDoc.sha256 }));
    base = stored && snapshotIndexOf(stored as StoredRole<Snapshot>);
    if (base === undefined)
      throw new TufaError('INTERNAL', 'the stored snapshot the worker indexed is not indexed here');
  }
  const changed = facts.changed.map(
    (c): NewRow => ({ ...c, bytes: checked.uploads.get(c.role)!, serverSigned: false }),
  );
  const uploadedSnapshot = changed.find((c) => c.role === 'snapshot');
  const storedSnapshot = sent.get('snapshot');
  return {
    changed,
    snapshotOnline: facts.snapshotOnline,
    onlineKeyids: facts.onlineKeyids,
    snapshotMeta: () =>
      base === undefined
        ? (facts.snapshotMeta! as Record<string, MetaFile>)
        : metaWithChanges(base, new Map(delta)),
    snapshotChanges: () => base && { base, changes: new Map(delta) },
    currentSnapshot:
      uploadedSnapshot !== undefined
        ? {
            bytes: uploadedSnapshot.bytes,
            version: uploadedSnapshot.version,
            sha256: () => uploadedSnapshot.sha256!,
          }
        : storedSnapshot === undefined
          ? undefined
          : {
              bytes: storedSnapshot.bytes,
              version: snapshotRow!.version,
              sha256: () => storedSnapshot.sha256,
            },
  };
}

/** The stored bytes of these rows, unparsed (the worker parses them). */
async function storedBytes(
  client: pg.ClientBase,
  id: string,
  rows: readonly { role: string; version: number }[],
): Promise<StoredBytes[]> {
  const fetched = await fetchDocuments(client, id, rows);
  return fetched.map((row) => ({ role: row.role, sha256: row.sha256, bytes: own(row.data) }));
}

/**
 * Bytes in a buffer of their own: a message to the worker copies a view's whole buffer (a small
 * document in Node's shared pool would take 8 KiB, one cut from a request body the whole body).
 */
function own(bytes: Uint8Array): Uint8Array {
  return bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/**
 * Every role's entry from its latest row (when no server-signed snapshot lists them, as
 * stateFromRows reads them), and the documents of the roles that may delegate not among `rows`
 * nor replaced by the update.
 */
async function everyRow(
  client: pg.ClientBase,
  id: string,
  rows: readonly StateRow[],
  uploads: ReadonlyMap<string, Uint8Array>,
): Promise<WorkerReply> {
  const every = await client.query<StateRow>(prepared('every_row', EVERY_ROW, [id]));
  const entries = {
    names: [] as string[],
    versions: [] as number[],
    lengths: [] as number[],
    sha256s: [] as string[],
  };
  const versions: Record<string, number> = {};
  const delegating: string[] = [];
  const fetch: StateRow[] = [];
  const known = new Set(rows.map((row) => row.role));
  for (const row of every.rows) {
    versions[row.role] = row.version;
    if (TOP_LEVEL_ROLES.has(row.role)) continue;
    entries.names.push(row.role);
    entries.versions.push(row.version);
    entries.lengths.push(row.length);
    entries.sha256s.push(row.sha256);
    if (row.delegates === false) continue;
    delegating.push(row.role);
    if (!known.has(row.role) && !uploads.has(row.role)) fetch.push(row);
  }
  return { documents: await storedBytes(client, id, fetch), entries, delegating, versions };
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
    /** The meta of the snapshot to sign: every targets role of the state (version, length, sha256). */
    snapshotMeta: () => Record<string, MetaFile>;
    /** The same as the stored snapshot and what changes in it, when that snapshot is indexed (core's snapshotChanges). */
    snapshotChanges?: (() => SnapshotChanges | undefined) | undefined;
    currentSnapshot: CurrentSnapshot | undefined;
    currentTimestampVersion: number | undefined;
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
    snapshotVersion = (args.currentSnapshot?.version ?? 0) + 1;
    const expires = formatExpires(args.now + ctx.snapshotExpiry);
    // The stored snapshot with the update's entries spliced in when it is indexed; else made whole.
    const delta = args.snapshotChanges?.();
    const spliced =
      delta && snapshotWithChanges(delta.base, { version: snapshotVersion, expires, changes: delta.changes });
    const snapshot = spliced ?? newSnapshot({ version: snapshotVersion, expires, meta: args.snapshotMeta() });
    if (spliced !== undefined) ctx.counts.snapshotsSpliced++;
    else ctx.counts.snapshotsWhole++;
    const md = await signMetadata(snapshot, [signerFor(signers, args.onlineKeyids.snapshot, 'snapshot')]);
    snapshotBytes = serializeMetadata(md);
    // Hashed once, for the timestamp and the row alike.
    snapshotSha256 = toHex(ctx.crypto.hash('sha256', snapshotBytes));
    rows.push({ ...serverSigned('snapshot', snapshotBytes, md), sha256: snapshotSha256 });
  } else {
    if (args.currentSnapshot === undefined) throw new TufaError('INTERNAL', 'no snapshot to time-stamp');
    snapshotBytes = args.currentSnapshot.bytes;
    snapshotVersion = args.currentSnapshot.version;
    snapshotSha256 = args.currentSnapshot.sha256();
  }
  const timestamp = await signMetadata(
    newTimestamp({
      version: (args.currentTimestampVersion ?? 0) + 1,
      expires: formatExpires(args.now + ctx.timestampExpiry),
      snapshotMeta: metaFileFor(ctx.crypto, snapshotBytes, snapshotVersion, {
        known: { sha256: snapshotSha256 },
      }),
    }),
    [signerFor(signers, args.onlineKeyids.timestamp, 'timestamp')],
  );
  const timestampBytes = serializeMetadata(timestamp);
  rows.push(serverSigned('timestamp', timestampBytes, timestamp));
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

/** The snapshot a new timestamp names when the server signs none: its bytes, version and digest. */
export interface CurrentSnapshot {
  readonly bytes: Uint8Array;
  readonly version: number;
  readonly sha256: () => string;
}

/** A document the server signed, kept parsed for the next update. */
function serverSigned(role: string, bytes: Uint8Array, metadata: Metadata): NewRow {
  const { version, expiresAt } = metadata.signed;
  return {
    role,
    bytes,
    version,
    expiresAt,
    delegates: false,
    serverSigned: true,
    stored: { bytes, metadata },
  };
}
