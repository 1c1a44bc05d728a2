/**
 * Test support for the server: a throwaway PostgreSQL (Debian's binaries as the postgres user,
 * or the embedded package's), databases per test, a server started in-process or as a child
 * process, and a publisher that signs collections with deterministic keys through core.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import {
  type Ed25519KeyPair,
  ed25519Signer,
  expiresIn,
  generateEd25519Key,
  type Key,
  type Metadata,
  newRoot,
  newTargets,
  type Root,
  type Signed,
  type Signer,
  serializeMetadata,
  signMetadata,
  type Targets,
  targetFileFor,
  utf8Encode,
  withDelegation,
  withTarget,
} from '@tufa/core';
import {
  binariesIn,
  embeddedBinaries,
  type PostgresBinaries,
  type RunningPostgres,
  type RunningServer,
  type ServerConfig,
  type StartOptions,
  startPostgres,
  startServer,
} from '@tufa/server';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll } from 'vitest';

export const REPO = resolve(import.meta.dirname, '../..');
export const DAY = 24 * 3600 * 1000;
export const MASTER_KEY = 'ab'.repeat(32);
/** Debian's PostgreSQL binaries (15 on bookworm), newest version first. */
function debianPostgres(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

export interface TestPostgres {
  readonly postgres: RunningPostgres;
  /** A new empty database; its URL. */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
}

let dbCounter = 0;

/** A PostgreSQL separate from the server under test, on a free loopback port in a temp folder. */
/** Debian's binaries where installed, else the embedded package's. */
export async function testPostgresBinaries(): Promise<PostgresBinaries> {
  const debian = debianPostgres();
  return debian === undefined ? embeddedBinaries() : binariesIn(debian);
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'tufa-pg-'));
  const binaries = await testPostgresBinaries();
  const postgres = await startPostgres({
    binaries,
    dataDir: join(dir, 'data'),
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
  });
  const admin = new pg.Pool({ connectionString: postgres.url, max: 2 });
  admin.on('error', () => {}); // a connection ended by the shutdown at the end is not a failure
  return {
    postgres,
    async createDatabase() {
      const name = `t${process.pid}_${++dbCounter}`;
      await admin.query(`CREATE DATABASE ${name}`);
      return postgres.url.replace(/\/postgres$/, `/${name}`);
    },
    async stop() {
      await admin.end();
      await postgres.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const tempDirs: string[] = [];
// Registered in the importing test file: runs after its own afterAll hooks have stopped the servers.
afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A temp folder, removed when the test process exits (embedded data folders are ~40 MB). */
export function tempDir(prefix = 'tufa-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function testConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return {
    host: '127.0.0.1',
    port: 0,
    databaseUrl: undefined,
    dataDir: './tufa-data',
    masterKey: MASTER_KEY,
    masterKeyFile: undefined,
    logLevel: 'silent',
    bodyLimit: 1024 * 1024,
    requestTimeout: 30_000,
    poolSize: 10,
    timestampExpiry: 14 * DAY,
    snapshotExpiry: 365 * DAY,
    resignInterval: 0,
    resignFraction: 1 / 3,
    shutdownTimeout: 5_000,
    migrationsDir: undefined,
    // The suites that test the API itself run without tokens; access.test.ts turns this off.
    allowAnonymousWrites: true,
    ...overrides,
  };
}

export async function startTestServer(
  overrides: Partial<ServerConfig>,
  options: StartOptions = {},
): Promise<RunningServer> {
  return startServer(testConfig(overrides), { logger: pino({ level: 'silent' }), ...options });
}

/**
 * The environment that loads test/fake-clock.mjs into a child process: its clock runs `offsetMs`
 * ahead, and each SIGUSR2 (ServerProcess.advanceClock) moves it `stepMs` further.
 */
export function fakeClockEnv(options: { offsetMs?: number; stepMs?: number }): Record<string, string> {
  return {
    NODE_OPTIONS: `--import=${pathToFileURL(join(REPO, 'test/fake-clock.mjs')).href}`,
    TUFA_TEST_CLOCK_OFFSET_MS: String(options.offsetMs ?? 0),
    TUFA_TEST_CLOCK_STEP_MS: String(options.stepMs ?? 0),
  };
}

/** A server as a child process (`node --import tsx` on the sources), for kill -9 and multi-process tests. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** With fakeClockEnv: moves the server's clock one step and waits until it says so. */
  advanceClock(): Promise<void>;
  kill9(): Promise<void>;
}

export async function spawnServer(
  args: string[],
  env: Record<string, string> = {},
  /** `accessControl: true`: no --allow-anonymous-writes (the default keeps older suites token-free). */
  options: { accessControl?: boolean } = {},
): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=tufa-source',
      '--import',
      'tsx',
      join(REPO, 'packages/server/src/bin.ts'),
      '--port',
      '0',
      ...(options.accessControl === true ? [] : ['--allow-anonymous-writes']),
      ...args,
    ],
    {
      cwd: REPO,
      env: { ...process.env, TUFA_MASTER_KEY: MASTER_KEY, TUFA_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const url = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`server did not start:\n${out}`)), 30_000);
    const check = () => {
      const m = /"url":"(https?:\/\/127\.0\.0\.1:\d+)"/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        done(m[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', () => {
      clearTimeout(timer);
      fail(new Error(`server exited during start:\n${out}`));
    });
  });
  return {
    child,
    url,
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    async advanceClock() {
      const seen = (out.match(/^test clock: /gm) ?? []).length;
      child.kill('SIGUSR2');
      await waitFor(() => (out.match(/^test clock: /gm) ?? []).length > seen);
    },
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Publishing

export function keyPair(n: number): Ed25519KeyPair & { signer: Signer } {
  const seed = new Uint8Array(32);
  seed[0] = n & 0xff;
  seed[1] = (n >> 8) & 0xff;
  seed[31] = 0x77;
  const pair = generateEd25519Key(seed);
  return { ...pair, signer: ed25519Signer(pair.privateKey) };
}

export const keys = { root: keyPair(1), targets: keyPair(2), releases: keyPair(3), other: keyPair(4) };

export function sign<T extends Signed>(signed: T, ...signers: { signer: Signer }[]): Metadata<T> {
  return signMetadata(
    signed,
    signers.map((s) => s.signer),
  );
}

export function gunUrl(base: string, gun: string, file = ''): string {
  return `${base}/v2/${gun}/_trust/tuf/${file}`;
}

export async function onlineKey(base: string, gun: string, role: 'timestamp' | 'snapshot'): Promise<Key> {
  const res = await fetch(gunUrl(base, gun, `${role}.key`));
  if (res.status !== 200) throw new Error(`GET ${role}.key: ${res.status} ${await res.text()}`);
  const json = (await res.json()) as { keytype: string; scheme: string; keyval: { public: string } };
  return { keytype: json.keytype, scheme: json.scheme, keyval: { public: json.keyval.public }, extra: {} };
}

export async function rootFor(base: string, gun: string, options: { version?: number } = {}): Promise<Root> {
  return newRoot({
    version: options.version ?? 1,
    expires: expiresIn(Date.now(), 365 * DAY),
    roles: {
      root: { keys: [keys.root.key] },
      targets: { keys: [keys.targets.key] },
      snapshot: { keys: [await onlineKey(base, gun, 'snapshot')] },
      timestamp: { keys: [await onlineKey(base, gun, 'timestamp')] },
    },
  });
}

export function targetsV(version: number, tags: Record<string, string> = {}, delegate = true): Targets {
  let t = newTargets({ version, expires: expiresIn(Date.now(), 90 * DAY) });
  for (const [tag, content] of Object.entries(tags))
    t = withTarget(t, tag, targetFileFor(utf8Encode(content)));
  if (delegate) t = withDelegation(t, { name: 'releases', keys: [keys.releases.key], paths: ['releases/*'] });
  return t;
}

export function body(docs: Record<string, Metadata | Uint8Array | string>): string {
  const parts = Object.entries(docs).map(([role, doc]) => {
    const text =
      typeof doc === 'string'
        ? doc
        : new TextDecoder().decode(doc instanceof Uint8Array ? doc : serializeMetadata(doc));
    return `${JSON.stringify(role)}:${text}`;
  });
  return `{${parts.join(',')}}`;
}

export async function post(base: string, gun: string, docs: Record<string, Metadata | Uint8Array | string>) {
  const res = await fetch(gunUrl(base, gun), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body(docs),
  });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

/** Keys fetched, root v1 and targets v1 published. */
export async function publishNew(
  base: string,
  gun: string,
  tags: Record<string, string> = { 'app/v1': 'v1' },
) {
  const root = sign(await rootFor(base, gun), keys.root);
  const targets = sign(targetsV(1, tags), keys.targets);
  const res = await post(base, gun, { root, targets });
  if (res.status !== 200) throw new Error(`publish ${gun}: ${res.status} ${JSON.stringify(res.json)}`);
  return { root, targets };
}

export async function waitFor(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(50);
  }
}
