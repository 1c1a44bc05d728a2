/** A throwaway PostgreSQL for tests and the bench: Debian's binaries where installed, else the embedded package's. */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  binariesIn,
  embeddedBinaries,
  type PostgresBinaries,
  type RunningPostgres,
  startPostgres,
} from '@tufa/server';
import pg from 'pg';

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
  /** The cluster running now (a new one after `restart`). */
  readonly postgres: RunningPostgres;
  /** Stops the cluster (fast shutdown: every connection is cut) and starts it again on the same folder and port. */
  restart(options?: { down?: () => Promise<void> }): Promise<void>;
  /** A new empty database; its URL. */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
}

let dbCounter = 0;

/** Debian's binaries where installed, else the embedded package's. */
export async function testPostgresBinaries(): Promise<PostgresBinaries> {
  const debian = debianPostgres();
  return debian === undefined ? embeddedBinaries() : binariesIn(debian);
}

/** A PostgreSQL separate from the server under test, on a free loopback port in a temp folder. */
export async function startTestPostgres(): Promise<TestPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'tufa-pg-'));
  const binaries = await testPostgresBinaries();
  const cluster = {
    binaries,
    dataDir: join(dir, 'data'),
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
  };
  let postgres = await startPostgres(cluster);
  const admin = new pg.Pool({ connectionString: postgres.url, max: 2 });
  admin.on('error', () => {}); // a connection ended by the shutdown at the end is not a failure
  return {
    get postgres() {
      return postgres;
    },
    async restart(options = {}) {
      const port = postgres.port;
      await postgres.stop();
      // While it is down: what the caller wants to happen (requests that must fail and recover).
      await options.down?.();
      postgres = await startPostgres({ ...cluster, port });
    },
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
