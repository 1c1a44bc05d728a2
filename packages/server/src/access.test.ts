/**
 * Access control end to end (issue 6, section 5): one test per denial, the admin API, the abuse
 * limits, the audit rows, and a grep of everything the servers logged for tokens and private keys.
 * Servers run in-process on one throwaway PostgreSQL; a clock offset stands in for waiting.
 */
import { request } from 'node:http';
import { expiresIn, newTargets, targetFileFor, utf8Encode, withDelegation, withTarget } from '@tufa/core';
import type { RunningServer } from '@tufa/server';
import { DAY, sign, testCrypto } from '@tufa/testing';
import { body, keys, rootFor, targetsV } from '@tufa/testing/publisher';
import {
  MASTER_KEY,
  startTestPostgres,
  startTestServer,
  type TestPostgres,
  waitFor,
} from '@tufa/testing/server';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const logs: string[] = [];
const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(line) });
/** Every token this file ever saw: none may appear in a log line or an audit row. */
const issued: string[] = [];

let pgs: TestPostgres;
let dbUrl: string;
let server: RunningServer;
let base: string;
let offset = 0;
const clock = () => Date.now() + offset;
const WINDOW = 10_000;

const tokens: Record<string, string> = {};

interface Answer {
  status: number;
  headers: Headers;
  json: any;
}

async function call(
  path: string,
  options: {
    method?: string | undefined;
    token?: string | undefined;
    authorization?: string | undefined;
    body?: string | undefined;
    contentType?: string | undefined;
    at?: string | undefined;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  if (options.body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const res = await fetch(`${options.at ?? base}${path}`, {
    method: options.method ?? 'GET',
    headers,
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, json };
}

const trust = (gun: string, file = '') => `/v2/${gun}/_trust/tuf/${file}`;

async function makeToken(name: string, scopes: string[]): Promise<string> {
  const { token } = await server.tokens.create(name, scopes);
  issued.push(token);
  return token;
}

/** Online keys created with `token`, then root v1 and targets v1 published with it. */
async function publishAs(
  token: string | undefined,
  gun: string,
  tags: Record<string, string> = { 'app/v1': 'v1' },
) {
  for (const role of ['timestamp', 'snapshot']) {
    const key = await call(trust(gun, `${role}.key`), { token });
    if (key.status !== 200) return key;
  }
  const root = sign(await rootFor(base, gun), keys.root);
  const targets = sign(targetsV(1, tags), keys.targets);
  return call(trust(gun), { method: 'POST', token, body: body({ root, targets }) });
}

async function count(table: string): Promise<number> {
  const r = await server.store.pool.query(`SELECT count(*)::int AS n FROM ${table}`);
  return r.rows[0].n as number;
}

/** Counts of every table a write could touch: a denied request must leave them all alone. */
async function snapshotOfState(): Promise<number[]> {
  return Promise.all(['collections', 'metadata', 'online_keys', 'changes', 'tokens'].map(count));
}

function expectUnauthorized(a: Answer, error?: string) {
  expect(a.status).toBe(401);
  expect(a.json.error.code).toBe('UNAUTHORIZED');
  expect(a.headers.get('www-authenticate')).toBe(
    error === undefined ? 'Bearer realm="tufa"' : `Bearer realm="tufa", error="${error}"`,
  );
}

function expectForbidden(a: Answer) {
  expect(a.status).toBe(403);
  expect(a.json.error.code).toBe('FORBIDDEN');
  expect(a.headers.get('www-authenticate')).toMatch(/^Bearer realm="tufa", error="insufficient_scope"/);
}

beforeAll(async () => {
  pgs = await startTestPostgres();
  dbUrl = await pgs.createDatabase();
  server = await startTestServer(
    {
      databaseUrl: dbUrl,
      allowAnonymousWrites: false,
      authFailLimit: 5,
      authFailWindow: WINDOW,
      maxConcurrentPerAddress: 4,
      maxMetadataSize: 16 * 1024,
      maxDelegatedRoles: 2,
    },
    { logger, clock },
  );
  base = server.url;
  tokens.admin = await makeToken('admin', ['admin:*']);
  tokens.acmePush = await makeToken('acme-push', ['push:acme/*']);
  tokens.acmePull = await makeToken('acme-pull', ['pull:acme/*']);
  tokens.acmeDelete = await makeToken('acme-delete', ['delete:acme/*']);
  tokens.acmeAdmin = await makeToken('acme-admin', ['admin:acme/*']);
  tokens.pullAll = await makeToken('pull-all', ['pull:*']);
  const first = await publishAs(tokens.acmePush, 'acme/app');
  expect(first.status).toBe(200);
  const other = await publishAs(tokens.admin, 'other/app');
  expect(other.status).toBe(200);
});

afterAll(async () => {
  await server?.close();
  await pgs?.stop();
});

// Each test starts with a clean failed-authentication window.
beforeEach(() => {
  offset += WINDOW + 1000;
});

describe('denials (each changes nothing)', () => {
  it('no token: 401 with WWW-Authenticate for every write; a key GET creates nothing', async () => {
    const before = await snapshotOfState();
    const root = sign(targetsV(1), keys.targets);
    expectUnauthorized(await call(trust('acme/app'), { method: 'POST', body: body({ targets: root }) }));
    expectUnauthorized(await call(trust('acme/app', 'timestamp.key'), { method: 'POST' }));
    expectUnauthorized(await call(trust('acme/app'), { method: 'DELETE' }));
    // It says a write needs a token, as a write would.
    expectUnauthorized(await call(trust('acme/new', 'timestamp.key')));
    expect(await snapshotOfState()).toEqual(before);
    // Anonymous pull is the default.
    expect((await call(trust('acme/app', 'timestamp.json'))).status).toBe(200);
  });

  it('a malformed Authorization header: 401 invalid_request', async () => {
    const before = await snapshotOfState();
    for (const authorization of ['Basic YWRtaW46YWRtaW4=', 'Bearer', `Bearer ${tokens.acmePush} extra`]) {
      offset += WINDOW + 1000;
      const a = await call(trust('acme/app', 'timestamp.key'), { method: 'POST', authorization });
      expectUnauthorized(a, 'invalid_request');
    }
    expect(await snapshotOfState()).toEqual(before);
  });

  it('an unknown token: 401 invalid_token', async () => {
    const before = await snapshotOfState();
    const unknown = `tufa_${'0'.repeat(16)}_${'A'.repeat(43)}`;
    expectUnauthorized(
      await call(trust('acme/app', 'timestamp.key'), { method: 'POST', token: unknown }),
      'invalid_token',
    );
    expectUnauthorized(
      await call(trust('acme/app'), { method: 'DELETE', token: 'not-a-tufa-token' }),
      'invalid_token',
    );
    expect(await snapshotOfState()).toEqual(before);
  });

  it('a revoked token: 401 from the moment it is revoked', async () => {
    const token = await makeToken('short-lived', ['push:acme/*']);
    expect((await call(trust('acme/app', 'timestamp.key'), { token })).status).toBe(200);
    expect(await server.tokens.revoke('short-lived')).toBe(true);
    const before = await snapshotOfState();
    expectUnauthorized(
      await call(trust('acme/app', 'timestamp.key'), { method: 'POST', token }),
      'invalid_token',
    );
    expect(await snapshotOfState()).toEqual(before);
    const listed = (await server.tokens.list()).find((t) => t.name === 'short-lived')!;
    expect(listed.revoked_at).not.toBeNull();
    expect(listed.last_used_at).not.toBeNull();
  });

  it('a token for another GUN glob: 403, acme/* does not cover acmecorp/app', async () => {
    const before = await snapshotOfState();
    for (const gun of ['acmecorp/app', 'other/app', 'acme']) {
      expectForbidden(await call(trust(gun, 'timestamp.key'), { method: 'POST', token: tokens.acmePush }));
      const root = sign(targetsV(2), keys.targets);
      expectForbidden(
        await call(trust(gun), { method: 'POST', token: tokens.acmePush, body: body({ targets: root }) }),
      );
    }
    // A GET of a key for a GUN the token may not push creates nothing, and says the scope is missing.
    const key = await call(trust('acmecorp/app', 'timestamp.key'), { token: tokens.acmePush });
    expectForbidden(key);
    expect(key.json.error.message).toMatch(/do not cover push:acmecorp\/app/);
    expect(await snapshotOfState()).toEqual(before);
  });

  it('a pull-only token pushing: 403', async () => {
    const before = await snapshotOfState();
    const targets = sign(targetsV(2, { 'app/v2': 'v2' }), keys.targets);
    expectForbidden(
      await call(trust('acme/app'), { method: 'POST', token: tokens.acmePull, body: body({ targets }) }),
    );
    expectForbidden(
      await call(trust('acme/app', 'snapshot.key'), { method: 'POST', token: tokens.acmePull }),
    );
    expectForbidden(await call(trust('acme/pulled', 'timestamp.key'), { token: tokens.acmePull }));
    expect(await snapshotOfState()).toEqual(before);
    expect((await call(trust('acme/app', 'targets.json'), { token: tokens.acmePull })).status).toBe(200);
  });

  it('a push token deleting: 403, the collection stays', async () => {
    const before = await snapshotOfState();
    expectForbidden(await call(trust('acme/app'), { method: 'DELETE', token: tokens.acmePush }));
    expectForbidden(await call(trust('acme/app'), { method: 'DELETE', token: tokens.acmePull }));
    expect(await snapshotOfState()).toEqual(before);
    expect((await call(trust('acme/app', 'root.json'))).status).toBe(200);
  });

  it('admin actions without admin: 401 anonymous, 403 with any token lacking admin:*', async () => {
    const before = await snapshotOfState();
    const create = JSON.stringify({ name: 'sneaky', scopes: ['admin:*'] });
    for (const token of [undefined, tokens.acmePush, tokens.acmeAdmin, tokens.pullAll]) {
      const answers = [
        await call('/v2/_admin/tokens', token === undefined ? {} : { token }),
        await call('/v2/_admin/tokens', { method: 'POST', body: create, ...(token ? { token } : {}) }),
        await call('/v2/_admin/tokens/admin', { method: 'DELETE', ...(token ? { token } : {}) }),
        await call('/v2/_admin/audit', token === undefined ? {} : { token }),
      ];
      for (const a of answers) {
        if (token === undefined) expectUnauthorized(a);
        else expectForbidden(a);
      }
    }
    expect(await snapshotOfState()).toEqual(before);
    expect((await server.tokens.list()).map((t) => t.name)).not.toContain('sneaky');
  });

  it('a delete token deletes exactly its collection', async () => {
    expect((await publishAs(tokens.acmePush, 'acme/doomed')).status).toBe(200);
    const gone = await call(trust('acme/doomed'), { method: 'DELETE', token: tokens.acmeDelete });
    expect(gone.status).toBe(200);
    const doomed = await call(trust('acme/doomed', 'root.json'));
    expect([doomed.status, doomed.json.error.code]).toEqual([404, 'NOT_FOUND']);
    expect((await call(trust('acme/app', 'root.json'))).status).toBe(200);
  });
});

describe('--require-auth-for-pull', () => {
  let closed: RunningServer;
  beforeAll(async () => {
    closed = await startTestServer(
      { databaseUrl: dbUrl, allowAnonymousWrites: false, requireAuthForPull: true },
      { logger, clock },
    );
  });
  afterAll(async () => {
    await closed?.close();
  });

  it('anonymous pulls get 401, whether the GUN exists or not', async () => {
    const at = closed.url;
    const exists = await call(trust('acme/app', 'timestamp.json'), { at });
    const missing = await call(trust('acme/missing', 'timestamp.json'), { at });
    expectUnauthorized(exists);
    expectUnauthorized(missing);
    expect(exists.json).toEqual(missing.json);
    expectUnauthorized(await call(trust('acme/app', 'timestamp.key'), { at }));
    expectUnauthorized(await call('/v2/acme/app/_trust/changefeed', { at }));
    expectUnauthorized(await call('/v2/_trust/changefeed', { at }));
  });

  it('a pull token for another glob gets the same 403 for an existing and a missing GUN', async () => {
    const at = closed.url;
    const exists = await call(trust('other/app', 'root.json'), { at, token: tokens.acmePull });
    const missing = await call(trust('other/missing', 'root.json'), { at, token: tokens.acmePull });
    expectForbidden(exists);
    expectForbidden(missing);
    expect(exists.json.error.message.replace('other/app', 'X')).toBe(
      missing.json.error.message.replace('other/missing', 'X'),
    );
    // The whole changefeed names every collection: only pull:* (or admin) reads it.
    expectForbidden(await call('/v2/_trust/changefeed', { at, token: tokens.acmePull }));
    expect((await call('/v2/_trust/changefeed', { at, token: tokens.pullAll })).status).toBe(200);
    expect((await call('/v2/acme/app/_trust/changefeed', { at, token: tokens.acmePull })).status).toBe(200);
  });

  it('the right pull token (or a push token) reads', async () => {
    const at = closed.url;
    expect((await call(trust('acme/app', 'timestamp.json'), { at, token: tokens.acmePull })).status).toBe(
      200,
    );
    expect((await call(trust('acme/app', 'timestamp.json'), { at, token: tokens.acmePush })).status).toBe(
      200,
    );
    expect((await call(trust('acme/app', 'timestamp.json'), { at, token: tokens.acmeDelete })).status).toBe(
      403,
    );
  });

  it('metadata held in memory is served to a pull token as from the database, and refused once it is revoked', async () => {
    const token = await makeToken('pull-short-lived', ['pull:acme/*']);
    const get = (headers: Record<string, string> = {}) =>
      fetch(`${closed.url}${trust('acme/app', 'targets.json')}`, {
        headers: { authorization: `Bearer ${token}`, ...headers },
      });
    const first = await get();
    const second = await get(); // held in memory now
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(await second.text()).toBe(await first.text());
    for (const h of ['etag', 'cache-control', 'content-type', 'content-length']) {
      expect(second.headers.get(h), h).toBe(first.headers.get(h));
    }
    const etag = first.headers.get('etag')!;
    expect((await get({ 'if-none-match': etag })).status).toBe(304);
    // No token check is cached: the revocation counts from the next request on.
    expect(await server.tokens.revoke('pull-short-lived')).toBe(true);
    for (const headers of [{}, { 'if-none-match': etag }]) {
      const refused = await get(headers);
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
      expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="tufa", error="invalid_token"');
    }
  });
  it('a pull token gets from memory exactly what it got from the database: GET and HEAD, gzip or not, 200 and 304', async () => {
    const tags = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`app/v${i}`, `content ${i}`]));
    const answer = (url: string, method: string, headers: Record<string, string>) =>
      new Promise<{ status: number; headers: string[]; bytes: Buffer }>((done, fail) => {
        const req = request(url, {
          method,
          headers: { authorization: `Bearer ${tokens.acmePull}`, ...headers },
        });
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            // Every header in order; the request id's and Date's values differ per request.
            const sent = res.rawHeaders.map((v, i) =>
              i % 2 === 1 && ['X-Request-Id', 'Date'].includes(res.rawHeaders[i - 1]!) ? '' : v,
            );
            done({ status: res.statusCode!, headers: sent, bytes: Buffer.concat(chunks) });
          });
        });
        req.on('error', fail);
        req.end();
      });
    let n = 0;
    for (const method of ['GET', 'HEAD']) {
      for (const encoding of [{}, { 'accept-encoding': 'gzip' }]) {
        for (const conditional of [false, true]) {
          const gun = `acme/same-answers-${n++}`;
          expect((await publishAs(tokens.acmePush, gun, tags)).status).toBe(200);
          // The ETag from the versioned name: the latest one is still read from the database below.
          const learned = (await answer(`${closed.url}${trust(gun, '1.targets.json')}`, 'GET', encoding))
            .headers;
          const etag = learned[learned.indexOf('ETag') + 1]!;
          const headers = conditional ? { ...encoding, 'if-none-match': etag } : encoding;
          const url = `${closed.url}${trust(gun, 'targets.json')}`;
          const first = await answer(url, method, headers);
          const second = await answer(url, method, headers);
          expect(second, `${method} ${JSON.stringify(headers)}`).toEqual(first);
          expect(first.status).toBe(conditional ? 304 : 200);
        }
      }
    }
  });
});

describe('abuse limits', () => {
  it('failed authentications: 429 with Retry-After past the limit, recovering after the window', async () => {
    for (let i = 0; i < 5; i++) {
      expectUnauthorized(await call(trust('acme/app', 'root.json'), { token: `wrong${i}` }), 'invalid_token');
    }
    const limited = await call(trust('acme/app', 'root.json'), { token: 'wrong-again' });
    expect(limited.status).toBe(429);
    expect(limited.json.error.code).toBe('RATE_LIMITED');
    // Others' failures from the same address never block a valid token (issue 17).
    expect((await call(trust('acme/app', 'root.json'), { token: tokens.acmePull })).status).toBe(200);
    const retry = Number(limited.headers.get('retry-after'));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(WINDOW / 1000);
    // An anonymous read is not an authentication; an anonymous write is, and is cut off too.
    expect((await call(trust('acme/app', 'root.json'))).status).toBe(200);
    const write = await call(trust('acme/app', 'timestamp.key'), { method: 'POST' });
    expect([write.status, write.json.error.code]).toEqual([429, 'RATE_LIMITED']);
    offset += retry * 1000;
    expectUnauthorized(await call(trust('acme/app', 'root.json'), { token: 'wrong-after' }), 'invalid_token');
  });

  it('a flood of token-less writes is cut off with 429 and adds no more audit rows', async () => {
    const rows = async () =>
      (await server.store.pool.query("SELECT count(*)::int AS n FROM audit_log WHERE gun = 'acme/flood'"))
        .rows[0].n as number;
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      statuses.push((await call(trust('acme/flood'), { method: 'DELETE' })).status);
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(new Set(statuses.slice(5))).toEqual(new Set([429]));
    expect(await rows()).toBe(5);
  });

  it('concurrent requests per address: 429 over the cap, recovering when they end', async () => {
    const url = new URL(base);
    const held = Array.from({ length: 4 }, () => {
      const req = request({
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: trust('acme/app'),
        headers: {
          'content-type': 'application/json',
          'content-length': '1000',
          authorization: `Bearer ${tokens.acmePush}`,
        },
      });
      req.on('error', () => {});
      req.write('{"targets":');
      return req;
    });
    // Generous bounds: on a loaded 2-core machine (every test file runs its own PostgreSQL and
    // servers) the held requests can take seconds to be admitted; a passing run waits far less.
    await waitFor(async () => (await call('/_health')).status === 429, 12_000);
    const over = await call('/_health');
    expect(over.status).toBe(429);
    expect(over.json.error.code).toBe('RATE_LIMITED');
    expect(over.headers.get('retry-after')).toBe('1');
    for (const req of held) req.destroy();
    await waitFor(async () => (await call('/_health')).status === 200, 12_000);
  });

  it('body limits per route: 413 before reading', async () => {
    const big = 'x'.repeat(2048);
    const key = await call(trust('acme/app', 'timestamp.key'), {
      method: 'POST',
      token: tokens.acmePush,
      body: big,
    });
    expect(key.status).toBe(413);
    expect(key.json.error.code).toBe('TOO_LARGE');
    const admin = await call('/v2/_admin/tokens', {
      method: 'POST',
      token: tokens.admin,
      body: JSON.stringify({ name: 'big', scopes: Array(3000).fill('pull:acme/app') }),
    });
    expect([admin.status, admin.json.error.code]).toEqual([413, 'TOO_LARGE']);
    const update = await call(trust('acme/app'), {
      method: 'POST',
      token: tokens.acmePush,
      body: `{"x":"${'y'.repeat(1024 * 1024)}"}`,
    });
    expect([update.status, update.json.error.code]).toEqual([413, 'TOO_LARGE']);
  });

  it('per collection: the size of one metadata document and the number of delegated roles', async () => {
    const before = await snapshotOfState();
    const tags: Record<string, string> = {};
    for (let i = 0; i < 200; i++) tags[`app/v${i}`] = `content ${i}`;
    const large = sign(targetsV(2, tags), keys.targets);
    const tooLarge = await call(trust('acme/app'), {
      method: 'POST',
      token: tokens.acmePush,
      body: body({ targets: large }),
    });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.json.error).toMatchObject({ code: 'TOO_LARGE', details: { role: 'targets' } });

    let many = withTarget(
      newTargets({ version: 2, expires: expiresIn(Date.now(), 90 * DAY) }),
      'app/v2',
      targetFileFor(testCrypto, utf8Encode('v2')),
    );
    for (const name of ['a', 'b', 'c']) {
      many = withDelegation(many, { name, keys: [keys.releases.key], paths: [`${name}/*`] });
    }
    const tooMany = await call(trust('acme/app'), {
      method: 'POST',
      token: tokens.acmePush,
      body: body({ targets: sign(many, keys.targets) }),
    });
    expect(tooMany.status).toBe(413);
    expect(tooMany.json.error).toMatchObject({ code: 'DELEGATION_LIMIT', details: { limit: 2, found: 3 } });
    expect(await snapshotOfState()).toEqual(before);
  });
});

describe('the admin API', () => {
  it('creates (token shown once), lists (never a token), and revokes tokens', async () => {
    const made = await call('/v2/_admin/tokens', {
      method: 'POST',
      token: tokens.admin,
      body: JSON.stringify({ name: 'ci', scopes: ['push:acme/*', 'pull:*'] }),
    });
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({ name: 'ci', scopes: ['push:acme/*', 'pull:*'], revoked_at: null });
    const ci = made.json.token as string;
    issued.push(ci);
    expect(ci).toMatch(/^tufa_/);
    expect((await call(trust('acme/app', 'timestamp.key'), { method: 'POST', token: ci })).status).toBe(200);

    const again = await call('/v2/_admin/tokens', {
      method: 'POST',
      token: tokens.admin,
      body: JSON.stringify({ name: 'ci', scopes: ['pull:*'] }),
    });
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('CONFLICT');
    const bad = await call('/v2/_admin/tokens', {
      method: 'POST',
      token: tokens.admin,
      body: JSON.stringify({ name: 'x', scopes: ['write:acme/*'] }),
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('INVALID_ARGUMENT');

    const list = await call('/v2/_admin/tokens', { token: tokens.admin });
    expect(list.status).toBe(200);
    const text = JSON.stringify(list.json);
    expect(text).not.toContain(ci);
    expect(text).not.toMatch(/secret|hash|token_id/);
    expect(list.json.tokens.find((t: { name: string }) => t.name === 'ci')).toMatchObject({
      scopes: ['push:acme/*', 'pull:*'],
    });

    expect((await call('/v2/_admin/tokens/ci', { method: 'DELETE', token: tokens.admin })).status).toBe(200);
    expectUnauthorized(await call(trust('acme/app', 'root.json'), { token: ci }), 'invalid_token');
    const missing = await call('/v2/_admin/tokens/ci', { method: 'DELETE', token: tokens.admin });
    expect([missing.status, missing.json.error.code]).toEqual([404, 'NOT_FOUND']);
  });
});

describe('the audit log', () => {
  it('records accepted and refused writes with token, address, GUN, roles, request id and outcome', async () => {
    const gun = 'acme/audited';
    const from = (await server.store.pool.query('SELECT coalesce(max(id), 0)::text AS id FROM audit_log'))
      .rows[0].id as string;
    const anonymous = await call(trust(gun), { method: 'POST', body: '{}' });
    expect([anonymous.status, anonymous.json.error.code]).toEqual([401, 'UNAUTHORIZED']);
    const pullOnly = await call(trust(gun, 'timestamp.key'), { method: 'POST', token: tokens.acmePull });
    expect([pullOnly.status, pullOnly.json.error.code]).toEqual([403, 'FORBIDDEN']);
    expect((await publishAs(tokens.acmePush, gun)).status).toBe(200);
    const accepted = await call(trust(gun, 'timestamp.key'), { method: 'POST', token: tokens.acmePush });
    const requestId = accepted.headers.get('x-request-id');
    const targets = sign(targetsV(1), keys.targets);
    const rollback = await call(trust(gun), {
      method: 'POST',
      token: tokens.acmePush,
      body: body({ targets }),
    });
    expect(rollback.json.error.code).toBe('ROLLBACK');
    expect((await call(trust(gun), { method: 'DELETE', token: tokens.acmeDelete })).status).toBe(200);

    const rows = (
      await server.store.pool.query(
        'SELECT token_name, remote_addr, gun, action, roles, request_id, outcome FROM audit_log WHERE id > $1 ORDER BY id',
        [from],
      )
    ).rows;
    const summary = rows.map((r) => [r.action, r.token_name, r.outcome]);
    expect(summary).toEqual([
      ['publish', null, 'UNAUTHORIZED'],
      ['key.rotate', 'acme-pull', 'FORBIDDEN'],
      ['key.create', 'acme-push', 'accepted'],
      ['key.create', 'acme-push', 'accepted'],
      ['publish', 'acme-push', 'accepted'],
      ['key.rotate', 'acme-push', 'accepted'],
      ['publish', 'acme-push', 'ROLLBACK'],
      ['delete', 'acme-delete', 'accepted'],
    ]);
    for (const r of rows) {
      expect(r.gun).toBe(gun);
      expect(r.remote_addr).toMatch(/127\.0\.0\.1/);
      expect(r.request_id).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(rows[4].roles).toEqual({ root: 1, targets: 1, snapshot: 1, timestamp: 1 });
    expect(rows[2].roles).toEqual({ timestamp: 'created' });
    expect(rows[5].request_id).toBe(requestId);

    const api = await call(`/v2/_admin/audit?gun=${gun}`, { token: tokens.admin });
    expect(api.status).toBe(200);
    expect(api.json.records.map((r: { action: string }) => r.action)).toEqual(summary.map((s) => s[0]));
    const future = await call(`/v2/_admin/audit?gun=${gun}&since=2999-01-01`, { token: tokens.admin });
    expect(future.json.count).toBe(0);
    const badSince = await call('/v2/_admin/audit?since=yesterday', { token: tokens.admin });
    expect([badSince.status, badSince.json.error.code]).toEqual([400, 'INVALID_ARGUMENT']);
  });

  it('records token changes made through the API', async () => {
    const made = await call('/v2/_admin/tokens', {
      method: 'POST',
      token: tokens.admin,
      body: JSON.stringify({ name: 'audited-token', scopes: ['pull:*'] }),
    });
    issued.push(made.json.token);
    await call('/v2/_admin/tokens/audited-token', { method: 'DELETE', token: tokens.admin });
    const rows = (
      await server.store.pool.query(
        "SELECT action, token_name, roles, outcome FROM audit_log WHERE action LIKE 'token.%' ORDER BY id",
      )
    ).rows;
    expect(rows).toContainEqual({
      action: 'token.create',
      token_name: 'admin',
      roles: { token: 'audited-token' },
      outcome: 'accepted',
    });
    expect(rows).toContainEqual({
      action: 'token.revoke',
      token_name: 'admin',
      roles: { token: 'audited-token' },
      outcome: 'accepted',
    });
    expect(rows).toContainEqual({
      action: 'token.create',
      token_name: 'acme-push',
      roles: {},
      outcome: 'FORBIDDEN',
    });
  });
});

describe('secrets stay secret', () => {
  it('no token and no private key appears in any log line or audit row of this file', async () => {
    expect(logs.length).toBeGreaterThan(100);
    expect(logs.some((l) => l.includes('"refused"'))).toBe(true);
    const audit = JSON.stringify((await server.store.pool.query('SELECT * FROM audit_log')).rows);
    const tokenRows = JSON.stringify((await server.store.pool.query('SELECT * FROM tokens')).rows);
    const everything = `${logs.join('\n')}\n${audit}`;
    expect(issued.length).toBeGreaterThan(8);
    for (const token of issued) {
      expect(everything).not.toContain(token);
      expect(tokenRows).not.toContain(token);
      const secret = token.split('_').slice(2).join('_');
      if (secret.length > 0) expect(everything).not.toContain(secret);
    }
    for (const pair of Object.values(keys)) {
      const key = Buffer.from(pair.privateKey);
      expect(everything).not.toContain(key.toString('hex'));
      expect(everything).not.toContain(key.toString('base64'));
    }
    expect(everything).not.toContain(MASTER_KEY);
    expect(everything).not.toMatch(/PRIVATE KEY|private_key|Bearer tufa_/);
  });
});
