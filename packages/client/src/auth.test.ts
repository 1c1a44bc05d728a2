/** The client's token and TLS options: where the token goes, and what a refused caller sees. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from './client.js';
import { DEFAULT_TIMEOUTS, download, type FetchLike, nodeFetch, redactUrl } from './fetcher.js';

const TOKEN = `tufa_${'1'.repeat(16)}_${'B'.repeat(43)}`;
const seen: { server: string; path: string; headers: IncomingHttpHeaders }[] = [];
let a: Server;
let b: Server;
let urlA: string;
let urlB: string;

function listen(name: string, handler: (path: string, res: import('node:http').ServerResponse) => void) {
  const server = createServer((req, res) => {
    seen.push({ server: name, path: req.url!, headers: req.headers });
    handler(req.url!, res);
  });
  return new Promise<[Server, string]>((done) =>
    server.listen(0, '127.0.0.1', () =>
      done([server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`]),
    ),
  );
}

beforeAll(async () => {
  [b, urlB] = await listen('b', (_path, res) => res.end('from b'));
  [a, urlA] = await listen('a', (path, res) => {
    if (path === '/away') {
      res.writeHead(302, { location: `${urlB}/landed` });
      return res.end();
    }
    if (path === '/home') {
      res.writeHead(302, { location: '/here' });
      return res.end();
    }
    if (path === '/401') {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="tufa"' });
      return res.end('{}');
    }
    if (path === '/401-token') {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="tufa", error="invalid_token"' });
      return res.end('{}');
    }
    if (path === '/403') {
      res.writeHead(403, { 'www-authenticate': 'Bearer realm="tufa", error="insufficient_scope"' });
      return res.end('{}');
    }
    if (path === '/multi') {
      res.writeHead(200, [
        ['X-Seen', 'one'],
        ['x-seen', 'two'],
        ['Content-Type', 'application/json'],
      ] as unknown as import('node:http').OutgoingHttpHeaders);
      res.write('{"a":');
      return setTimeout(() => res.end('1}'), 20);
    }
    if (path === '/304') {
      res.writeHead(304);
      return res.end();
    }
    if (path === '/429') {
      res.writeHead(429, { 'retry-after': '7' });
      return res.end('{}');
    }
    res.end('from a');
  });
});
afterAll(async () => {
  await new Promise((done) => a.close(done));
  await new Promise((done) => b.close(done));
});

const options = (fetch: FetchLike) => ({
  role: 'timestamp',
  timeouts: { ...DEFAULT_TIMEOUTS },
  total: true,
  maxBytes: 1000,
  fetch,
});
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('nodeFetch', () => {
  it('sends the token to its origin only, also across redirects', async () => {
    const fetch = nodeFetch({ token: TOKEN, tokenOrigin: urlA });
    seen.length = 0;
    expect(text(await download(`${urlA}/home`, options(fetch)))).toBe('from a');
    expect(seen.map((s) => [s.server, s.path, s.headers.authorization])).toEqual([
      ['a', '/home', `Bearer ${TOKEN}`],
      ['a', '/here', `Bearer ${TOKEN}`],
    ]);
    seen.length = 0;
    expect(text(await download(`${urlA}/away`, options(fetch)))).toBe('from b');
    expect(seen.map((s) => [s.server, s.headers.authorization])).toEqual([
      ['a', `Bearer ${TOKEN}`],
      ['b', undefined],
    ]);
  });

  it('answers with status, headers by any case (repeats joined) and the body chunk by chunk', async () => {
    const fetch = nodeFetch({});
    const res = await fetch(`${urlA}/multi`, { signal: new AbortController().signal, redirect: 'follow' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-seen')).toBe('one, two');
    expect(res.headers.get('CONTENT-TYPE')).toBe('application/json');
    expect(res.headers.get('x-absent')).toBeNull();
    const reader = res.body!.getReader();
    const parts: string[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(text(r.value));
    expect(parts.join('')).toBe('{"a":1}');
    const notModified = await fetch(`${urlA}/304`, {
      signal: new AbortController().signal,
      redirect: 'follow',
    });
    expect(notModified.status).toBe(304);
    expect(notModified.body).toBeNull();
  });

  it('a cancelled body ends the download; the next request works', async () => {
    const fetch = nodeFetch({});
    const res = await fetch(`${urlA}/multi`, { signal: new AbortController().signal, redirect: 'follow' });
    await res.body!.cancel();
    expect(text(await download(`${urlA}/plain`, options(fetch)))).toBe('from a');
  });

  it('refuses a token that cannot be a Bearer token, and half a client certificate', () => {
    expect(() => nodeFetch({ token: 'a b' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => nodeFetch({ cert: 'x' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('a refused caller gets UNAUTHORIZED, FORBIDDEN or RATE_LIMITED, not NOT_FOUND', async () => {
    const fetch = nodeFetch({ token: TOKEN, tokenOrigin: urlA });
    await expect(download(`${urlA}/401`, options(fetch))).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(download(`${urlA}/403`, options(fetch))).rejects.toMatchObject({ code: 'FORBIDDEN' });
    // The challenge tells a refused token from a missing one, and the message says which.
    await expect(download(`${urlA}/401-token`, options(fetch))).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      message: expect.stringMatching(/^the server refused the token/),
    });
    await expect(download(`${urlA}/401`, options(fetch))).rejects.toMatchObject({
      message: expect.stringMatching(/^the server wants a token/),
    });
    await expect(download(`${urlA}/429`, options(fetch))).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      details: { retryAfter: '7' },
    });
  });
});

describe('createClient with a token', () => {
  it('puts the token on metadata requests to the server and refuses it with a custom fetch', async () => {
    seen.length = 0;
    const cacheDir = mkdtempSync(join(tmpdir(), 'tufa-auth-'));
    const client = createClient(
      { server: urlA, gun: 'acme/app' },
      { token: TOKEN, cacheDir, trust: { allowTofu: true } },
    );
    // The fake server answers "from a" for root: not metadata.
    await expect(client.refresh()).rejects.toMatchObject({ code: 'INVALID_JSON' });
    rmSync(cacheDir, { recursive: true, force: true });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(() =>
      createClient({ server: urlA, gun: 'acme/app' }, { token: TOKEN, fetch: async () => new Response('') }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('credentials in a repository URL', () => {
  it('are refused (never sent as Basic auth), never echoed, never part of a cache folder name', () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'tufa-creds-'));
    try {
      for (const location of [
        { server: 'http://alice:s3cret@127.0.0.1:1', gun: 'acme/app' },
        { metadataUrl: 'https://alice:s3cret@repo.example/metadata/' },
        { metadataUrl: 'https://repo.example/metadata/', targetsUrl: 'https://bob:s3cret@repo.example/t/' },
        { server: 'ftp://alice:s3cret@127.0.0.1', gun: 'acme/app' },
      ]) {
        let error: unknown;
        try {
          createClient(location, { cacheDir });
        } catch (err) {
          error = err;
        }
        expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
        expect(JSON.stringify((error as { toJSON(): unknown }).toJSON())).not.toContain('s3cret');
      }
      expect(readdirSync(cacheDir)).toEqual([]);
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });

  it('redactUrl hides a user name and password, whatever the URL looks like', () => {
    expect(redactUrl('http://alice:s3cret@host:1/x')).toBe('http://***@host:1/x');
    expect(redactUrl('http:alice:s3cret@host')).toBe('http:***@host');
    expect(redactUrl('ftp://a:b@c@host/')).toBe('ftp://***@host/');
    expect(redactUrl('https://host/a@b')).toBe('https://host/a@b');
    // What the URL parser accepts too: leading blanks, a password with a '/' or a '?'.
    expect(redactUrl(' http://u:secret@127.0.0.1:1')).toBe('http://***@127.0.0.1:1');
    expect(redactUrl('http://u:p/w@h')).toBe('http://***@h');
    expect(redactUrl('http://u:p?w@h/x')).toBe('http://***@h/x');
  });
});
