/** Concurrent writers on one collection: one winner per version, no gaps, nothing partial. */
import { utf8Encode } from '@tufa/core';
import { type RunningServer, Store } from '@tufa/server';
import { DAY, sign, testCrypto } from '@tufa/testing';
import { keys, post, publishNew, targetsV } from '@tufa/testing/publisher';
import { startTestPostgres, startTestServer, type TestPostgres } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let pgServer: TestPostgres;
let server: RunningServer;
beforeAll(async () => {
  pgServer = await startTestPostgres();
  server = await startTestServer({ databaseUrl: await pgServer.createDatabase(), poolSize: 20 });
});
afterAll(async () => {
  await server?.close();
  await pgServer?.stop();
});

async function versionsOf(gun: string): Promise<Record<string, number[]>> {
  const r = await server.store.pool.query<{ role: string; version: number }>(
    `SELECT role, version FROM metadata WHERE collection_id = (SELECT id FROM collections WHERE gun = $1)
     ORDER BY role, version`,
    [gun],
  );
  const out: Record<string, number[]> = {};
  for (const row of r.rows) out[row.role] = [...(out[row.role] ?? []), row.version];
  return out;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('publish race', () => {
  it('50 concurrent POSTs of the next version: exactly one is accepted, the others get 409', async () => {
    const gun = 'example.com/race';
    await publishNew(server.url, gun);
    const results = await Promise.all(
      range(1, 50).map((i) =>
        post(server.url, gun, { targets: sign(targetsV(2, { [`app/${i}`]: `content ${i}` }), keys.targets) }),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(49);
    for (const r of results.filter((x) => x.status === 409)) {
      expect(r.json.error.code).toBe('ROLLBACK');
      expect(r.json.error.details.current.targets).toBe(2);
    }
    expect(await versionsOf(gun)).toEqual({
      root: [1],
      targets: [1, 2],
      snapshot: [1, 2],
      timestamp: [1, 2],
    });
  });

  it('25 writers that retry on 409 publish 25 consecutive versions with no gap', async () => {
    const gun = 'example.com/race-retry';
    await publishNew(server.url, gun);
    let conflicts = 0;
    const writer = async (i: number) => {
      for (;;) {
        const latest = await fetch(`${server.url}/v2/${gun}/_trust/tuf/targets.json`);
        const version = ((await latest.json()) as { signed: { version: number } }).signed.version;
        const res = await post(server.url, gun, {
          targets: sign(targetsV(version + 1, { [`app/${i}`]: `writer ${i}` }), keys.targets),
        });
        if (res.status === 200) return version + 1;
        expect(res.status).toBe(409);
        // Lost the race: the version was published first (ROLLBACK), or the lock was not had in time.
        expect(['ROLLBACK', 'CONFLICT']).toContain(res.json.error.code);
        conflicts++;
      }
    };
    const won = await Promise.all(range(1, 25).map(writer));
    expect([...won].sort((a, b) => a - b)).toEqual(range(2, 26));
    expect(conflicts).toBeGreaterThan(0);
    const versions = await versionsOf(gun);
    expect(versions.targets).toEqual(range(1, 26));
    expect(versions.snapshot).toEqual(range(1, 26));
    expect(versions.timestamp).toEqual(range(1, 26));
    const feed = await server.store.changes({ gun, after: '0', limit: 1000 });
    expect(feed.map((c) => c.version)).toEqual(range(1, 26));
  });
});

describe('the collection lock', () => {
  it('a publish that cannot get the lock within lock_timeout is CONFLICT, and nothing is written', async () => {
    const gun = 'example.com/locked';
    await publishNew(server.url, gun);
    const before = await versionsOf(gun);
    // A store like the server's, with a short lock_timeout (set per transaction by the lock query).
    const store = new Store({
      crypto: testCrypto,
      pool: server.store.pool,
      masterKey: Buffer.alloc(32),
      timestampExpiry: DAY,
      snapshotExpiry: DAY,
      lockTimeout: 200,
    });
    const holder = await server.store.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(id) FROM collections WHERE gun = $1', [gun]);
      const uploads = new Map([['targets', utf8Encode(JSON.stringify(sign(targetsV(2), keys.targets)))]]);
      await expect(store.publish(gun, uploads)).rejects.toMatchObject({ code: 'CONFLICT' });
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    expect(await versionsOf(gun)).toEqual(before);
  });
});
