/**
 * Test support for the server: temp folders, a server started in-process or as a child process
 * (on the sources, with an optional fake clock), and the PostgreSQL and process helpers beside it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { type RunningServer, type ServerConfig, type StartOptions, startServer } from '@tufa/server';
import { pino } from 'pino';
import { afterAll } from 'vitest';
import { DAY } from './constants.js';

export { makeCertificates, privateKeyTexts, type TestCertificates } from './certificates.js';
export { startTestPostgres, type TestPostgres, testPostgresBinaries } from './postgres.js';
export { SOFTHSM_MODULE, softhsmToken } from './softhsm.js';

import { REPO, serverArgs } from './process.js';

export { type ProcessResult, REPO, runProcess, serverArgs, sourceArgs } from './process.js';
export const MASTER_KEY = 'ab'.repeat(32);

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
 * The environment that loads fake-clock.mjs (beside this file) into a child process: its clock runs `offsetMs`
 * ahead, and each SIGUSR2 (ServerProcess.advanceClock) moves it `stepMs` further.
 */
export function fakeClockEnv(options: { offsetMs?: number; stepMs?: number }): Record<string, string> {
  return {
    NODE_OPTIONS: `--import=${pathToFileURL(join(import.meta.dirname, 'fake-clock.mjs')).href}`,
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
    serverArgs(
      '--port',
      '0',
      ...(options.accessControl === true ? [] : ['--allow-anonymous-writes']),
      ...args,
    ),
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

export async function waitFor(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(50);
  }
}
