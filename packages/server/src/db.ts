/** The database: a `pg` pool (embedded or external, the same code) and the migrations. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TufaError } from '@tufa/core';
import pg from 'pg';
import {
  type DatabaseSource,
  type DatabaseTarget,
  databaseTarget,
  explainConnectError,
  unreadable,
} from './database-config.js';

/** Advisory lock keys: fixed 64-bit values, far above any collection id (those lock collections). */
export const LOCKS = Object.freeze({
  migrations: 0x7475_6661_0001n.toString(),
  changefeed: 0x7475_6661_0002n.toString(),
});

/**
 * A named statement: parsed and planned once per connection instead of at every call (the
 * publish path's queries are planned in about as long as they run). One name, one text.
 */
export function prepared(name: string, text: string, values: unknown[]): pg.QueryConfig {
  return { name: `tufa_${name}`, text, values };
}

/** migrations/ at the repository root, from src/ or dist/ alike (and /app/migrations in the image). */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations', import.meta.url));

/**
 * A pool on the database a URL (with its password file, CA file, PG* variables) names; every
 * connection setting comes from `databaseTarget`, the one place that reads them.
 */
export function createPool(source: string | DatabaseSource, max: number): pg.Pool {
  return poolFor(databaseTarget(typeof source === 'string' ? { url: source } : source), max);
}

/**
 * One connection and its login, before the pool: a refused login is said at once, and its socket
 * closed (pg leaves it open after a client-side SASL error until the server's authentication_timeout).
 */
export async function probeConnection(target: DatabaseTarget): Promise<void> {
  const client = new pg.Client(target.config);
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    client.connection.stream.destroy();
    throw explainConnectError(err, target);
  }
  await client.end();
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

/**
 * Whether an error says the database cannot be reached now (down, restarting, the connection
 * cut), rather than that a query failed: such a request is answered 503, to be retried.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (
    let e = err, depth = 0;
    e instanceof Error && depth < 4;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (CONNECTION_CODES.has(code)) return true;
      // SQLSTATE class 08 (connection exception), 57P01-57P03 (shutting down, starting up).
      if (/^08[0-9A-Z]{3}$/.test(code) || code === '57P01' || code === '57P02' || code === '57P03')
        return true;
    }
    if (
      /^Connection terminated|connection error and is not queryable|timeout exceeded when trying to connect/.test(
        e.message,
      )
    ) {
      return true;
    }
  }
  return false;
}

export function poolFor(target: DatabaseTarget, max: number): pg.Pool {
  const pool = new pg.Pool({ ...target.config, max, idleTimeoutMillis: 30_000 });
  // An idle client that loses its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  return pool;
}

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const MIGRATION_FILE = /^(\d{4})_[a-z0-9_]+\.sql$/;

export function readMigrations(dir: string): Migration[] {
  const out: Migration[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    throw unreadable(dir, 'migrations folder', err);
  }
  for (const name of names) {
    const m = MIGRATION_FILE.exec(name);
    if (m === null) continue;
    out.push({ version: Number(m[1]), name, sql: readFileSync(join(dir, name), 'utf8') });
  }
  out.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new TufaError('INTERNAL', `migrations must be numbered 0001, 0002, … without gaps: ${m.name}`);
    }
  });
  return out;
}

/**
 * Applies the migrations not yet recorded, in order, each in its own transaction, under an
 * advisory lock: two servers starting together apply each migration once. Returns the names applied.
 */
export async function migrate(
  pool: pg.Pool,
  from: string | readonly Migration[] = DEFAULT_MIGRATIONS_DIR,
): Promise<string[]> {
  const migrations = typeof from === 'string' ? readMigrations(from) : from;
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCKS.migrations]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    const newest = Math.max(0, ...done);
    if (newest > migrations.length) {
      throw new TufaError(
        'INTERNAL',
        `the database has migration ${newest}, newer than this server knows (${migrations.length})`,
      );
    }
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
          m.version,
          m.name,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new TufaError('INTERNAL', `migration ${m.name} failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
      applied.push(m.name);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCKS.migrations]).catch(() => {});
    client.release();
  }
  return applied;
}

/** Refuses a database whose migrations are not all applied (administration commands never migrate). */
export async function checkMigrated(
  pool: pg.Pool,
  migrations: readonly Migration[],
  where: string,
): Promise<void> {
  const known = migrations.length;
  const table = await pool.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
  const newest =
    table.rows[0]?.present === true
      ? Number(
          (await pool.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations')).rows[0]
            ?.v ?? 0,
        )
      : 0;
  if (newest === known) return;
  if (newest > known) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${where} has migration ${newest}, newer than this tufa-server knows (${known})`,
    );
  }
  throw new TufaError(
    'NOT_FOUND',
    newest === 0
      ? `${where} has no tufa tables: start tufa-server on it once, or run tufa-server migrate`
      : `${where} is at migration ${newest} of ${known}: run tufa-server migrate`,
  );
}

/** Runs `fn` in a transaction on one client; rolls back on any error. */
export async function transaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A checked-out client whose connection dies emits 'error' (the pool listens only to idle ones):
  // unheard, that would end the process; its query fails with the same error anyway.
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    if (isDatabaseUnavailable(err)) broken ??= err as Error;
    else await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.off('error', onError);
    // A broken connection is dropped, never handed to the next caller.
    client.release(broken);
  }
}

/** A client outside the pool, on the same database (for LISTEN, which holds its connection). */
export function dedicatedClient(pool: pg.Pool): pg.Client {
  const o = pool.options as pg.PoolConfig;
  return new pg.Client({
    host: o.host,
    port: o.port,
    user: o.user,
    database: o.database,
    ...(typeof o.password === 'string' ? { password: o.password } : {}),
    ...(o.ssl === undefined ? {} : { ssl: o.ssl }),
    ...(o.application_name === undefined ? {} : { application_name: o.application_name }),
    ...(o.connectionTimeoutMillis === undefined
      ? {}
      : { connectionTimeoutMillis: o.connectionTimeoutMillis }),
  });
}
