/**
 * Recovery without a restart (issue 17): the embedded PostgreSQL killed with -9 is started again
 * and the server reconnects; an external PostgreSQL stopped and started under a stream of
 * publishes is survived. While the database is away, requests get 503 (retry), never 500, and
 * no acknowledged publish is lost.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { RunningServer } from '@tufa/server';
import { sign } from '@tufa/testing';
import { gunUrl, keys, post, publishNew, targetsV } from '@tufa/testing/publisher';
import {
  spawnServer,
  startTestPostgres,
  startTestServer,
  type TestPostgres,
  tempDir,
  waitFor,
} from '@tufa/testing/server';
import { afterAll, describe, expect, it } from 'vitest';

const servers: RunningServer[] = [];
let pgs: TestPostgres | undefined;
afterAll(async () => {
  for (const s of servers) await s.close();
  await pgs?.stop();
});

const healthy = async (server: RunningServer) => (await fetch(`${server.url}/_health`)).status === 200;

/**
 * Publishes targets v2, v3, … one after the other while `fault` runs, each retried until it is
 * acknowledged; every answer's status is recorded. Stops `after` versions past the fault's end.
 */
async function publishStream(server: RunningServer, gun: string, fault: () => Promise<void>, after = 3) {
  const statuses: number[] = [];
  const acknowledged: number[] = [];
  let faultDone = false;
  let version = 2;
  let extra = 0;
  const faulting = fault().finally(() => {
    faultDone = true;
  });
  while (!faultDone || extra < after) {
    const res = await post(server.url, gun, {
      targets: sign(targetsV(version, { [`app/v${version}`]: `${version}` }), keys.targets),
    });
    statuses.push(res.status);
    if (res.status === 200) {
      acknowledged.push(version);
      version++;
      if (faultDone) extra++;
    } else {
      await new Promise((resolve) => setTimeout(resolve, 50)); // not a bound: only spares the loop
    }
  }
  await faulting;
  return { statuses, acknowledged };
}

/** Every acknowledged version is served, and the latest is the last one acknowledged: nothing lost, no gap. */
async function expectAllPresent(server: RunningServer, gun: string, acknowledged: number[]) {
  for (const v of acknowledged) {
    expect((await fetch(gunUrl(server.url, gun, `${v}.targets.json`))).status, `targets v${v}`).toBe(200);
  }
  const latest = (await (await fetch(gunUrl(server.url, gun, 'targets.json'))).json()) as {
    signed: { version: number };
  };
  expect(latest.signed.version).toBe(acknowledged.at(-1));
}

describe('the database goes away and comes back', () => {
  it('embedded: a kill -9 of its PostgreSQL is followed by a new one; the server reconnects and publishes again', {
    timeout: 90_000,
  }, async () => {
    const dataDir = tempDir('tufa-recovery-');
    const server = await startTestServer({ databaseUrl: undefined, dataDir });
    servers.push(server);
    const gun = 'acme/embedded';
    await publishNew(server.url, gun);
    const postmaster = () =>
      Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const first = postmaster();
    const { statuses, acknowledged } = await publishStream(server, gun, async () => {
      process.kill(first, 'SIGKILL');
      await waitFor(async () => (await fetch(`${server.url}/_health`)).status === 503);
      await waitFor(() => healthy(server), 30_000);
    });
    expect(postmaster()).not.toBe(first);
    // Refused while it was away (503, retry), never a 500.
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(acknowledged.length).toBeGreaterThanOrEqual(3);
    await expectAllPresent(server, gun, acknowledged);
  });

  it('external: a PostgreSQL stopped and started under a stream of publishes is survived', {
    timeout: 90_000,
  }, async () => {
    pgs = await startTestPostgres();
    const server = await startTestServer({ databaseUrl: await pgs.createDatabase() });
    servers.push(server);
    const gun = 'acme/external';
    await publishNew(server.url, gun);
    const { statuses, acknowledged } = await publishStream(server, gun, () =>
      pgs!.restart({
        // While it is down, the server says so: health 503, and a publish 503 with Retry-After.
        down: async () => {
          expect((await fetch(`${server.url}/_health`)).status).toBe(503);
          const res = await fetch(gunUrl(server.url, gun), {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ targets: {} }),
          });
          expect([res.status, res.headers.get('retry-after')]).toEqual([503, '1']);
          expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NETWORK');
        },
      }),
    );
    await waitFor(() => healthy(server), 30_000);
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(acknowledged.length).toBeGreaterThanOrEqual(3);
    await expectAllPresent(server, gun, acknowledged);
  });
});

describe('when the embedded PostgreSQL cannot come back', () => {
  it('tufa-server stops and exits 3 (NETWORK), for a supervisor to restart it', {
    timeout: 120_000,
  }, async () => {
    const dataDir = tempDir('tufa-recovery-fatal-');
    const server = await spawnServer(['--data-dir', dataDir]);
    const exited = new Promise<number | null>((done) => server.child.once('exit', (code) => done(code)));
    const lines = readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n');
    const [pid, port] = [Number(lines[0]), Number(lines[3])];
    // Its port taken as soon as it is free: every attempt to start it again fails to bind.
    let squatter: Server | undefined;
    process.kill(pid, 'SIGKILL');
    // Tried every few ms (a new PostgreSQL takes far longer to bind): not a bound on anything.
    for (let tries = 0; squatter === undefined && tries < 2000; tries++) {
      const s = createServer();
      const bound = await new Promise<boolean>((done) => {
        s.once('error', () => done(false));
        s.listen(port, '127.0.0.1', () => done(true));
      });
      if (bound) squatter = s;
      else await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect(squatter).toBeDefined();
    try {
      expect(await exited).toBe(3);
      expect(server.output()).toMatch(
        /tufa-server: NETWORK: the embedded PostgreSQL in .* could not be started again/,
      );
    } finally {
      squatter?.close();
    }
  });
});
