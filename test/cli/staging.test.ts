/**
 * Staged changes are checked when they are staged (issue 13, section 4): the `tufa` binary
 * against a real tufa-server process. Each change is checked against the trusted state (and the
 * changes staged before it); offline, it is staged unchecked and publish checks it.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, PASSPHRASES, startBackend } from './harness.test-util.js';

const SHA_A = `sha256:${'a'.repeat(64)}`;
const SHA_B = `sha256:${'b'.repeat(64)}`;
const SHA_C = `sha256:${'c'.repeat(64)}`;

function freePort(): Promise<number> {
  return new Promise<number>((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

describe('staged changes checked against the trusted state', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  const homes: Home[] = [];
  const home = () => {
    const h = new Home(backend.server.url, { ...PASSPHRASES, TUFA_TOKEN: backend.token });
    homes.push(h);
    return h;
  };
  const staged = async (h: Home, gun: string) => (await h.json(['status', gun])).staged;

  beforeAll(async () => {
    backend = await startBackend('embedded');
  }, 120_000);

  afterAll(async () => {
    for (const h of homes) h.remove();
    await backend?.stop();
  });

  it('remove of a tag that is not published: NOT_FOUND at once, nothing staged; of a tag only staged: drops it', async () => {
    const gun = 'example.com/staging/remove';
    const pub = home();
    await pub.json(['init', gun]);
    const refused = await pub.run(['remove', gun, 'nosuchtag']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/^tufa: NOT_FOUND: nosuchtag is not a published target of targets/m);
    expect(await staged(pub, gun)).toEqual([]);
    await pub.ok(['add', gun, 'draft', '--digest', SHA_A, '--length', '1']);
    const dropped = await pub.json(['remove', gun, 'draft']);
    expect(dropped).toMatchObject({ staged: null, dropped: 'add' });
    expect(await staged(pub, gun)).toEqual([]);
  });

  it('add into a delegated role outside its paths: PATH_NOT_DELEGATED at once; into an undelegated role: NOT_FOUND', async () => {
    const gun = 'example.com/staging/paths';
    const owner = home();
    await owner.json(['init', gun]);
    const key = await owner.json(['key', 'generate', '--role', 'delegation']);
    const pubFile = join(owner.dir, 'releases.pub');
    writeFileSync(pubFile, await owner.ok(['key', 'export', key.keyid]));
    const outside = ['--digest', SHA_A, '--length', '1', '--role', 'releases'];
    const undelegated = await owner.run(['add', gun, 'releases/1.0', ...outside]);
    expect(undelegated.code).toBe(4);
    expect(undelegated.stderr).toMatch(/releases: no trusted role delegates it/);

    await owner.ok(['delegation', 'add', gun, 'releases', '--key', pubFile, '--paths', 'releases/*']);
    const stagedOnly = await owner.run(['add', gun, 'releases/1.0', ...outside]);
    expect(stagedOnly.code).toBe(4);
    expect(stagedOnly.stderr).toMatch(/only a staged change delegates it; publish the delegation first/);
    await owner.ok(['publish', gun]);

    const trusted = await owner.run(['add', gun, 'notreleases/1.0', ...outside, '--json']);
    expect(trusted.code).toBe(1);
    expect(JSON.parse(trusted.stdout).error).toMatchObject({
      code: 'PATH_NOT_DELEGATED',
      role: 'releases',
      expected: ['releases/*'],
      found: 'notreleases/1.0',
    });
    expect(await staged(owner, gun)).toEqual([]);
    await owner.ok(['add', gun, 'releases/1.0', ...outside]);
    await owner.ok(['publish', gun]);
    expect((await owner.json(['lookup', gun, 'releases/1.0'])).role).toBe('releases');
  });

  it('a tag added twice is one staged change; re-pointing a published tag warns; status shows old → new', async () => {
    const gun = 'example.com/staging/twice';
    const pub = home();
    await pub.json(['init', gun]);
    await pub.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '1']);
    await pub.ok(['publish', gun]);

    const first = await pub.run(['add', gun, 'v1', '--digest', SHA_B, '--length', '2']);
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(
      new RegExp(`warning: v1 is published as ${SHA_A} \\(1 bytes\\): publishing re-points it to ${SHA_B}`),
    );
    const second = await pub.json(['add', gun, 'v1', '--digest', SHA_C, '--length', '3']);
    expect(second).toMatchObject({
      replaced: 'add',
      previous: { digest: SHA_A, length: 1 },
      digest: SHA_C,
      checked: true,
    });
    expect(second.notes[0]).toMatch(/replaces the staged add of v1/);
    await pub.ok(['add', gun, 'v2', '--digest', SHA_B, '--length', '2']);

    expect(await staged(pub, gun)).toEqual([
      {
        op: 'add',
        role: 'targets',
        path: 'v1',
        previous: { digest: SHA_A, length: 1 },
        digest: SHA_C,
        length: 3,
      },
      { op: 'add', role: 'targets', path: 'v2', previous: null, digest: SHA_B, length: 2 },
    ]);
    const human = await pub.ok(['status', gun]);
    expect(human).toContain(`add v1 (targets): ${SHA_A} → ${SHA_C}`);
    expect(human).toContain(`add v2 (targets): (new) → ${SHA_B}`);

    await pub.ok(['publish', gun]);
    expect((await pub.ok(['lookup', gun, 'v1'])).trim()).toBe(SHA_C);
  });

  it('reset GUN TAG drops the change of one tag; a tag with none is NOT_FOUND', async () => {
    const gun = 'example.com/staging/reset';
    const pub = home();
    await pub.json(['init', gun]);
    await pub.ok(['add', gun, 'keep', '--digest', SHA_A, '--length', '1']);
    await pub.ok(['add', gun, 'drop', '--digest', SHA_B, '--length', '2']);
    const dropped = await pub.json(['reset', gun, 'drop']);
    expect(dropped).toMatchObject({ tag: 'drop', dropped: 1 });
    expect((await staged(pub, gun)).map((c: { path: string }) => c.path)).toEqual(['keep']);
    const none = await pub.run(['reset', gun, 'drop']);
    expect(none.code).toBe(4);
    expect(none.stderr).toMatch(/^tufa: NOT_FOUND: no staged change of drop/m);
  });

  it('offline (the server cannot be reached): staged unchecked with a note; publish checks it', async () => {
    const gun = 'example.com/staging/offline';
    const pub = home();
    await pub.json(['init', gun]);
    const down = `http://127.0.0.1:${await freePort()}`;
    const offline = await pub.run(['remove', gun, 'nosuchtag', '--server', down]);
    expect(offline.code, offline.stderr).toBe(0);
    expect(offline.stderr).toMatch(
      /cannot fetch the trusted state of example\.com\/staging\/offline \(NETWORK\)/,
    );
    const json = await pub.json(['add', gun, 'v1', '--digest', SHA_A, '--length', '1', '--server', down]);
    expect(json.checked).toBe(false);
    const published = await pub.run(['publish', gun]);
    expect(published.code).toBe(4);
    expect(published.stderr).toMatch(/NOT_FOUND: nosuchtag is not a target of targets/);
  });
  it('add --publish stages and publishes in one process, with the changes staged before; --expires needs --publish', async () => {
    const gun = 'example.com/staging/add-publish';
    const pub = home();
    await pub.json(['init', gun]);
    const alone = await pub.run(['add', gun, 'v0', '--digest', SHA_C, '--length', '3', '--expires', '30d']);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(/^tufa: INVALID_ARGUMENT: --expires goes with --publish/m);
    expect(await staged(pub, gun)).toEqual([]);

    await pub.ok(['add', gun, 'v1', '--digest', SHA_A, '--length', '1']);
    const added = await pub.json([
      'add',
      gun,
      'v2',
      '--digest',
      SHA_B,
      '--length',
      '2',
      '--publish',
      '--expires',
      '45d',
    ]);
    expect(added).toMatchObject({
      tag: 'v2',
      staged: 'add',
      digest: SHA_B,
      published: { published: true, changes: 2, versions: { targets: 2 } },
    });
    expect(await staged(pub, gun)).toEqual([]);
    // A reader (no token, no keys) sees both tags.
    const reader = new Home(backend.server.url, {});
    homes.push(reader);
    expect((await reader.ok(['lookup', gun, 'v1'])).trim()).toBe(SHA_A);
    expect((await reader.ok(['lookup', gun, 'v2'])).trim()).toBe(SHA_B);
    const human = await pub.ok(['add', gun, 'v3', '--digest', SHA_C, '--length', '3', '--publish']);
    expect(human).toMatch(
      /^staged: add v3 -> sha256:c{64} \(3 bytes\) to targets\npublished example.com\/staging\/add-publish: .*targets v3/,
    );
  });
});
