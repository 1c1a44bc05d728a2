import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMEOUTS, download, type FetchLike, nodeFetch, streamDownload } from './fetcher.js';

const base = { role: 'timestamp', timeouts: { ...DEFAULT_TIMEOUTS }, total: true };

function respond(body: ConstructorParameters<typeof Response>[0], init: ResponseInit = {}): FetchLike {
  return async () => new Response(body, init);
}

describe('download', () => {
  it('returns the body within the bound', async () => {
    const bytes = await download('http://127.0.0.1/x', { ...base, maxBytes: 5, fetch: respond('hello') });
    expect(new TextDecoder().decode(bytes)).toBe('hello');
  });

  it('refuses a declared length above the bound before reading', async () => {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(10));
      },
    });
    const fetch = respond(body, { headers: { 'content-length': '1000000' } });
    await expect(download('http://127.0.0.1/x', { ...base, maxBytes: 100, fetch })).rejects.toMatchObject({
      code: 'TOO_LARGE',
      found: 1000000,
    });
    expect(pulled).toBeLessThanOrEqual(2);
  });

  it("stops when the caller's signal aborts, before or during the download, as NETWORK", async () => {
    const stalled: FetchLike = (_url, init) =>
      new Promise((_resolve, reject) => {
        init.signal.addEventListener('abort', () => reject(new Error('aborted')));
      });
    const during = new AbortController();
    const pending = download('http://127.0.0.1/x', {
      ...base,
      maxBytes: 10,
      fetch: stalled,
      signal: during.signal,
    });
    during.abort();
    await expect(pending).rejects.toMatchObject({ code: 'NETWORK', role: 'timestamp' });
    const before = new AbortController();
    before.abort();
    await expect(
      download('http://127.0.0.1/x', { ...base, maxBytes: 10, fetch: stalled, signal: before.signal }),
    ).rejects.toMatchObject({ code: 'NETWORK', role: 'timestamp' });
  });

  it('cuts an undeclared endless body at the bound', async () => {
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(1024));
      },
    });
    await expect(
      download('http://127.0.0.1/x', { ...base, maxBytes: 4096, fetch: respond(body) }),
    ).rejects.toMatchObject({ code: 'TOO_LARGE', role: 'timestamp' });
  });

  it('maps 404 and 403 to NOT_FOUND, other statuses and failures to NETWORK', async () => {
    for (const status of [404, 403]) {
      await expect(
        download('http://127.0.0.1/x', { ...base, maxBytes: 10, fetch: respond(null, { status }) }),
      ).rejects.toMatchObject({ code: 'NOT_FOUND', details: { status } });
    }
    await expect(
      download('http://127.0.0.1/x', { ...base, maxBytes: 10, fetch: respond('no', { status: 500 }) }),
    ).rejects.toMatchObject({ code: 'NETWORK', details: { status: 500 } });
    const failing: FetchLike = async () => {
      throw new TypeError('fetch failed', { cause: new Error('ECONNREFUSED') });
    };
    await expect(
      download('http://127.0.0.1/x', { ...base, maxBytes: 10, fetch: failing }),
    ).rejects.toMatchObject({
      code: 'NETWORK',
      message: expect.stringContaining('ECONNREFUSED'),
    });
  });

  it('times out waiting for headers, between chunks, and on a slow average rate', async () => {
    const never: FetchLike = (_url, init) =>
      new Promise((_resolve, reject) =>
        init.signal.addEventListener('abort', () => reject(new Error('aborted'))),
      );
    const timeouts = {
      ...DEFAULT_TIMEOUTS,
      connectMs: 50,
      idleMs: 50,
      rateGraceMs: 100,
      minBytesPerSecond: 1000,
    };
    await expect(
      download('http://127.0.0.1/x', { ...base, timeouts, maxBytes: 10, fetch: never }),
    ).rejects.toMatchObject({ code: 'TIMEOUT', details: { guard: 'connect timeout (ms)' } });
    const stalled = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => undefined) });
    await expect(
      download('http://127.0.0.1/x', { ...base, timeouts, maxBytes: 10, fetch: respond(stalled) }),
    ).rejects.toMatchObject({ code: 'TIMEOUT', details: { guard: 'idle time between chunks (ms)' } });
    let cancelled = false;
    const trickle = new ReadableStream<Uint8Array>({
      pull: (controller) =>
        new Promise<void>((resolve) =>
          setTimeout(() => {
            if (!cancelled) controller.enqueue(new Uint8Array(1));
            resolve();
          }, 20),
        ),
      cancel: () => {
        cancelled = true;
      },
    });
    await expect(
      download('http://127.0.0.1/x', { ...base, timeouts, maxBytes: 1000, fetch: respond(trickle) }),
    ).rejects.toMatchObject({ code: 'TIMEOUT', details: { guard: 'minimum average rate (bytes/s)' } });
  });
});

describe('nodeFetch: gzip', () => {
  /** A loopback server answering every request with `answer`; the request headers it saw. */
  async function serve(answer: (res: ServerResponse) => void) {
    const seen: Record<string, string | string[] | undefined>[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      answer(res);
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x.json`;
    return { url, seen, close: () => new Promise<void>((done) => server.close(() => done())) };
  }
  const fetch = nodeFetch({});
  const doc = Buffer.from(`{"signed":{"targets":{${'"a":1,'.repeat(5000)}"b":2}}}`);

  it('asks for gzip and hands over the decoded bytes, counted and bounded as decoded', async () => {
    const gz = gzipSync(doc);
    const s = await serve((res) => {
      res.writeHead(200, { 'Content-Encoding': 'gzip', 'Content-Length': gz.length });
      res.end(gz);
    });
    try {
      const bytes = await download(s.url, {
        ...base,
        maxBytes: doc.length,
        statedLength: doc.length,
        fetch,
        gzip: true,
      });
      expect(Buffer.from(bytes).equals(doc)).toBe(true);
      expect(s.seen[0]!['accept-encoding']).toBe('gzip');
      // The stated length bounds the decoded bytes: one byte less is refused.
      await expect(
        download(s.url, { ...base, maxBytes: doc.length - 1, fetch, gzip: true }),
      ).rejects.toMatchObject({
        code: 'TOO_LARGE',
        found: `> ${doc.length - 1}`,
      });
    } finally {
      await s.close();
    }
  });

  it('refuses a compression bomb at the bound, having decoded no more than the bound and a chunk', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 }); // 64 MiB of zeros in about 64 KB
    const s = await serve((res) => {
      res.writeHead(200, { 'Content-Encoding': 'gzip', 'Content-Length': bomb.length });
      res.end(bomb);
    });
    try {
      let decoded = 0;
      const read = (async () => {
        for await (const chunk of streamDownload(s.url, {
          ...base,
          maxBytes: 1024 * 1024,
          fetch,
          gzip: true,
        })) {
          decoded += chunk.length;
        }
      })();
      await expect(read).rejects.toMatchObject({ code: 'TOO_LARGE', found: `> ${1024 * 1024}` });
      expect(decoded).toBeLessThanOrEqual(1024 * 1024);
    } finally {
      await s.close();
    }
  });

  it('refuses broken gzip (NETWORK) and a coding it did not ask for', async () => {
    const broken = await serve((res) => {
      res.writeHead(200, { 'Content-Encoding': 'gzip' });
      res.end(Buffer.concat([gzipSync(doc).subarray(0, 40), Buffer.from('not gzip at all')]));
    });
    const brotli = await serve((res) => {
      res.writeHead(200, { 'Content-Encoding': 'br' });
      res.end(doc);
    });
    try {
      await expect(
        download(broken.url, { ...base, maxBytes: doc.length, fetch, gzip: true }),
      ).rejects.toMatchObject({
        code: 'NETWORK',
      });
      await expect(
        download(brotli.url, { ...base, maxBytes: doc.length, fetch, gzip: true }),
      ).rejects.toMatchObject({
        code: 'NETWORK',
        message: expect.stringContaining('a body in br, which was not asked for'),
      });
    } finally {
      await broken.close();
      await brotli.close();
    }
  });
  it('asks for nothing and decodes nothing unless told (a target file is hashed as the server sent it)', async () => {
    const artifact = gzipSync(Buffer.from('a tarball'));
    const s = await serve((res) => {
      // As a server with `AddEncoding gzip .gz` labels a .tar.gz, asked or not.
      res.writeHead(200, { 'Content-Encoding': 'gzip', 'Content-Length': artifact.length });
      res.end(artifact);
    });
    try {
      const bytes = await download(s.url, { ...base, maxBytes: artifact.length, fetch });
      expect(Buffer.from(bytes).equals(artifact)).toBe(true);
      expect(s.seen[0]!['accept-encoding']).toBeUndefined();
    } finally {
      await s.close();
    }
  });
});
