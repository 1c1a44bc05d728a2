/**
 * Docker Notary (Debian's `notary` package, 0.7): notary-server with its memory store on a
 * loopback port, and the notary client publishing the same shape of collection. The server and
 * the client come from the test support (`@tufa/testing/notary`), as the import tests use them.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { notaryAvailable, notaryClient, startNotaryServer } from '@tufa/testing/notary';
import { targetEntry } from './tufa.js';
import { adoptService, type Service } from './util.js';

export { notaryAvailable };

export interface Notary {
  readonly base: string;
  readonly service: Service;
  /** Runs the notary client with this bench's config and passphrases; its stdout. */
  client(args: readonly string[]): Promise<string>;
  /** Stages `n` targets (as `notary addhash` would) without n process starts. */
  stageTargets(gun: string, n: number): void;
}

export async function startNotary(dir: string): Promise<Notary> {
  const server = await startNotaryServer(join(dir, 'server'), { keyAlgorithm: 'ed25519' });
  const service = adoptService({ name: 'notary-server', ...server });
  const cli = notaryClient(dir, server.url, {
    NOTARY_ROOT_PASSPHRASE: 'bench root passphrase',
    NOTARY_TARGETS_PASSPHRASE: 'bench targets passphrase',
    NOTARY_SNAPSHOT_PASSPHRASE: 'bench snapshot passphrase',
  });
  return {
    base: server.url,
    service,
    client: (args) => cli.ok(args),
    stageTargets(gun, n) {
      // The notary client's changelist: one JSON file per change, applied in file name order.
      const changelist = join(cli.trustDir, 'tuf', ...gun.split('/'), 'changelist');
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
