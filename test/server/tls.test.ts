/**
 * HTTPS and mutual TLS (issue 6, section 3): no, wrong and right client certificates; a client
 * certificate's subject mapped to a token's scopes; the client library with ca/cert/key.
 * Certificates are made in the test with openssl.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@tufa/client';
import { expiresIn, type Key, newRoot } from '@tufa/core';
import type { RunningServer } from '@tufa/server';
import { DAY, sign } from '@tufa/testing';
import { body, keys, targetsV } from '@tufa/testing/publisher';
import {
  makeCertificates,
  privateKeyTexts,
  startTestPostgres,
  startTestServer,
  type TestCertificates,
  type TestPostgres,
} from '@tufa/testing/server';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let dir: string;
let certs: TestCertificates;
let pgs: TestPostgres;
let server: RunningServer;
const logs: string[] = [];
let ciToken: string;

interface Answer {
  status: number;
  text: string;
}

function tlsCall(
  path: string,
  options: { method?: string; cert?: 'client' | 'stranger' | 'none'; ca?: string; body?: string } = {},
): Promise<Answer> {
  const which = options.cert ?? 'client';
  const url = new URL(path, server.url);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        ca: readFileSync(options.ca ?? certs.ca),
        ...(which === 'none'
          ? {}
          : {
              cert: readFileSync(which === 'client' ? certs.clientCert : certs.strangerCert),
              key: readFileSync(which === 'client' ? certs.clientKey : certs.strangerKey),
            }),
        headers: options.body === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode!, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const trust = (gun: string, file = '') => `/v2/${gun}/_trust/tuf/${file}`;

async function keyOf(gun: string, role: string): Promise<Key> {
  const a = await tlsCall(trust(gun, `${role}.key`));
  expect(a.status).toBe(200);
  const json = JSON.parse(a.text);
  return { keytype: json.keytype, scheme: json.scheme, keyval: { public: json.keyval.public }, extra: {} };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tufa-tls-'));
  certs = makeCertificates(dir);
  const subjects = join(dir, 'subjects.json');
  writeFileSync(subjects, JSON.stringify({ 'CN=ci,O=Acme': 'ci' }));
  pgs = await startTestPostgres();
  server = await startTestServer(
    {
      databaseUrl: await pgs.createDatabase(),
      allowAnonymousWrites: false,
      tlsCert: certs.serverCert,
      tlsKey: certs.serverKey,
      tlsClientCa: certs.ca,
      tlsClientSubjects: subjects,
    },
    { logger: pino({ level: 'debug' }, { write: (line: string) => logs.push(line) }) },
  );
  ciToken = (await server.tokens.create('ci', ['push:acme/*'])).token;
});

afterAll(async () => {
  await server?.close();
  await pgs?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('mutual TLS', () => {
  it('serves https', () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('no client certificate: the handshake is refused', async () => {
    expect((await tlsCall('/_health')).status).toBe(200); // the same call with the right certificate
    await expect(tlsCall('/_health', { cert: 'none' })).rejects.toMatchObject({
      code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
    });
  });

  it('a client certificate from another CA: refused', async () => {
    expect((await tlsCall('/_health')).status).toBe(200);
    // Node's server checks the chain once the handshake is done and drops the connection: no alert.
    await expect(tlsCall('/_health', { cert: 'stranger' })).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect((await tlsCall('/_health')).status).toBe(200);
  });

  it('a server the client does not trust: refused by the client', async () => {
    await expect(tlsCall('/_health', { ca: certs.otherCa })).rejects.toMatchObject({
      code: expect.stringMatching(/CERT|SIGNATURE|SELF_SIGNED|UNABLE/),
    });
  });

  it('the right client certificate: served, with the scopes of the token its subject maps to', async () => {
    expect((await tlsCall('/_health')).status).toBe(200);
    // CN=ci,O=Acme is token "ci" (push:acme/*): it may create keys and publish there, not elsewhere.
    const gun = 'acme/tls';
    const root = newRoot({
      expires: expiresIn(Date.now(), 365 * DAY),
      roles: {
        root: { keys: [keys.root.key] },
        targets: { keys: [keys.targets.key] },
        snapshot: { keys: [await keyOf(gun, 'snapshot')] },
        timestamp: { keys: [await keyOf(gun, 'timestamp')] },
      },
    });
    const published = await tlsCall(trust(gun), {
      method: 'POST',
      body: body({
        root: sign(root, keys.root),
        targets: sign(targetsV(1, { 'app/v1': 'v1' }), keys.targets),
      }),
    });
    expect(published.status).toBe(200);
    const elsewhere = await tlsCall(trust('other/tls', 'timestamp.key'), { method: 'POST' });
    expect(elsewhere.status).toBe(403);
    expect(JSON.parse(elsewhere.text).error.code).toBe('FORBIDDEN');
    const audit = await server.store.pool.query(
      "SELECT token_name, outcome FROM audit_log WHERE gun = 'acme/tls' AND action = 'publish'",
    );
    expect(audit.rows).toEqual([{ token_name: 'ci', outcome: 'accepted' }]);
  });

  it('the client library reads over mutual TLS with ca, cert and key, and fails without them', async () => {
    const cacheDir = join(dir, 'cache');
    const pem = (f: string) => readFileSync(f);
    const client = createClient(
      { server: server.url, gun: 'acme/tls' },
      { cacheDir, ca: pem(certs.ca), cert: pem(certs.clientCert), key: pem(certs.clientKey), token: ciToken },
    );
    await client.refresh();
    expect((await client.getTarget('app/v1')).length).toBe(2);
    const noCert = createClient(
      { server: server.url, gun: 'acme/tls' },
      { cacheDir: join(dir, 'cache2'), ca: pem(certs.ca) },
    );
    await expect(noCert.refresh()).rejects.toMatchObject({ code: 'NETWORK' });
    const noCa = createClient(
      { server: server.url, gun: 'acme/tls' },
      { cacheDir: join(dir, 'cache3'), cert: pem(certs.clientCert), key: pem(certs.clientKey) },
    );
    await expect(noCa.refresh()).rejects.toMatchObject({ code: 'NETWORK' });
  });

  it('a certificate whose token is revoked gets 401, also for metadata held in memory', async () => {
    // Anonymous pull is allowed here, but a certificate mapped to a revoked token is refused:
    // the served-from-memory path must not answer for the app.
    for (let i = 0; i < 3; i++) expect((await tlsCall(trust('acme/tls', 'timestamp.json'))).status).toBe(200);
    expect(await server.tokens.revoke('ci')).toBe(true);
    const refused = await tlsCall(trust('acme/tls', 'timestamp.json'));
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.text).error.code).toBe('UNAUTHORIZED');
  });

  it('logs hold no token and no private key', () => {
    const all = logs.join('\n');
    expect(logs.length).toBeGreaterThan(5);
    expect(all).toContain('TLS handshake refused');
    expect(all).not.toContain(ciToken);
    for (const key of privateKeyTexts(certs)) {
      for (let i = 0; i + 40 <= key.length; i += 40) expect(all).not.toContain(key.slice(i, i + 40));
    }
    expect(all).not.toContain('PRIVATE KEY');
  });
});
