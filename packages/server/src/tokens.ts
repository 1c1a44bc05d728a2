/**
 * Access tokens and their scopes. A token is `tufa_<id>_<secret>`: the public id finds the row,
 * the secret is never stored (only its sha256, compared in constant time). Scopes are
 * `ACTION:GLOB`, ACTION one of pull, push, delete, admin.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { checkGun, isTufaError, MAX_GUN_LENGTH, TufaError } from '@tufa/core';
import type pg from 'pg';
import { type AuditContext, recordAudit } from './audit.js';
import { transaction } from './db.js';

export const SCOPE_ACTIONS = ['pull', 'push', 'delete', 'admin'] as const;
export type ScopeAction = (typeof SCOPE_ACTIONS)[number];

export interface Scope {
  action: ScopeAction;
  /** `*`, or GUN segments where a `*` segment matches one segment and a last `*` one or more. */
  glob: string;
}

const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TOKEN = /^tufa_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
export const MAX_SCOPES = 64;

export function checkTokenName(name: string): string {
  if (!TOKEN_NAME.test(name)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'a token name is 1 to 64 characters of A-Z a-z 0-9 . _ - (starting with a letter or digit)',
      { found: name.slice(0, 80) },
    );
  }
  return name;
}

/** `push:acme/*` → {action, glob}; strict. */
export function parseScope(text: string): Scope {
  const at = text.indexOf(':');
  const action = text.slice(0, at) as ScopeAction;
  const glob = text.slice(at + 1);
  const bad = (why: string) =>
    new TufaError('INVALID_ARGUMENT', `invalid scope ${JSON.stringify(text.slice(0, 300))}: ${why}`);
  if (at < 0 || !SCOPE_ACTIONS.includes(action))
    throw bad('write ACTION:GLOB, ACTION pull|push|delete|admin');
  if (glob.length === 0 || glob.length > MAX_GUN_LENGTH) throw bad('the GUN glob is empty or too long');
  if (glob === '*') return { action, glob };
  try {
    // A glob is a GUN (core's grammar) where a whole segment may be `*`.
    checkGun(glob.replace(/(^|\/)\*(?=\/|$)/g, '$1x'));
  } catch (err) {
    if (!isTufaError(err)) throw err;
    throw bad(`a glob is a GUN where a whole segment may be *: ${String(err.details?.reason)}`);
  }
  return { action, glob };
}

/** Scopes read back from the database; one an older grammar allowed can match no GUN now, so it grants nothing. */
function storedScopes(texts: readonly string[]): Scope[] {
  return texts.flatMap((text) => {
    try {
      return [parseScope(text)];
    } catch {
      return [];
    }
  });
}

export function formatScope(scope: Scope): string {
  return `${scope.action}:${scope.glob}`;
}

/** `*` matches every GUN; `acme/*` matches acme/app and acme/team/app, never acmecorp/app or acme. */
export function globMatches(glob: string, gun: string): boolean {
  if (glob === '*') return true;
  const pattern = glob.split('/');
  const segments = gun.split('/');
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const last = i === pattern.length - 1;
    if (p === '*' && last) return segments.length > i;
    if (i >= segments.length) return false;
    if (p !== '*' && p !== segments[i]) return false;
  }
  return segments.length === pattern.length;
}

/** Whether scopes grant `action` on `gun`: admin grants everything, push also grants pull. */
export function grants(
  scopes: readonly Scope[],
  action: Exclude<ScopeAction, 'admin'>,
  gun: string,
): boolean {
  return scopes.some(
    (s) =>
      globMatches(s.glob, gun) &&
      (s.action === action || s.action === 'admin' || (action === 'pull' && s.action === 'push')),
  );
}

/** Server-wide administration (tokens, the audit log) needs `admin:*`. */
export function isAdmin(scopes: readonly Scope[]): boolean {
  return scopes.some((s) => s.action === 'admin' && s.glob === '*');
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

export function newToken(): { token: string; tokenId: string; secretHash: Buffer } {
  const tokenId = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { token: `tufa_${tokenId}_${secret}`, tokenId, secretHash: sha256(secret) };
}

/** The id and secret hash of a well-formed token; undefined for anything else. */
export function splitToken(token: string): { tokenId: string; secretHash: Buffer } | undefined {
  const m = TOKEN.exec(token);
  if (m === null) return undefined;
  return { tokenId: m[1]!, secretHash: sha256(m[2]!) };
}

export interface TokenInfo {
  name: string;
  scopes: string[];
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface TokenHolder {
  name: string;
  scopes: Scope[];
}

/** The tokens table. */
export class TokenStore {
  /** When a token was last marked used, to write last_used_at at most once a minute per token. */
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly now: () => number = Date.now,
  ) {}

  /** Creates a token; returns it (the only time it exists outside the caller). A revoked name may be reused. */
  async create(
    name: string,
    scopeTexts: readonly string[],
    db: pg.ClientBase | pg.Pool = this.pool,
  ): Promise<{ token: string; info: TokenInfo }> {
    checkTokenName(name);
    if (scopeTexts.length === 0 || scopeTexts.length > MAX_SCOPES) {
      throw new TufaError('INVALID_ARGUMENT', `a token needs 1 to ${MAX_SCOPES} scopes`, {
        found: scopeTexts.length,
      });
    }
    const scopes = [...new Set(scopeTexts.map((s) => formatScope(parseScope(s))))];
    const { token, tokenId, secretHash } = newToken();
    const r = await db.query<{ created_at: Date }>(
      `INSERT INTO tokens (name, token_id, secret_hash, scopes, created_at)
       VALUES ($1, $2, $3, $4, to_timestamp($5::double precision / 1000))
       ON CONFLICT (name) DO UPDATE SET token_id = EXCLUDED.token_id, secret_hash = EXCLUDED.secret_hash,
         scopes = EXCLUDED.scopes, created_at = EXCLUDED.created_at, last_used_at = NULL, revoked_at = NULL
       WHERE tokens.revoked_at IS NOT NULL
       RETURNING created_at`,
      [name, tokenId, secretHash, scopes, this.now()],
    );
    if (r.rows[0] === undefined) {
      throw new TufaError('CONFLICT', `a token named ${name} exists: revoke it first`, {
        details: { name },
      });
    }
    return {
      token,
      info: {
        name,
        scopes,
        created_at: r.rows[0].created_at.toISOString(),
        last_used_at: null,
        revoked_at: null,
      },
    };
  }

  async list(): Promise<TokenInfo[]> {
    const r = await this.pool.query<{
      name: string;
      scopes: string[];
      created_at: Date;
      last_used_at: Date | null;
      revoked_at: Date | null;
    }>('SELECT name, scopes, created_at, last_used_at, revoked_at FROM tokens ORDER BY name');
    return r.rows.map((row) => ({
      name: row.name,
      scopes: row.scopes,
      created_at: row.created_at.toISOString(),
      last_used_at: row.last_used_at?.toISOString() ?? null,
      revoked_at: row.revoked_at?.toISOString() ?? null,
    }));
  }

  /** Revokes a token at once; false when no live token has that name. */
  async revoke(name: string, db: pg.ClientBase | pg.Pool = this.pool): Promise<boolean> {
    checkTokenName(name);
    const r = await db.query(
      'UPDATE tokens SET revoked_at = to_timestamp($2::double precision / 1000) WHERE name = $1 AND revoked_at IS NULL',
      [name, this.now()],
    );
    return r.rowCount === 1;
  }

  /** The holder of a live token; undefined for an unknown, malformed or revoked one. */
  async check(token: string): Promise<TokenHolder | undefined> {
    const parts = splitToken(token);
    if (parts === undefined) return undefined;
    // Named: planned once per connection (every authenticated request runs it).
    const r = await this.pool.query<{ name: string; secret_hash: Buffer; scopes: string[] }>({
      name: 'tufa_token_check',
      text: 'SELECT name, secret_hash, scopes FROM tokens WHERE token_id = $1 AND revoked_at IS NULL',
      values: [parts.tokenId],
    });
    const row = r.rows[0];
    // Compared in constant time, so the answer's timing says nothing about the stored hash.
    if (row === undefined || row.secret_hash.length !== parts.secretHash.length) return undefined;
    if (!timingSafeEqual(row.secret_hash, parts.secretHash)) return undefined;
    await this.touch(row.name);
    return { name: row.name, scopes: storedScopes(row.scopes) };
  }

  /** The holder of a live token by name (a client certificate mapped to a token name). */
  async byName(name: string): Promise<TokenHolder | undefined> {
    const r = await this.pool.query<{ name: string; scopes: string[] }>(
      'SELECT name, scopes FROM tokens WHERE name = $1 AND revoked_at IS NULL',
      [name],
    );
    const row = r.rows[0];
    if (row === undefined) return undefined;
    await this.touch(row.name);
    return { name: row.name, scopes: storedScopes(row.scopes) };
  }

  private async touch(name: string): Promise<void> {
    const now = this.now();
    if ((this.touched.get(name) ?? Number.NEGATIVE_INFINITY) > now - 60_000) return;
    if (this.touched.size > 10_000) this.touched.clear();
    this.touched.set(name, now);
    await this.pool.query(
      'UPDATE tokens SET last_used_at = to_timestamp($2::double precision / 1000) WHERE name = $1',
      [name, now],
    );
  }

  /** Creates a token and its audit row in one transaction (command line and admin API alike). */
  async createAudited(
    name: string,
    scopeTexts: readonly string[],
    who: AuditContext,
  ): Promise<{ token: string; info: TokenInfo }> {
    return transaction(this.pool, async (client) => {
      const made = await this.create(name, scopeTexts, client);
      await recordAudit(client, {
        ...who,
        action: 'token.create',
        gun: undefined,
        roles: { token: name },
        outcome: 'accepted',
      });
      return made;
    });
  }

  /** Revokes a token and writes its audit row in one transaction; false when no live token has that name. */
  async revokeAudited(name: string, who: AuditContext): Promise<boolean> {
    return transaction(this.pool, async (client) => {
      if (!(await this.revoke(name, client))) return false;
      await recordAudit(client, {
        ...who,
        action: 'token.revoke',
        gun: undefined,
        roles: { token: name },
        outcome: 'accepted',
      });
      return true;
    });
  }
}
