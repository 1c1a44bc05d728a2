/** End-to-end support: the built `tufa` binary as a child process, fresh TUFA_HOMEs, a real server. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  fakeClockEnv,
  MASTER_KEY,
  type ProcessResult,
  REPO,
  runProcess,
  type ServerProcess,
  serverArgs,
  spawnServer,
  startTestPostgres,
  type TestPostgres,
} from '@tufa/testing/server';

const BIN = join(REPO, 'packages/cli/dist/bundle/tufa.js');

export type RunResult = ProcessResult;

export const PASSPHRASES = {
  TUFA_ROOT_PASSPHRASE: 'root pass',
  TUFA_TARGETS_PASSPHRASE: 'targets pass',
  TUFA_SNAPSHOT_PASSPHRASE: 'snapshot pass',
  TUFA_DELEGATION_PASSPHRASE: 'delegation pass',
};

/** A TUFA_HOME and a way to run `tufa` in it. */
export class Home {
  readonly dir = mkdtempSync(join(tmpdir(), 'tufa-home-'));
  constructor(
    public server: string,
    readonly env: Record<string, string> = PASSPHRASES,
  ) {}

  run(
    args: string[],
    options: { input?: string | Buffer; env?: Record<string, string | undefined> } = {},
  ): Promise<RunResult> {
    // Nothing from the test runner's environment leaks in but PATH and HOME.
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: this.dir,
      TUFA_HOME: this.dir,
      TUFA_SERVER: this.server,
    };
    for (const [k, v] of Object.entries({ ...this.env, ...options.env })) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    return runProcess(process.execPath, [BIN, ...args], { env, input: options.input ?? '' });
  }

  /** Runs and insists on exit 0, returning stdout. */
  async ok(
    args: string[],
    options: { input?: string | Buffer; env?: Record<string, string | undefined> } = {},
  ): Promise<string> {
    const r = await this.run(args, options);
    if (r.code !== 0) throw new Error(`tufa ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  async json<T = any>(
    args: string[],
    options: { input?: string; env?: Record<string, string | undefined> } = {},
  ): Promise<T> {
    return JSON.parse(await this.ok([...args, '--json'], options)) as T;
  }

  /** A key made here for `role`, exported as a public key file in this home; its key id and file. */
  async newKeyFile(role: string): Promise<{ keyid: string; file: string }> {
    const key = await this.json(['key', 'generate', '--role', role]);
    const file = join(this.dir, `${key.keyid.slice(0, 12)}.pub`);
    writeFileSync(file, await this.ok(['key', 'export', key.keyid]));
    return { keyid: key.keyid, file };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export type Backend = 'embedded' | 'postgres';

/** A tufa-server process on the embedded database or on a separate PostgreSQL. */
export interface Backend_ {
  server: ServerProcess;
  dataDir: string;
  /** A token with push and delete on every collection (access control is on). */
  token: string;
  stop(): Promise<void>;
}

/**
 * Starts tufa-server with access control on (writes need a token, reads are anonymous) and makes a
 * token with `tufa-server token create`, as an operator would.
 */
export async function startBackend(
  backend: Backend,
  /** `clockStepMs`: the server runs on @tufa/testing's fake clock; `server.advanceClock()` moves it that far. */
  options: { clockStepMs?: number } = {},
): Promise<Backend_> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tufa-srv-'));
  let pg: TestPostgres | undefined;
  const args = ['--data-dir', dataDir];
  if (backend === 'postgres') {
    pg = await startTestPostgres();
    args.push('--database-url', await pg.createDatabase());
  }
  const clock = options.clockStepMs === undefined ? {} : fakeClockEnv({ stepMs: options.clockStepMs });
  const server = await spawnServer(args, { TUFA_LOG_LEVEL: 'info', ...clock }, { accessControl: true });
  const token = await serverCommand([
    'token',
    'create',
    '--name',
    'e2e',
    '--scope',
    'push:*',
    '--scope',
    'delete:*',
    ...args,
  ]);
  return {
    server,
    dataDir,
    token: token.trim(),
    async stop() {
      await server.stop();
      await pg?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs `tufa-server ARGS` (from the sources) to completion; its stdout. */
export async function serverCommand(args: string[]): Promise<string> {
  const r = await runProcess(process.execPath, serverArgs(...args), {
    cwd: REPO,
    env: { ...(process.env as Record<string, string>), TUFA_MASTER_KEY: MASTER_KEY },
  });
  if (r.code !== 0) throw new Error(`tufa-server ${args.join(' ')} exited ${r.code}\n${r.stderr}`);
  return r.stdout;
}
