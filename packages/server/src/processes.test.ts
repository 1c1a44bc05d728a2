/**
 * tufa-server as a process: the embedded default across restarts, SIGTERM with a request in
 * flight, kill -9 in the middle of a publish, two servers re-signing on one PostgreSQL (in-process, on one injected clock).
 */
import { spawn as spawnChild } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { bumpVersion, parseMetadata, serializeMetadata, TrustedMetadataSet } from '@tufa/core';
import { LOCKS } from '@tufa/server';
import { sign, testCrypto } from '@tufa/testing';
import { body, keys, post, publishNew, targetsV } from '@tufa/testing/publisher';
import {
  REPO,
  type ServerProcess,
  serverArgs,
  spawnServer,
  startTestPostgres,
  startTestServer,
  type TestPostgres,
  tempDir,
  waitFor,
} from '@tufa/testing/server';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let pgServer: TestPostgres;
const running: ServerProcess[] = [];
beforeAll(async () => {
  pgServer = await startTestPostgres();
});
afterAll(async () => {
  for (const p of running) if (p.child.exitCode === null) await p.kill9();
  await pgServer?.stop();
});

async function spawn(args: string[], env: Record<string, string> = {}) {
  const p = await spawnServer(args, env);
  running.push(p);
  return p;
}

const fetchBytes = async (url: string) => {
  const res = await fetch(url);
  expect(res.status, url).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
};

function parseTargetsVersion(bytes: Uint8Array): number {
  return parseMetadata('targets', bytes).signed.version;
}

/** The whole served chain verifies with core's client rules; returns the served versions. */
async function verifyServed(base: string, gun: string) {
  const url = (f: string) => `${base}/v2/${gun}/_trust/tuf/${f}`;
  const set = TrustedMetadataSet.fromTrustedRoot(await fetchBytes(url('1.root.json')), {
    crypto: testCrypto,
    now: Date.now(),
  });
  const timestamp = set.updateTimestamp(await fetchBytes(url('timestamp.json')));
  const snapshot = set.updateSnapshot(
    await fetchBytes(url(`${timestamp.signed.snapshotMeta.version}.snapshot.json`)),
  );
  const targets = set.updateTargets(
    await fetchBytes(url(`${snapshot.signed.meta['targets.json']!.version}.targets.json`)),
  );
  return {
    timestamp: timestamp.signed.version,
    snapshot: snapshot.signed.version,
    targets: targets.signed.version,
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the embedded default', () => {
  it('keeps its data across a SIGTERM restart and stops its PostgreSQL with it', async () => {
    const dataDir = tempDir();
    const first = await spawn(['--data-dir', dataDir], { TUFA_MASTER_KEY: '' });
    expect(first.output()).toContain('generated a master key');
    expect(statSync(join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
    const { targets } = await publishNew(first.url, 'example.com/restart');
    const pgPid = Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    expect(await first.stop()).toBe(0);
    expect(isAlive(pgPid)).toBe(false);
    expect(existsSync(join(dataDir, 'server.pid'))).toBe(false);

    const second = await spawn(['--data-dir', dataDir], { TUFA_MASTER_KEY: '' });
    expect(second.output()).not.toContain('generated a master key');
    const served = await fetchBytes(`${second.url}/v2/example.com/restart/_trust/tuf/targets.json`);
    expect(Buffer.from(served).equals(Buffer.from(serializeMetadata(targets)))).toBe(true);
    expect(await verifyServed(second.url, 'example.com/restart')).toEqual({
      timestamp: 1,
      snapshot: 1,
      targets: 1,
    });
    // the online keys still decrypt: a new publish is signed
    const res = await post(second.url, 'example.com/restart', { targets: sign(targetsV(2), keys.targets) });
    expect(res.status).toBe(200);
    expect(await second.stop()).toBe(0);
  });

  it('kill -9 in the middle of a publish leaves the previous state served, and nothing blocks the next start', async () => {
    const dataDir = tempDir();
    const gun = 'example.com/killed';
    const first = await spawn(['--data-dir', dataDir]);
    await publishNew(first.url, gun);
    // Hold the changefeed lock: the publish then waits with all its rows written, uncommitted.
    const password = readFileSync(join(dataDir, 'pg.password'), 'utf8').trim();
    const port = readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8')
      .split('\n')[3]!
      .trim();
    const holder = new pg.Client({ connectionString: `postgres://tufa:${password}@127.0.0.1:${port}/tufa` });
    holder.on('error', () => {});
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock($1)', [LOCKS.changefeed]);
    const pending = post(first.url, gun, {
      targets: sign(targetsV(2, { 'app/v2': 'v2' }), keys.targets),
    }).catch((err: unknown) => err);
    await waitFor(async () => {
      const r = await holder.query(
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
      );
      return r.rows[0].n > 0;
    });
    await first.kill9();
    expect(await pending).toBeInstanceOf(Error);
    await holder.end().catch(() => {});

    const second = await spawn(['--data-dir', dataDir]);
    expect(await verifyServed(second.url, gun)).toEqual({ timestamp: 1, snapshot: 1, targets: 1 });
    const res = await post(second.url, gun, { targets: sign(targetsV(2), keys.targets) });
    expect(res.status).toBe(200);
    expect(await verifyServed(second.url, gun)).toEqual({ timestamp: 2, snapshot: 2, targets: 2 });
    expect(await second.stop()).toBe(0);
  });
});

describe('on PostgreSQL', () => {
  it('restarts with data intact; SIGTERM lets an in-flight request finish', async () => {
    const url = await pgServer.createDatabase();
    const first = await spawn(['--database-url', url]);
    await publishNew(first.url, 'example.com/pg-restart');
    // Start a POST, send half its body, SIGTERM, then the rest: the request still completes.
    const text = body({ targets: sign(targetsV(2), keys.targets) });
    const address = new URL(first.url);
    const answer = new Promise<{ status: number; text: string }>((done, fail) => {
      const req = request(
        {
          host: address.hostname,
          port: address.port,
          method: 'POST',
          path: '/v2/example.com/pg-restart/_trust/tuf/',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        },
        (res) => {
          let out = '';
          res.on('data', (c) => {
            out += c;
          });
          res.on('end', () => done({ status: res.statusCode!, text: out }));
        },
      );
      req.on('error', fail);
      req.write(text.slice(0, 100));
      setTimeout(() => {
        first.child.kill('SIGTERM');
        setTimeout(() => req.end(text.slice(100)), 300);
      }, 100);
    });
    const result = await answer;
    expect(result.status, result.text).toBe(200);
    expect(await first.stop()).toBe(0);
    expect(first.output()).toContain('"msg":"stopped"');

    const second = await spawn(['--database-url', url]);
    expect(await verifyServed(second.url, 'example.com/pg-restart')).toEqual({
      timestamp: 2,
      snapshot: 2,
      targets: 2,
    });
    expect(await second.stop()).toBe(0);
  });

  it('`tufa-server migrate` applies the migrations and exits', async () => {
    const url = await pgServer.createDatabase();
    const run = () =>
      new Promise<{ code: number | null; out: string }>((done) => {
        const child = spawnChild(process.execPath, serverArgs('migrate', '--database-url', url), {
          cwd: REPO,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout!.on('data', (c) => {
          out += c;
        });
        child.stderr!.on('data', (c) => {
          out += c;
        });
        child.on('exit', (code) => done({ code, out }));
      });
    const first = await run();
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain('0001_collections.sql');
    const second = await run();
    expect(second.code).toBe(0);
    expect(second.out).toContain('"applied":[]');
  });

  it('two processes on one database: what one publishes or deletes, the other serves at once (no stale cache)', async () => {
    const url = await pgServer.createDatabase();
    const [a, b] = await Promise.all([spawn(['--database-url', url]), spawn(['--database-url', url])]);
    const gun = 'example.com/cached';
    const latest = async (base: string) => {
      const res = await fetch(`${base}/v2/${gun}/_trust/tuf/targets.json`);
      return res.status === 200 ? parseTargetsVersion(new Uint8Array(await res.arrayBuffer())) : res.status;
    };
    const { targets } = await publishNew(a.url, gun);
    expect(await latest(b.url)).toBe(1);
    expect(await latest(b.url)).toBe(1); // now from b's memory
    const v2 = sign(bumpVersion(targets.signed, targets.signed.expires), keys.targets);
    expect((await post(a.url, gun, { targets: v2 })).status).toBe(200);
    // b learns of the commit through NOTIFY: within moments, never a stale version for long.
    await waitFor(async () => (await latest(b.url)) === 2, 2_000);
    for (let i = 0; i < 20; i++) expect(await latest(b.url)).toBe(2);
    const deleted = await fetch(`${a.url}/v2/${gun}/_trust/tuf/`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);
    await waitFor(async () => (await latest(b.url)) === 404, 2_000);
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
  });

  it('two servers re-signing the same collections make no duplicate and skip no timestamp version', async () => {
    // Two servers with their own pools on one database, on one injected clock: PostgreSQL's
    // advisory locks decide, and time moves only when the test says.
    const url = await pgServer.createDatabase();
    let now = Date.now();
    const clock = () => now;
    const lifetime = 60_000; // expires is whole seconds: margins of seconds keep the steps exact
    const errors: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => errors.push(line) });
    const config = { databaseUrl: url, timestampExpiry: lifetime, resignFraction: 0.5, resignInterval: 0 };
    const [a, b] = await Promise.all([
      startTestServer(config, { clock, logger }),
      startTestServer(config, { clock, logger }),
    ]);
    const guns = ['example.com/r1', 'example.com/r2', 'example.com/r3', 'example.com/r4'];
    const steps: number[] = [now];
    try {
      for (const gun of guns) await publishNew(a.url, gun);
      for (let round = 0; round < 4; round++) {
        // 25 s after the newest timestamp: not yet in the last half of its lifetime, nobody re-signs.
        now += 25_000;
        expect(await Promise.all([a.resignOnce(), b.resignOnce()]), `round ${round}`).toEqual([0, 0]);
        // 31 s after it: due; each collection re-signed once, by one of the two.
        now += 6_000;
        steps.push(now);
        const [byA, byB] = await Promise.all([a.resignOnce(), b.resignOnce()]);
        expect(byA + byB, `round ${round}`).toBe(guns.length);
      }
    } finally {
      await a.close();
      await b.close();
    }
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    pool.on('error', () => {}); // the test cluster's shutdown may end an idle connection after end()
    try {
      for (const gun of guns) {
        const rows = (
          await pool.query<{ version: number; data: Buffer; created: string }>(
            `SELECT m.version, m.data, (extract(epoch FROM m.created_at) * 1000)::text AS created FROM metadata m
             JOIN collections c ON c.id = m.collection_id WHERE c.gun = $1 AND m.role = 'timestamp' ORDER BY m.version`,
            [gun],
          )
        ).rows;
        // Version 1 at publication, then exactly one version per round, each signed at that round's time.
        expect(
          rows.map((r) => r.version),
          gun,
        ).toEqual([1, 2, 3, 4, 5]);
        rows.forEach((row, i) => {
          const timestamp = parseMetadata('timestamp', new Uint8Array(row.data)).signed;
          expect(timestamp.version).toBe(i + 1);
          if (i > 0) expect(Math.round(Number(row.created))).toBe(steps[i]);
          const expires = Date.parse(timestamp.expires);
          expect(expires).toBeGreaterThan(steps[i]! + lifetime - 1000);
          expect(expires).toBeLessThanOrEqual(steps[i]! + lifetime);
        });
      }
    } finally {
      await pool.end();
    }
    expect(errors).toEqual([]);
  });
});
