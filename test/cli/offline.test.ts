/**
 * `--offline`, `--max-age` and `tufa export` through the built `tufa` binary against a real
 * tufa-server: answers from the trusted cache alone (the server stopped at the end), exit 6 when
 * the cache cannot answer, and an export that a TUF client reads back from a plain static server.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createClient } from '@tufa/client';
import { fakeClockEnv } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, PASSPHRASES, startBackend } from './harness.test-util.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

describe('tufa --offline against tufa-server', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  const homes: Home[] = [];
  let files: Server | undefined;
  const gun = 'example.com/offline/app';
  let rootKey: string;
  let artifact: string;
  let digest: string;
  let deploy: Home;
  let pin: string[];

  const home = (env?: Record<string, string>) => {
    const h = new Home(backend.server.url, env ?? { ...PASSPHRASES, TUFA_TOKEN: backend.token });
    homes.push(h);
    return h;
  };
  const errorOf = (stdout: string) =>
    JSON.parse(stdout).error as { code: string; role?: string; details?: any };

  beforeAll(async () => {
    backend = await startBackend('embedded');
    const pub = home();
    rootKey = (await pub.json(['init', gun])).root.keyid;
    artifact = join(pub.dir, 'app.tar');
    await writeFile(artifact, 'the artifact bytes');
    await pub.ok(['add', gun, 'v1', artifact]);
    await pub.ok(['publish', gun]);
    // A deploy host refreshes once while it can reach the server.
    deploy = home({});
    pin = ['--root-key', rootKey, '--no-tofu'];
    digest = (await deploy.ok(['lookup', gun, 'v1', ...pin])).trim();
  }, 180_000);

  afterAll(async () => {
    files?.closeAllConnections();
    files?.close();
    for (const h of homes) h.remove();
    await backend?.stop();
  });

  it('verify and lookup answer from the cache, and say so', async () => {
    const verified = await deploy.json(['verify', gun, 'v1', '--file', artifact, '--offline', ...pin]);
    expect(verified).toMatchObject({ trusted: true, digest, offline: true });
    expect(Date.parse(verified.refreshedAt)).not.toBeNaN();
    expect((await deploy.ok(['lookup', gun, 'v1', '--offline', ...pin])).trim()).toBe(digest);
    const listed = await deploy.json(['list', gun, '--offline', ...pin]);
    expect(listed.map((t: { tag: string }) => t.tag)).toEqual(['v1']);
    const human = await deploy.run(['verify', gun, 'v1', '--digest', digest, '--offline', ...pin]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/\(offline, from the trusted cache\)/);
    // A mismatch is still refused offline.
    const tampered = join(deploy.dir, 'tampered.tar');
    await writeFile(tampered, 'other artifact bytes');
    const refused = await deploy.run(['verify', gun, 'v1', '--file', tampered, '--offline', ...pin]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^tufa: (LENGTH|HASH)_MISMATCH/m);
  });

  it('exits 6 (CACHE_MISSING) in a home that never refreshed', async () => {
    const fresh = home({});
    const r = await fresh.run(['verify', gun, 'v1', '--digest', digest, '--offline', '--json', ...pin]);
    expect(r.code).toBe(6);
    expect(errorOf(r.stdout)).toMatchObject({ code: 'CACHE_MISSING', details: { source: 'cache' } });
  });

  it('--max-age: exit 0 within the bound, 6 (CACHE_STALE) past it', async () => {
    const args = ['verify', gun, 'v1', '--digest', digest, '--offline', '--max-age', '1h', ...pin];
    const soon = await deploy.run(args, { env: fakeClockEnv({ offsetMs: HOUR / 2 }) });
    expect(soon.code, soon.stderr).toBe(0);
    const late = await deploy.run([...args, '--json'], { env: fakeClockEnv({ offsetMs: 2 * HOUR }) });
    expect(late.code).toBe(6);
    expect(errorOf(late.stdout)).toMatchObject({ code: 'CACHE_STALE', details: { maxAgeMs: HOUR } });
  });

  it('is EXPIRED (exit 1) once the cached timestamp has expired, whatever --max-age says', async () => {
    const later = { env: fakeClockEnv({ offsetMs: 15 * DAY }) }; // the server's timestamps live 14 days
    const r = await deploy.run(['lookup', gun, 'v1', '--offline', '--json', ...pin], later);
    expect(r.code).toBe(1);
    expect(errorOf(r.stdout)).toMatchObject({
      code: 'EXPIRED',
      role: 'timestamp',
      details: { source: 'cache' },
    });
  });

  it('refuses --max-age without --offline, or a duration it cannot read (exit 2)', async () => {
    expect((await deploy.run(['lookup', gun, 'v1', '--max-age', '1h', ...pin])).code).toBe(2);
    const bad = await deploy.run(['lookup', gun, 'v1', '--offline', '--max-age', '1 hour', ...pin]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^tufa: INVALID_ARGUMENT: a lifetime is/m);
  });

  it('a missing --file is exit 5 (FILE_UNREADABLE), not 4, even for a tag that does not exist', async () => {
    const missing = join(deploy.dir, 'missing.tar');
    for (const tag of ['v1', 'no-such-tag']) {
      const r = await deploy.run(['verify', gun, tag, '--file', missing, '--json', ...pin]);
      expect(r.code).toBe(5);
      expect(errorOf(r.stdout)).toMatchObject({
        code: 'FILE_UNREADABLE',
        details: { path: missing, reason: 'ENOENT' },
      });
    }
  });

  it('tufa export writes the standard layout that a TUF client reads back', async () => {
    const dir = join(deploy.dir, 'export');
    const exported = await deploy.json(['export', gun, dir, ...pin]);
    expect(exported.files).toEqual(
      expect.arrayContaining(['root.json', '1.root.json', 'timestamp.json', 'snapshot.json', 'targets.json']),
    );
    expect(exported.roles.map((r: { role: string }) => r.role)).toEqual([
      'root',
      'timestamp',
      'snapshot',
      'targets',
    ]);
    // Byte for byte what the server serves.
    const served = await fetch(`${backend.server.url}/v2/${gun}/_trust/tuf/timestamp.json`);
    expect(await readFile(join(dir, 'timestamp.json'))).toEqual(Buffer.from(await served.arrayBuffer()));
    // A TUF client over a plain static server of the folder, starting from the exported root.
    files = createServer(async (req, res) => {
      const name = (req.url ?? '/').slice(1);
      const body = name.includes('/') ? undefined : await readFile(join(dir, name)).catch(() => undefined);
      res.statusCode = body === undefined ? 404 : 200;
      res.end(body);
    });
    await new Promise<void>((resolve) => files!.listen(0, '127.0.0.1', resolve));
    const reader = createClient(
      { metadataUrl: `http://127.0.0.1:${(files.address() as AddressInfo).port}/` },
      {
        repositoryCacheDir: join(deploy.dir, 'reader-cache'),
        trust: { rootFile: join(dir, 'root.json'), rootKeyIds: [rootKey], allowTofu: false },
      },
    );
    const target = await reader.getTarget('v1');
    expect(`sha256:${target.hashes.sha256}`).toBe(digest);
    // Refused into a folder that is not empty (exit 5), nothing written.
    const again = await deploy.run(['export', gun, dir, '--json', ...pin]);
    expect(again.code).toBe(5);
    expect(errorOf(again.stdout).code).toBe('FILE_UNWRITABLE');
  });

  it('still answers offline once the server is gone; online it is exit 3', async () => {
    await backend.server.stop();
    const offline = await deploy.run(['verify', gun, 'v1', '--file', artifact, '--offline', ...pin]);
    expect(offline.code, offline.stderr).toBe(0);
    const exported = await deploy.run([
      'export',
      gun,
      join(deploy.dir, 'export-offline'),
      '--offline',
      ...pin,
    ]);
    expect(exported.code, exported.stderr).toBe(0);
    expect((await deploy.run(['verify', gun, 'v1', '--file', artifact, ...pin])).code).toBe(3);
  });
});
