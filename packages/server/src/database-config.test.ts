import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTufaError } from '@tufa/core';
import { describe, expect, it } from 'vitest';
import { databaseTarget, explainConnectError, redactDatabaseUrl } from './database-config.js';

const dir = mkdtempSync(join(tmpdir(), 'tufa-dbconfig-'));
const file = (name: string, text: string, mode = 0o600) => {
  const p = join(dir, name);
  writeFileSync(p, text, { mode });
  return p;
};

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (isTufaError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'accepted';
}

describe('databaseTarget', () => {
  it('takes the password from the file, never from a dropped field, and shows the URL without it', () => {
    const t = databaseTarget({
      url: 'postgres://tufa@db.internal:5433/tufa',
      passwordFile: file('pw', 's3cret\n'),
      env: {},
    });
    expect(t.config).toMatchObject({
      host: 'db.internal',
      port: 5433,
      user: 'tufa',
      database: 'tufa',
      password: 's3cret',
      ssl: false,
    });
    expect(t.config).not.toHaveProperty('connectionString');
    expect(t.passwordSource).toBe('password file');
    expect(t.display).toBe('postgres://tufa@db.internal:5433/tufa');
    expect(t.warning).toBeUndefined();
  });

  it('decodes percent-encoded parts and fills the rest from the PG* variables', () => {
    const t = databaseTarget({
      url: 'postgresql://us%40er:p%2Fw@[::1]/my%20db',
      env: { PGPORT: '6000', PGHOST: 'ignored' },
    });
    expect(t.config).toMatchObject({
      host: '::1',
      port: 6000,
      user: 'us@er',
      password: 'p/w',
      database: 'my db',
    });
    expect(t.passwordSource).toBe('url');
    const fromEnv = databaseTarget({
      url: 'postgres://',
      env: { PGHOST: 'h', PGUSER: 'u', PGDATABASE: 'd', PGPASSWORD: 'x' },
    });
    expect(fromEnv.config).toMatchObject({ host: 'h', port: 5432, user: 'u', database: 'd', password: 'x' });
    expect(fromEnv.passwordSource).toBe('PGPASSWORD');
    expect(redactDatabaseUrl('postgres://u:secret@h/d')).toBe('postgres://u:***@h/d');
  });

  it('maps sslmode as libpq does, and refuses modes that would fall back to plain text', () => {
    const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const at = (url: string, caFile?: string) => databaseTarget({ url, caFile, env: {} });
    expect(at('postgres://u@h/d').config.ssl).toBe(false);
    expect(at('postgres://u@h/d?sslmode=require').config.ssl).toEqual({ rejectUnauthorized: false });
    const requireWithCa = at('postgres://u@h/d?sslmode=require', ca);
    expect(requireWithCa.sslmode).toBe('verify-ca');
    expect(requireWithCa.config.ssl).toMatchObject({
      rejectUnauthorized: true,
      ca: expect.stringContaining('BEGIN'),
    });
    expect(at('postgres://u@h/d?sslmode=verify-full').config.ssl).toEqual({ rejectUnauthorized: true });
    expect(at('postgres://u@h/d', ca).sslmode).toBe('verify-full');
    expect(at(`postgres://u@h/d?sslrootcert=${encodeURIComponent(ca)}`).sslmode).toBe('verify-full');
    expect(databaseTarget({ url: 'postgres://u@h/d', env: { PGSSLMODE: 'require' } }).sslmode).toBe(
      'require',
    );
    expect(refusal(() => at('postgres://u@h/d?sslmode=prefer'))).toMatch(
      /^INVALID_ARGUMENT: sslmode=prefer is not supported/,
    );
    expect(refusal(() => at('postgres://u@h/d?sslmode=verify-ca'))).toMatch(/verify-ca needs a CA file/);
    expect(refusal(() => at('postgres://u@h/d?sslmode=disable', ca))).toMatch(/sslmode=disable/);
    expect(refusal(() => at('postgres://u@h/d', file('not-pem', 'hello')))).toMatch(
      /holds no PEM certificate/,
    );
  });

  it('refuses what it cannot read or would read two ways', () => {
    const at = (url: string, passwordFile?: string) => databaseTarget({ url, passwordFile, env: {} });
    expect(refusal(() => at('mysql://u@h/d'))).toMatch(/must start with postgres:\/\//);
    expect(refusal(() => at('not a url'))).toMatch(/is not a URL/);
    expect(refusal(() => at('postgres://u@h/d?sslmode=require&sslmode=disable'))).toMatch(/given twice/);
    expect(refusal(() => at('postgres://u@h/d?options=-c%20x'))).toMatch(/"options" is not supported/);
    expect(refusal(() => at('postgres://u@h/a/b'))).toMatch(/must not contain \//);
    expect(refusal(() => at('postgres://u:pw@h/d', file('pw2', 'x')))).toMatch(/given twice/);
    expect(refusal(() => at('postgres://u@h/d', join(dir, 'missing')))).toMatch(
      /^FILE_UNREADABLE: database password file .*missing does not exist$/,
    );
    expect(refusal(() => at('postgres://u@h/d', file('empty', '\n')))).toMatch(/is empty/);
    expect(refusal(() => at('postgres://u@h/d', file('two', 'a\nb\n')))).toMatch(/more than one line/);
    expect(refusal(() => at('postgres://u@h/d', file('big', 'x'.repeat(70_000))))).toMatch(/larger than/);
    expect(refusal(() => at('postgres://u@h/d', dir))).toMatch(/is not a file/);
    expect(refusal(() => at('postgres://u@h/d?connect_timeout=soon'))).toMatch(/connect_timeout/);
    expect(refusal(() => at('postgres://u@h/d?connect_timeout=0'))).toMatch(/would wait forever/);
    expect(at('postgres://u@h/d?connect_timeout=3').config.connectionTimeoutMillis).toBe(3000);
    expect(refusal(() => at('postgres://u@h:99999/d'))).toMatch(/INVALID_ARGUMENT/);
    expect(at('postgres://u@h/d', file('shared', 'pw\n', 0o644)).warning).toMatch(
      /can be read by others \(mode 0644\)/,
    );
  });

  it('explains connection failures by cause', () => {
    const t = databaseTarget({ url: 'postgres://tufa@127.0.0.1:5432/tufa', env: {} });
    const code = (err: unknown) => {
      const e = explainConnectError(err, t);
      return isTufaError(e) ? `${e.code}: ${e.message}` : 'unchanged';
    };
    expect(code(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toMatch(
      /^NETWORK: cannot reach PostgreSQL at 127.0.0.1:5432/,
    );
    expect(code(Object.assign(new Error('x'), { code: 'ENOTFOUND' }))).toMatch(
      /^NETWORK: .*does not resolve/,
    );
    expect(code(Object.assign(new Error('password authentication failed'), { code: '28P01' }))).toMatch(
      /^UNAUTHORIZED: .*no password was given/,
    );
    expect(code(new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string'))).toMatch(
      /^UNAUTHORIZED: .*none was given/,
    );
    expect(code(Object.assign(new Error('database "x" does not exist'), { code: '3D000' }))).toMatch(
      /^NOT_FOUND: /,
    );
    expect(code(new Error('The server does not support SSL connections'))).toMatch(
      /^NETWORK: .*does not accept TLS/,
    );
    expect(
      code(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })),
    ).toMatch(/^UNAUTHORIZED: the TLS certificate/);
    expect(code(new Error('something else'))).toBe('unchanged');
  });
});
