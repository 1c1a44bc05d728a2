/** tuf-js's Updater (npm) refreshes a collection from the running server and verifies targets. */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expiresIn, newTargets, targetFileFor, utf8Encode, withTarget } from '@tufa/core';
import type { RunningServer } from '@tufa/server';
import { DAY, sign, testCrypto } from '@tufa/testing';
import { keys, post, publishNew, targetsV } from '@tufa/testing/publisher';
import { startTestPostgres, startTestServer, type TestPostgres, tempDir } from '@tufa/testing/server';
import { Updater } from 'tuf-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const contents: Record<string, string> = {
  'app/v1': 'the first release of app',
  'releases/r1': 'a delegated release',
};

let pgServer: TestPostgres;
let server: RunningServer;
let files: Server;
let filesUrl: string;
beforeAll(async () => {
  pgServer = await startTestPostgres();
  server = await startTestServer({ databaseUrl: await pgServer.createDatabase() });
  // Target files, as tuf-js asks for them with consistent snapshots: DIR/HASH.NAME
  files = createServer((req, res) => {
    const path = decodeURIComponent(req.url!.slice(1));
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/') + 1) : '';
    const name = path.slice(dir.length).replace(/^[0-9a-f]{64,128}\./, '');
    const content = contents[dir + name];
    if (content === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.end(content);
  });
  await new Promise<void>((done) => files.listen(0, '127.0.0.1', done));
  filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((done) => files?.close(done));
  await server?.close();
  await pgServer?.stop();
});

describe('tuf-js interop', () => {
  it('refreshes through root, timestamp, snapshot, targets and a delegation, then downloads verified targets', async () => {
    const gun = 'registry.example.com/interop';
    const { root } = await publishNew(server.url, gun, { 'app/v1': contents['app/v1']! });
    let releases = newTargets({ expires: expiresIn(Date.now(), 30 * DAY) });
    releases = withTarget(
      releases,
      'releases/r1',
      targetFileFor(testCrypto, utf8Encode(contents['releases/r1']!)),
    );
    const res = await post(server.url, gun, {
      targets: sign(targetsV(2, { 'app/v1': contents['app/v1']! }), keys.targets),
      releases: sign(releases, keys.releases),
    });
    expect(res.status).toBe(200);

    const dir = tempDir();
    const metadataDir = join(dir, 'metadata');
    const targetDir = join(dir, 'targets');
    mkdirSync(metadataDir);
    mkdirSync(targetDir);
    writeFileSync(
      join(metadataDir, 'root.json'),
      Buffer.from(await (await fetch(`${server.url}/v2/${gun}/_trust/tuf/1.root.json`)).arrayBuffer()),
    );
    expect(root.signed.consistentSnapshot).toBe(true);
    const updater = new Updater({
      metadataDir,
      metadataBaseUrl: `${server.url}/v2/${gun}/_trust/tuf`,
      targetDir,
      targetBaseUrl: filesUrl,
      config: { fetchRetries: 0 },
    });
    await updater.refresh();
    for (const [path, content] of Object.entries(contents)) {
      const info = await updater.getTargetInfo(path);
      expect(info, path).toBeDefined();
      expect(info!.hashes.sha256).toBe(createHash('sha256').update(content).digest('hex'));
      const file = await updater.downloadTarget(info!, join(targetDir, path.replace('/', '_')));
      expect(readFileSync(file, 'utf8')).toBe(content);
    }
    expect(await updater.getTargetInfo('app/unknown')).toBeUndefined();
  });
});
