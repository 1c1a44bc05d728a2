/**
 * The changefeed: one row per publish and per deletion, handed out in commit order so that a
 * reader paging by the last id it saw misses nothing. Re-signing is not a change.
 */
import type pg from 'pg';
import { type AuditEntry, auditInsert } from '../audit.js';
import { LOCKS, prepared } from '../db.js';

export interface ChangeRecord {
  id: string;
  gun: string;
  version: number;
  sha256: string | null;
  category: 'update' | 'deletion';
  created_at: string;
}

/** A change to record: the collection's new timestamp (version, sha256), or its deletion. */
export interface Change {
  gun: string;
  version: number;
  sha256: string | null;
  category: 'update' | 'deletion';
  /** The request's audit row, written in the same statement. */
  audit?: AuditEntry | undefined;
}

/**
 * The changefeed row (and the request's audit row), in one statement: meant as the last
 * statement before COMMIT. The changefeed lock is held to commit, so change ids are handed out in
 * commit order and a reader paging by id skips nothing; the row reads from the lock's CTE, so
 * its id is taken only once the lock is held.
 */
export async function recordChange(client: pg.ClientBase, change: Change): Promise<void> {
  const params: unknown[] = [];
  const sql = changeStatement(change, params);
  await client.query(
    prepared(
      change.audit === undefined ? 'record_change' : 'record_change_audited',
      `WITH ${sql.ctes} SELECT ${sql.columns}`,
      params,
    ),
  );
}

/**
 * The changefeed row (and the audit row) as CTEs of a larger statement, the last before COMMIT
 * (recordChange's rule), its parameters appended to `params`. `after`: a CTE whose rows all exist
 * before the changefeed lock is taken, so that a 2 MB insert of the same statement never runs
 * under the one lock every publish takes.
 */
export function changeStatement(
  change: Change,
  params: unknown[],
  after?: string,
): { ctes: string; columns: string } {
  const { audit } = change;
  const n = params.length;
  params.push(LOCKS.changefeed, change.gun, change.version, change.sha256, change.category);
  const first = after === undefined ? '' : ` FROM (SELECT count(*) FROM ${after}) AS done`;
  const auditSql = audit === undefined ? '' : `, audit AS (${auditInsert(audit, params)} RETURNING 1)`;
  return {
    ctes: `feed AS (SELECT pg_advisory_xact_lock($${n + 1}::bigint)${first}),
           change AS (INSERT INTO changes (gun, version, sha256, category)
                      SELECT $${n + 2}::text, $${n + 3}::integer, $${n + 4}::text, $${n + 5}::text FROM feed RETURNING 1)${auditSql}`,
    columns: `(SELECT count(*) FROM change) AS changes${audit === undefined ? '' : ', (SELECT count(*) FROM audit) AS audits'}`,
  };
}

/** The changes after id `after` (of one GUN, or of all), oldest first, at most `limit`. */
export async function listChanges(
  db: pg.ClientBase | pg.Pool,
  options: { gun?: string | undefined; after: string; limit: number },
): Promise<ChangeRecord[]> {
  const r = await db.query<{
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
    options.gun === undefined ? [options.after, options.limit] : [options.after, options.limit, options.gun],
  );
  return r.rows.map((row) => ({ ...row, id: String(row.id), created_at: row.created_at.toISOString() }));
}
