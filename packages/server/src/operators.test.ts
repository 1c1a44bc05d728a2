/**
 * An operator's first contact, through the built `tufa-server` as README.md runs it: a PostgreSQL
 * that wants a SCRAM password from a file, the refusals that must come before the database is
 * touched, one-line start-up errors with their exit status, admin commands that never create a
 * database, a data folder under a private folder when run as root, --help and --version, Ctrl-C.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { startPostgres } from '@tufa/server';
import {
  MASTER_KEY,
  makeCertificates,
  type ProcessResult,
  REPO,
  runProcess,
  startTestPostgres,
  type TestPostgres,
  tempDir,
  testPostgresBinaries,
  waitFor,
} from '@tufa/testing/server';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = join(REPO, 'packages/server/dist/bin.js');
const VERSION = (
  JSON.parse(readFileSync(join(REPO, 'packages/server/package.json'), 'utf8')) as { version: string }
).version;

type Result = ProcessResult;

/** `node packages/server/dist/bin.js ARGS` with only PATH and `env` in its environment. */
function run(args: string[], env: Record<string, string> = {}, cwd = REPO): Promise<Result> {
  return runProcess(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...env } });
}

interface Running {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts the server; resolves once it logs its URL. `detached`: its own process group, as a shell job. */
function serve(
  args: string[],
  env: Record<string, string>,
  options: { detached?: boolean } = {},
): Promise<Running> {
  const child = spawn(process.execPath, [BIN, '--port', '0', ...args], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached === true,
  });
  started.push(child);
  let out = '';
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return new Promise((resolve, reject) => {
    const onData = (c: Buffer) => {
      out += c.toString();
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
      if (m !== null) resolve({ child, url: m[1]!, output: () => out, exited });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`tufa-server exited ${code} during start:\n${out}`)));
  });
}

/** One line `tufa-server: CODE: …` on stderr and no stack trace. */
function expectOneLine(r: Result, code: string, exit: number, pattern?: RegExp) {
  expect(r.code, r.stderr).toBe(exit);
  const lines = r.stderr.trimEnd().split('\n');
  const last = lines[lines.length - 1]!;
  expect(last).toMatch(new RegExp(`^tufa-server: ${code}: `));
  if (pattern !== undefined) expect(last).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

let pgServer: TestPostgres;
const started: ChildProcess[] = [];
let dir: string;
let password: string;
let passwordFile: string;
let masterKeyFile: string;

/** A new database's URL without its password (as README.md writes DATABASE_URL). */
async function database(): Promise<string> {
  const u = new URL(await pgServer.createDatabase());
  u.password = '';
  return u.toString();
}

beforeAll(async () => {
  // initdb --auth=scram-sha-256: every login on this cluster needs the password (@tufa/testing/postgres).
  pgServer = await startTestPostgres();
  password = decodeURIComponent(new URL(pgServer.postgres.url).password);
  dir = tempDir('tufa-operators-');
  passwordFile = join(dir, 'db_password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  masterKeyFile = join(dir, 'master.key');
  writeFileSync(masterKeyFile, `${MASTER_KEY}\n`, { mode: 0o600 });
});

afterAll(async () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await pgServer?.stop();
});

describe('PostgreSQL with a SCRAM password from a file, as README.md "Running in production" says', () => {
  it('migrate, token create and the server all log in; the server accepts the token', async () => {
    const url = await database();
    const env = {
      DATABASE_URL: url,
      TUFA_DATABASE_PASSWORD_FILE: passwordFile,
      TUFA_MASTER_KEY_FILE: masterKeyFile,
    };
    const migrated = await run(['migrate'], env);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stderr).toContain(`migrating the database ${url}`);
    const created = await run(['token', 'create', '--name', 'ci', '--scope', 'push:example.com/*'], env);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stderr).toContain(`using the database ${url}`);
    expect(created.stderr).not.toContain(password);
    const token = created.stdout.trim();
    const server = await serve([], env);
    const key = `${server.url}/v2/example.com/app/_trust/tuf/timestamp.key`;
    const anonymous = await fetch(key, { method: 'POST' });
    expect([anonymous.status, ((await anonymous.json()) as any).error.code]).toEqual([401, 'UNAUTHORIZED']);
    expect((await fetch(key, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(
      200,
    );
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.output()).not.toContain(password);
  });

  it('a wrong password, no password, a closed port, a missing database: one line each, exit 3 or 4', async () => {
    const url = await database();
    const wrong = join(dir, 'wrong_password');
    writeFileSync(wrong, 'not-the-password\n', { mode: 0o600 });
    const base = { DATABASE_URL: url, TUFA_MASTER_KEY_FILE: masterKeyFile };
    expectOneLine(
      await run([], { ...base, TUFA_DATABASE_PASSWORD_FILE: wrong }),
      'UNAUTHORIZED',
      3,
      /refused the login of user "tufa".*password file/,
    );
    // pg used to leave this socket open until PostgreSQL's authentication_timeout (60 s): the test would time out.
    expectOneLine(
      await run(['token', 'list'], base),
      'UNAUTHORIZED',
      3,
      /none was given: set TUFA_DATABASE_PASSWORD_FILE/,
    );
    const closed = await freePortNumber();
    expectOneLine(
      await run(['migrate'], { ...base, DATABASE_URL: `postgres://tufa@127.0.0.1:${closed}/tufa` }),
      'NETWORK',
      3,
      /connection refused/,
    );
    const missing = new URL(url);
    missing.pathname = '/no_such_database';
    expectOneLine(
      await run(['migrate'], {
        ...base,
        DATABASE_URL: missing.toString(),
        TUFA_DATABASE_PASSWORD_FILE: passwordFile,
      }),
      'NOT_FOUND',
      4,
      /has no database "no_such_database"/,
    );
    expectOneLine(
      await run(['migrate'], {
        ...base,
        DATABASE_URL: `postgres://tufa:${password}@127.0.0.1:1/x`,
        TUFA_DATABASE_PASSWORD_FILE: passwordFile,
      }),
      'INVALID_ARGUMENT',
      2,
      /password is given twice/,
    );
    const debug = await run(['--debug', 'token', 'list'], base);
    expect(debug.code).toBe(3);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it('refuses a missing or group-readable master key before the database is touched', async () => {
    const url = await database();
    const env = { DATABASE_URL: url, TUFA_DATABASE_PASSWORD_FILE: passwordFile };
    expectOneLine(await run([], env), 'INVALID_ARGUMENT', 2, /a master key is required with DATABASE_URL/);
    const open = join(dir, 'open.key');
    writeFileSync(open, `${MASTER_KEY}\n`, { mode: 0o600 });
    chmodSync(open, 0o644);
    expectOneLine(
      await run([], { ...env, TUFA_MASTER_KEY_FILE: open }),
      'INVALID_ARGUMENT',
      2,
      /can be read or written by group or others \(mode 0644\): chmod 600/,
    );
    expectOneLine(
      await run([], { ...env, TUFA_MASTER_KEY_FILE: join(dir, 'no-such.key') }),
      'FILE_UNREADABLE',
      2,
      /master key file .*no-such\.key does not exist/,
    );
    // Nothing was migrated: the refusals came first.
    // (pg drops `password` when given with a connectionString: the bug this file's first test is about.)
    const withPassword = new URL(url);
    withPassword.password = encodeURIComponent(password);
    const check = new pg.Client({ connectionString: withPassword.toString() });
    await check.connect();
    const r = await check.query("SELECT to_regclass('schema_migrations') IS NULL AS untouched");
    await check.end();
    expect(r.rows[0].untouched).toBe(true);
  });

  it('a port in use is one line, exit 3, said before the database starts', async () => {
    const holder = await listen();
    const port = (holder.address() as { port: number }).port;
    const url = await database();
    const r = await run(['--port', String(port)], {
      DATABASE_URL: url,
      TUFA_DATABASE_PASSWORD_FILE: passwordFile,
      TUFA_MASTER_KEY_FILE: masterKeyFile,
    });
    holder.close();
    expectOneLine(
      r,
      'CONFLICT',
      3,
      new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use`),
    );
    expect(r.stdout).not.toContain('migrations applied');
  });
});

describe('README.md "Running in production", as pasted', () => {
  it('the block runs against a password-protected PostgreSQL; the token it made is accepted', async () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Running in production'));
    const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
    const admin = new pg.Client({ connectionString: pgServer.postgres.url });
    await admin.connect();
    await admin.query('CREATE DATABASE tufa');
    await admin.end();
    const etc = tempDir('tufa-operators-etc-');
    const tokenFile = join(etc, 'token');
    // Only the places differ: a temp folder for /etc/tufa, the test's PostgreSQL for db.internal,
    // loopback on a free port for 0.0.0.0:4443; and the token the block made is written down.
    const lines = block.trimEnd().split('\n');
    const last = lines.pop()!;
    expect(last).toBe('npx tufa-server --host 0.0.0.0');
    const script = [
      'set -euo pipefail',
      ...lines,
      `printf '%s' "$TUFA_TOKEN" > ${tokenFile}`,
      'exec npx tufa-server --host 127.0.0.1',
    ]
      .join('\n')
      .replaceAll('/etc/tufa', join(etc, 'tufa'))
      .replaceAll('db.internal:5432', `127.0.0.1:${pgServer.postgres.port}`);
    const child = spawn('bash', ['-c', script], {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '', HOME: etc, TUFA_DB_PASSWORD: password, TUFA_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    started.push(child);
    let out = '';
    // 'close': every process of the group let go of the pipes (npx, then the server it started).
    const closed = new Promise<void>((done) => child.once('close', () => done()));
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (c: Buffer) => {
        out += c.toString();
        const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
        if (m !== null) resolve(m[1]!);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`the block exited ${code}:\n${out}`)));
    });
    expect(out).toContain('"database":"external"');
    for (const f of ['master.key', 'db_password']) {
      expect((statSync(join(etc, 'tufa', f)).mode & 0o777).toString(8), f).toBe('600');
    }
    const token = readFileSync(tokenFile, 'utf8');
    expect(token).toMatch(/^tufa_[0-9a-f]{16}_/);
    const key = `${url}/v2/team/app/_trust/tuf/timestamp.key`;
    const anonymous = await fetch(key, { method: 'POST' });
    expect([anonymous.status, ((await anonymous.json()) as any).error.code]).toEqual([401, 'UNAUTHORIZED']);
    expect((await fetch(key, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(
      200,
    );
    process.kill(-child.pid!, 'SIGTERM'); // the shell job's group: npx and the server
    await closed;
    expect(out).toMatch(/"msg":"stopped"/);
    expect(out).not.toContain(password);
  });
});

describe('TLS to PostgreSQL (hostssl only, a certificate for 127.0.0.1 from a test CA)', () => {
  it('verify-full with the CA works; without it, with another CA or without TLS the login is refused in one line', async () => {
    const tlsDir = tempDir('tufa-operators-pgtls-');
    chmodSync(tlsDir, 0o755);
    const certs = makeCertificates(tlsDir);
    const pgUid =
      process.getuid?.() === 0
        ? Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }))
        : undefined;
    if (pgUid !== undefined) for (const f of [certs.serverCert, certs.serverKey]) chownSync(f, pgUid, 0);
    chmodSync(certs.serverKey, 0o600);
    const cluster = await startPostgres({
      binaries: await testPostgresBinaries(),
      dataDir: join(tlsDir, 'data'),
      settings: { fsync: 'off', ssl: 'on', ssl_cert_file: certs.serverCert, ssl_key_file: certs.serverKey },
    });
    try {
      const admin = new pg.Client({ connectionString: cluster.url });
      await admin.connect();
      await admin.query('CREATE DATABASE tufa');
      // Only TLS logins from now on.
      const hba = join(tlsDir, 'data', 'pg_hba.conf');
      writeFileSync(hba, 'hostssl all all 127.0.0.1/32 scram-sha-256\n');
      await admin.query('SELECT pg_reload_conf()');
      await admin.end();
      const pw = join(tlsDir, 'pw');
      writeFileSync(pw, `${decodeURIComponent(new URL(cluster.url).password)}\n`, { mode: 0o600 });
      const at = (query: string, host = '127.0.0.1') =>
        `postgres://tufa@${host}:${cluster.port}/tufa${query}`;
      const env = (url: string, ca?: string) => ({
        DATABASE_URL: url,
        TUFA_DATABASE_PASSWORD_FILE: pw,
        ...(ca === undefined ? {} : { TUFA_DATABASE_CA_FILE: ca }),
      });
      const ok = await run(['migrate'], env(at(''), certs.ca)); // a CA file alone: verify-full
      expect(ok.code, ok.stderr).toBe(0);
      expect((await run(['token', 'list'], env(at('?sslmode=require')))).code).toBe(0);
      expect((await run(['token', 'list'], env(at('?sslmode=verify-ca', 'localhost'), certs.ca))).code).toBe(
        0,
      );
      expectOneLine(
        await run(['token', 'list'], env(at('?sslmode=verify-full'))),
        'UNAUTHORIZED',
        3,
        /TLS certificate .* is not trusted/,
      );
      expectOneLine(
        await run(['token', 'list'], env(at(''), certs.otherCa)),
        'UNAUTHORIZED',
        3,
        /TLS certificate .* is not trusted/,
      );
      // The certificate names 127.0.0.1, not localhost: verify-full checks the name.
      expectOneLine(
        await run(['token', 'list'], env(at('', 'localhost'), certs.ca)),
        'UNAUTHORIZED',
        3,
        /TLS certificate/,
      );
      expectOneLine(
        await run(['token', 'list'], env(at(''))),
        'UNAUTHORIZED',
        3,
        /refused the login.*no encryption/,
      );
    } finally {
      await cluster.stop();
    }
  });
});

describe('administration commands never create a database', () => {
  it('token, audit and migrate in a folder with no data folder: exit 4 naming where they looked, nothing made', async () => {
    const empty = tempDir('tufa-operators-empty-');
    for (const args of [
      ['token', 'create', '--name', 'x', '--scope', 'pull:*'],
      ['token', 'list'],
      ['audit'],
      ['migrate'],
    ]) {
      const r = await run(args, {}, empty);
      expectOneLine(r, 'NOT_FOUND', 4, new RegExp(`no tufa database in ${empty}/tufa-data: `));
      expect(r.stdout).toBe('');
    }
    expect(existsSync(join(empty, 'tufa-data'))).toBe(false);
    const elsewhere = join(empty, 'other');
    expectOneLine(await run(['token', 'list', '--data-dir', elsewhere], {}, empty), 'NOT_FOUND', 4);
    expect(existsSync(elsewhere)).toBe(false);
  });
});

describe.runIf(process.getuid?.() === 0)('as root: the embedded PostgreSQL runs as the postgres user', () => {
  it('a data folder under a 0700 folder is refused at once with the folder and the remedy; the remedy works', async () => {
    const privateDir = tempDir('tufa-operators-private-'); // mkdtemp: 0700, like /root
    const dataDir = join(privateDir, 'srv', 'tufa-data');
    const r = await run(['--data-dir', dataDir, '--port', '0'], { TUFA_MASTER_KEY: MASTER_KEY });
    expectOneLine(
      r,
      'INVALID_ARGUMENT',
      2,
      new RegExp(
        `runs as user postgres .* cannot enter ${privateDir} \\(mode 0700\\).*chmod o\\+x ${privateDir}`,
      ),
    );
    expect(existsSync(join(privateDir, 'srv'))).toBe(false);
    chmodSync(privateDir, 0o711);
    const server = await serve(['--data-dir', dataDir], { TUFA_MASTER_KEY: MASTER_KEY });
    expect((await fetch(`${server.url}/_health`)).status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });
});

/** uid/gid of `nobody` when we are root and it can read this checkout (then a test runs the server as it). */
function nobody(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const ids = {
    uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })),
  };
  const probe = spawnSync(
    '/bin/sh',
    ['-c', 'test -r "$1" && test -r "$2"', 'sh', BIN, join(REPO, 'node_modules/pg/package.json')],
    ids,
  );
  return probe.status === 0 ? ids : undefined;
}

describe.runIf(nobody() !== undefined)('as an ordinary user: PostgreSQL runs as that user', () => {
  it('a data folder under its own 0700 folder works, and the data folder is 0700', async () => {
    const ids = nobody()!;
    const home = tempDir('tufa-operators-nobody-');
    chownSync(home, ids.uid, ids.gid); // its private home, 0700 like any mkdtemp folder
    const dataDir = join(home, 'srv', 'tufa-data');
    const child = spawn(process.execPath, [BIN, '--data-dir', dataDir, '--port', '0'], {
      cwd: home,
      env: { PATH: process.env.PATH ?? '', HOME: home, TUFA_MASTER_KEY: MASTER_KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...ids,
    });
    started.push(child);
    let out = '';
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (c: Buffer) => {
        out += c.toString();
        const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
        if (m !== null) resolve(m[1]!);
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => reject(new Error(`exited ${code}:\n${out}`)));
    });
    expect((await fetch(`${url}/_health`)).status).toBe(200);
    expect(statSync(dataDir).uid).toBe(ids.uid);
    expect((statSync(dataDir).mode & 0o777).toString(8)).toBe('700');
    expect((statSync(home).mode & 0o777).toString(8)).toBe('700'); // nothing above it was opened
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

describe('the command line', () => {
  it('--help of every command has examples; --version prints the version; a group alone is a usage error', async () => {
    for (const args of [
      ['--help'],
      ['serve', '--help'],
      ['migrate', '--help'],
      ['token', '--help'],
      ['token', 'create', '--help'],
      ['token', 'list', '--help'],
      ['token', 'revoke', '--help'],
      ['audit', '--help'],
    ]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/^Usage: tufa-server/);
      expect(r.stdout, args.join(' ')).toMatch(/Examples?:/);
    }
    expect((await run(['--help'])).stdout).toContain('TUFA_DATABASE_PASSWORD_FILE');
    const version = await run(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
    const group = await run(['token']);
    expect(group.code).toBe(2);
    expect(group.stderr).toMatch(/^Usage: tufa-server token/);
    expectOneLine(await run(['token', 'create', '--name', 'x']), 'INVALID_ARGUMENT', 2, /--scope/);
    expectOneLine(await run(['--nope']), 'INVALID_ARGUMENT', 2, /unknown option '--nope'/);
    expectOneLine(
      await run([], { TUFA_ALLOW_ANONYMOUS_WRITES: 'maybe' }),
      'INVALID_ARGUMENT',
      2,
      /TUFA_ALLOW_ANONYMOUS_WRITES="maybe": expected/,
    );
  });
});

describe('shutdown', () => {
  it('Ctrl-C (SIGINT to the whole process group) stops quietly and in order, the embedded database last', async () => {
    const dataDir = tempDir('tufa-operators-ctrlc-');
    const server = await serve(
      ['--data-dir', dataDir],
      { TUFA_MASTER_KEY: MASTER_KEY, TUFA_LOG_LEVEL: 'debug' },
      { detached: true },
    );
    const pidFile = join(dataDir, 'pg', 'postmaster.pid');
    expect(existsSync(pidFile)).toBe(true);
    process.kill(-server.child.pid!, 'SIGINT'); // what a terminal's Ctrl-C does
    expect(await server.exited).toBe(0);
    const lines = server
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string; component?: string });
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    const msgs = lines.filter((l) => l.component === undefined).map((l) => l.msg);
    expect(msgs.slice(msgs.indexOf('signal received'))).toEqual([
      'signal received',
      'shutting down',
      'requests drained',
      're-signer stopped',
      'LISTEN connection closed',
      'pool closed',
      'embedded PostgreSQL stopped',
      'stopped',
    ]);
    // PostgreSQL removes its pid file when it shuts down cleanly.
    expect(existsSync(pidFile)).toBe(false);
  });
});

describe('signals while starting, and during the other commands', () => {
  /** Starts `args` and sends `signals` SIGINTs when the embedded PostgreSQL is up; the exit status. */
  async function interrupt(args: string[], signals: number): Promise<{ code: number | null; out: string }> {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '', TUFA_MASTER_KEY: MASTER_KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.push(child);
    let out = '';
    let sent = 0;
    const onData = (c: Buffer) => {
      out += c.toString();
      // The second once the first was taken (two at once may arrive as one).
      if (sent === 0 && out.includes('"msg":"embedded PostgreSQL started"')) {
        sent++;
        child.kill('SIGINT');
      } else if (sent === 1 && signals === 2 && out.includes('"msg":"signal received"')) {
        sent++;
        child.kill('SIGINT');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const code = await new Promise<number | null>((done) => child.once('exit', (c) => done(c)));
    expect(sent, out).toBe(signals);
    return { code, out };
  }
  const gone = (dataDir: string) => waitFor(() => !existsSync(join(dataDir, 'pg', 'postmaster.pid')), 20_000);

  it('one signal while starting: the server stops once up (exit 0); two: it exits at once (130); PostgreSQL stops either way', async () => {
    const dataDir = tempDir('tufa-operators-startsig-');
    const once = await interrupt(['--data-dir', dataDir, '--port', '0'], 1);
    expect(once.code, once.out).toBe(0);
    expect(once.out).toMatch(/"msg":"stopped"/);
    await gone(dataDir);
    const twice = await interrupt(['--data-dir', dataDir, '--port', '0'], 2);
    expect(twice.code, twice.out).toBe(130);
    await gone(dataDir);
    // migrate (an existing data folder): a signal exits at once, and its PostgreSQL stops too.
    const migrate = await interrupt(['--data-dir', dataDir, 'migrate'], 1);
    expect(migrate.code, migrate.out).toBe(130);
    await gone(dataDir);
  });
});

function listen(): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}

async function freePortNumber(): Promise<number> {
  const s = await listen();
  const port = (s.address() as { port: number }).port;
  await new Promise((done) => s.close(done));
  return port;
}
