/**
 * Online keys on a PKCS#11 token (`--online-keys pkcs11:…`, issue 18 section 3), with SoftHSM2 as
 * the token and a separate PostgreSQL whose pg_dump is read: the database holds no private key.
 */
import { execFile } from 'node:child_process';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import {
  bumpVersion,
  expiresIn,
  type Key,
  parseMetadata,
  type Root,
  serializeMetadata,
  TrustedMetadataSet,
  withRootRole,
} from '@tufa/core';
import { Pkcs11Tokens } from '@tufa/core/pkcs11';
import { DAY, sign, testCrypto } from '@tufa/testing';
import { gunUrl, keys, onlineKey, post, publishNew, targetsV } from '@tufa/testing/publisher';
import {
  SOFTHSM_MODULE,
  softhsmToken,
  spawnServer,
  startTestPostgres,
  startTestServer,
  type TestPostgres,
  testPostgresBinaries,
} from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from './server.js';

const LABEL = 'tufa-online';
const PIN = '246810';
const TOKEN_URI = `pkcs11:token=${LABEL}?module-path=${SOFTHSM_MODULE}`;

let offset = 0;
const clock = () => Date.now() + offset;
let token: { dir: string; conf: string };
let pgServer: TestPostgres;

/** The rows of online_keys in a pg_dump of `url`: keyid and the private_key column as dumped. */
async function dumpedKeyRows(
  url: string,
): Promise<{ dump: string; rows: { keyid: string; privateKey: string }[] }> {
  const pgDump = join(dirname((await testPostgresBinaries()).postgres), 'pg_dump');
  const { stdout: dump } = await promisify(execFile)(pgDump, ['--data-only', '--table=online_keys', url], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const copy = /^COPY public\.online_keys \(([^)]*)\) FROM stdin;\n([\s\S]*?)^\\\.$/m.exec(dump);
  if (copy === null) throw new Error(`no COPY of online_keys in the dump:\n${dump.slice(0, 2000)}`);
  const columns = copy[1]!.split(', ');
  const rows = copy[2]!
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const fields = line.split('\t');
      return {
        keyid: fields[columns.indexOf('keyid')]!,
        privateKey: fields[columns.indexOf('private_key')]!,
      };
    });
  return { dump, rows };
}

/** The client's checks on what the server serves now: root, timestamp, snapshot, targets. */
async function clientRefresh(base: string, gun: string, root: Uint8Array): Promise<TrustedMetadataSet> {
  const bytes = async (file: string) =>
    new Uint8Array(await (await fetch(gunUrl(base, gun, file))).arrayBuffer());
  const set = TrustedMetadataSet.fromTrustedRoot(root, { crypto: testCrypto, now: clock() });
  set.updateTimestamp(await bytes('timestamp.json'));
  set.updateSnapshot(await bytes('snapshot.json'));
  set.updateTargets(await bytes('targets.json'));
  return set;
}

beforeAll(async () => {
  token = await softhsmToken(LABEL, PIN);
  // Read by SoftHSM2 when this process first loads it.
  process.env.SOFTHSM2_CONF = token.conf;
  pgServer = await startTestPostgres();
}, 120_000);

afterAll(async () => {
  await pgServer?.stop();
  if (token !== undefined) rmSync(token.dir, { recursive: true, force: true });
});

describe('online keys on a PKCS#11 token', () => {
  let server: RunningServer | undefined;
  afterAll(async () => {
    await server?.close();
  });

  it('one key per collection on the token: publish, restart, re-sign, rotate the timestamp key; pg_dump holds no private key', async () => {
    const databaseUrl = await pgServer.createDatabase();
    const config = { databaseUrl, onlineKeys: TOKEN_URI, onlineKeysPin: PIN };
    server = await startTestServer(config, { clock });
    const gun = 'example.com/token/app';
    const { root } = await publishNew(server.url, gun);
    const timestampKey = await onlineKey(server.url, gun, 'timestamp');
    const snapshotKey = await onlineKey(server.url, gun, 'snapshot');
    expect([timestampKey.keytype, timestampKey.scheme]).toEqual(['ecdsa', 'ecdsa-sha2-nistp256']);
    expect(snapshotKey.keyval.public).not.toBe(timestampKey.keyval.public);
    const rootBytes = serializeMetadata(root);
    const first = await clientRefresh(server.url, gun, rootBytes);
    expect(first.timestamp!.signatures[0]!.sig.slice(0, 2)).toBe('30');

    // Restart: a new process state (store, signer caches, token session) over the same token and database.
    await server.close();
    server = await startTestServer(config, { clock });
    const targets2 = sign(targetsV(2, { 'app/v2': 'v2' }), keys.targets);
    expect((await post(server.url, gun, { targets: targets2 })).status).toBe(200);
    expect((await clientRefresh(server.url, gun, rootBytes)).targets!.signed.version).toBe(2);

    // The re-signer signs with the token key too.
    offset = 10 * DAY;
    try {
      expect(await server.store.resign(gun, { fraction: 1 / 3, wait: false })).toEqual(['timestamp']);
      const resigned = await clientRefresh(server.url, gun, rootBytes);
      expect(resigned.timestamp!.signed.version).toBe(3);
    } finally {
      offset = 0;
    }

    // Rotating the timestamp key makes a new key on the token; root v2 names it; it signs from then on.
    const rotated = await fetch(gunUrl(server.url, gun, 'timestamp.key'), { method: 'POST' });
    expect(rotated.status).toBe(200);
    const newKey = (await rotated.json()) as { keytype: string; scheme: string; keyval: { public: string } };
    expect(newKey.scheme).toBe('ecdsa-sha2-nistp256');
    expect(newKey.keyval.public).not.toBe(timestampKey.keyval.public);
    const key: Key = { ...newKey, extra: {} };
    const root2: Root = withRootRole(
      bumpVersion(root.signed, expiresIn(Date.now(), 365 * DAY)),
      'timestamp',
      {
        keys: [key],
      },
    );
    const root2Md = sign(root2, keys.root);
    expect((await post(server.url, gun, { root: root2Md })).status).toBe(200);
    const timestamp = parseMetadata(
      'timestamp',
      new Uint8Array(await (await fetch(gunUrl(server.url, gun, 'timestamp.json'))).arrayBuffer()),
    );
    expect(timestamp.signatures.map((s) => s.keyid)).toEqual([root2.roles.timestamp.keyids[0]]);

    // Every online key row of the database, dumped: none holds private key material.
    const { dump, rows } = await dumpedKeyRows(databaseUrl);
    expect(rows.length).toBe(3);
    // COPY's text form of an empty bytea.
    expect(rows.map((r) => r.privateKey)).toEqual(['\\\\x', '\\\\x', '\\\\x']);
    expect(dump).not.toMatch(/PRIVATE KEY/);
  });

  it('the same dump of a master-key server shows its encrypted keys (what the check above would find)', async () => {
    const databaseUrl = await pgServer.createDatabase();
    const plain = await startTestServer({ databaseUrl }, { clock });
    try {
      await publishNew(plain.url, 'example.com/master/app');
    } finally {
      await plain.close();
    }
    const { rows } = await dumpedKeyRows(databaseUrl);
    expect(rows.length).toBe(2);
    for (const row of rows) expect(row.privateKey).toMatch(/^\\\\x[0-9a-f]{120}$/);
  });

  it('--online-keys-shared: the key pair the URI names signs every collection; a rotation gives one its own', async () => {
    const tokens = new Pkcs11Tokens({ get: async () => PIN });
    const shared = await tokens.generate({
      modulePath: SOFTHSM_MODULE,
      token: LABEL,
      label: 'shared online',
    });
    const databaseUrl = await pgServer.createDatabase();
    const sharedServer = await startTestServer(
      {
        databaseUrl,
        onlineKeys: `pkcs11:token=${LABEL};object=shared%20online?module-path=${SOFTHSM_MODULE}`,
        onlineKeysShared: true,
        onlineKeysPin: PIN,
      },
      { clock },
    );
    try {
      for (const gun of ['example.com/shared/a', 'example.com/shared/b']) {
        for (const role of ['timestamp', 'snapshot'] as const) {
          expect((await onlineKey(sharedServer.url, gun, role)).keyval.public).toBe(shared.key.keyval.public);
        }
        const { root } = await publishNew(sharedServer.url, gun);
        await clientRefresh(sharedServer.url, gun, serializeMetadata(root));
      }
      const rotated = await fetch(gunUrl(sharedServer.url, 'example.com/shared/a', 'timestamp.key'), {
        method: 'POST',
      });
      const own = (await rotated.json()) as { keyval: { public: string } };
      expect(own.keyval.public).not.toBe(shared.key.keyval.public);
      expect((await onlineKey(sharedServer.url, 'example.com/shared/b', 'timestamp')).keyval.public).toBe(
        shared.key.keyval.public,
      );
    } finally {
      await sharedServer.close();
    }
    const { rows } = await dumpedKeyRows(databaseUrl);
    expect(rows.map((r) => r.privateKey)).toEqual(rows.map(() => '\\\\x'));
  });

  it('many processes on one database: a key one process made on the token signs in the other', async () => {
    const databaseUrl = await pgServer.createDatabase();
    const args = ['--database-url', databaseUrl, '--online-keys', TOKEN_URI, '--resign-interval', '0'];
    const env = { SOFTHSM2_CONF: token.conf, TUFA_ONLINE_KEYS_PIN: PIN };
    const [a, b] = [await spawnServer(args, env), await spawnServer(args, env)];
    try {
      const gun = 'example.com/token/processes';
      // Process a makes the keys (and root v1 names them); process b publishes and signs with them.
      const { root } = await publishNew(a.url, gun);
      const targets2 = sign(targetsV(2, { 'app/v2': 'v2' }), keys.targets);
      const published = await post(b.url, gun, { targets: targets2 });
      expect(published.status).toBe(200);
      const rotated = await fetch(gunUrl(b.url, gun, 'timestamp.key'), { method: 'POST' });
      expect(rotated.status).toBe(200);
      const set = await clientRefresh(a.url, gun, serializeMetadata(root));
      expect(set.targets!.signed.version).toBe(2);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('a wrong PIN or a token URI that names a key without --online-keys-shared stops the start', async () => {
    const databaseUrl = await pgServer.createDatabase();
    const wrong = await startTestServer({
      databaseUrl,
      onlineKeys: TOKEN_URI,
      onlineKeysPin: '000000',
    }).catch((err) => err);
    expect([wrong.code, wrong.message]).toEqual([
      'WRONG_PIN',
      `wrong PIN for token "${LABEL}" (not tried again)`,
    ]);
    const { parseCommandLine } = await import('./config.js');
    const named = (() => {
      try {
        parseCommandLine(['--online-keys', `pkcs11:token=${LABEL};id=%01?module-path=${SOFTHSM_MODULE}`], {
          TUFA_ONLINE_KEYS_PIN: PIN,
        });
        return 'accepted';
      } catch (err) {
        return (err as { code: string }).code;
      }
    })();
    expect(named).toBe('INVALID_ARGUMENT');
    // The PIN from a file: 0600 only, as the master key file.
    const pinFile = join(token.dir, 'pin');
    writeFileSync(pinFile, `${PIN}\n`, { mode: 0o644 });
    const open = await startTestServer({
      databaseUrl,
      onlineKeys: TOKEN_URI,
      onlineKeysPinFile: pinFile,
    }).catch((err) => err);
    expect([open.code, open.message]).toEqual([
      'INVALID_ARGUMENT',
      `online keys PIN file ${pinFile} can be read or written by group or others (mode 0644): chmod 600 ${pinFile}`,
    ]);
    chmodSync(pinFile, 0o600);
    const fromFile = await startTestServer({
      databaseUrl,
      onlineKeys: TOKEN_URI,
      onlineKeysPinFile: pinFile,
    });
    await fromFile.close();
  });
});
