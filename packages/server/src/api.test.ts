/**
 * Every route and every refusal of the API, against a separate PostgreSQL (DATABASE_URL) and
 * against the embedded default. Servers run in-process for speed; a database per test file.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  bumpVersion,
  expiresIn,
  newTargets,
  parseMetadata,
  serializeMetadata,
  targetFileFor,
  utf8Encode,
  withRootRole,
  withTarget,
} from '@tufa/core';
import {
  createPool,
  DEFAULT_MIGRATIONS_DIR,
  migrate,
  type RunningServer,
  readMigrations,
} from '@tufa/server';
import { DAY, sign, testCrypto } from '@tufa/testing';
import { body, gunUrl, keys, onlineKey, post, publishNew, rootFor, targetsV } from '@tufa/testing/publisher';
import { startTestPostgres, startTestServer, type TestPostgres, tempDir } from '@tufa/testing/server';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** A request with the path exactly as given (fetch would normalise `..` away). */
function rawGet(
  base: string,
  path: string,
  method = 'GET',
  body?: string,
): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  const headers = body === undefined ? {} : { 'content-type': 'application/json' };
  return new Promise((done, fail) => {
    const req = request({ host: url.hostname, port: url.port, path, method, headers }, (res) => {
      let text = '';
      res.on('data', (c) => {
        text += c;
      });
      res.on('end', () => done({ status: res.statusCode!, body: text }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

/**
 * One answer as sent: status, every header name in order with its value (the request id's and
 * Date's left out: they differ per request), and the body's bytes.
 */
function rawAnswer(
  url: string,
  method: string,
  headers: Record<string, string>,
): Promise<{ status: number; names: string[]; headers: Record<string, string>; bytes: Buffer }> {
  return new Promise((done, fail) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const names: string[] = [];
        const values: Record<string, string> = {};
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const name = res.rawHeaders[i]!;
          names.push(name);
          if (name !== 'X-Request-Id' && name !== 'Date') values[name] = res.rawHeaders[i + 1]!;
        }
        done({ status: res.statusCode!, names, headers: values, bytes: Buffer.concat(chunks) });
      });
    });
    req.on('error', fail);
    req.end();
  });
}

let pgServer: TestPostgres;
/** Added to the servers' clock, to let metadata expire without waiting. */
let offset = 0;
const clock = () => Date.now() + offset;
const bytesAt = async (url: string) => new Uint8Array(await (await fetch(url)).arrayBuffer());
/** `STATUS CODE` of a refusal (fetch's answer read as the API's error body). */
const refusal = async (res: Response | Promise<Response>) => {
  const r = await res;
  return `${r.status} ${((await r.json()) as { error: { code: string } }).error.code}`;
};

beforeAll(async () => {
  pgServer = await startTestPostgres();
});
afterAll(async () => {
  await pgServer?.stop();
});

describe.each(['postgres', 'embedded'] as const)('API on %s', (flavour) => {
  let server: RunningServer;
  let base: string;
  beforeAll(async () => {
    server =
      flavour === 'postgres'
        ? await startTestServer({ databaseUrl: await pgServer.createDatabase() }, { clock })
        : await startTestServer({ dataDir: tempDir() }, { clock });
    base = server.url;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('health and metrics', async () => {
    const health = await fetch(`${base}/_health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toContain('tufa_http_requests_total{route="health",method="GET",status="200"} 1');
    expect(text).toContain('tufa_db_pool_total');
  });

  it('publishes a collection and serves its exact bytes with ETag, 304 and cache headers', async () => {
    const gun = 'registry.example.com/team/app';
    const { root, targets } = await publishNew(base, gun);
    const res = await fetch(gunUrl(base, gun, 'targets.json'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(Buffer.from(bytes).equals(Buffer.from(serializeMetadata(targets)))).toBe(true);
    const etag = `"${createHash('sha256').update(bytes).digest('hex')}"`;
    expect(res.headers.get('etag')).toBe(etag);
    expect(res.headers.get('cache-control')).toContain('max-age=10');
    const again = await fetch(gunUrl(base, gun, 'targets.json'), { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    const v1 = await fetch(gunUrl(base, gun, '1.root.json'));
    expect(v1.headers.get('cache-control')).toContain('immutable');
    expect(Buffer.from(await v1.arrayBuffer()).equals(Buffer.from(serializeMetadata(root)))).toBe(true);

    // The server signed snapshot v1 over targets and timestamp v1 over snapshot.
    const snapshot = parseMetadata(
      'snapshot',
      new Uint8Array(await (await fetch(gunUrl(base, gun, 'snapshot.json'))).arrayBuffer()),
    );
    expect(snapshot.signed.meta['targets.json']!.version).toBe(1);
    const timestamp = parseMetadata(
      'timestamp',
      new Uint8Array(await (await fetch(gunUrl(base, gun, 'timestamp.json'))).arrayBuffer()),
    );
    expect(timestamp.signed.snapshotMeta.version).toBe(1);
    expect(await refusal(fetch(gunUrl(base, gun, '1.timestamp.json')))).toBe('404 NOT_FOUND');
    expect(await refusal(fetch(gunUrl(base, gun, '7.targets.json')))).toBe('404 NOT_FOUND');
  });

  it('accepts the next targets version and delegated roles; refuses every bad update with its code', async () => {
    const gun = 'example.com/refusals';
    await publishNew(base, gun);
    const expectRefusal = async (docs: Parameters<typeof post>[2], status: number, code: string) => {
      const res = await post(base, gun, docs);
      expect({ status: res.status, code: res.json.error?.code }).toEqual({ status, code });
      return res;
    };
    const t2 = targetsV(2, { 'app/v2': 'v2' });
    // wrong signer, under threshold, bad signature
    await expectRefusal({ targets: sign(t2, keys.other) }, 400, 'THRESHOLD_NOT_MET');
    const signed = sign(t2, keys.targets);
    const forged = { ...signed, signatures: [{ ...signed.signatures[0]!, sig: 'ab'.repeat(64) }] };
    await expectRefusal({ targets: forged }, 400, 'BAD_SIGNATURE');
    // wrong versions
    await expectRefusal({ targets: sign(targetsV(1), keys.targets) }, 409, 'ROLLBACK');
    await expectRefusal({ targets: sign(targetsV(3), keys.targets) }, 400, 'VERSION_MISMATCH');
    // expired
    const expired = bumpVersion(targetsV(1), expiresIn(Date.now(), -DAY), 2);
    await expectRefusal({ targets: sign(expired, keys.targets) }, 400, 'EXPIRED');
    // bad JSON, non-canonical, wrong type, uploaded timestamp
    const bad = await fetch(gunUrl(base, gun), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"targets":',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('INVALID_JSON');
    const spaced = JSON.stringify(JSON.parse(new TextDecoder().decode(serializeMetadata(signed))), null, 2);
    await expectRefusal({ targets: spaced }, 400, 'NON_CANONICAL');
    await expectRefusal({ targets: sign(await rootFor(base, gun), keys.root) }, 400, 'WRONG_TYPE');
    await expectRefusal({ timestamp: signed }, 400, 'UPDATE_REFUSED');
    await expectRefusal({ snapshot: signed }, 400, 'UPDATE_REFUSED');
    // a delegated role outside its paths, or not delegated at all
    let rel = newTargets({ expires: expiresIn(Date.now(), 30 * DAY) });
    rel = withTarget(rel, 'app/v9', targetFileFor(testCrypto, utf8Encode('x')));
    await expectRefusal({ releases: sign(rel, keys.releases) }, 400, 'PATH_NOT_DELEGATED');
    await expectRefusal({ stranger: sign(rel, keys.releases) }, 400, 'UPDATE_REFUSED');
    await expectRefusal({ '1.x': sign(rel, keys.releases) }, 400, 'INVALID_ARGUMENT');

    // nothing of the refused updates is visible
    const current = parseMetadata(
      'targets',
      new Uint8Array(await (await fetch(gunUrl(base, gun, 'targets.json'))).arrayBuffer()),
    );
    expect(current.signed.version).toBe(1);

    // and the valid next update goes through, with a delegated role
    let releases = newTargets({ expires: expiresIn(Date.now(), 30 * DAY) });
    releases = withTarget(releases, 'releases/r1', targetFileFor(testCrypto, utf8Encode('r1')));
    const ok = await post(base, gun, { targets: signed, releases: sign(releases, keys.releases) });
    expect(ok.status).toBe(200);
    expect(ok.json.versions).toMatchObject({ root: 1, targets: 2, releases: 1, snapshot: 2, timestamp: 2 });
    const snap = parseMetadata(
      'snapshot',
      new Uint8Array(await (await fetch(gunUrl(base, gun, '2.snapshot.json'))).arrayBuffer()),
    );
    expect(Object.keys(snap.signed.meta).sort()).toEqual(['releases.json', 'targets.json']);
    const conflict = await post(base, gun, { targets: signed });
    expect({ status: conflict.status, code: conflict.json.error.code }).toEqual({
      status: 409,
      code: 'ROLLBACK',
    });
    expect(conflict.json.error.details.current).toMatchObject({ targets: 2, timestamp: 2 });
    // rollback of each role a client may upload: root, targets (above), a delegated role
    const rootAgain = await post(base, gun, { root: sign(await rootFor(base, gun), keys.root) });
    expect({ status: rootAgain.status, code: rootAgain.json.error.code }).toEqual({
      status: 409,
      code: 'ROLLBACK',
    });
    const releasesAgain = await post(base, gun, { releases: sign(releases, keys.releases) });
    expect({ status: releasesAgain.status, code: releasesAgain.json.error.code }).toEqual({
      status: 409,
      code: 'ROLLBACK',
    });
  });

  it('an upload with more signatures than its keys is refused unverified: 400 TOO_MANY_SIGNATURES, nothing stored', async () => {
    const gun = 'example.com/junk-signatures';
    await publishNew(base, gun);
    const t2 = sign(targetsV(2, { 'app/v2': 'v2' }), keys.targets);
    const junk = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        keyid: i.toString(16).padStart(64, '0'),
        sig: 'ab'.repeat(64),
        extra: {},
      }));
    // One key may sign targets: a valid signature and one more is already too many.
    for (const n of [1, 1000, 2000]) {
      const res = await post(base, gun, { targets: { ...t2, signatures: [...t2.signatures, ...junk(n)] } });
      expect({ n, status: res.status, code: res.json.error?.code }).toEqual({
        n,
        status: 400,
        code: 'TOO_MANY_SIGNATURES',
      });
    }
    expect(parseMetadata('targets', await bytesAt(gunUrl(base, gun, 'targets.json'))).signed.version).toBe(1);
    expect((await post(base, gun, { targets: t2 })).status).toBe(200);
  });

  it('rotates root with both thresholds; an online key rotation signs once a root names it', async () => {
    const gun = 'example.com/rotation';
    await publishNew(base, gun);
    const oldTimestampKey = await onlineKey(base, gun, 'timestamp');
    const rotated = await fetch(gunUrl(base, gun, 'timestamp.key'), { method: 'POST' });
    expect(rotated.status).toBe(200);
    const newKey = await onlineKey(base, gun, 'timestamp');
    expect(newKey.keyval.public).not.toBe(oldTimestampKey.keyval.public);
    const root2 = await rootFor(base, gun, { version: 2 });
    const v2 = withRootRole(root2, 'root', { keys: [keys.other.key] });
    const onlyNew = await post(base, gun, { root: sign(v2, keys.other) });
    expect(onlyNew.json.error.code).toBe('THRESHOLD_NOT_MET');
    const ok = await post(base, gun, { root: sign(v2, keys.root, keys.other) });
    expect(ok.status).toBe(200);
    const ts = parseMetadata(
      'timestamp',
      new Uint8Array(await (await fetch(gunUrl(base, gun, 'timestamp.json'))).arrayBuffer()),
    );
    expect(ts.signatures.map((s) => s.keyid)).toEqual([v2.roles.timestamp.keyids[0]]);
  });

  it('an expired targets role can be replaced; an expired timestamp is refreshed on GET', async () => {
    const gun = 'example.com/expiry';
    await publishNew(base, gun);
    offset = 100 * DAY; // targets v1 (90 days) and timestamp v1 (14 days) have expired; root has not
    try {
      const ts = parseMetadata('timestamp', await bytesAt(gunUrl(base, gun, 'timestamp.json')));
      expect(ts.signed.version).toBe(2);
      expect(ts.signed.expiresAt).toBeGreaterThan(Date.now() + offset);
      const t2 = bumpVersion(targetsV(1), expiresIn(Date.now() + offset, 30 * DAY), 2);
      const res = await post(base, gun, { targets: sign(t2, keys.targets) });
      expect(res.status).toBe(200);
      expect(res.json.versions).toMatchObject({ targets: 2, timestamp: 3 });
      offset = 400 * DAY; // now root has expired too: nothing can be published
      const t3 = bumpVersion(targetsV(1), expiresIn(Date.now() + offset, 30 * DAY), 3);
      const refused = await post(base, gun, { targets: sign(t3, keys.targets) });
      expect(refused.json.error).toMatchObject({ code: 'EXPIRED', details: { role: 'root' } });
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/tufa_resigns_total\{role="timestamp"\} [1-9]/);
      expect(metrics).toMatch(/tufa_refusals_total\{code="EXPIRED"\} [1-9]/);
      expect(metrics).toMatch(/tufa_publishes_total [1-9]/);
    } finally {
      offset = 0;
    }
  });

  it('GUNs are validated before any database access', async () => {
    for (const path of [
      '/v2/../x/_trust/tuf/root.json',
      '/v2/a//b/_trust/tuf/root.json',
      '/v2/a/./b/_trust/tuf/root.json',
      `/v2/${'a'.repeat(300)}/_trust/tuf/root.json`,
      '/v2/caf%C3%A9/_trust/tuf/root.json',
      '/v2/a%2F..%2Fb/_trust/tuf/root.json',
    ]) {
      const res = await rawGet(base, path);
      expect(res.status, path).toBe(400);
      expect(JSON.parse(res.body).error.code).toBe('INVALID_ARGUMENT');
    }
    const unknown = await fetch(gunUrl(base, 'example.com/nothing', 'root.json'));
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    expect(await refusal(fetch(`${base}/v3/whatever`))).toBe('404 NOT_FOUND');
  });

  it('acts only on the GUN the client sent: a name that would normalise to another is refused and creates nothing', async () => {
    const target = 'example.com/normalised';
    // A valid first update for `target` (its online keys exist already, created by rootFor).
    const update = body({
      root: sign(await rootFor(base, target), keys.root),
      targets: sign(targetsV(1), keys.targets),
    });
    const tables = ['collections', 'metadata', 'online_keys', 'changes', 'pending_updates'];
    const counts = async () =>
      Promise.all(
        tables.map(
          async (t) => (await server.store.pool.query(`SELECT count(*)::int AS n FROM ${t}`)).rows[0].n,
        ),
      );
    const before = await counts();
    for (const gun of [
      'example.com/x/../normalised',
      'example.com/./normalised',
      'example.com//normalised',
      'example.com/%2e%2e/example.com/normalised',
      'example.com/%2E%2E/example.com/normalised',
      'example.com%2Fnormalised',
      'example.com\\normalised',
      'EXAMPLE.com/normalised',
      'example.com/normalised/.',
      'example.com/normalised/',
    ]) {
      for (const [method, path, payload] of [
        ['POST', `/v2/${gun}/_trust/tuf/`, update],
        ['GET', `/v2/${gun}/_trust/tuf/timestamp.key`, undefined],
        ['POST', `/v2/${gun}/_trust/tuf/snapshot.key`, undefined],
        ['POST', `/v2/${gun}/_trust/pending/`, update],
        ['DELETE', `/v2/${gun}/_trust/tuf/`, undefined],
      ] as const) {
        const res = await rawGet(base, path, method, payload);
        expect(res.status, `${method} ${path}`).toBe(400);
        expect(JSON.parse(res.body).error.code, `${method} ${path}`).toBe('INVALID_ARGUMENT');
      }
    }
    expect(await counts()).toEqual(before);
    expect(await refusal(fetch(gunUrl(base, target, 'root.json')))).toBe('404 NOT_FOUND');
    // The same update under its own name is accepted: the refusals were about the names alone.
    const accepted = await rawGet(base, `/v2/${target}/_trust/tuf/`, 'POST', update);
    expect(accepted.status, accepted.body).toBe(200);
  });

  it('a registry host with a port is an ordinary GUN, sent and stored as it is', async () => {
    const gun = 'registry.example.com:5000/team/app';
    await publishNew(base, gun);
    const res = await rawGet(base, `/v2/${gun}/_trust/tuf/targets.json`);
    expect(res.status).toBe(200);
    const encoded = await rawGet(base, '/v2/registry.example.com%3A5000/team/app/_trust/tuf/targets.json');
    expect(`${encoded.status} ${JSON.parse(encoded.body).error.code}`).toBe('400 INVALID_ARGUMENT');
  });

  it('metadata held in memory is answered as the app answers it: headers, HEAD, 304, a body is 413', async () => {
    const gun = 'example.com/memory';
    await publishNew(base, gun);
    const raw = (method: string, headers: Record<string, string> = {}, body?: string) =>
      new Promise<{ status: number; headers: Record<string, unknown>; text: string }>((done, fail) => {
        const req = request(gunUrl(base, gun, 'targets.json'), { method, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            done({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString() }),
          );
        });
        req.on('error', fail);
        req.end(body);
      });
    const shape = (h: Record<string, unknown>) => {
      const { date: _date, 'x-request-id': id, ...rest } = h;
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      return rest;
    };
    const first = await raw('GET'); // from the database, through the app
    const second = await raw('GET'); // held in memory now
    expect(second.status).toBe(200);
    expect(second.text).toBe(first.text);
    expect(shape(second.headers)).toEqual(shape(first.headers));
    const head = await raw('HEAD');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(first.text)));
    const again = await raw('GET', {
      'if-none-match': String(first.headers.etag),
      'x-request-id': 'trace-1',
    });
    expect(again.status).toBe(304);
    expect(again.headers['x-request-id']).toBe('trace-1');
    expect(again.text).toBe('');
    const withBody = await raw(
      'GET',
      { 'content-type': 'text/plain', 'content-length': '2000' },
      'x'.repeat(2000),
    );
    expect(withBody.status).toBe(413);
    expect(JSON.parse(withBody.text).error.code).toBe('TOO_LARGE');
  });

  it('gzip for a client that asks: Content-Length of the sent bytes, its own ETag, Vary, HEAD and 304 alike', async () => {
    const gun = 'example.com/gzip';
    const tags = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`app/v${i}`, `content ${i}`]));
    await publishNew(base, gun, tags);
    const raw = (method: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; headers: Record<string, unknown>; bytes: Buffer }>((done, fail) => {
        const req = request(gunUrl(base, gun, 'targets.json'), { method, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            done({ status: res.statusCode!, headers: res.headers, bytes: Buffer.concat(chunks) }),
          );
        });
        req.on('error', fail);
        req.end();
      });
    const gz = { 'accept-encoding': 'gzip, deflate, br' };
    for (const round of ['from the database', 'from memory']) {
      const plain = await raw('GET');
      const zipped = await raw('GET', gz);
      expect(plain.bytes.length, round).toBeGreaterThan(4096);
      expect([plain.headers['content-encoding'], plain.headers.vary], round).toEqual([
        undefined,
        'Accept-Encoding',
      ]);
      expect([zipped.headers['content-encoding'], zipped.headers.vary], round).toEqual([
        'gzip',
        'Accept-Encoding',
      ]);
      expect(zipped.headers['content-length'], round).toBe(String(zipped.bytes.length));
      expect(gunzipSync(zipped.bytes).equals(plain.bytes), round).toBe(true);
      expect(zipped.headers.etag, round).toBe(String(plain.headers.etag).replace(/"$/, '+gzip"'));
      const head = await raw('HEAD', gz);
      expect([head.bytes.length, head.headers['content-length']], round).toEqual([
        0,
        String(zipped.bytes.length),
      ]);
      const notModified = await raw('GET', { ...gz, 'if-none-match': String(zipped.headers.etag) });
      expect([notModified.status, notModified.headers.vary], round).toEqual([304, 'Accept-Encoding']);
      expect((await raw('GET', { ...gz, 'if-none-match': String(plain.headers.etag) })).status, round).toBe(
        200,
      );
    }
    // timestamp.json is too small to gain anything: as it is, without Vary.
    const ts = await fetch(gunUrl(base, gun, 'timestamp.json'), { headers: gz });
    expect([ts.headers.get('content-encoding'), ts.headers.get('vary')]).toEqual([null, null]);
  });

  it('answers a metadata read from memory exactly as from the database: status, headers in order, body', async () => {
    const tags = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`app/v${i}`, `content ${i}`]));
    let n = 0;
    for (const method of ['GET', 'HEAD']) {
      for (const encoding of [{}, { 'accept-encoding': 'gzip' }]) {
        for (const [file, other] of [
          ['targets.json', '1.targets.json'],
          ['1.targets.json', 'targets.json'],
          ['timestamp.json', '1.snapshot.json'],
        ]) {
          for (const conditional of [false, true]) {
            // A collection of its own: its first read of `file` comes from the database.
            const gun = `example.com/same-answers/${n++}`;
            await publishNew(base, gun, tags);
            // The ETag of the same bytes under another name (the cache holds files by name).
            const etag =
              file === 'timestamp.json'
                ? `"${createHash('sha256')
                    .update(await bytesAt(gunUrl(base, gun, file)))
                    .digest('hex')}"`
                : (await rawAnswer(gunUrl(base, gun, other!), 'GET', encoding)).headers.ETag!;
            const headers = conditional ? { ...encoding, 'if-none-match': etag } : encoding;
            const url = gunUrl(base, gun, file);
            const first = await rawAnswer(url, method, headers);
            const second = await rawAnswer(url, method, headers);
            const what = `${method} ${file} ${JSON.stringify(headers)}`;
            expect(second, what).toEqual(first);
            // timestamp.json was read above to learn its ETag: only its conditional answer is checked here.
            expect(first.status, what).toBe(conditional ? 304 : 200);
            expect(first.headers['Content-Encoding'], what).toBe(
              'accept-encoding' in encoding && file !== 'timestamp.json' && !conditional ? 'gzip' : undefined,
            );
            expect(first.bytes.length, what).toBe(
              method === 'GET' && !conditional ? Number(first.headers['Content-Length']) : 0,
            );
            // The order the one writer has always sent them in (Date, Connection and Keep-Alive are Node's).
            const vary = file === 'timestamp.json' ? [] : ['Vary'];
            expect(first.names, what).toEqual(
              conditional
                ? ['X-Request-Id', 'ETag', 'Cache-Control', ...vary, 'Date', 'Connection', 'Keep-Alive']
                : [
                    'X-Request-Id',
                    'ETag',
                    'Cache-Control',
                    'Content-Type',
                    ...vary,
                    ...(first.headers['Content-Encoding'] === undefined ? [] : ['Content-Encoding']),
                    'Content-Length',
                    'Date',
                    'Connection',
                    'Keep-Alive',
                  ],
            );
          }
        }
      }
    }
  });

  it('415 for a wrong content type, 413 for an oversized body, 405 for a wrong method', async () => {
    const gun = 'example.com/limits';
    await publishNew(base, gun);
    const wrongType = await fetch(gunUrl(base, gun), {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: '{}',
    });
    expect(await refusal(wrongType)).toBe('415 INVALID_ARGUMENT');
    const big = await fetch(gunUrl(base, gun), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"targets":"${'x'.repeat(1024 * 1024 + 10)}"}`,
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('TOO_LARGE');
    const put = await fetch(gunUrl(base, gun), { method: 'PUT', body: '{}' });
    expect(await refusal(put)).toBe('405 INVALID_ARGUMENT');
    const empty = await post(base, gun, {});
    expect(empty.json.error.code).toBe('INVALID_ARGUMENT');
    const notObject = await fetch(gunUrl(base, gun), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '[]',
    });
    expect(await refusal(notObject)).toBe('400 INVALID_ARGUMENT');
  });

  it('DELETE removes exactly that GUN; the changefeed lists publishes and deletes in order', async () => {
    await publishNew(base, 'x/app');
    await publishNew(base, 'x/app1');
    const del = await fetch(gunUrl(base, 'x/app'), { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await refusal(fetch(gunUrl(base, 'x/app', 'root.json')))).toBe('404 NOT_FOUND');
    expect((await fetch(gunUrl(base, 'x/app1', 'root.json'))).status).toBe(200);
    expect(await refusal(fetch(gunUrl(base, 'x/app'), { method: 'DELETE' }))).toBe('404 NOT_FOUND');

    const feed = (await (await fetch(`${base}/v2/_trust/changefeed?records=1000`)).json()) as {
      count: number;
      records: { id: string; gun: string; category: string; version: number }[];
    };
    const mine = feed.records.filter((r) => r.gun.startsWith('x/app'));
    expect(mine.map((r) => [r.gun, r.category])).toEqual([
      ['x/app', 'update'],
      ['x/app1', 'update'],
      ['x/app', 'deletion'],
    ]);
    const ids = feed.records.map((r) => Number(r.id));
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    const paged = (await (
      await fetch(`${base}/v2/_trust/changefeed?change_id=${ids[0]}&records=1`)
    ).json()) as {
      records: { id: string }[];
    };
    expect(paged.records.map((r) => Number(r.id))).toEqual([ids[1]]);
    const perGun = (await (await fetch(`${base}/v2/x/app1/_trust/changefeed`)).json()) as { count: number };
    expect(perGun.count).toBe(1);
    expect(await refusal(fetch(`${base}/v2/_trust/changefeed?records=0`))).toBe('400 INVALID_ARGUMENT');
    expect(await refusal(fetch(`${base}/v2/_trust/changefeed?change_id=-1`))).toBe('400 INVALID_ARGUMENT');
  });

  it('a client-signed snapshot is accepted only when the snapshot key is offline', async () => {
    const gun = 'example.com/offline-snapshot';
    const root = withRootRole(await rootFor(base, gun), 'snapshot', { keys: [keys.other.key] });
    const targets = sign(targetsV(1, { 'a/b': 'c' }), keys.targets);
    const missing = await post(base, gun, { root: sign(root, keys.root), targets });
    expect(missing.json.error.code).toBe('UPDATE_REFUSED');
    const { newSnapshot, snapshotMetaForState } = await import('@tufa/core');
    const meta = snapshotMetaForState(testCrypto, {
      targets: { bytes: serializeMetadata(targets), metadata: targets },
      delegated: new Map(),
    });
    const snapshot = sign(newSnapshot({ expires: expiresIn(Date.now(), DAY), meta }), keys.other);
    const ok = await post(base, gun, { root: sign(root, keys.root), targets, snapshot });
    expect(ok.status).toBe(200);
    const served = await fetch(gunUrl(base, gun, 'snapshot.json'));
    expect(Buffer.from(await served.arrayBuffer()).equals(Buffer.from(serializeMetadata(snapshot)))).toBe(
      true,
    );
    // The re-signer refreshes its timestamp but never touches a snapshot it does not hold the key of.
    offset = 10 * DAY;
    try {
      expect(await server.store.dueForResign(1 / 3, 1000)).toContain(gun);
      expect(await server.store.resign(gun, { fraction: 1 / 3, wait: false })).toEqual(['timestamp']);
      expect(await server.store.resign(gun, { fraction: 1 / 3, wait: false })).toEqual([]);
      expect(await server.store.dueForResign(1 / 3, 1000)).not.toContain(gun);
    } finally {
      offset = 0;
    }
    // a snapshot of the same version again is a rollback, even with a new targets
    const targets2 = sign(targetsV(2, { 'a/b': 'd' }), keys.targets);
    const meta2 = snapshotMetaForState(testCrypto, {
      targets: { bytes: serializeMetadata(targets2), metadata: targets2 },
      delegated: new Map(),
    });
    const stale = sign(newSnapshot({ expires: expiresIn(Date.now(), DAY), meta: meta2 }), keys.other);
    const refused = await post(base, gun, { targets: targets2, snapshot: stale });
    expect({ status: refused.status, code: refused.json.error.code }).toEqual({
      status: 409,
      code: 'ROLLBACK',
    });
    const next = sign(
      newSnapshot({ version: 2, expires: expiresIn(Date.now(), DAY), meta: meta2 }),
      keys.other,
    );
    expect((await post(base, gun, { targets: targets2, snapshot: next })).status).toBe(200);
    const unmatched = sign(
      newSnapshot({ version: 3, expires: expiresIn(Date.now(), DAY), meta: meta2 }),
      keys.other,
    );
    const wrong = await post(base, gun, { targets: sign(targetsV(3), keys.targets), snapshot: unmatched });
    expect({ status: wrong.status, code: wrong.json.error.code }).toEqual({
      status: 400,
      code: 'VERSION_MISMATCH',
    });
  });

  it('the body parser keeps each document byte for byte', async () => {
    const gun = 'example.com/bytes';
    const root = sign(await rootFor(base, gun), keys.root);
    const targets = sign(targetsV(1), keys.targets);
    const text = ` { "root" :${new TextDecoder().decode(serializeMetadata(root))} ,\n"targets":  ${new TextDecoder().decode(serializeMetadata(targets))} } `;
    expect(text).not.toBe(body({ root, targets }));
    const res = await fetch(gunUrl(base, gun), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: text,
    });
    expect(res.status).toBe(200);
  });
});

describe('migrations', () => {
  it('two processes migrating together apply each migration once', async () => {
    const url = await pgServer.createDatabase();
    const pools = [createPool(url, 2), createPool(url, 2)];
    try {
      const applied = await Promise.all(pools.map((p) => migrate(p)));
      expect(applied.flat()).toEqual(readMigrations(DEFAULT_MIGRATIONS_DIR).map((m) => m.name));
      const rows = await pools[0]!.query('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.rows.map((r) => r.version)).toEqual(
        readMigrations(DEFAULT_MIGRATIONS_DIR).map((m) => m.version),
      );
      expect(await migrate(pools[1]!)).toEqual([]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });
});

describe('metadata storage', () => {
  it('stores a document uncompressed (migration 0004): a 2 MB snapshot is not pglz-compressed on each publish', async () => {
    const url = await pgServer.createDatabase();
    const pool = createPool(url, 1);
    try {
      await migrate(pool);
      const column = await pool.query(
        "SELECT attstorage FROM pg_attribute WHERE attrelid = 'metadata'::regclass AND attname = 'data'",
      );
      expect(column.rows[0].attstorage).toBe('e');
      // Compressible bytes, as a snapshot's repeated entries are: stored as they are, out of line.
      const data = Buffer.from('{"hashes":{"sha256":"00"},"length":1,"version":1},'.repeat(40_000));
      await pool.query("INSERT INTO collections (gun) VALUES ('example.com/storage')");
      await pool.query(
        `INSERT INTO metadata (collection_id, role, version, data, sha256, expires, created_at, server_signed, delegates)
         SELECT id, 'snapshot', 1, $1, 'x', now(), now(), true, false FROM collections`,
        [data],
      );
      const stored = await pool.query(
        "SELECT pg_column_compression(data) AS compression, pg_column_size(data) AS size, data FROM metadata WHERE role = 'snapshot'",
      );
      expect(stored.rows[0].compression).toBeNull();
      expect(stored.rows[0].size).toBeGreaterThanOrEqual(data.length);
      expect(Buffer.compare(stored.rows[0].data, data)).toBe(0);
    } finally {
      await pool.end();
    }
  });
});

describe('online keys and access', () => {
  it('GET of a key for an unknown collection creates nothing for a caller who may not write', async () => {
    const url = await pgServer.createDatabase();
    const server = await startTestServer(
      { databaseUrl: url },
      { authorize: ({ action }) => action === 'read' },
    );
    try {
      const res = await fetch(gunUrl(server.url, 'example.com/ro', 'timestamp.key'));
      expect(await refusal(res)).toBe('403 FORBIDDEN');
      const rows = await server.store.pool.query('SELECT count(*)::int AS n FROM collections');
      expect(rows.rows[0].n).toBe(0);
      const post = await fetch(gunUrl(server.url, 'example.com/ro', 'timestamp.key'), { method: 'POST' });
      expect(await refusal(post)).toBe('403 FORBIDDEN');
    } finally {
      await server.close();
    }
  });

  it('the embedded default generates its master key once; a lost key file is a start-up error', async () => {
    const dataDir = tempDir();
    const first = await startTestServer({ dataDir, masterKey: undefined });
    await onlineKey(first.url, 'example.com/generated', 'timestamp');
    await first.close();
    const keyFile = join(dataDir, 'master.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const saved = readFileSync(keyFile);
    rmSync(keyFile);
    await expect(startTestServer({ dataDir, masterKey: undefined })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(existsSync(keyFile)).toBe(false);
    writeFileSync(keyFile, saved, { mode: 0o600 });
    const again = await startTestServer({ dataDir, masterKey: undefined });
    expect((await onlineKey(again.url, 'example.com/generated', 'timestamp')).keyval.public).toMatch(
      /^[0-9a-f]{64}$/,
    );
    await again.close();
  });

  it('an unexpected failure is a 500 without internals, logged with the request id; health says 503', async () => {
    const url = await pgServer.createDatabase();
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const server = await startTestServer({ databaseUrl: url }, { logger });
    try {
      await publishNew(server.url, 'example.com/broken');
      await server.store.pool.query('ALTER TABLE metadata RENAME TO metadata_gone');
      const res = await fetch(gunUrl(server.url, 'example.com/broken', 'root.json'), {
        headers: { 'x-request-id': 'req-500-test' },
      });
      expect(res.status).toBe(500);
      expect(res.headers.get('x-request-id')).toBe('req-500-test');
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({
        error: { code: 'INTERNAL', message: 'internal error (request id req-500-test)', details: {} },
      });
      expect(text).not.toContain('metadata');
      const logged = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'request failed');
      expect(logged).toMatchObject({ req_id: 'req-500-test', level: 50 });
      await server.store.pool.end(); // the database is gone for this server
      const health = await fetch(`${server.url}/_health`);
      expect(health.status).toBe(503);
      expect(((await health.json()) as { status: string }).status).toBe('unavailable');
    } finally {
      await server.close().catch(() => {});
    }
  });

  it('keys are encrypted at rest; a wrong master key is a start-up error', async () => {
    const url = await pgServer.createDatabase();
    const server = await startTestServer({ databaseUrl: url });
    const key = await onlineKey(server.url, 'example.com/k', 'timestamp');
    const row = await server.store.pool.query('SELECT private_key FROM online_keys');
    const sealed: Buffer = row.rows[0].private_key;
    expect(sealed.length).toBe(12 + 16 + 32);
    expect(sealed.toString('hex')).not.toContain(key.keyval.public);
    await server.close();
    await expect(startTestServer({ databaseUrl: url, masterKey: 'cd'.repeat(32) })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(startTestServer({ databaseUrl: url, masterKey: undefined })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});
