/**
 * The server under hostile load (issue 17): body limits answered the same way however the body
 * is framed, a process-wide budget for the bytes of in-flight bodies, and what the request log says.
 */
import { Agent, request } from 'node:http';
import type { RunningServer } from '@tufa/server';
import { startTestPostgres, startTestServer, type TestPostgres, waitFor } from '@tufa/testing/server';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const logs: string[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });

let pgs: TestPostgres;
let server: RunningServer;

beforeAll(async () => {
  pgs = await startTestPostgres();
  server = await startTestServer(
    { databaseUrl: await pgs.createDatabase(), bodyLimit: 64 * 1024, bodyBudget: 96 * 1024 },
    { logger },
  );
});
afterAll(async () => {
  await server?.close();
  await pgs?.stop();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** A POST of `size` bytes, framed with Content-Length or chunked (written in 16 KiB pieces). */
function upload(
  path: string,
  size: number,
  framing: 'length' | 'chunked',
  headers: Record<string, string> = {},
  agent?: Agent,
): Promise<Answer> {
  const url = new URL(server.url);
  return new Promise((done, fail) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: 'POST',
        ...(agent === undefined ? {} : { agent }),
        headers: {
          'content-type': 'application/json',
          ...(framing === 'length' ? { 'content-length': String(size) } : { 'transfer-encoding': 'chunked' }),
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => done({ status: res.statusCode!, headers: res.headers, text }));
      },
    );
    req.on('error', fail);
    const piece = Buffer.alloc(16 * 1024, 0x20);
    let left = size;
    const more = () => {
      while (left > 0) {
        const n = Math.min(left, piece.length);
        left -= n;
        if (!req.write(piece.subarray(0, n))) {
          req.once('drain', more);
          return;
        }
      }
      req.end();
    };
    more();
  });
}

describe('body limits', () => {
  it('a chunked upload over the limit gets the same JSON 413 as one with Content-Length, and the log says 413', async () => {
    const path = '/v2/acme/big/_trust/tuf/';
    for (const framing of ['length', 'chunked'] as const) {
      const answer = await upload(path, 1024 * 1024, framing, { 'x-request-id': `big-${framing}` });
      expect([answer.status, answer.headers['content-type']], framing).toEqual([
        413,
        'application/json; charset=utf-8',
      ]);
      expect(JSON.parse(answer.text).error.code, framing).toBe('TOO_LARGE');
      const line = logs
        .map((l) => JSON.parse(l))
        .find((l) => l.req_id === `big-${framing}` && l.msg === 'request');
      expect(line?.status, framing).toBe(413);
    }
  });
});

describe('the connection after a refused body', () => {
  it('a kept-alive connection answers its next request after a 413, however the body was framed', async () => {
    // One connection, reused: the unread rest of a refused body must not stand in front of the next request.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (const framing of ['chunked', 'length'] as const) {
        const refused = await upload('/v2/acme/next/_trust/tuf/', 512 * 1024, framing, {}, agent);
        expect(refused.status, framing).toBe(413);
        const next = await upload(
          '/v2/acme/next/_trust/tuf/',
          2,
          framing,
          { 'x-request-id': `next-${framing}` },
          agent,
        );
        expect([next.status, JSON.parse(next.text).error.code], framing).toEqual([400, 'INVALID_JSON']);
      }
    } finally {
      agent.destroy();
    }
  });
});

/** An upload that declares `declared` bytes, sends `sent` of them and waits: its body stays in flight. */
function heldUpload(path: string, declared: number, sent: number) {
  const url = new URL(server.url);
  const req = request({
    host: url.hostname,
    port: url.port,
    path,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': String(declared) },
  });
  const answer = new Promise<Answer>((done) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c) => {
        text += c;
      });
      res.on('end', () => done({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', () => done({ status: 0, headers: {}, text: '' }));
  });
  req.write(Buffer.alloc(sent, 0x20));
  return { req, answer };
}

async function bodyBytesInFlight(): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return Number(/^tufa_http_body_bytes_in_flight (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
}

describe('the process-wide body budget', () => {
  it('past the budget an upload is 503 with Retry-After before its body is read; the budget comes back when a request ends', async () => {
    const path = '/v2/acme/budget/_trust/tuf/';
    expect(await bodyBytesInFlight()).toBe(0);
    // 64 KiB declared and held (the per-request limit), of a 96 KiB budget.
    const first = heldUpload(path, 64 * 1024, 1024);
    await waitFor(async () => (await bodyBytesInFlight()) === 64 * 1024);
    // Declared: refused on the declared length alone.
    const declared = await upload(path, 40 * 1024, 'length', { 'x-request-id': 'over-declared' });
    expect([declared.status, declared.headers['retry-after']]).toEqual([503, '1']);
    expect(JSON.parse(declared.text).error).toMatchObject({
      code: 'NETWORK',
      details: { budget: 96 * 1024 },
    });
    // Chunked: refused once what has arrived passes the budget, never more than that held.
    const chunked = await upload(path, 48 * 1024, 'chunked', { 'x-request-id': 'over-chunked' });
    expect([chunked.status, JSON.parse(chunked.text).error.code]).toEqual([503, 'NETWORK']);
    const line = logs
      .map((l) => JSON.parse(l))
      .find((l) => l.req_id === 'over-chunked' && l.msg === 'request');
    expect(line?.status).toBe(503);
    expect(await bodyBytesInFlight()).toBe(64 * 1024);
    // Within the budget a body is read and judged (here: not an update).
    const small = await upload(path, 16 * 1024, 'length');
    expect([small.status, JSON.parse(small.text).error.code]).toEqual([400, 'INVALID_JSON']);
    // The held upload goes away: its share comes back, and the same upload is now taken.
    first.req.destroy();
    await first.answer;
    await waitFor(async () => (await bodyBytesInFlight()) === 0);
    const again = await upload(path, 40 * 1024, 'chunked');
    expect(again.status).toBe(400);
  });
});

describe('failed authentications behind a proxy', () => {
  let proxied: RunningServer;
  let direct: RunningServer;
  let good: string;
  beforeAll(async () => {
    const common = { allowAnonymousWrites: false, authFailLimit: 3, requireAuthForPull: true };
    proxied = await startTestServer({
      databaseUrl: await pgs.createDatabase(),
      ...common,
      trustedProxies: '127.0.0.0/8',
    });
    direct = await startTestServer({ databaseUrl: await pgs.createDatabase(), ...common });
    good = (await proxied.tokens.create('reader', ['pull:*'])).token;
  });
  afterAll(async () => {
    await proxied?.close();
    await direct?.close();
  });

  const get = async (at: RunningServer, token: string, forwardedFor?: string) => {
    const res = await fetch(`${at.url}/v2/_trust/changefeed`, {
      headers: {
        authorization: `Bearer ${token}`,
        ...(forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor }),
      },
    });
    return `${res.status} ${((await res.json()) as { error?: { code: string } }).error?.code ?? ''}`.trim();
  };
  const wrong = 'tufa_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

  it('behind a trusted proxy, the limit is per forwarded client, and a valid token from that client is never blocked', async () => {
    for (let i = 0; i < 3; i++) expect(await get(proxied, wrong, '203.0.113.5')).toBe('401 UNAUTHORIZED');
    expect(await get(proxied, wrong, '203.0.113.5')).toBe('429 RATE_LIMITED');
    // Another client behind the same proxy is not cut off by the first one's failures.
    expect(await get(proxied, wrong, '203.0.113.6')).toBe('401 UNAUTHORIZED');
    // A valid token passes, from the failing client's own address too.
    expect(await get(proxied, good, '203.0.113.5')).toBe('200');
    expect(await get(proxied, good, '203.0.113.6')).toBe('200');
  });

  it('without --trusted-proxy, X-Forwarded-For is ignored: a guesser cannot pick a fresh address', async () => {
    const token = (await direct.tokens.create('reader', ['pull:*'])).token;
    for (let i = 0; i < 3; i++) expect(await get(direct, wrong, `198.51.100.${i}`)).toBe('401 UNAUTHORIZED');
    expect(await get(direct, wrong, '198.51.100.99')).toBe('429 RATE_LIMITED');
    expect(await get(direct, token)).toBe('200');
  });
});
