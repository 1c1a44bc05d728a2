/**
 * The one place that turns the server's configuration into a `pg` connection config: the URL,
 * a password file, the libpq `PG*` variables and TLS (`sslmode` in the URL or PGSSLMODE, a CA
 * file). We parse the URL ourselves and hand `pg` explicit fields: with `{connectionString,
 * password}` pg 8 lets the URL's (absent) password win, which dropped the password file.
 */
import { readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { TufaError } from '@tufa/core';
import type pg from 'pg';

export type SslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

export interface DatabaseSource {
  /** postgres://user[:password]@host[:port]/database[?sslmode=…]. */
  url: string;
  /** A file whose content (trimmed) is the password. */
  passwordFile?: string | undefined;
  /** A PEM bundle of the CAs that may sign the database server's certificate. */
  caFile?: string | undefined;
  /** The libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, PGSSLROOTCERT). */
  env?: NodeJS.ProcessEnv;
}

export interface DatabaseTarget {
  /** The pool config (no connectionString: every field explicit). */
  config: pg.PoolConfig;
  /** For messages: the URL without its password. */
  display: string;
  host: string;
  port: number;
  user: string;
  database: string;
  sslmode: SslMode;
  /** Where the password came from, for messages; undefined: none (pg may still read ~/.pgpass). */
  passwordSource: 'url' | 'password file' | 'PGPASSWORD' | undefined;
  /** Set when the password file can be read by group or others (the caller logs it). */
  warning?: string | undefined;
}

const MAX_SECRET_FILE = 64 * 1024;
const URL_PARAMS = new Set(['sslmode', 'sslrootcert', 'application_name', 'connect_timeout']);

function bad(message: string): TufaError {
  return new TufaError('INVALID_ARGUMENT', message);
}

/** FILE_UNREADABLE with the path and the system's reason (ENOENT, EACCES, …). */
export function unreadable(file: string, what: string, err: unknown): TufaError<'FILE_UNREADABLE'> {
  const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  const said = reason === 'ENOENT' ? 'does not exist' : `cannot be read (${reason})`;
  return new TufaError('FILE_UNREADABLE', `${what} ${file} ${said}`, {
    cause: err,
    details: { path: file, reason },
  });
}

/** Reads a small secret file (a password, a key), bounded, with one-line errors. */
export function readSecretFile(file: string, what: string): { text: string; mode: number } {
  let size: number;
  let mode: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw bad(`${what} ${file} is not a file`);
    size = st.size;
    mode = st.mode & 0o777;
  } catch (err) {
    if (err instanceof TufaError) throw err;
    throw unreadable(file, what, err);
  }
  if (size > MAX_SECRET_FILE) throw bad(`${what} ${file} is larger than ${MAX_SECRET_FILE} bytes`);
  try {
    return { text: readFileSync(file, 'utf8').trim(), mode };
  } catch (err) {
    throw unreadable(file, what, err);
  }
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw bad(`DATABASE_URL: the ${what} is not valid percent-encoding`);
  }
}

/** The URL without its password, for logs and errors. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(not a URL)';
  }
}

/** Builds the connection config; refuses, with a message naming the part, anything ambiguous. */
export function databaseTarget(source: DatabaseSource): DatabaseTarget {
  const env = source.env ?? process.env;
  const fromEnv = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  let u: URL;
  try {
    u = new URL(source.url);
  } catch {
    throw bad('DATABASE_URL is not a URL: expected postgres://user@host:5432/database');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw bad(`DATABASE_URL must start with postgres:// or postgresql://, not ${u.protocol}//`);
  }
  if (u.hash !== '') throw bad('DATABASE_URL must not have a #fragment');
  for (const key of u.searchParams.keys()) {
    if (!URL_PARAMS.has(key)) {
      throw bad(
        `DATABASE_URL: parameter ${JSON.stringify(key)} is not supported (${[...URL_PARAMS].join(', ')})`,
      );
    }
  }
  const param = (name: string): string | undefined => {
    const all = u.searchParams.getAll(name);
    if (all.length > 1) throw bad(`DATABASE_URL: parameter ${name} is given twice`);
    return all[0] === '' ? undefined : all[0];
  };
  // new URL keeps [::1] brackets in hostname; pg wants the bare address.
  const urlHost = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const host = decode(urlHost, 'host') || fromEnv('PGHOST') || 'localhost';
  const portText = u.port || fromEnv('PGPORT') || '5432';
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw bad(`database port ${JSON.stringify(portText)} is not a port number`);
  }
  const port = Number(portText);
  const user = decode(u.username, 'user name') || fromEnv('PGUSER') || userInfo().username;
  const path = u.pathname.replace(/^\//, '');
  if (path.includes('/')) throw bad('DATABASE_URL: the database name must not contain /');
  const database = decode(path, 'database name') || fromEnv('PGDATABASE') || user;

  let password: string | undefined;
  let passwordSource: DatabaseTarget['passwordSource'];
  let warning: string | undefined;
  if (u.password !== '') {
    password = decode(u.password, 'password');
    passwordSource = 'url';
  }
  if (source.passwordFile !== undefined) {
    if (password !== undefined) {
      throw bad('the database password is given twice: in DATABASE_URL and in TUFA_DATABASE_PASSWORD_FILE');
    }
    const { text, mode } = readSecretFile(source.passwordFile, 'database password file');
    if (text === '') throw bad(`database password file ${source.passwordFile} is empty`);
    if (text.includes('\n'))
      throw bad(`database password file ${source.passwordFile} has more than one line`);
    password = text;
    passwordSource = 'password file';
    if ((mode & 0o077) !== 0) {
      warning = `database password file ${source.passwordFile} can be read by others (mode 0${mode.toString(8)}): chmod 600 unless another service must read it`;
    }
  }
  if (password === undefined && fromEnv('PGPASSWORD') !== undefined) {
    password = fromEnv('PGPASSWORD');
    passwordSource = 'PGPASSWORD';
  }

  const modeText = param('sslmode') ?? fromEnv('PGSSLMODE');
  const caFile = source.caFile ?? param('sslrootcert') ?? fromEnv('PGSSLROOTCERT');
  let sslmode: SslMode;
  if (modeText === undefined) sslmode = caFile === undefined ? 'disable' : 'verify-full';
  else if (modeText === 'allow' || modeText === 'prefer') {
    throw bad(
      `sslmode=${modeText} is not supported (it would fall back to an unencrypted connection): use disable, require, verify-ca or verify-full`,
    );
  } else if (
    modeText === 'disable' ||
    modeText === 'require' ||
    modeText === 'verify-ca' ||
    modeText === 'verify-full'
  ) {
    sslmode = modeText;
  } else {
    throw bad(`sslmode=${JSON.stringify(modeText)} is not one of disable, require, verify-ca, verify-full`);
  }
  if (sslmode === 'disable' && caFile !== undefined) {
    throw bad('a database CA file is given but sslmode=disable: remove one of them');
  }
  let ssl: pg.PoolConfig['ssl'] = false;
  if (sslmode !== 'disable') {
    const ca = caFile === undefined ? undefined : readPemFile(caFile);
    // As libpq: require with a CA file checks the chain (verify-ca); without one it only encrypts.
    if (sslmode === 'require' && ca === undefined) ssl = { rejectUnauthorized: false };
    else if (sslmode === 'verify-full')
      ssl = { rejectUnauthorized: true, ...(ca === undefined ? {} : { ca }) };
    else {
      if (ca === undefined)
        throw bad('sslmode=verify-ca needs a CA file (TUFA_DATABASE_CA_FILE or sslrootcert)');
      ssl = { rejectUnauthorized: true, ca, checkServerIdentity: () => undefined };
      if (sslmode === 'require') sslmode = 'verify-ca';
    }
  }
  const timeoutText = param('connect_timeout');
  if (timeoutText !== undefined && !/^\d{1,6}$/.test(timeoutText)) {
    throw bad('DATABASE_URL: connect_timeout is a number of seconds');
  }
  // libpq takes 0 as "wait forever"; tufa never waits forever on a connection.
  if (timeoutText !== undefined && Number(timeoutText) === 0) {
    throw bad('DATABASE_URL: connect_timeout=0 would wait forever: give a number of seconds (default 10)');
  }
  const connectSeconds = timeoutText === undefined ? 10 : Number(timeoutText);
  const application = param('application_name') ?? 'tufa-server';

  const shown = new URL(u.toString());
  shown.password = '';
  return {
    config: {
      host,
      port,
      user,
      database,
      ...(password === undefined ? {} : { password }),
      ssl,
      application_name: application,
      connectionTimeoutMillis: connectSeconds * 1000,
    },
    display: shown.toString(),
    host,
    port,
    user,
    database,
    sslmode,
    passwordSource,
    warning,
  };
}

function readPemFile(file: string): string {
  const { text } = readSecretFile(file, 'database CA file');
  if (!text.includes('-----BEGIN CERTIFICATE-----'))
    throw bad(`database CA file ${file} holds no PEM certificate`);
  return text;
}

/**
 * A connection failure, said in one line that points at the cause: the address, the login, TLS.
 * Anything else is returned unchanged.
 */
export function explainConnectError(
  err: unknown,
  target: Pick<DatabaseTarget, 'host' | 'port' | 'user' | 'database' | 'passwordSource'>,
): unknown {
  if (err instanceof TufaError) return err;
  const e = err as NodeJS.ErrnoException & { code?: string; message?: string };
  const where = `PostgreSQL at ${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  const message = String(e?.message ?? err);
  const fail = (
    code: 'NETWORK' | 'TIMEOUT' | 'UNAUTHORIZED' | 'NOT_FOUND' | 'INVALID_ARGUMENT',
    text: string,
  ) =>
    new TufaError(code, text, {
      cause: err,
      details: { host: target.host, port: target.port, database: target.database },
    });
  switch (e?.code) {
    case 'ECONNREFUSED':
      return fail('NETWORK', `cannot reach ${where}: connection refused (is it running, on that port?)`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return fail('NETWORK', `cannot reach ${where}: the host name does not resolve`);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ECONNRESET':
    case 'EPIPE':
      return fail('NETWORK', `cannot reach ${where}: ${e.code}`);
    case 'ETIMEDOUT':
      return fail('TIMEOUT', `cannot reach ${where}: timed out`);
    case '28P01':
    case '28000':
      return fail(
        'UNAUTHORIZED',
        `${where} refused the login of user ${JSON.stringify(target.user)}: ${message}${target.passwordSource === undefined ? ' (no password was given: set TUFA_DATABASE_PASSWORD_FILE)' : ` (password from the ${target.passwordSource})`}`,
      );
    case '3D000':
      return fail(
        'NOT_FOUND',
        `${where} has no database ${JSON.stringify(target.database)}: create it first (createdb)`,
      );
  }
  if (/client password must be a string|password authentication|no password supplied/i.test(message)) {
    return fail(
      'UNAUTHORIZED',
      `${where} asks for a password for user ${JSON.stringify(target.user)} and none was given: set TUFA_DATABASE_PASSWORD_FILE (or put it in DATABASE_URL)`,
    );
  }
  if (/timeout/i.test(message)) return fail('TIMEOUT', `cannot reach ${where}: timed out while connecting`);
  if (/does not support SSL/i.test(message)) {
    return fail(
      'NETWORK',
      `${where} does not accept TLS connections: remove sslmode (or enable ssl on the server)`,
    );
  }
  if (
    /certificate|self[- ]signed|altnames|SSL|TLS/i.test(message) ||
    /^(ERR_TLS|CERT_|DEPTH_ZERO|UNABLE_TO)/.test(e?.code ?? '')
  ) {
    return fail(
      'UNAUTHORIZED',
      `the TLS certificate of ${where} is not trusted: ${message} (give its CA with TUFA_DATABASE_CA_FILE)`,
    );
  }
  return err;
}
