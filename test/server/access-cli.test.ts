/**
 * Access control through the programs an operator and a publisher run: `tufa-server token …` and
 * `tufa-server audit` beside a running tufa-server (embedded database, HTTPS, mutual TLS, pulls
 * that need a token), and the `tufa` CLI with --token/TUFA_TOKEN, --ca-file/TUFA_CA_FILE and
 * TUFA_CLIENT_CERT/TUFA_CLIENT_KEY. Then the whole run's logs are searched for secrets.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decryptSecret, keyAad, parseMasterKey } from '@tufa/server';
import {
  MASTER_KEY,
  makeCertificates,
  privateKeyTexts,
  REPO,
  runProcess,
  type ServerProcess,
  serverArgs,
  spawnServer,
  startTestPostgres,
  type TestCertificates,
  type TestPostgres,
} from '@tufa/testing/server';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, PASSPHRASES } from '../cli/harness.test-util.js';

const SHA = `sha256:${'c'.repeat(64)}`;
let dir: string;
let dataDir: string;
let certs: TestCertificates;
let server: ServerProcess;
const homes: Home[] = [];
const adminOutput: string[] = [];

/** `tufa-server ARGS --data-dir DATA` (or the database ARGS name) as an operator runs it beside the server. */
function serverCommand(
  args: string[],
  database: string[] = ['--data-dir', dataDir],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runProcess(process.execPath, serverArgs(...args, ...database), {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '' },
  }).then((r) => {
    adminOutput.push(r.stderr);
    return r;
  });
}

function home(): Home {
  const h = new Home(server.url, { ...PASSPHRASES, TUFA_CA_FILE: certs.ca });
  homes.push(h);
  return h;
}

const tls = () => ({ TUFA_CLIENT_CERT: certs.clientCert, TUFA_CLIENT_KEY: certs.clientKey });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tufa-access-cli-'));
  // Its own temp folder: PostgreSQL runs as another user and must reach it.
  dataDir = mkdtempSync(join(tmpdir(), 'tufa-access-data-'));
  certs = makeCertificates(dir);
  server = await spawnServer(
    [
      '--data-dir',
      dataDir,
      '--require-auth-for-pull',
      '--tls-cert',
      certs.serverCert,
      '--tls-key',
      certs.serverKey,
      '--tls-client-ca',
      certs.ca,
    ],
    { TUFA_LOG_LEVEL: 'debug' },
    { accessControl: true },
  );
}, 120_000);

afterAll(async () => {
  for (const h of homes) h.remove();
  await server?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
});

describe('tokens from the operator to the publisher', () => {
  let token: string;
  const gun = 'acme/cli';

  it('tufa-server token create prints the token once; list never shows it', async () => {
    const created = await serverCommand([
      'token',
      'create',
      '--name',
      'publisher',
      '--scope',
      'push:acme/*',
      '--scope',
      'pull:acme/*',
    ]);
    expect(created.code).toBe(0);
    token = created.stdout.trim();
    expect(token).toMatch(/^tufa_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toContain('shown only this once');
    const list = await serverCommand(['token', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/publisher\s+push:acme\/\* pull:acme\/\*/);
    expect(list.stdout).not.toContain(token);
    const json = JSON.parse((await serverCommand(['token', 'list', '--json'])).stdout);
    expect(json.tokens[0]).toMatchObject({ name: 'publisher', revoked_at: null });
    const bad = await serverCommand(['token', 'create', '--name', 'x', '--scope', 'write:*']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid scope');
  });

  it('the CLI without a token is refused (exit 3, UNAUTHORIZED); with --token it publishes', async () => {
    const pub = home();
    const refused = await pub.run(['init', gun], { env: tls() });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('UNAUTHORIZED');
    await pub.ok(['init', gun, '--token', token], { env: tls() });
    await pub.ok(['add', gun, 'v1', '--digest', SHA, '--length', '5']);
    const published = await pub.json(['publish', gun], { env: { ...tls(), TUFA_TOKEN: token } });
    expect(published.versions.targets).toBe(2);
  });

  it('reads need the token and the client certificate too', async () => {
    const deploy = home();
    const anonymous = await deploy.run(['lookup', gun, 'v1'], { env: tls() });
    expect(anonymous.code).toBe(3);
    expect(anonymous.stderr).toContain('UNAUTHORIZED');
    const noCert = await deploy.run(['lookup', gun, 'v1'], { env: { TUFA_TOKEN: token } });
    expect(noCert.code).toBe(3);
    expect(noCert.stderr).toContain('NETWORK');
    const found = await deploy.ok(
      ['lookup', gun, 'v1', '--client-cert', certs.clientCert, '--client-key', certs.clientKey],
      {
        env: { TUFA_TOKEN: token },
      },
    );
    expect(found.trim()).toBe(SHA);
  });

  it('a token for another glob: FORBIDDEN (exit 3)', async () => {
    const other = home();
    const refused = await other.run(['init', 'acmecorp/app'], { env: { ...tls(), TUFA_TOKEN: token } });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('FORBIDDEN');
  });

  it('tufa-server audit lists the writes; token revoke takes effect at once', async () => {
    const audit = await serverCommand(['audit', '--gun', gun, '--json']);
    expect(audit.code).toBe(0);
    const records = JSON.parse(audit.stdout).records as {
      action: string;
      token_name: string;
      outcome: string;
    }[];
    expect(records.map((r) => [r.action, r.token_name, r.outcome])).toEqual([
      ['key.create', 'publisher', 'accepted'],
      ['key.create', 'publisher', 'accepted'],
      ['publish', 'publisher', 'accepted'],
      ['publish', 'publisher', 'accepted'],
    ]);
    const table = await serverCommand(['audit', '--since', '1h']);
    expect(table.stdout).toMatch(/token\.create/);
    expect(table.stdout).not.toContain(token);

    expect((await serverCommand(['token', 'revoke', 'publisher'])).code).toBe(0);
    expect((await serverCommand(['token', 'revoke', 'publisher'])).code).toBe(4);
    const pub = home();
    const refused = await pub.run(['init', 'acme/after'], { env: { ...tls(), TUFA_TOKEN: token } });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('UNAUTHORIZED');
  });
});

describe('administration commands on PostgreSQL (DATABASE_URL)', () => {
  let pgs: TestPostgres;
  let url: string;
  beforeAll(async () => {
    pgs = await startTestPostgres();
    url = await pgs.createDatabase();
  });
  afterAll(async () => {
    await pgs?.stop();
  });

  it('token create refuses a database without tufa tables; after migrate, list, revoke and audit read it', async () => {
    const db = ['--database-url', url];
    const refused = await serverCommand(['token', 'create', '--name', 'ops', '--scope', 'admin:*'], db);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(
      /^tufa-server: NOT_FOUND: the database postgres:\/\/.* has no tufa tables: .*tufa-server migrate$/m,
    );
    expect(refused.stdout).toBe('');
    expect((await serverCommand(['migrate'], db)).code).toBe(0);
    const created = await serverCommand(
      ['token', 'create', '--name', 'ops', '--scope', 'admin:*', '--json'],
      db,
    );
    expect(created.code).toBe(0);
    const json = JSON.parse(created.stdout);
    expect(json).toMatchObject({ name: 'ops', scopes: ['admin:*'], revoked_at: null });
    expect((await serverCommand(['token', 'revoke', 'ops'], db)).code).toBe(0);
    const list = JSON.parse((await serverCommand(['token', 'list', '--json'], db)).stdout);
    expect(list.tokens[0].revoked_at).not.toBeNull();
    const audit = JSON.parse((await serverCommand(['audit', '--json', '--since', '2000-01-01'], db)).stdout);
    expect(audit.records.map((r: { action: string }) => r.action)).toEqual(['token.create', 'token.revoke']);
    const none = JSON.parse(
      (await serverCommand(['audit', '--json', '--since', '2999-01-01T00:00:00Z'], db)).stdout,
    );
    expect(none.count).toBe(0);
  });
});

describe('the logs hold no secret', () => {
  it('a run of its own (token made, used, refused, revoked; a publish) logs no token, no online key seed, no private key', async () => {
    const logStart = server.output().length;
    const adminStart = adminOutput.length;
    const cliOutput: string[] = [];
    const gun = 'acme/secrets';
    const created = await serverCommand([
      'token',
      'create',
      '--name',
      'secrets',
      '--scope',
      'push:acme/*',
      '--scope',
      'pull:acme/*',
    ]);
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    const pub = home();
    const cli = async (args: string[], code = 0) => {
      const r = await pub.run(args, { env: tls() });
      cliOutput.push(r.stderr);
      expect(r.code, r.stderr).toBe(code);
    };
    await cli(['init', gun, '--token', token]);
    await cli(['add', gun, 'v1', '--digest', SHA, '--length', '1', '--token', token]);
    await cli(['publish', gun, '--token', token]);
    await cli(['verify', gun, 'v1', '--digest', SHA, '--token', token]);
    const forged = `${token.slice(0, -4)}AAAA`;
    await cli(['list', gun, '--token', forged], 3);
    expect((await serverCommand(['token', 'revoke', 'secrets'])).code).toBe(0);
    await cli(['list', gun, '--token', token], 3);

    // The server's online private keys, as stored: decrypted here with the master key.
    const password = readFileSync(join(dataDir, 'pg.password'), 'utf8').trim();
    const port = Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[3]);
    const db = new pg.Client({
      connectionString: `postgres://tufa:${encodeURIComponent(password)}@127.0.0.1:${port}/tufa`,
    });
    await db.connect();
    const rows = (
      await db.query<{ id: string; role: string; keyid: string; private_key: Buffer }>(
        `SELECT c.id::text AS id, k.role, k.keyid, k.private_key FROM online_keys k
         JOIN collections c ON c.id = k.collection_id WHERE c.gun = $1`,
        [gun],
      )
    ).rows;
    await db.end();
    expect(rows.map((r) => r.role).sort()).toEqual(['snapshot', 'timestamp']);
    const master = parseMasterKey(MASTER_KEY, 'test');
    const seeds = rows.map((r) => decryptSecret(master, r.private_key, keyAad(r.id, r.role, r.keyid)));

    const logs = `${server.output().slice(logStart)}\n${adminOutput.slice(adminStart).join('\n')}\n${cliOutput.join('\n')}`;
    expect(logs).toContain('"req_id"'); // the server logged this run's requests
    expect(logs).toMatch(/UNAUTHORIZED/); // and the refusals
    for (const t of [token, forged]) {
      expect(logs).not.toContain(t);
      expect(logs).not.toContain(t.slice(-43));
    }
    for (const seed of seeds) {
      expect(seed.length).toBe(32);
      for (const text of [seed.toString('hex'), seed.toString('base64'), seed.toString('base64url')]) {
        expect(logs).not.toContain(text.slice(0, 24));
      }
    }
    for (const key of privateKeyTexts(certs)) {
      for (let i = 0; i + 40 <= key.length; i += 40) expect(logs).not.toContain(key.slice(i, i + 40));
    }
    expect(logs).not.toMatch(/PRIVATE KEY|Bearer tufa_/);
    expect(logs).not.toContain(MASTER_KEY);
  });
});
