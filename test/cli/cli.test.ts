/**
 * The `tufa` binary end to end against a real tufa-server process, on the embedded database and
 * on PostgreSQL: the stories of a publisher, a deploy script, key rotation, delegation, expiry and
 * failures.
 */
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fakeClockEnv } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, Home, PASSPHRASES, startBackend } from './harness.test-util.js';

const SHA_A = `sha256:${'a'.repeat(64)}`;

/** A port nothing listens on (a server that is down). */
function freePort(): Promise<number> {
  return new Promise<number>((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

describe.each<Backend>(['embedded', 'postgres'])('tufa CLI against tufa-server (%s)', (backend) => {
  let backendHandle: Awaited<ReturnType<typeof startBackend>>;
  let url: string;
  const homes: Home[] = [];
  // Publishers get the operator's token; readers (a deploy script) need none: reads are anonymous.
  const home = (env?: Record<string, string>) => {
    const h = new Home(url, env ?? { ...PASSPHRASES, TUFA_TOKEN: backendHandle.token });
    homes.push(h);
    return h;
  };

  beforeAll(async () => {
    backendHandle = await startBackend(backend);
    url = backendHandle.server.url;
  }, 120_000);

  afterAll(async () => {
    for (const h of homes) h.remove();
    await backendHandle?.stop();
  });

  it('publisher story: init, add by file, digest and stdin, publish, list, lookup, verify, remove', async () => {
    const pub = home();
    const gun = `example.com/${backend}/story`;
    const init = await pub.json(['init', gun]);
    expect(init.root.keyid).toMatch(/^[0-9a-f]{64}$/);
    expect(init.snapshot.serverManaged).toBe(true);
    const artifact = join(pub.dir, 'app.tar');
    writeFileSync(artifact, 'the artifact bytes');
    await pub.ok(['add', gun, 'v1', artifact]);
    await pub.ok([
      'add',
      gun,
      'v2',
      '--digest',
      SHA_A,
      '--length',
      '42',
      '--custom',
      '{"mediaType":"application/x-tar"}',
    ]);
    await pub.ok(['add', gun, 'v3', '-'], { input: 'from stdin' });
    const status = await pub.json(['status', gun]);
    expect(status.staged).toHaveLength(3);
    const published = await pub.json(['publish', gun]);
    expect(published.versions.targets).toBe(2);

    // A deploy script in another home, pinning the root key id.
    const deploy = home({});
    const pin = ['--root-key', init.root.keyid, '--no-tofu'];
    const listed = await deploy.json(['list', gun, ...pin]);
    expect(listed.map((t: { tag: string }) => t.tag)).toEqual(['v1', 'v2', 'v3']);
    expect(listed[1].custom).toEqual({ mediaType: 'application/x-tar' });
    const digest = (await deploy.ok(['lookup', gun, 'v1', ...pin])).trim();
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await deploy.run(['verify', gun, 'v1', '--digest', digest, ...pin])).code).toBe(0);
    const wrong = await deploy.run(['verify', gun, 'v1', '--digest', SHA_A, ...pin]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/HASH_MISMATCH/);
    expect((await deploy.run(['verify', gun, 'v1', '--file', artifact, ...pin])).code).toBe(0);
    writeFileSync(join(deploy.dir, 'tampered.tar'), 'the artifact bytez');
    const tampered = await deploy.run([
      'verify',
      gun,
      'v1',
      '--file',
      join(deploy.dir, 'tampered.tar'),
      ...pin,
    ]);
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toMatch(/HASH_MISMATCH/); // the same length as the artifact: only the hash differs
    expect((await deploy.run(['verify', gun, 'v3', '-', ...pin], { input: 'from stdin' })).code).toBe(0);
    const asJson = JSON.parse(
      (await deploy.run(['verify', gun, 'v1', '--digest', SHA_A, '--json', ...pin])).stdout,
    );
    expect(asJson.error.code).toBe('HASH_MISMATCH');

    await pub.ok(['remove', gun, 'v2']);
    await pub.ok(['publish', gun]);
    const gone = await deploy.run(['verify', gun, 'v2', '--digest', SHA_A, ...pin]);
    expect(gone.code).toBe(4);
    expect(gone.stderr).toMatch(/NOT_FOUND/);
    expect(gone.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('rotation: targets keeps every tag valid; root twice, and a client of root v1 follows to v3; snapshot to the server and back', async () => {
    const pub = home();
    const gun = `example.com/${backend}/rotation`;
    const init = await pub.json(['init', gun]);
    await pub.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '1']);
    await pub.ok(['publish', gun]);
    const client = home({});
    const pin = ['--root-key', init.root.keyid];
    expect((await client.run(['verify', gun, 'v1', '--digest', SHA_A, ...pin])).code).toBe(0); // trusts root v1

    const rotated = await pub.json(['key', 'rotate', gun, 'targets']);
    expect(rotated.versions.root).toBe(2);
    expect((await client.run(['verify', gun, 'v1', '--digest', SHA_A, ...pin])).code).toBe(0);

    const unconfirmed = await pub.run(['key', 'rotate', gun, 'root']); // no terminal, no --yes
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/needs --yes/);
    await pub.ok(['key', 'rotate', gun, 'root', '--yes']);
    const third = await pub.json(['key', 'rotate', gun, 'root', '--yes']);
    expect(third.versions.root).toBe(4);
    // The client still holds root v2 in its cache and follows the chain of rotations.
    expect((await client.run(['verify', gun, 'v1', '--digest', SHA_A, ...pin])).code).toBe(0);
    const fresh = home({}); // a new client pinned to the first root key id follows from 1.root.json as well
    expect((await fresh.run(['verify', gun, 'v1', '--digest', SHA_A, '--no-tofu', ...pin])).code).toBe(0);
    const stranger = home({}); // pinned to a key that never signed any root of this collection
    const refused = await stranger.run([
      'verify',
      gun,
      'v1',
      '--digest',
      SHA_A,
      '--no-tofu',
      '--root-key',
      'f'.repeat(64),
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/UNTRUSTED_ROOT/);

    const local = await pub.json(['key', 'rotate', gun, 'snapshot']);
    expect(local.serverManaged).toBe(false);
    await pub.ok(['add', gun, 'v2', '--digest', SHA_A, '--length', '2']);
    await pub.ok(['publish', gun]); // signs snapshot locally now
    expect((await client.run(['verify', gun, 'v2', '--digest', SHA_A, ...pin])).code).toBe(0);
    const server = await pub.json(['key', 'rotate', gun, 'snapshot', '--server-managed']);
    expect(server.serverManaged).toBe(true);
    await pub.ok(['add', gun, 'v3', '--digest', SHA_A, '--length', '3']);
    await pub.ok(['publish', gun]);
    expect((await client.run(['verify', gun, 'v3', '--digest', SHA_A, ...pin])).code).toBe(0);
    await pub.ok(['key', 'rotate', gun, 'timestamp']);
    expect((await client.run(['verify', gun, 'v3', '--digest', SHA_A, ...pin])).code).toBe(0);
  });

  it('delegation: a key from another home; its holder publishes inside the paths, the server refuses outside', async () => {
    const owner = home();
    const gun = `example.com/${backend}/delegation`;
    await owner.json(['init', gun]);
    const alice = home();
    const key = await alice.json(['key', 'generate', '--role', 'delegation']);
    const pubFile = join(alice.dir, 'alice.pub');
    writeFileSync(pubFile, await alice.ok(['key', 'export', key.keyid]));
    await owner.ok(['delegation', 'add', gun, 'releases', '--key', pubFile, '--paths', 'releases/*']);
    await owner.ok(['publish', gun]);
    const listed = await owner.json(['delegation', 'list', gun]);
    expect(listed).toMatchObject([
      { role: 'releases', delegator: 'targets', keyids: [key.keyid], published: false },
    ]);

    await alice.ok(['add', gun, 'releases/1.0', '--digest', SHA_A, '--length', '10', '--role', 'releases']);
    await alice.ok(['publish', gun]);
    const reader = home({});
    const found = await reader.json(['lookup', gun, 'releases/1.0']);
    expect(found.role).toBe('releases');

    // Refused as it is staged; staged offline (no trusted state to check it against), the server refuses it.
    const outside = ['add', gun, 'other/1.0', '--digest', SHA_A, '--length', '10', '--role', 'releases'];
    const early = await alice.run(outside);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/PATH_NOT_DELEGATED/);
    const offline = await alice.run([...outside, '--server', `http://127.0.0.1:${await freePort()}`]);
    expect(offline.code, offline.stderr).toBe(0);
    expect(offline.stderr).toMatch(/staged without checking it/);
    const refused = await alice.run(['publish', gun]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/PATH_NOT_DELEGATED/);
    expect((await reader.run(['lookup', gun, 'other/1.0'])).code).toBe(4);
    await alice.ok(['reset', gun]);
  });

  it('expiry: a targets role with a 10-minute lifetime expires, verify says EXPIRED, renew brings it back', async () => {
    const pub = home();
    const gun = `example.com/${backend}/expiry`;
    await pub.json(['init', gun]);
    await pub.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '1']);
    await pub.ok(['publish', gun, '--expires', '10m']);
    const reader = home({});
    // Fresh now; 11 minutes later (the reader's and the publisher's clocks moved, no sleep) it has expired.
    expect((await reader.run(['verify', gun, 'v1', '--digest', SHA_A])).code).toBe(0);
    const later = { env: fakeClockEnv({ offsetMs: 11 * 60_000 }) };
    const expired = await reader.run(['verify', gun, 'v1', '--digest', SHA_A], later);
    expect(expired.code).toBe(1);
    expect(expired.stderr).toMatch(/^tufa: EXPIRED: targets/m);
    // status exits 1 so that a cron job alerts; the document still comes.
    const expiredStatus = await pub.run(['status', gun, '--json'], later);
    expect(expiredStatus.code).toBe(1);
    const status = JSON.parse(expiredStatus.stdout);
    expect(status.warnings).toContain('targets: EXPIRED');
    expect(status.roles.find((r: { role: string }) => r.role === 'targets').state).toBe('expired');
    await pub.ok(['renew', gun]);
    expect((await reader.run(['verify', gun, 'v1', '--digest', SHA_A])).code).toBe(0);
  });

  it('failures: passphrases, a server that is down, a tampered cache, and two publishers racing', async () => {
    const gun = `example.com/${backend}/failures`;
    const pub = home();
    await pub.json(['init', gun]);
    await pub.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '1']);
    const wrong = await pub.run(['publish', gun], { env: { TUFA_TARGETS_PASSPHRASE: 'nope' } });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/WRONG_PASSPHRASE: wrong passphrase for targets key/);
    const none = await pub.run(['publish', gun], { env: { TUFA_TARGETS_PASSPHRASE: undefined } });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/PASSPHRASE_REQUIRED.*TUFA_TARGETS_PASSPHRASE/);
    expect((await pub.json(['status', gun])).staged).toHaveLength(1); // kept until a publish succeeds
    await pub.ok(['publish', gun]);

    const free = await freePort();
    const down = await pub.run(['lookup', gun, 'v1', '--server', `http://127.0.0.1:${free}`]);
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/NETWORK/);

    // A tampered cache: a clear error, then recovery on the next run.
    const reader = home({});
    await reader.ok(['lookup', gun, 'v1']);
    const cacheRoot = join(reader.dir, 'cache');
    const folder = join(cacheRoot, readdirSync(cacheRoot)[0]!);
    const targetsFile = readdirSync(folder).find((f) => f.includes('targets'))!;
    const original = readFileSync(join(folder, targetsFile), 'utf8');
    writeFileSync(join(folder, targetsFile), original.replace('"version":', '"version":9,"x":'));
    const broken = await reader.run(['lookup', gun, 'v1']);
    expect(broken.code).not.toBe(0);
    expect(broken.stderr).toMatch(/^tufa: [A-Z_]+: /m);
    expect((await reader.run(['lookup', gun, 'v1'])).code).toBe(0);

    // Two homes publish at once: one wins, the other refreshes, re-applies once and succeeds.
    const second = home();
    cpSync(join(pub.dir, 'private'), join(second.dir, 'private'), { recursive: true });
    cpSync(join(pub.dir, 'trust'), join(second.dir, 'trust'), { recursive: true });
    await pub.ok(['add', gun, 'race-a', '--digest', SHA_A, '--length', '1']);
    await second.ok(['add', gun, 'race-b', '--digest', SHA_A, '--length', '2']);
    const [a, b] = await Promise.all([pub.run(['publish', gun]), second.run(['publish', gun])]);
    expect([a.code, b.code], `${a.stderr}\n${b.stderr}`).toEqual([0, 0]);
    const tags = (await reader.json(['list', gun])).map((t: { tag: string }) => t.tag);
    expect(tags).toEqual(expect.arrayContaining(['race-a', 'race-b', 'v1']));
  });
});
