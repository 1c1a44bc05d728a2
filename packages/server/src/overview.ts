/**
 * What an operator watches, for /metrics and the status page: the latest version and expiry of
 * every role of every collection, read from the stored columns (no document parsed), and the
 * signatures still missing on pending updates (their statuses remembered while nothing changed).
 */
import { isTufaError, signaturesNeeded } from '@tufa/core';
import type pg from 'pg';
import type { PendingStore, PendingSummary } from './pending.js';

export interface RoleExpiry {
  readonly role: string;
  readonly version: number;
  /** ms since the epoch. */
  readonly expiresAt: number;
  /** Signed by the server's online key (timestamp, a server-held snapshot): re-signed before it expires. */
  readonly serverSigned: boolean;
}

export interface CollectionExpiry {
  readonly gun: string;
  /**
   * The soonest expiry that is the publishers' to prevent, ms since the epoch: of the roles they
   * sign, or of a server-signed role that has expired all the same (the re-signer is failing).
   */
  readonly nearest: number;
  /** How many roles it stores (the top-level four and its delegated roles). */
  readonly roleCount: number;
}

const TOP_LEVEL = `('root', 'targets', 'snapshot', 'timestamp')`;

/**
 * `latest`: the newest (role, version, expires) of each role of the collections `where` selects,
 * one index descent per role (a loose index scan of the primary key), never every version.
 */
function latestRoles(where: string): string {
  return `WITH RECURSIVE pairs (collection_id, role) AS (
      SELECT c.id, (SELECT m.role FROM metadata m WHERE m.collection_id = c.id ORDER BY m.role LIMIT 1)
      FROM collections c ${where}
      UNION ALL
      SELECT p.collection_id, (SELECT m.role FROM metadata m WHERE m.collection_id = p.collection_id
                               AND m.role > p.role ORDER BY m.role LIMIT 1)
      FROM pairs p WHERE p.role IS NOT NULL
    ),
    latest AS (
      SELECT p.collection_id, l.role, l.version, l.expires, l.server_signed FROM pairs p
      CROSS JOIN LATERAL (SELECT m.role, m.version, m.expires, m.server_signed FROM metadata m
                          WHERE m.collection_id = p.collection_id AND m.role = p.role
                          ORDER BY m.version DESC LIMIT 1) l
    )`;
}

/** Every collection that holds metadata, with its nearest expiry (`now`: ms), soonest first (then by GUN). */
export async function collectionExpiries(pool: pg.Pool, now: number): Promise<CollectionExpiry[]> {
  const r = await pool.query<{ gun: string; nearest_ms: number; roles: number }>(
    `${latestRoles('')}
     SELECT c.gun, (extract(epoch FROM min(l.expires) FILTER (
                      WHERE NOT l.server_signed OR l.expires <= to_timestamp($1::double precision / 1000)
                    )) * 1000)::float8 AS nearest_ms, count(*)::int AS roles
     FROM latest l JOIN collections c ON c.id = l.collection_id GROUP BY c.gun`,
    [now],
  );
  return r.rows
    .map((row) => ({
      gun: row.gun,
      nearest: row.nearest_ms ?? Number.POSITIVE_INFINITY,
      roleCount: row.roles,
    }))
    .sort((a, b) => a.nearest - b.nearest || (a.gun < b.gun ? -1 : a.gun > b.gun ? 1 : 0));
}

/**
 * collectionExpiries, one database pass shared by every caller that asks while it runs: a burst of
 * page loads and scrapes (anonymous ones, where pulls are) costs one pass, not one each.
 */
export class SharedExpiries {
  private inFlight: Promise<CollectionExpiry[]> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly now: () => number,
  ) {}

  get(): Promise<CollectionExpiry[]> {
    this.inFlight ??= collectionExpiries(this.pool, this.now()).finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }
}

/**
 * The roles of these collections: the top-level four, then up to `delegated` delegated roles
 * each, soonest expiry first (a collection of 16,384 hash bins gives 4 + `delegated` rows).
 */
export async function roleExpiries(
  pool: pg.Pool,
  guns: readonly string[],
  delegated: number,
): Promise<Map<string, RoleExpiry[]>> {
  const out = new Map<string, RoleExpiry[]>();
  if (guns.length === 0) return out;
  const r = await pool.query<{
    gun: string;
    role: string;
    version: number;
    expires_ms: number;
    server_signed: boolean;
  }>(
    `${latestRoles('WHERE c.gun = ANY($1::text[])')}
     SELECT gun, role, version, expires_ms, server_signed FROM (
       SELECT c.gun, l.role, l.version, (extract(epoch FROM l.expires) * 1000)::float8 AS expires_ms,
              l.server_signed,
              row_number() OVER (PARTITION BY l.collection_id
                                 ORDER BY l.role NOT IN ${TOP_LEVEL}, l.expires, l.role) AS n
       FROM latest l JOIN collections c ON c.id = l.collection_id
     ) ranked WHERE n <= $2 ORDER BY gun, n`,
    [guns, 4 + delegated],
  );
  for (const row of r.rows) {
    let roles = out.get(row.gun);
    if (roles === undefined) {
      roles = [];
      out.set(row.gun, roles);
    }
    roles.push({
      role: row.role,
      version: row.version,
      expiresAt: row.expires_ms,
      serverSigned: row.server_signed,
    });
  }
  return out;
}

/** Remembered statuses: at most this many collections, each for at most this long (a proposal can expire). */
const MEMO_COLLECTIONS = 1000;
const MEMO_MS = 60_000;

/**
 * Signatures still missing on the live pending updates of collections. A collection's statuses
 * are computed again only when its pending rows or its published metadata changed (or a minute
 * passed): a scrape does not verify every proposal's signatures again.
 */
export class PendingOverview {
  private readonly memo = new Map<string, { key: string; at: number; summaries: PendingSummary[] }>();

  constructor(
    private readonly pending: PendingStore,
    private readonly pool: pg.Pool,
    private readonly now: () => number,
  ) {}

  /** The live pending updates of each of `guns` that has any (same order of summaries as the pending list). */
  async summaries(guns: readonly string[]): Promise<Map<string, PendingSummary[]>> {
    const out = new Map<string, PendingSummary[]>();
    if (guns.length === 0) return out;
    const now = this.now();
    // Which collections have live proposals, and what would make their statuses change.
    const r = await this.pool.query<{ gun: string; key: string }>(
      `SELECT c.gun, string_agg(p.id || '@' || (extract(epoch FROM p.updated_at) * 1000)::bigint, ',' ORDER BY p.id)
              || '#' || coalesce((SELECT max(ch.id) FROM changes ch WHERE ch.gun = c.gun), 0) AS key
       FROM pending_updates p JOIN collections c ON c.id = p.collection_id
       WHERE c.gun = ANY($1::text[]) AND p.expires_at > to_timestamp($2::double precision / 1000)
       GROUP BY c.gun`,
      [guns, now],
    );
    for (const { gun, key } of r.rows) {
      const held = this.memo.get(gun);
      if (held !== undefined && held.key === key && now - held.at < MEMO_MS) {
        out.set(gun, held.summaries);
        continue;
      }
      let summaries: PendingSummary[];
      try {
        summaries = await this.pending.list(gun, { purge: false });
      } catch (err) {
        // Deleted since the query above: nothing pending there any more.
        if (isTufaError(err) && err.code === 'NOT_FOUND') continue;
        throw err;
      }
      this.memo.delete(gun);
      if (this.memo.size >= MEMO_COLLECTIONS) this.memo.delete(this.memo.keys().next().value!);
      this.memo.set(gun, { key, at: now, summaries });
      out.set(gun, summaries);
    }
    return out;
  }
}

/**
 * Per role, the signatures still missing on its live pending versions (core's signaturesNeeded):
 * the fewest of any proposal carrying that role, the one nearest to publishing. Superseded and
 * invalid proposals, and stored roles a proposal only checks again, are not counted.
 */
export function missingSignatures(summaries: readonly PendingSummary[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of summaries) {
    if (s.state !== 'pending' || s.status === undefined) continue;
    for (const role of s.status.roles) {
      if (role.kept === true) continue;
      const missing = signaturesNeeded(role);
      out.set(role.role, Math.min(out.get(role.role) ?? missing, missing));
    }
  }
  return out;
}
