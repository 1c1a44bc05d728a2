/** The audit log: one row per write, accepted or refused. Never a token, never a key. */
import { TufaError } from '@tufa/core';
import type pg from 'pg';

export type AuditAction =
  | 'publish'
  | 'key.create'
  | 'key.rotate'
  | 'delete'
  | 'token.create'
  | 'token.revoke'
  | 'pending.propose'
  | 'pending.sign'
  | 'pending.drop';

/** Who did it and where from: what every audit row of one request shares. */
export interface AuditContext {
  tokenName: string | undefined;
  remoteAddr: string | undefined;
  requestId: string | undefined;
}

export interface AuditEntry extends AuditContext {
  action: AuditAction;
  gun: string | undefined;
  /** Role → version written (publish), or the role of a key. */
  roles?: Record<string, number | string>;
  /** 'accepted' or the refusal code. */
  outcome: string;
}

export interface AuditRow {
  id: string;
  at: string;
  token_name: string | null;
  remote_addr: string | null;
  gun: string | null;
  action: string;
  roles: Record<string, number | string>;
  request_id: string | null;
  outcome: string;
}

const AUDIT_COLUMNS = '(token_name, remote_addr, gun, action, roles, request_id, outcome)';

/** The 7 parameters of an audit row, in AUDIT_COLUMNS order. */
function auditParams(entry: AuditEntry): unknown[] {
  return [
    entry.tokenName ?? null,
    entry.remoteAddr?.slice(0, 64) ?? null,
    entry.gun ?? null,
    entry.action,
    JSON.stringify(entry.roles ?? {}),
    entry.requestId ?? null,
    entry.outcome,
  ];
}

/**
 * An INSERT of an audit row as part of a larger statement (one round trip less): its parameters
 * are appended to `params`, numbered from there.
 */
export function auditInsert(entry: AuditEntry, params: unknown[]): string {
  const n = params.length;
  params.push(...auditParams(entry));
  const placeholders = Array.from({ length: 7 }, (_, i) => `$${n + i + 1}`).join(', ');
  return `INSERT INTO audit_log ${AUDIT_COLUMNS} VALUES (${placeholders})`;
}

export async function recordAudit(db: pg.ClientBase | pg.Pool, entry: AuditEntry): Promise<void> {
  const params: unknown[] = [];
  await db.query(auditInsert(entry, params), params);
}

/** `2026-11-23`, `2026-11-23T10:00:00Z` or a duration back from now (`24h`, `7d`); ms since the epoch. */
export function parseSince(text: string, now: number): number {
  const rel = /^(\d{1,9})(m|h|d)$/.exec(text);
  if (rel !== null) {
    return now - Number(rel[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'm' | 'h' | 'd'];
  }
  if (/^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2}))?$/.test(text)) {
    const t = Date.parse(text.length === 10 ? `${text}T00:00:00Z` : text);
    if (Number.isFinite(t)) return t;
  }
  throw new TufaError(
    'INVALID_ARGUMENT',
    `since: ${JSON.stringify(text.slice(0, 100))} is not a date (2026-11-23, 2026-11-23T10:00:00Z) or an age (30m, 24h, 7d)`,
  );
}

export async function listAudit(
  db: pg.Pool,
  options: { gun?: string | undefined; since?: number | undefined; after?: string; limit: number },
): Promise<AuditRow[]> {
  const r = await db.query<{
    id: string;
    at: Date;
    token_name: string | null;
    remote_addr: string | null;
    gun: string | null;
    action: string;
    roles: Record<string, number | string>;
    request_id: string | null;
    outcome: string;
  }>(
    `SELECT * FROM audit_log
     WHERE id > $1 AND ($2::text IS NULL OR gun = $2)
       AND ($3::double precision IS NULL OR at >= to_timestamp($3::double precision / 1000))
     ORDER BY id LIMIT $4`,
    [options.after ?? '0', options.gun ?? null, options.since ?? null, options.limit],
  );
  return r.rows.map((row) => ({ ...row, id: String(row.id), at: row.at.toISOString() }));
}
