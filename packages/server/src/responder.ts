/** The one answer to a metadata read: ETag and 304, cache headers, content type, the exact stored bytes. */
import type { IncomingHttpHeaders } from 'node:http';
import type { Route } from './routes.js';

export type MetadataRoute = Extract<Route, { kind: 'metadata' }>;

export interface MetadataResponse {
  status: 200 | 304;
  headers: Record<string, string>;
  /** Absent for 304; a HEAD is answered without it but with its Content-Length. */
  body: Buffer | undefined;
}

const LATEST_CACHE = 'public, max-age=10, must-revalidate';
const VERSIONED_CACHE = 'public, max-age=31536000, immutable';

/** Whether an If-None-Match header names this ETag (or `*`). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined || header === '') return false;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag || t.trim() === '*');
}

/** A stored file as served: versioned files never change, the latest may change at any publish. */
export function metadataResponse(
  route: MetadataRoute,
  file: { readonly bytes: Buffer; readonly sha256: string },
  headers: IncomingHttpHeaders,
): MetadataResponse {
  const etag = `"${file.sha256}"`;
  const cacheControl = route.version === undefined ? LATEST_CACHE : VERSIONED_CACHE;
  if (etagMatches(headers['if-none-match'], etag)) {
    return { status: 304, headers: { ETag: etag, 'Cache-Control': cacheControl }, body: undefined };
  }
  return {
    status: 200,
    headers: { ETag: etag, 'Cache-Control': cacheControl, 'Content-Type': 'application/json' },
    body: file.bytes,
  };
}
