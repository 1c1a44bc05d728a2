/**
 * Collections in PostgreSQL: reading the exact stored bytes, validated atomic updates (core's
 * validateUpdate, then server-signed snapshot and timestamp, all rows in one transaction under
 * a per-collection advisory lock), online keys, deletion, the changefeed and re-signing.
 */
import { createHash } from 'node:crypto';
import {
  type CollectionState,
  canonicalJson,
  ed25519Signer,
  formatExpires,
  generateEd25519Key,
  type Key,
  keyToJson,
  type Metadata,
  metaFileFor,
  metaFileName,
  newSnapshot,
  newTimestamp,
  parseJson,
  parseMetadata,
  type Root,
  type Signer,
  type Snapshot,
  type StoredRole,
  serializeMetadata,
  signMetadata,
  snapshotMetaForState,
  type Targets,
  type Timestamp,
  TufaError,
  validateUpdate,
} from '@tufa/core';
import type pg from 'pg';
import { type AuditContext, type AuditEntry, auditInsert, recordAudit } from './audit.js';
import { type CachedFile, type MetadataCache, NOTIFY_CHANNEL } from './cache.js';
import { LOCKS, transaction } from './db.js';
import { HttpStatusError } from './http.js';
import {
  decryptSecret,
  encryptSecret,
  keyAad,
  MASTER_KEY_CHECK_AAD,
  MASTER_KEY_CHECK_TEXT,
} from './onlinekeys.js';

export type OnlineRole = 'timestamp' | 'snapshot';

export interface StoreOptions {
  pool: pg.Pool;
  masterKey: Buffer;
  /** Lifetimes of server-signed metadata, ms. */
  timestampExpiry: number;
  snapshotExpiry: number;
  /** How long an update waits for a collection's lock before answering 409, ms. */
  lockTimeout?: number;
  clock?: () => number;
  /** Largest metadata document a collection may hold, bytes (default: unbounded here; the body limit applies). */
  maxMetadataSize?: number;
  /** Most delegated roles a collection may declare (default 1000). */
  maxDelegatedRoles?: number;
  /** Served metadata in memory, invalidated by NOTIFY from every process (none: always the database). */
  cache?: MetadataCache;
}

export interface StoredFile {
  bytes: Buffer;
  sha256: string;
  version: number;
}

export interface ChangeRecord {
  id: string;
  gun: string;
  version: number;
  sha256: string | null;
  category: 'update' | 'deletion';
  created_at: string;
}

export interface PublishResult {
  versions: Record<string, number>;
}

const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * A named statement: parsed and planned once per connection instead of at every call (the
 * publish path's queries are planned in about as long as they run). One name, one text.
 */
function prepared(name: string, text: string, values: unknown[]): pg.QueryConfig {
  return { name: `tufa_${name}`, text, values };
}

function storedKey(collectionId: string, role: string, sha256: string): string {
  return `${collectionId}\u0000${role}\u0000${sha256}`;
}

/** A document to insert in a transaction's one INSERT. */
interface NewRow {
  role: string;
  bytes: Uint8Array;
  metadata: Metadata;
  serverSigned: boolean;
}

interface OnlineKeyRow {
  role: OnlineRole;
  keyid: string;
  private_key: Buffer;
}

/**
 * `latest`: the newest row (role, version, sha256) of each role of collection $1, found with
 * one index descent per role (a loose index scan) rather than by reading every version the
 * collection ever had, as DISTINCT ON would: a collection re-signed every hour for a year has
 * thousands of timestamp rows.
 */
const LATEST_ROLES_CTE = `WITH RECURSIVE roles (role) AS (
    (SELECT role FROM metadata WHERE collection_id = $1 ORDER BY role LIMIT 1)
    UNION ALL
    SELECT (SELECT m.role FROM metadata m WHERE m.collection_id = $1 AND m.role > r.role ORDER BY m.role LIMIT 1)
    FROM roles r WHERE r.role IS NOT NULL
  ),
  latest AS (
    SELECT l.role, l.version, l.sha256 FROM roles r
    CROSS JOIN LATERAL (SELECT m.role, m.version, m.sha256 FROM metadata m
                        WHERE m.collection_id = $1 AND m.role = r.role ORDER BY m.version DESC LIMIT 1) l
  )`;

/** Bytes of stored documents kept parsed in memory for validating updates (parsed, several times that). */
const STORED_CACHE_BYTES = 8 * 1024 * 1024;

export class Store {
  readonly pool: pg.Pool;
  private readonly masterKey: Buffer;
  private readonly options: StoreOptions;
  readonly now: () => number;
  /** Signers for online keys, by key id (decrypted once; key rows are immutable). */
  private readonly signerCache = new Map<string, Signer>();
  /** Stored documents, bytes and parsed, by role and sha256 of the bytes (bounded, oldest out first). */
  private readonly storedCache = new Map<string, StoredRole>();
  /** sha256 (hex) of documents' bytes already known (stored rows, a new snapshot's entries): never hashed twice. */
  private readonly digests = new WeakMap<Uint8Array, string>();
  private storedBytes = 0;

  constructor(options: StoreOptions) {
    this.pool = options.pool;
    this.masterKey = options.masterKey;
    this.options = options;
    this.now = options.clock ?? Date.now;
  }

  /** Records a check value on first start; refuses a master key that cannot read it later. */
  async checkMasterKey(): Promise<void> {
    const row = await this.pool.query<{ value: Buffer }>(
      "SELECT value FROM settings WHERE name = 'master_key_check'",
    );
    if (row.rows[0] === undefined) {
      await this.pool.query(
        "INSERT INTO settings (name, value) VALUES ('master_key_check', $1) ON CONFLICT (name) DO NOTHING",
        [encryptSecret(this.masterKey, MASTER_KEY_CHECK_TEXT, MASTER_KEY_CHECK_AAD)],
      );
      return this.checkMasterKey();
    }
    try {
      decryptSecret(this.masterKey, row.rows[0].value, MASTER_KEY_CHECK_AAD);
    } catch (cause) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        'the master key is not the one the online keys of this database were encrypted with',
        { cause },
      );
    }
  }

  private async collectionId(db: pg.ClientBase | pg.Pool, gun: string): Promise<string | undefined> {
    const r = await db.query<{ id: string }>('SELECT id FROM collections WHERE gun = $1', [gun]);
    return r.rows[0]?.id;
  }

  /** The latest version of a role, or a given version (from memory when cached). */
  async getMetadata(gun: string, role: string, version?: number): Promise<StoredFile | undefined> {
    const cache = this.options.cache;
    const hit = cache?.get(gun, role, version);
    if (hit !== undefined) return hit;
    const generation = cache?.generation(gun);
    type Row = { data: Buffer; sha256: string; version: number; expires_ms: string };
    const columns = 'm.data, m.sha256, m.version, (extract(epoch FROM m.expires) * 1000)::text AS expires_ms';
    const r =
      version === undefined
        ? await this.pool.query<Row>(
            `SELECT ${columns} FROM metadata m JOIN collections c ON c.id = m.collection_id
             WHERE c.gun = $1 AND m.role = $2 ORDER BY m.version DESC LIMIT 1`,
            [gun, role],
          )
        : await this.pool.query<Row>(
            `SELECT ${columns} FROM metadata m JOIN collections c ON c.id = m.collection_id
             WHERE c.gun = $1 AND m.role = $2 AND m.version = $3`,
            [gun, role, version],
          );
    const row = r.rows[0];
    if (row === undefined) return undefined;
    const file = {
      bytes: row.data,
      sha256: row.sha256,
      version: row.version,
      expiresAt: Number(row.expires_ms),
    };
    if (cache !== undefined && generation !== undefined) cache.set(gun, role, version, file, generation);
    return file;
  }

  /** A role's latest (or given) version when the memory cache holds it; never the database. */
  cachedMetadata(gun: string, role: string, version?: number): CachedFile | undefined {
    return this.options.cache?.get(gun, role, version);
  }

  /** Whether the latest timestamp of a collection has expired (a GET refreshes it first). */
  async timestampExpired(gun: string): Promise<boolean> {
    const cached = this.options.cache?.get(gun, 'timestamp');
    if (cached !== undefined) return cached.expiresAt <= this.now();
    const r = await this.pool.query<{ expired: boolean }>(
      `SELECT m.expires <= to_timestamp($2::double precision / 1000) AS expired FROM metadata m
       JOIN collections c ON c.id = m.collection_id
       WHERE c.gun = $1 AND m.role = 'timestamp' ORDER BY m.version DESC LIMIT 1`,
      [gun, this.now()],
    );
    return r.rows[0]?.expired === true;
  }

  // -------------------------------------------------------------------------------------------
  // Online keys

  /** The newest key of a role, created (with its collection row) when `create` and none exists. */
  async getOnlineKey(
    gun: string,
    role: OnlineRole,
    create: boolean,
    audit?: AuditContext,
  ): Promise<Key | undefined> {
    const existing = await this.pool.query<{ public_key: string }>(
      `SELECT k.public_key FROM online_keys k JOIN collections c ON c.id = k.collection_id
       WHERE c.gun = $1 AND k.role = $2 ORDER BY k.seq DESC LIMIT 1`,
      [gun, role],
    );
    if (existing.rows[0] !== undefined) return parseKey(existing.rows[0].public_key);
    if (!create) return undefined;
    return transaction(this.pool, async (client) => {
      const id = await this.lockCollection(client, gun, true);
      const again = await client.query<{ public_key: string }>(
        'SELECT public_key FROM online_keys WHERE collection_id = $1 AND role = $2 ORDER BY seq DESC LIMIT 1',
        [id, role],
      );
      if (again.rows[0] !== undefined) return parseKey(again.rows[0].public_key);
      const key = await this.insertKey(client, id!, role);
      if (audit !== undefined) {
        await recordAudit(client, {
          ...audit,
          action: 'key.create',
          gun,
          roles: { [role]: 'created' },
          outcome: 'accepted',
        });
      }
      return key;
    });
  }

  /** Creates the next key of a role: it signs once a root naming it is published. */
  async rotateOnlineKey(gun: string, role: OnlineRole, audit?: AuditContext): Promise<Key> {
    return transaction(this.pool, async (client) => {
      const id = await this.lockCollection(client, gun, true);
      const key = await this.insertKey(client, id!, role);
      if (audit !== undefined) {
        await recordAudit(client, {
          ...audit,
          action: 'key.rotate',
          gun,
          roles: { [role]: 'created' },
          outcome: 'accepted',
        });
      }
      return key;
    });
  }

  private async insertKey(client: pg.PoolClient, id: string, role: OnlineRole): Promise<Key> {
    const pair = generateEd25519Key();
    const sealed = encryptSecret(this.masterKey, pair.privateKey, keyAad(id, role, pair.keyid));
    await client.query(
      'INSERT INTO online_keys (collection_id, role, keyid, public_key, private_key) VALUES ($1, $2, $3, $4, $5)',
      [id, role, pair.keyid, canonicalJson(keyToJson(pair.key)), sealed],
    );
    return pair.key;
  }

  /** Takes the collection's advisory lock for this transaction (creating its row if asked). */
  private async lockCollection(
    client: pg.PoolClient,
    gun: string,
    create: boolean,
  ): Promise<string | undefined> {
    if (create) {
      await client.query('INSERT INTO collections (gun) VALUES ($1) ON CONFLICT (gun) DO NOTHING', [gun]);
    }
    // One round trip: the id, this transaction's lock_timeout and the lock. set_config in FROM has
    // run before any row reaches the select list, which runs only for the matching row.
    const timeout = String(Math.max(1, Math.floor(this.options.lockTimeout ?? 10_000)));
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

  /** The collection's online keys, newest first (their private halves still encrypted). */
  private async onlineKeyRows(client: pg.ClientBase, id: string): Promise<OnlineKeyRow[]> {
    const r = await client.query<OnlineKeyRow>(
      'SELECT role, keyid, private_key FROM online_keys WHERE collection_id = $1 ORDER BY seq DESC',
      [id],
    );
    return r.rows;
  }

  private signers(
    id: string,
    rows: readonly OnlineKeyRow[],
  ): Map<string, { role: OnlineRole; signer: Signer }> {
    const out = new Map<string, { role: OnlineRole; signer: Signer }>();
    for (const row of rows) {
      // Key rows never change (a rotation adds a key): a signer made once serves every publish.
      let signer = this.signerCache.get(row.keyid);
      if (signer === undefined) {
        const seed = decryptSecret(this.masterKey, row.private_key, keyAad(id, row.role, row.keyid));
        signer = ed25519Signer(new Uint8Array(seed), row.keyid);
        if (this.signerCache.size >= 4096) this.signerCache.clear();
        this.signerCache.set(row.keyid, signer);
      }
      out.set(row.keyid, { role: row.role, signer });
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // State and updates

  /** The latest version of every role of a collection (pending updates check against it). */
  async loadState(
    client: pg.ClientBase,
    id: string,
  ): Promise<{
    state: CollectionState;
    timestamp: StoredRole<Timestamp> | undefined;
    versions: Record<string, number>;
  }> {
    // Which version of each role is latest, by digest; the bytes only for documents not held yet.
    const latest = await client.query<{ role: string; version: number; sha256: string }>(
      `${LATEST_ROLES_CTE} SELECT role, version, sha256 FROM latest`,
      [id],
    );
    return this.stateFrom(client, id, latest.rows);
  }

  /** As loadState, and the collection's online keys (newest first), in one round trip. */
  private async loadStateAndKeys(
    client: pg.ClientBase,
    id: string,
  ): Promise<Awaited<ReturnType<Store['loadState']>> & { keyRows: OnlineKeyRow[] }> {
    const r = await client.query<{
      role: string;
      version: number | null;
      sha256: string | null;
      seq: string | null;
      keyid: string | null;
      private_key: Buffer | null;
    }>(
      prepared(
        'state_and_keys',
        `${LATEST_ROLES_CTE}
         SELECT role, version, sha256, NULL::bigint AS seq, NULL::text AS keyid, NULL::bytea AS private_key
         FROM latest
         UNION ALL
         SELECT role, NULL, NULL, seq, keyid, private_key FROM online_keys WHERE collection_id = $1`,
        [id],
      ),
    );
    const latest: { role: string; version: number; sha256: string }[] = [];
    const keys: (OnlineKeyRow & { seq: bigint })[] = [];
    for (const row of r.rows) {
      if (row.keyid === null) latest.push({ role: row.role, version: row.version!, sha256: row.sha256! });
      else {
        keys.push({
          role: row.role as OnlineRole,
          keyid: row.keyid,
          private_key: row.private_key!,
          seq: BigInt(row.seq!),
        });
      }
    }
    keys.sort((a, b) => (a.seq > b.seq ? -1 : a.seq < b.seq ? 1 : 0));
    return { ...(await this.stateFrom(client, id, latest)), keyRows: keys };
  }

  /** The state from the latest row of each role: documents parsed before are reused by digest. */
  private async stateFrom(
    client: pg.ClientBase,
    id: string,
    latest: readonly { role: string; version: number; sha256: string }[],
  ): Promise<Awaited<ReturnType<Store['loadState']>>> {
    const key = (row: { role: string; sha256: string }) => storedKey(id, row.role, row.sha256);
    const found = new Map<string, StoredRole>();
    for (const row of latest) {
      const hit = this.storedCache.get(key(row));
      if (hit !== undefined) found.set(key(row), hit);
    }
    const missing = latest.filter((row) => !found.has(key(row)));
    if (missing.length > 0) {
      const fetched = await client.query<{ role: string; data: Buffer; sha256: string }>(
        'SELECT role, data, sha256 FROM metadata WHERE collection_id = $1 AND (role, version) IN (SELECT * FROM unnest($2::text[], $3::int[]))',
        [id, missing.map((row) => row.role), missing.map((row) => row.version)],
      );
      for (const row of fetched.rows) {
        const bytes = new Uint8Array(row.data);
        const type = (['root', 'snapshot', 'timestamp'] as const).find((t) => t === row.role) ?? 'targets';
        // Parsing is a pure function of the bytes: a document parsed once (by its digest) is reused.
        const stored: StoredRole = { bytes, metadata: parseMetadata(type, bytes, { role: row.role }) };
        this.remember(id, row.role, row.sha256, stored);
        found.set(key(row), stored);
      }
    }
    const rows = latest.map((row) => ({ ...row, stored: found.get(key(row))! }));
    const delegated = new Map<string, StoredRole<Targets>>();
    let root: StoredRole<Root> | undefined;
    let targets: StoredRole<Targets> | undefined;
    let snapshot: StoredRole<Snapshot> | undefined;
    let timestamp: StoredRole<Timestamp> | undefined;
    const versions: Record<string, number> = {};
    for (const row of rows) {
      versions[row.role] = row.version;
      switch (row.role) {
        case 'root':
          root = row.stored as StoredRole<Root>;
          break;
        case 'targets':
          targets = row.stored as StoredRole<Targets>;
          break;
        case 'snapshot':
          snapshot = row.stored as StoredRole<Snapshot>;
          break;
        case 'timestamp':
          timestamp = row.stored as StoredRole<Timestamp>;
          break;
        default:
          delegated.set(row.role, row.stored as StoredRole<Targets>);
      }
    }
    return { state: { root, targets, snapshot, delegated }, timestamp, versions };
  }

  /**
   * Inserts the documents of one transaction in one statement, and tells every process (NOTIFY,
   * delivered at commit) to drop what it cached of this collection.
   */
  private async insertRoles(
    client: pg.ClientBase,
    id: string,
    rows: readonly NewRow[],
    now: number,
  ): Promise<void> {
    const values: unknown[] = [id, now];
    const tuples = rows.map((row) => {
      const sha256 = this.digests.get(row.bytes) ?? sha256Hex(row.bytes);
      // Keyed by content: harmless if this transaction rolls back (no committed row has that digest).
      this.remember(id, row.role, sha256, { bytes: row.bytes, metadata: row.metadata });
      const n = values.length;
      values.push(
        row.role,
        row.metadata.signed.version,
        Buffer.from(row.bytes.buffer, row.bytes.byteOffset, row.bytes.length),
        sha256,
        row.metadata.signed.expiresAt,
        row.serverSigned,
      );
      return `($1, $${n + 1}, $${n + 2}, $${n + 3}, $${n + 4}, to_timestamp($${n + 5}::double precision / 1000),
               to_timestamp($2::double precision / 1000), $${n + 6})`;
    });
    await client.query(
      prepared(
        `insert_roles_${rows.length}`,
        `WITH inserted AS (
           INSERT INTO metadata (collection_id, role, version, data, sha256, expires, created_at, server_signed)
           VALUES ${tuples.join(', ')} RETURNING 1
         )
         SELECT pg_notify('${NOTIFY_CHANNEL}', gun), (SELECT count(*) FROM inserted) FROM collections WHERE id = $1`,
        values,
      ),
    );
  }

  /**
   * Keeps a stored document parsed, by collection, role and digest. A new version of a role
   * replaces the older one of that collection; past the byte budget, other collections' documents
   * go first (oldest first), never the one being written: a large collection publishing again
   * finds its state parsed.
   */
  private remember(id: string, role: string, sha256: string, stored: StoredRole): void {
    this.digests.set(stored.bytes, sha256);
    const key = storedKey(id, role, sha256);
    if (this.storedCache.has(key)) return;
    const sameRole = storedKey(id, role, '');
    for (const [k, v] of this.storedCache) {
      if (k.startsWith(sameRole)) {
        this.storedCache.delete(k);
        this.storedBytes -= v.bytes.length;
      }
    }
    this.storedCache.set(key, stored);
    this.storedBytes += stored.bytes.length;
    const mine = storedKey(id, '', '').slice(0, -1);
    for (const [k, v] of this.storedCache) {
      if (this.storedBytes <= STORED_CACHE_BYTES) break;
      if (k.startsWith(mine)) continue;
      this.storedCache.delete(k);
      this.storedBytes -= v.bytes.length;
    }
  }

  private signerFor(
    signers: Map<string, { role: OnlineRole; signer: Signer }>,
    root: Root,
    role: OnlineRole,
  ): Signer {
    for (const keyid of root.roles[role].keyids) {
      const s = signers.get(keyid);
      if (s !== undefined && s.role === role) return s.signer;
    }
    throw new TufaError('INTERNAL', `the server holds no ${role} key that root names`, { role });
  }

  /** Signs and stores a new snapshot (when online and asked) and a new timestamp. */
  private async signOnline(
    client: pg.ClientBase,
    id: string,
    args: {
      root: Root;
      snapshotOnline: boolean;
      resignSnapshot: boolean;
      state: { targets: StoredRole<Targets>; delegated: ReadonlyMap<string, StoredRole<Targets>> };
      currentSnapshot: StoredRole<Snapshot> | undefined;
      currentTimestamp: StoredRole<Timestamp> | undefined;
      now: number;
      /** The collection's online keys when the caller read them already (one query less). */
      keyRows?: readonly OnlineKeyRow[];
      /** The caller's documents of this transaction, inserted with snapshot and timestamp. */
      alsoInsert?: readonly NewRow[];
    },
  ): Promise<{ snapshot: number; timestamp: Metadata<Timestamp>; timestampBytes: Uint8Array }> {
    const signers = this.signers(id, args.keyRows ?? (await this.onlineKeyRows(client, id)));
    const rows: NewRow[] = [...(args.alsoInsert ?? [])];
    let snapshotBytes: Uint8Array;
    let snapshotVersion: number;
    if (args.snapshotOnline && args.resignSnapshot) {
      snapshotVersion = (args.currentSnapshot?.metadata.signed.version ?? 0) + 1;
      const meta = snapshotMetaForState(args.state, (bytes) => this.digests.get(bytes));
      // The snapshot just hashed the new targets documents: their rows take those digests.
      const listed: [string, StoredRole<Targets>][] = [
        ['targets', args.state.targets],
        ...args.state.delegated,
      ];
      for (const [name, role] of listed) {
        const digest = meta[metaFileName(name)]?.hashes?.sha256;
        if (digest !== undefined) this.digests.set(role.bytes, digest);
      }
      const md = signMetadata(
        newSnapshot({
          version: snapshotVersion,
          expires: formatExpires(args.now + this.options.snapshotExpiry),
          meta,
        }),
        [this.signerFor(signers, args.root, 'snapshot')],
      );
      snapshotBytes = serializeMetadata(md);
      rows.push({ role: 'snapshot', bytes: snapshotBytes, metadata: md, serverSigned: true });
    } else {
      if (args.currentSnapshot === undefined) throw new TufaError('INTERNAL', 'no snapshot to time-stamp');
      snapshotBytes = args.currentSnapshot.bytes;
      snapshotVersion = args.currentSnapshot.metadata.signed.version;
    }
    const timestamp = signMetadata(
      newTimestamp({
        version: (args.currentTimestamp?.metadata.signed.version ?? 0) + 1,
        expires: formatExpires(args.now + this.options.timestampExpiry),
        snapshotMeta: metaFileFor(snapshotBytes, snapshotVersion),
      }),
      [this.signerFor(signers, args.root, 'timestamp')],
    );
    const timestampBytes = serializeMetadata(timestamp);
    rows.push({ role: 'timestamp', bytes: timestampBytes, metadata: timestamp, serverSigned: true });
    // Every transaction that writes metadata ends here, with a new timestamp.
    await this.insertRoles(client, id, rows, args.now);
    return { snapshot: snapshotVersion, timestamp, timestampBytes };
  }

  /**
   * One atomic update: validate the would-be state with core's rules, store the uploaded roles
   * exactly as uploaded, sign snapshot and timestamp, record the change; all or nothing.
   */
  async publish(
    gun: string,
    uploads: ReadonlyMap<string, Uint8Array>,
    audit?: AuditContext,
  ): Promise<PublishResult> {
    const maxSize = this.options.maxMetadataSize ?? Number.POSITIVE_INFINITY;
    for (const [role, bytes] of uploads) {
      if (bytes.length > maxSize) {
        throw new HttpStatusError(
          413,
          'TOO_LARGE',
          `${role}: ${bytes.length} bytes, more than this server allows for one metadata document (${maxSize})`,
          { role: role.slice(0, 300), limit: maxSize },
        );
      }
    }
    const result = await transaction(this.pool, async (client) => {
      const id = await this.lockCollection(client, gun, false);
      if (id === undefined) {
        throw new TufaError(
          'NOT_FOUND',
          `${gun}: no such collection; GET its timestamp.key before the first publish`,
          {
            details: { gun },
          },
        );
      }
      const now = this.now();
      const { state, timestamp, versions, keyRows } = await this.loadStateAndKeys(client, id);
      const serverKeyids = {
        timestamp: keyRows.filter((k) => k.role === 'timestamp').map((k) => k.keyid),
        snapshot: keyRows.filter((k) => k.role === 'snapshot').map((k) => k.keyid),
      };
      let update: ReturnType<typeof validateUpdate>;
      try {
        update = validateUpdate({ current: state, uploads, now, serverKeyids });
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
      this.checkDelegationCount(update);
      const changed = update.changed.map(
        (c): NewRow => ({
          role: c.role,
          bytes: c.bytes,
          serverSigned: false,
          metadata:
            c.role === 'root'
              ? update.root.metadata
              : c.role === 'targets'
                ? update.targets.metadata
                : c.role === 'snapshot'
                  ? update.snapshot!.metadata
                  : update.delegated.get(c.role)!.metadata,
        }),
      );
      const signed = await this.signOnline(client, id, {
        root: update.root.metadata.signed,
        snapshotOnline: update.snapshotOnline,
        resignSnapshot: true,
        state: update,
        currentSnapshot: update.snapshot ?? state.snapshot,
        currentTimestamp: timestamp,
        now,
        keyRows,
        alsoInsert: changed,
      });
      const out: Record<string, number> = { ...versions };
      for (const c of update.changed) out[c.role] = c.version;
      out.snapshot = signed.snapshot;
      out.timestamp = signed.timestamp.signed.version;
      let entry: AuditEntry | undefined;
      if (audit !== undefined) {
        const roles: Record<string, number> = {};
        for (const c of update.changed) roles[c.role] = c.version;
        roles.snapshot = signed.snapshot;
        roles.timestamp = signed.timestamp.signed.version;
        entry = { ...audit, action: 'publish', gun, roles, outcome: 'accepted' };
      }
      await this.recordChange(
        client,
        gun,
        signed.timestamp.signed.version,
        sha256Hex(signed.timestampBytes),
        'update',
        entry,
      );
      return { versions: out };
    });
    // This process's own readers must not wait for the NOTIFY to come back.
    this.options.cache?.invalidate(gun);
    return result;
  }

  /** The collection's declared delegations (targets' and every delegated role's) stay within the limit. */
  private checkDelegationCount(update: ReturnType<typeof validateUpdate>): void {
    const limit = this.options.maxDelegatedRoles ?? 1000;
    const names = new Set<string>();
    const add = (t: Targets) => {
      for (const r of t.delegations?.roles ?? []) names.add(r.name);
    };
    add(update.targets.metadata.signed);
    for (const d of update.delegated.values()) add(d.metadata.signed);
    if (names.size > limit) {
      throw new HttpStatusError(
        413,
        'DELEGATION_LIMIT',
        `the collection would declare ${names.size} delegated roles, more than this server allows (${limit})`,
        { limit, found: names.size },
      );
    }
  }

  /**
   * The changefeed row (and the request's audit row), in one statement: meant as the last
   * statement before COMMIT. The changefeed lock is held to commit, so change ids are handed out in
   * commit order and a reader paging by id skips nothing; the row reads from the lock's CTE, so
   * its id is taken only once the lock is held.
   */
  private async recordChange(
    client: pg.ClientBase,
    gun: string,
    version: number,
    sha256: string | null,
    category: 'update' | 'deletion',
    audit?: AuditEntry,
  ): Promise<void> {
    const params: unknown[] = [LOCKS.changefeed, gun, version, sha256, category];
    const auditSql = audit === undefined ? '' : `, audit AS (${auditInsert(audit, params)} RETURNING 1)`;
    await client.query(
      prepared(
        audit === undefined ? 'record_change' : 'record_change_audited',
        `WITH feed AS (SELECT pg_advisory_xact_lock($1::bigint)),
              change AS (INSERT INTO changes (gun, version, sha256, category)
                         SELECT $2::text, $3::integer, $4::text, $5::text FROM feed RETURNING 1)${auditSql}
         SELECT (SELECT count(*) FROM change) AS changes${audit === undefined ? '' : ', (SELECT count(*) FROM audit) AS audits'}`,
        params,
      ),
    );
  }

  /** Deletes exactly this GUN (metadata and keys); false when it did not exist. */
  async deleteCollection(gun: string, audit?: AuditContext): Promise<boolean> {
    const result = await transaction(this.pool, async (client) => {
      const id = await this.lockCollection(client, gun, false);
      if (id === undefined) return false;
      await client.query(
        `WITH gone AS (DELETE FROM collections WHERE id = $1 RETURNING gun)
         SELECT pg_notify('${NOTIFY_CHANNEL}', gun) FROM gone`,
        [id],
      );
      await this.recordChange(
        client,
        gun,
        0,
        null,
        'deletion',
        audit === undefined ? undefined : { ...audit, action: 'delete', gun, outcome: 'accepted' },
      );
      return true;
    });
    // This process's own readers must not wait for the NOTIFY to come back.
    this.options.cache?.invalidate(gun);
    return result;
  }

  async changes(options: {
    gun?: string | undefined;
    after: string;
    limit: number;
  }): Promise<ChangeRecord[]> {
    const r = await this.pool.query<{
      id: string;
      gun: string;
      version: number;
      sha256: string | null;
      category: 'update' | 'deletion';
      created_at: Date;
    }>(
      options.gun === undefined
        ? 'SELECT * FROM changes WHERE id > $1 ORDER BY id LIMIT $2'
        : 'SELECT * FROM changes WHERE id > $1 AND gun = $3 ORDER BY id LIMIT $2',
      options.gun === undefined
        ? [options.after, options.limit]
        : [options.after, options.limit, options.gun],
    );
    return r.rows.map((row) => ({ ...row, id: String(row.id), created_at: row.created_at.toISOString() }));
  }

  // -------------------------------------------------------------------------------------------
  // Freshness

  /**
   * Collections whose latest timestamp or server-held snapshot has entered the re-sign window
   * (the last `fraction` of its lifetime), or expired.
   */
  async dueForResign(fraction: number, limit = 100): Promise<string[]> {
    const r = await this.pool.query<{ gun: string }>(
      // The newest timestamp and snapshot of each collection: one index descent per role.
      `SELECT c.gun FROM collections c
       CROSS JOIN (VALUES ('timestamp'), ('snapshot')) AS r (role)
       JOIN LATERAL (SELECT m.expires, m.created_at, m.server_signed FROM metadata m
                     WHERE m.collection_id = c.id AND m.role = r.role
                     ORDER BY m.version DESC LIMIT 1) latest ON true
       WHERE latest.server_signed AND latest.expires - (latest.expires - latest.created_at) * $2::double precision
             <= to_timestamp($1::double precision / 1000)
       GROUP BY c.gun LIMIT $3`,
      [this.now(), fraction, limit],
    );
    return r.rows.map((row) => row.gun);
  }

  /**
   * Re-signs a collection's timestamp (and its server-held snapshot) if, under the collection's
   * lock and with fresh data, they are still due. `wait: false` skips a collection another
   * process holds. Returns the roles re-signed.
   */
  async resign(gun: string, options: { fraction: number; wait: boolean }): Promise<OnlineRole[]> {
    const result = await transaction(this.pool, async (client): Promise<OnlineRole[]> => {
      const id = await this.collectionId(client, gun);
      if (id === undefined) return [];
      if (options.wait) await this.lockCollection(client, gun, false);
      else {
        const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [id]);
        if (!got.rows[0]!.ok) return [];
      }
      const now = this.now();
      const { state, timestamp } = await this.loadState(client, id);
      if (state.root === undefined || state.targets === undefined || timestamp === undefined) return [];
      const due = (md: Metadata, createdAt: number) =>
        md.signed.expiresAt - (md.signed.expiresAt - createdAt) * options.fraction <= now;
      const created = await client.query<{ role: string; created: string }>(
        `SELECT r.role, (extract(epoch FROM l.created_at) * 1000)::text AS created
         FROM (VALUES ('timestamp'), ('snapshot')) AS r (role)
         JOIN LATERAL (SELECT created_at FROM metadata WHERE collection_id = $1 AND role = r.role
                       ORDER BY version DESC LIMIT 1) l ON true`,
        [id],
      );
      const createdAt = new Map(created.rows.map((row) => [row.role, Number(row.created)]));
      const root = state.root.metadata.signed;
      const serverSnapshotKeys = await client.query<{ keyid: string }>(
        "SELECT keyid FROM online_keys WHERE collection_id = $1 AND role = 'snapshot'",
        [id],
      );
      const snapshotOnline =
        root.roles.snapshot.threshold === 1 &&
        root.roles.snapshot.keyids.some((k) => serverSnapshotKeys.rows.some((row) => row.keyid === k));
      const snapshotDue =
        snapshotOnline &&
        state.snapshot !== undefined &&
        due(state.snapshot.metadata, createdAt.get('snapshot') ?? now);
      const timestampDue = snapshotDue || due(timestamp.metadata, createdAt.get('timestamp') ?? now);
      if (!timestampDue) return [];
      await this.signOnline(client, id, {
        root,
        snapshotOnline,
        resignSnapshot: snapshotDue,
        state: { targets: state.targets, delegated: state.delegated },
        currentSnapshot: state.snapshot,
        currentTimestamp: timestamp,
        now,
      });
      return snapshotDue ? ['snapshot', 'timestamp'] : ['timestamp'];
    });
    // This process's own readers must not wait for the NOTIFY to come back.
    this.options.cache?.invalidate(gun);
    return result;
  }
}

function parseKey(text: string): Key {
  const obj = parseJson(text) as { keytype: string; scheme: string; keyval: { public: string } };
  return { keytype: obj.keytype, scheme: obj.scheme, keyval: { public: obj.keyval.public }, extra: {} };
}
