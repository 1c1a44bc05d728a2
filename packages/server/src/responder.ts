/** The one answer to a metadata read: ETag and 304, cache headers, content type, the exact stored bytes. */
import type { IncomingHttpHeaders } from 'node:http';
import { gzip, gzipSync } from 'node:zlib';
import type { Route } from './routes.js';

export type MetadataRoute = Extract<Route, { kind: 'metadata' }>;

export interface MetadataResponse {
  status: 200 | 304;
  headers: Record<string, string>;
  /** Absent for 304; a HEAD is answered without it but with its Content-Length. */
  body: Buffer | undefined;
}

/** A stored file as served: its bytes and their sha256 (hex), which names them. */
export interface ServedFile {
  readonly bytes: Buffer;
  readonly sha256: string;
}

const LATEST_CACHE = 'public, max-age=10, must-revalidate';
const VERSIONED_CACHE = 'public, max-age=31536000, immutable';

/** Smaller files are only ever sent as they are: a timestamp gains nothing from gzip. */
export const MIN_COMPRESSED_BYTES = 1024;
/** Up to this size a file is compressed in the request that first asks (about 2 ms for 128 KiB). */
const COMPRESS_NOW_BYTES = 256 * 1024;

/** Whether an If-None-Match header names this ETag (or `*`). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined || header === '') return false;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag || t.trim() === '*');
}

/** Whether Accept-Encoding allows gzip (RFC 9110 12.5.3: named or `*`, with a q-value above 0). */
export function acceptsGzip(header: string | string[] | undefined): boolean {
  if (header === undefined) return false;
  let gzipQ: number | undefined;
  let anyQ: number | undefined;
  for (const part of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const [name = '', ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    if (!Number.isFinite(weight)) continue;
    if (name === 'gzip' || name === 'x-gzip') gzipQ = Math.max(gzipQ ?? 0, weight);
    else if (name === '*') anyQ = weight;
  }
  return (gzipQ ?? anyQ ?? 0) > 0;
}

/**
 * gzip copies of served files, made when a client first asks for one and kept by the files'
 * sha256 (the same bytes have the same copy, whatever the GUN or version), at most `maxBytes` of
 * copies, the oldest dropped first. Files above 256 KiB are compressed off the event loop (the
 * thread pool), at most `maxPending` at once; until a copy is ready they go out as they are.
 */
export class CompressedCopies {
  /** sha256 → the gzip copy, or null when gzip did not make the file smaller. */
  private readonly copies = new Map<string, Buffer | null>();
  private readonly pending = new Set<string>();
  private size = 0;

  constructor(
    private readonly maxBytes = 32 * 1024 * 1024,
    private readonly maxPending = 2,
  ) {}

  /** The gzip copy of `file` if there is one now (made at once when the file is small enough). */
  gzipOf(file: ServedFile): Buffer | undefined {
    const held = this.copies.get(file.sha256);
    if (held !== undefined) return held ?? undefined;
    if (file.bytes.length > this.maxBytes / 4) return undefined;
    if (file.bytes.length <= COMPRESS_NOW_BYTES) return this.keep(file, gzipSync(file.bytes)) ?? undefined;
    if (!this.pending.has(file.sha256) && this.pending.size < this.maxPending) {
      this.pending.add(file.sha256);
      gzip(file.bytes, (err, copy) => {
        this.pending.delete(file.sha256);
        if (err === null) this.keep(file, copy);
      });
    }
    return undefined;
  }

  /** What is held: copies and their bytes. */
  get stats(): { files: number; bytes: number } {
    return { files: this.copies.size, bytes: this.size };
  }

  private keep(file: ServedFile, copy: Buffer): Buffer | null {
    const kept = copy.length < file.bytes.length ? copy : null;
    this.copies.set(file.sha256, kept);
    this.size += kept?.length ?? 0;
    for (const [sha256, old] of this.copies) {
      if (this.size <= this.maxBytes) break;
      this.copies.delete(sha256);
      this.size -= old?.length ?? 0;
    }
    return kept;
  }
}

/**
 * A stored file as served: versioned files never change, the latest may change at any publish.
 * With `compressed`, a file of at least 1 KiB goes out gzipped to a client whose Accept-Encoding
 * allows it, under an ETag of its own (`"SHA256+gzip"`), and every answer for it says `Vary:
 * Accept-Encoding`.
 */
export function metadataResponse(
  route: MetadataRoute,
  file: ServedFile,
  headers: IncomingHttpHeaders,
  compressed?: CompressedCopies,
): MetadataResponse {
  const cacheControl = route.version === undefined ? LATEST_CACHE : VERSIONED_CACHE;
  const varies = compressed !== undefined && file.bytes.length >= MIN_COMPRESSED_BYTES;
  const gzipped = varies && acceptsGzip(headers['accept-encoding']) ? compressed.gzipOf(file) : undefined;
  const etag = gzipped === undefined ? `"${file.sha256}"` : `"${file.sha256}+gzip"`;
  if (etagMatches(headers['if-none-match'], etag)) {
    const notModified: Record<string, string> = { ETag: etag, 'Cache-Control': cacheControl };
    if (varies) notModified.Vary = 'Accept-Encoding';
    return { status: 304, headers: notModified, body: undefined };
  }
  const ok: Record<string, string> = {
    ETag: etag,
    'Cache-Control': cacheControl,
    'Content-Type': 'application/json',
  };
  if (varies) ok.Vary = 'Accept-Encoding';
  if (gzipped !== undefined) ok['Content-Encoding'] = 'gzip';
  return { status: 200, headers: ok, body: gzipped ?? file.bytes };
}
