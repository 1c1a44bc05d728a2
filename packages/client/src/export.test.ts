import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expiresIn, newTargets, withDelegation } from '@tufa/core';
import { codeOf, DAY, NOW, RepoSim, testKey, text } from '@tufa/testing';
import { type Setup, setup } from '@tufa/testing/client';
import { Updater } from 'tuf-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from './client.js';

let s: Setup | undefined;
let server: Server | undefined;
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
  if (server !== undefined) {
    server.closeAllConnections();
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
  }
});

/** A second delegation whose name needs escaping in a file name. */
function addTeamRole(sim: RepoSim, now = NOW): void {
  const key = testKey(7);
  sim.targets = withDelegation(sim.targets, { name: 'team/a b', keys: [key.key], paths: ['team/*'] });
  sim.delegated.set('team/a b', { signed: newTargets({ expires: expiresIn(now, 90 * DAY) }), keys: [key] });
  sim.addTarget('team/a b', 'team/x', text('team x'));
  sim.bump('targets');
  sim.publish();
}

/**
 * A plain static file server over a folder: the request path's file name is the file's name as
 * it is on disk (percent escapes included, as python-tuf and tufa request them), nothing else.
 */
async function serveFolder(dir: string): Promise<string> {
  server = createServer(async (req, res) => {
    const name = (req.url ?? '/').slice(1);
    if (name.includes('/') || name.startsWith('.')) {
      res.statusCode = 404;
      res.end();
      return;
    }
    try {
      res.end(await readFile(join(dir, name)));
    } catch {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

describe('exportMetadata', () => {
  it('writes the standard layout, byte for byte what was verified, every delegated role included', async () => {
    s = await setup({ prepare: addTeamRole });
    const dir = join(s.dir, 'export');
    const result = await s.client.exportMetadata(dir);
    expect(result.files).toEqual(
      [
        '1.root.json',
        'root.json',
        'timestamp.json',
        '2.snapshot.json',
        'snapshot.json',
        '2.targets.json',
        'targets.json',
        '1.releases.json',
        'releases.json',
        '1.team%2Fa%20b.json',
        'team%2Fa%20b.json',
      ].sort(),
    );
    expect((await readdir(dir)).sort()).toEqual(result.files);
    expect(result.roles).toContainEqual({ role: 'team/a b', version: 1, file: 'team%2Fa%20b.json' });
    for (const [role, file] of [
      ['root', 'root.json'],
      ['timestamp', 'timestamp.json'],
      ['snapshot', '2.snapshot.json'],
      ['targets', 'targets.json'],
      ['releases', 'releases.json'],
      ['team/a b', '1.team%2Fa%20b.json'],
    ] as const) {
      expect(new Uint8Array(await readFile(join(dir, file))), role).toEqual(s.sim.published.get(role));
    }
    // Nothing but the folder itself appears beside it (the temp folder was renamed into place).
    expect((await readdir(s.dir)).sort()).toEqual(['cache', 'export']);
  });

  it('is read back by a TUF client from a plain static server, starting from the exported root', async () => {
    for (const consistent of [true, false]) {
      s = await setup({ consistent, prepare: addTeamRole });
      const dir = join(s.dir, 'export');
      await s.client.exportMetadata(dir);
      const url = await serveFolder(dir);
      const reader = createClient(
        { metadataUrl: url },
        {
          repositoryCacheDir: join(s.dir, 'reader-cache'),
          clock: () => NOW,
          trust: { rootFile: join(dir, 'root.json'), allowTofu: false },
        },
      );
      expect((await reader.getTarget('team/x')).role).toBe('team/a b');
      expect((await reader.getTarget('releases/r1')).role).toBe('releases');
      expect((await reader.listTargets()).map((t) => t.name)).toEqual(['app/v1', 'releases/r1', 'team/x']);
      await s.cleanup();
      s = undefined;
      server!.closeAllConnections();
      await new Promise((resolve) => server!.close(resolve));
      server = undefined;
    }
  });

  it("is read back by tuf-js's Updater from a plain static server", async () => {
    // tuf-js reads the real clock: a repository made now.
    const now = Date.now();
    const sim = await RepoSim.start({ now });
    addTeamRole(sim, now);
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const work = await mkdtemp(join(tmpdir(), 'tufa-export-'));
    try {
      const client = createClient(
        { metadataUrl: sim.metadataUrl },
        {
          repositoryCacheDir: join(work, 'cache'),
          trust: { rootFile: sim.files.get('metadata/1.root.json')! },
        },
      );
      const dir = join(work, 'export');
      await client.exportMetadata(dir);
      await sim.close();
      const url = await serveFolder(dir);
      await mkdir(join(work, 'tuf-js'));
      await writeFile(join(work, 'tuf-js', 'root.json'), await readFile(join(dir, 'root.json')));
      const updater = new Updater({
        metadataDir: join(work, 'tuf-js'),
        metadataBaseUrl: url,
        targetBaseUrl: url,
        config: { fetchRetries: 0 },
      });
      await updater.refresh();
      expect((await updater.getTargetInfo('team/x'))?.length).toBe(text('team x').length);
      expect((await updater.getTargetInfo('releases/r1'))?.length).toBe(text('release 1').length);
    } finally {
      await sim.close();
      await rm(work, { recursive: true, force: true });
    }
  });

  it('exports offline from the cache, and is CACHE_MISSING when a role was never cached', async () => {
    s = await setup({ prepare: addTeamRole });
    await s.client.getTarget('app/v1'); // no delegated role loaded
    const offline = s.newClient({ offline: true });
    expect(await codeOf(offline.exportMetadata(join(s.dir, 'first')))).toBe('CACHE_MISSING');
    expect(existsSync(join(s.dir, 'first'))).toBe(false);
    await s.client.listTargets(); // loads every delegated role into the cache
    const requests = s.sim.requests.length;
    const result = await s.newClient({ offline: true }).exportMetadata(join(s.dir, 'second'));
    expect(result.files).toContain('team%2Fa%20b.json');
    expect(s.sim.requests.length).toBe(requests);
  });

  it('refuses a folder that is not empty, and takes an empty one', async () => {
    s = await setup();
    const dir = join(s.dir, 'export');
    await mkdir(dir);
    await writeFile(join(dir, 'keep.txt'), 'mine');
    const err = await s.client.exportMetadata(dir).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'FILE_UNWRITABLE', details: { path: dir, reason: 'ENOTEMPTY' } });
    expect(await readdir(dir)).toEqual(['keep.txt']);
    const empty = join(s.dir, 'empty');
    await mkdir(empty);
    expect((await s.client.exportMetadata(empty)).files).toContain('timestamp.json');
    const parentIsFile = join(s.dir, 'export', 'keep.txt', 'x');
    expect(await codeOf(s.client.exportMetadata(parentIsFile))).toBe('FILE_UNWRITABLE');
  });
});
