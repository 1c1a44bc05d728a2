/**
 * A collection's state in PostgreSQL: its row and advisory lock, the exact stored bytes served to
 * readers (through the memory cache), the insert of new documents, and deletion (the state that
 * updates are validated against is state.ts's).
 */
import { type CryptoProvider, type StoredRole, sha256Of, TufaError } from '@tufa/core';
import type pg from 'pg';
import type { AuditContext } from '../audit.js';
import { type CachedFile, type MetadataCache, NOTIFY_CHANNEL } from '../cache.js';
import { prepared, transaction } from '../db.js';
import { type Change, changeStatement, recordChange } from './changefeed.js';
import { type DocumentCache, keptParsed } from './documents.js';

/** What every job of the store reads and writes collections with. */
export interface CollectionContext {
  readonly pool: pg.Pool;
  readonly now: () => number;
  /** How long a transaction waits for a collection's lock before CONFLICT, ms. */
  readonly lockTimeout: number;
  /** Stored documents parsed, and digests known. */
  readonly documents: DocumentCache;
  /** Served metadata in memory, invalidated by NOTIFY from every process (none: always the database). */
  readonly cache: MetadataCache | undefined;
}

export interface StoredFile {
  bytes: Buffer;
  sha256: string;
  version: number;
}

/** A document to insert in a transaction's one INSERT. */
export interface NewRow {
  role: string;
  bytes: Uint8Array;
  version: number;
  /** Its expiry, ms since the epoch. */
  expiresAt: number;
  /** Whether the document has delegations. */
  delegates: boolean;
  serverSigned: boolean;
  /**
   * The document as parsed (its envelope knows its digest), kept for the next update; none for
   * an upload checked in the verification worker.
   */
  stored?: StoredRole;
  /** The sha256 (hex) of `bytes` when the caller hashed them already (a 2 MB snapshot is hashed once). */
  sha256?: string;
}

/**
 * `latest`: the newest row (role, version, sha256) of each role of collection $1, found with
 * one index descent per role (a loose index scan) rather than by reading every version the
 * collection ever had, as DISTINCT ON would: a collection re-signed every hour for a year has
 * thousands of timestamp rows.
 */
export const LATEST_ROLES_CTE = `WITH RECURSIVE roles (role) AS (
    (SELECT role FROM metadata WHERE collection_id = $1 ORDER BY role LIMIT 1)
    UNION ALL
    SELECT (SELECT m.role FROM metadata m WHERE m.collection_id = $1 AND m.role > r.role ORDER BY m.role LIMIT 1)
    FROM roles r WHERE r.role IS NOT NULL
  ),
  latest AS (
    SELECT l.role, l.version, l.sha256, l.length, l.delegates FROM roles r
    CROSS JOIN LATERAL (SELECT m.role, m.version, m.sha256, octet_length(m.data) AS length, m.delegates
                        FROM metadata m
                        WHERE m.collection_id = $1 AND m.role = r.role ORDER BY m.version DESC LIMIT 1) l
  )`;

export async function collectionId(db: pg.ClientBase | pg.Pool, gun: string): Promise<string | undefined> {
  const r = await db.query<{ id: string }>('SELECT id FROM collections WHERE gun = $1', [gun]);
  return r.rows[0]?.id;
}

/**
 * Takes the collection's advisory lock for this transaction (creating its row if asked); its id,
 * or undefined when there is no such collection. CONFLICT when the lock is not had in time.
 */
export async function lockCollection(
  client: pg.ClientBase,
  options: { gun: string; create: boolean; lockTimeout: number },
): Promise<string | undefined> {
  const { gun } = options;
  if (options.create) {
    await client.query('INSERT INTO collections (gun) VALUES ($1) ON CONFLICT (gun) DO NOTHING', [gun]);
  }
  // One round trip: the id, this transaction's lock_timeout and the lock. set_config in FROM has
  // run before any row reaches the select list, which runs only for the matching row.
  const timeout = String(Math.max(1, Math.floor(options.lockTimeout)));
  try {
    const r = await client.query<{ id: string }>(
      prepared(
        'lock_collection',
        `SELECT c.id, pg_advisory_xact_lock(c.id) FROM collections c, set_config('lock_timeout', $2, true) t
         WHERE c.gun = $1`,
        [gun, timeout],
      ),
    );
    return r.rows[0]?.id;
  } catch (err) {
    if ((err as { code?: string }).code === '55P03') {
      throw new TufaError('CONFLICT', `${gun}: another update holds the collection`, { details: { gun } });
    }
    throw err;
  }
}

/** The latest version of a role, or a given version (from memory when cached). */
export async function readMetadata(
  ctx: CollectionContext,
  file: { gun: string; role: string; version?: number | undefined },
): Promise<StoredFile | undefined> {
  const { gun, role, version } = file;
  const cache = ctx.cache;
  const hit = cache?.get(gun, role, version);
  if (hit !== undefined) return hit;
  const generation = cache?.generation(gun);
  type Row = { data: Buffer; sha256: string; version: number; expires_ms: string };
  const columns = 'm.data, m.sha256, m.version, (extract(epoch FROM m.expires) * 1000)::text AS expires_ms';
  const r =
    version === undefined
      ? await ctx.pool.query<Row>(
          `SELECT ${columns} FROM metadata m JOIN collections c ON c.id = m.collection_id
           WHERE c.gun = $1 AND m.role = $2 ORDER BY m.version DESC LIMIT 1`,
          [gun, role],
        )
      : await ctx.pool.query<Row>(
          `SELECT ${columns} FROM metadata m JOIN collections c ON c.id = m.collection_id
           WHERE c.gun = $1 AND m.role = $2 AND m.version = $3`,
          [gun, role, version],
        );
  const row = r.rows[0];
  if (row === undefined) return undefined;
  const found: CachedFile = {
    bytes: row.data,
    sha256: row.sha256,
    version: row.version,
    expiresAt: Number(row.expires_ms),
  };
  if (cache !== undefined && generation !== undefined) cache.set(gun, role, version, found, generation);
  return found;
}

/** Whether the latest timestamp of a collection has expired (a GET refreshes it first). */
export async function timestampExpired(ctx: CollectionContext, gun: string): Promise<boolean> {
  const cached = ctx.cache?.get(gun, 'timestamp');
  if (cached !== undefined) return cached.expiresAt <= ctx.now();
  const r = await ctx.pool.query<{ expired: boolean }>(
    `SELECT m.expires <= to_timestamp($2::double precision / 1000) AS expired FROM metadata m
     JOIN collections c ON c.id = m.collection_id
     WHERE c.gun = $1 AND m.role = 'timestamp' ORDER BY m.version DESC LIMIT 1`,
    [gun, ctx.now()],
  );
  return r.rows[0]?.expired === true;
}

/**
 * Inserts the documents of one transaction in one statement, and tells every process (NOTIFY,
 * delivered at commit) to drop what it cached of this collection; with `change`, the changefeed
 * row in the same statement (one round trip less a publish: then the last before COMMIT).
 */
export async function insertRoles(
  client: pg.ClientBase,
  options: {
    id: string;
    rows: readonly NewRow[];
    now: number;
    documents: DocumentCache;
    crypto: CryptoProvider;
    change?: Change | undefined;
  },
): Promise<void> {
  const { id, rows, documents } = options;
  const values: unknown[] = [id, options.now];
  const tuples = rows.map((row) => {
    // The parsed upload (whose digest the new snapshot took) when it is these very bytes.
    const stored = row.stored?.bytes === row.bytes ? row.stored : undefined;
    const sha256 = row.sha256 ?? sha256Of(options.crypto, stored ?? row);
    const { delegates } = row;
    // Keyed by content: harmless if this transaction rolls back (no committed row has that digest).
    // Only what every later update parses: a bin's document is never read by the next publish.
    if (stored !== undefined && keptParsed(row.role, delegates))
      documents.remember(id, row.role, sha256, stored);
    const n = values.length;
    values.push(
      row.role,
      row.version,
      Buffer.from(row.bytes.buffer, row.bytes.byteOffset, row.bytes.length),
      sha256,
      row.expiresAt,
      row.serverSigned,
      delegates,
    );
    return `($1, $${n + 1}, $${n + 2}, $${n + 3}, $${n + 4}, to_timestamp($${n + 5}::double precision / 1000),
             to_timestamp($2::double precision / 1000), $${n + 6}, $${n + 7})`;
  });
  const change =
    options.change === undefined ? undefined : changeStatement(options.change, values, 'inserted');
  const name = `insert_roles_${rows.length}${change === undefined ? '' : options.change?.audit === undefined ? '_change' : '_change_audited'}`;
  await client.query(
    prepared(
      name,
      `WITH inserted AS (
         INSERT INTO metadata (collection_id, role, version, data, sha256, expires, created_at, server_signed, delegates)
         VALUES ${tuples.join(', ')} RETURNING 1
       )${change === undefined ? '' : `, ${change.ctes}`}
       SELECT pg_notify('${NOTIFY_CHANNEL}', gun), (SELECT count(*) FROM inserted)${change === undefined ? '' : `, ${change.columns}`}
       FROM collections WHERE id = $1`,
      values,
    ),
  );
}

/** Deletes exactly this GUN (metadata and keys); false when it did not exist. */
export async function deleteCollection(
  ctx: CollectionContext,
  request: { gun: string; audit?: AuditContext | undefined },
): Promise<boolean> {
  const { gun, audit } = request;
  const result = await transaction(ctx.pool, async (client) => {
    const id = await lockCollection(client, { gun, create: false, lockTimeout: ctx.lockTimeout });
    if (id === undefined) return false;
    await client.query(
      `WITH gone AS (DELETE FROM collections WHERE id = $1 RETURNING gun)
       SELECT pg_notify('${NOTIFY_CHANNEL}', gun) FROM gone`,
      [id],
    );
    await recordChange(client, {
      gun,
      version: 0,
      sha256: null,
      category: 'deletion',
      audit: audit === undefined ? undefined : { ...audit, action: 'delete', gun, outcome: 'accepted' },
    });
    return true;
  });
  // This process's own readers must not wait for the NOTIFY to come back.
  ctx.cache?.invalidate(gun);
  return result;
}
