import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { acceptsGzip, CompressedCopies, etagMatches, metadataResponse } from './responder.js';

const file = { bytes: Buffer.from('{"signed":{}}'), sha256: 'ab'.repeat(32) };
const etag = `"${file.sha256}"`;

/** The headers as writeHead takes them: the same names and values in the same order, then the body's length. */
const raw = (headers: Record<string, string>, length?: number): string[] => [
  ...Object.entries(headers).flat(),
  ...(length === undefined ? [] : ['Content-Length', String(length)]),
];

describe('the metadata responder', () => {
  it('serves the exact bytes as JSON, cached briefly when latest and for a year when versioned', () => {
    const latest = metadataResponse({ kind: 'metadata', gun: 'a', role: 'timestamp' }, file, {});
    const headers = {
      ETag: etag,
      'Cache-Control': 'public, max-age=10, must-revalidate',
      'Content-Type': 'application/json',
    };
    expect(latest).toEqual({
      status: 200,
      headers,
      rawHeaders: raw(headers, file.bytes.length),
      body: file.bytes,
    });
    const versioned = metadataResponse({ kind: 'metadata', gun: 'a', role: 'root', version: 1 }, file, {});
    expect(versioned.headers['Cache-Control']).toBe('public, max-age=31536000, immutable');
    expect(versioned.body).toBe(file.bytes);
  });

  it('answers 304 without a body or a content type when If-None-Match names the file', () => {
    for (const header of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const r = metadataResponse({ kind: 'metadata', gun: 'a', role: 'targets' }, file, {
        'if-none-match': header,
      });
      const headers = { ETag: etag, 'Cache-Control': 'public, max-age=10, must-revalidate' };
      expect(r, header).toEqual({ status: 304, headers, rawHeaders: raw(headers), body: undefined });
    }
    for (const header of ['', '"other"', file.sha256]) {
      expect(etagMatches(header, etag), header).toBe(false);
      const r = metadataResponse({ kind: 'metadata', gun: 'a', role: 'targets' }, file, {
        'if-none-match': header,
      });
      expect(r.status).toBe(200);
    }
  });
});

describe('gzip for clients that ask (Accept-Encoding)', () => {
  const large = {
    bytes: Buffer.from(`{"signed":{"targets":{${'"a":1,'.repeat(2000)}"b":2}}}`),
    sha256: 'cd'.repeat(32),
  };
  const route = { kind: 'metadata', gun: 'a', role: 'targets' } as const;

  it('sends a gzip copy with an ETag of its own, Vary on every answer, the exact bytes once decoded', () => {
    const copies = new CompressedCopies();
    const plain = metadataResponse(route, large, {}, copies);
    expect(plain.headers).toEqual({
      ETag: `"${large.sha256}"`,
      'Cache-Control': 'public, max-age=10, must-revalidate',
      'Content-Type': 'application/json',
      Vary: 'Accept-Encoding',
    });
    expect(plain.body).toBe(large.bytes);
    const zipped = metadataResponse(route, large, { 'accept-encoding': 'br;q=1.0, gzip;q=0.8' }, copies);
    expect(zipped.headers).toEqual({
      ETag: `"${large.sha256}+gzip"`,
      'Cache-Control': 'public, max-age=10, must-revalidate',
      'Content-Type': 'application/json',
      Vary: 'Accept-Encoding',
      'Content-Encoding': 'gzip',
    });
    expect(zipped.body!.length).toBeLessThan(large.bytes.length / 10);
    expect(gunzipSync(zipped.body!).equals(large.bytes)).toBe(true);
    // Made once: the same copy for the next request.
    expect(metadataResponse(route, large, { 'accept-encoding': 'gzip' }, copies).body).toBe(zipped.body);
  });

  it('makes each answer once per file, encoding, status and caching: the same headers, as writeHead takes them', () => {
    const copies = new CompressedCopies();
    const versioned = { ...route, version: 3 };
    for (const r of [route, versioned]) {
      for (const encoding of [{}, { 'accept-encoding': 'gzip' }]) {
        const ok = metadataResponse(r, large, encoding, copies);
        const conditional = { ...encoding, 'if-none-match': ok.headers.ETag! };
        const notModified = metadataResponse(r, large, conditional, copies);
        expect(ok.rawHeaders).toEqual(raw(ok.headers, ok.body!.length));
        expect(notModified.rawHeaders).toEqual(raw(notModified.headers));
        expect([ok.status, notModified.status]).toEqual([200, 304]);
        // Made once: the very same answer for the next request, frozen so that no caller can change it.
        expect(metadataResponse(r, large, encoding, copies)).toBe(ok);
        expect(metadataResponse(r, large, conditional, copies)).toBe(notModified);
        expect(Object.isFrozen(ok.headers) && Object.isFrozen(ok.rawHeaders)).toBe(true);
      }
    }
    // Latest and versioned differ only in Cache-Control.
    expect(metadataResponse(versioned, large, {}, copies).headers['Cache-Control']).toBe(
      'public, max-age=31536000, immutable',
    );
  });

  it('answers 304 only for the ETag of the encoding it would send', () => {
    const copies = new CompressedCopies();
    const gz = { 'accept-encoding': 'gzip' };
    const notModified = metadataResponse(
      route,
      large,
      { ...gz, 'if-none-match': `"${large.sha256}+gzip"` },
      copies,
    );
    const headers = {
      ETag: `"${large.sha256}+gzip"`,
      'Cache-Control': 'public, max-age=10, must-revalidate',
      Vary: 'Accept-Encoding',
    };
    expect(notModified).toEqual({ status: 304, headers, rawHeaders: raw(headers), body: undefined });
    expect(
      metadataResponse(route, large, { ...gz, 'if-none-match': `"${large.sha256}"` }, copies).status,
    ).toBe(200);
    expect(metadataResponse(route, large, { 'if-none-match': `"${large.sha256}+gzip"` }, copies).status).toBe(
      200,
    );
    expect(metadataResponse(route, large, { 'if-none-match': `"${large.sha256}"` }, copies).status).toBe(304);
  });

  it('reads Accept-Encoding by RFC 9110: q=0 refuses, * allows, other codings alone do not', () => {
    for (const [header, yes] of [
      ['gzip', true],
      ['GZIP', true],
      ['x-gzip', true],
      ['deflate, gzip;q=0.1', true],
      ['*', true],
      ['gzip;q=0', false],
      ['gzip;q=0, *', false],
      ['*;q=0', false],
      ['br, deflate', false],
      ['identity', false],
      ['', false],
    ] as const) {
      expect(acceptsGzip(header), header).toBe(yes);
    }
    expect(acceptsGzip(undefined)).toBe(false);
  });

  it('leaves files under 1 KiB, and files gzip would not shrink, as they are (no Vary for the small)', () => {
    const copies = new CompressedCopies();
    const small = metadataResponse(route, file, { 'accept-encoding': 'gzip' }, copies);
    expect(small.headers).toEqual({
      ETag: etag,
      'Cache-Control': 'public, max-age=10, must-revalidate',
      'Content-Type': 'application/json',
    });
    const noise = { bytes: randomBytes(4096), sha256: 'ef'.repeat(32) };
    const r = metadataResponse(route, noise, { 'accept-encoding': 'gzip' }, copies);
    expect([r.headers.ETag, r.headers['Content-Encoding'], r.body]).toEqual([
      `"${noise.sha256}"`,
      undefined,
      noise.bytes,
    ]);
    expect(copies.stats).toEqual({ files: 1, bytes: 0 }); // the noise: known not to shrink
  });

  it('compresses a large file off the event loop: sent as it is until its copy is ready', async () => {
    const copies = new CompressedCopies();
    const big = { bytes: Buffer.from(`{"signed":{"x":"${'ab'.repeat(200_000)}"}}`), sha256: '12'.repeat(32) };
    const first = metadataResponse(route, big, { 'accept-encoding': 'gzip' }, copies);
    expect([first.headers['Content-Encoding'], first.headers.Vary, first.body]).toEqual([
      undefined,
      'Accept-Encoding',
      big.bytes,
    ]);
    while (copies.stats.files === 0) await new Promise((r) => setImmediate(r));
    const later = metadataResponse(route, big, { 'accept-encoding': 'gzip' }, copies);
    expect(later.headers['Content-Encoding']).toBe('gzip');
    expect(gunzipSync(later.body!).equals(big.bytes)).toBe(true);
  });

  it('keeps at most its bound of copies, the oldest dropped first', () => {
    const bound = 1024 * 1024;
    const copies = new CompressedCopies(bound);
    const files = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({
      bytes: Buffer.from(`{"n":${i},"x":"${randomBytes(180_000).toString('base64')}"}`),
      sha256: String(i).repeat(64),
    }));
    const sent = files.map((f) => metadataResponse(route, f, { 'accept-encoding': 'gzip' }, copies).body);
    expect(copies.stats.files).toBeLessThan(files.length);
    expect(copies.stats.bytes).toBeLessThanOrEqual(bound);
    const again = (i: number) =>
      metadataResponse(route, files[i]!, { 'accept-encoding': 'gzip' }, copies).body;
    expect(again(7)).toBe(sent[7]); // the newest is held
    expect(again(0)).not.toBe(sent[0]); // the oldest went, and is made again
  });
});
