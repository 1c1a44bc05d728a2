import { describe, expect, it } from 'vitest';
import { etagMatches, metadataResponse } from './responder.js';

const file = { bytes: Buffer.from('{"signed":{}}'), sha256: 'ab'.repeat(32) };
const etag = `"${file.sha256}"`;

describe('the metadata responder', () => {
  it('serves the exact bytes as JSON, cached briefly when latest and for a year when versioned', () => {
    const latest = metadataResponse({ kind: 'metadata', gun: 'a', role: 'timestamp' }, file, {});
    expect(latest).toEqual({
      status: 200,
      headers: {
        ETag: etag,
        'Cache-Control': 'public, max-age=10, must-revalidate',
        'Content-Type': 'application/json',
      },
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
      expect(r, header).toEqual({
        status: 304,
        headers: { ETag: etag, 'Cache-Control': 'public, max-age=10, must-revalidate' },
        body: undefined,
      });
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
