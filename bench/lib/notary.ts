/**
 * Docker Notary (Debian's `notary` package, 0.7): notary-server with its memory store on a
 * loopback port, and the notary client publishing the same shape of collection.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { targetEntry } from './tufa.js';
import { freeLoopbackPort, runOk, type Service, startService, waitForHttp, which } from './util.js';

export function notaryAvailable(): boolean {
  return which('notary-server') !== undefined && which('notary') !== undefined;
}

export interface Notary {
  readonly base: string;
  readonly service: Service;
  /** Runs the notary client with this bench's config and passphrases. */
  client(args: readonly string[]): ReturnType<typeof runOk>;
  /** Stages `n` targets (as `notary addhash` would) without n process starts. */
  stageTargets(gun: string, n: number): void;
}

export async function startNotary(dir: string): Promise<Notary> {
  const port = await freeLoopbackPort();
  const base = `http://127.0.0.1:${port}`;
  const serverConfig = join(dir, 'server.json');
  writeFileSync(
    serverConfig,
    JSON.stringify({
      server: { http_addr: `127.0.0.1:${port}` },
      trust_service: { type: 'local', key_algorithm: 'ed25519' },
      storage: { backend: 'memory' },
      logging: { level: 'error' },
    }),
  );
  const service = startService('notary-server', 'notary-server', ['-config', serverConfig]);
  await waitForHttp(`${base}/_notary_server/health`, service, 20_000);
  const trustDir = join(dir, 'trust');
  const clientConfig = join(dir, 'client.json');
  writeFileSync(clientConfig, JSON.stringify({ trust_dir: trustDir, remote_server: { url: base } }));
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    NOTARY_ROOT_PASSPHRASE: 'bench root passphrase',
    NOTARY_TARGETS_PASSPHRASE: 'bench targets passphrase',
    NOTARY_SNAPSHOT_PASSPHRASE: 'bench snapshot passphrase',
  };
  return {
    base,
    service,
    client: (args) => runOk('notary', ['-c', clientConfig, ...args], { env, timeoutMs: 60_000 }),
    stageTargets(gun, n) {
      // The notary client's changelist: one JSON file per change, applied in file name order.
      const changelist = join(trustDir, 'tuf', ...gun.split('/'), 'changelist');
      mkdirSync(changelist, { recursive: true });
      const start = BigInt(Date.now()) * 1_000_000n;
      for (let i = 0; i < n; i++) {
        const t = targetEntry(i);
        const data = JSON.stringify({
          length: t.file.length,
          hashes: { sha256: Buffer.from(t.file.hashes.sha256!, 'hex').toString('base64') },
        });
        const change = {
          action: 'create',
          role: 'targets',
          type: 'target',
          path: t.path,
          data: Buffer.from(data).toString('base64'),
        };
        const name = `${String(start + BigInt(i)).padStart(20, '0')}_${randomUUID()}.change`;
        writeFileSync(join(changelist, name), JSON.stringify(change));
      }
    },
  };
}
