/** The one answer to a metadata read: ETag and 304, cache headers, content type, the exact stored bytes. */
import type { IncomingHttpHeaders } from 'node:http';
import { gzip, gzipSync, constants as zlibConstants } from 'node:zlib';
import type { Route } from './routes.js';

export type MetadataRoute = Extract<Route, { kind: 'metadata' }>;

export interface MetadataResponse {
  status: 200 | 304;
  headers: Readonly<Record<string, string>>;
  /**
   * The same headers as name, value, name, value… in the same order, with the body's
   * Content-Length on a 200: what node:http's writeHead takes as it is (made once per file).
   */
  rawHeaders: readonly string[];
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
/**
 * Z_FILTERED: metadata is mostly hex digests and base64 signatures, where deflate's short string
 * matches cost more than they save; 6% smaller than the default strategy on a 1,000-target file.
 */
const GZIP = { level: 6, strategy: zlibConstants.Z_FILTERED };

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
 * One representation of a served file (its bytes as stored, or their gzip copy) and its four
 * answers (200 and 304, latest and versioned), each made once and then handed out as it is: a
 * cached GET builds no header object and no string.
 */
export class Representation {
  private readonly answers: (MetadataResponse | undefined)[] = [undefined, undefined, undefined, undefined];

  constructor(
    readonly body: Buffer,
    readonly etag: string,
    /** Whether every answer says `Vary: Accept-Encoding` (the file has a gzip copy, or may have). */
    private readonly varies: boolean,
    private readonly gzipped: boolean,
  ) {}

  answer(status: 200 | 304, versioned: boolean): MetadataResponse {
    const at = (status === 304 ? 2 : 0) + (versioned ? 1 : 0);
    let made = this.answers[at];
    if (made === undefined) {
      made = this.make(status, versioned);
      this.answers[at] = made;
    }
    return made;
  }

  private make(status: 200 | 304, versioned: boolean): MetadataResponse {
    const headers: Record<string, string> = {
      ETag: this.etag,
      'Cache-Control': versioned ? VERSIONED_CACHE : LATEST_CACHE,
    };
    if (status === 200) headers['Content-Type'] = 'application/json';
    if (this.varies) headers.Vary = 'Accept-Encoding';
    if (status === 200 && this.gzipped) headers['Content-Encoding'] = 'gzip';
    const rawHeaders = Object.entries(headers).flat();
    if (status === 200) rawHeaders.push('Content-Length', String(this.body.length));
    return Object.freeze({
      status,
      headers: Object.freeze(headers),
      rawHeaders: Object.freeze(rawHeaders),
      body: status === 200 ? this.body : undefined,
    });
  }
}

/** Accept-Encoding values read so far (most clients send one of a few), at most this many. */
const KNOWN_ACCEPT_ENCODINGS = 64;

/**
 * gzip copies of served files, made when a client first asks for one and kept by the files'
 * sha256 (the same bytes have the same copy, whatever the GUN or version), at most `maxBytes` of
 * copies, the oldest dropped first. Files above 256 KiB are compressed off the event loop (the
 * thread pool), at most `maxPending` at once; until a copy is ready they go out as they are.
 * Each file's and each copy's answers are made once (`Representation`) and live as long as they.
 */
export class CompressedCopies {
  /** sha256 → the gzip copy, or null when gzip did not make the file smaller. */
  private readonly copies = new Map<string, Representation | null>();
  private readonly pending = new Set<string>();
  /** A file as it is: held as long as the file is (the memory cache's entry, or one request's read). */
  private readonly identities = new WeakMap<ServedFile, Representation>();
  private readonly acceptEncodings = new Map<string, boolean>();
  private size = 0;

  constructor(
    private readonly maxBytes = 32 * 1024 * 1024,
    private readonly maxPending = 2,
  ) {}

  /** The gzip copy of `file` if there is one now (made at once when the file is small enough). */
  gzipOf(file: ServedFile): Representation | undefined {
    const held = this.copies.get(file.sha256);
    if (held !== undefined) return held ?? undefined;
    if (file.bytes.length > this.maxBytes / 4) return undefined;
    if (file.bytes.length <= COMPRESS_NOW_BYTES)
      return this.keep(file, gzipSync(file.bytes, GZIP)) ?? undefined;
    if (!this.pending.has(file.sha256) && this.pending.size < this.maxPending) {
      this.pending.add(file.sha256);
      gzip(file.bytes, GZIP, (err, copy) => {
        this.pending.delete(file.sha256);
        if (err === null) this.keep(file, copy);
      });
    }
    return undefined;
  }

  /** `file` as it is, with its answers. */
  identityOf(file: ServedFile, varies: boolean): Representation {
    let held = this.identities.get(file);
    if (held === undefined) {
      held = new Representation(file.bytes, `"${file.sha256}"`, varies, false);
      this.identities.set(file, held);
    }
    return held;
  }

  /** `acceptsGzip`, remembered for the few values clients send. */
  acceptsGzip(header: string | string[] | undefined): boolean {
    if (typeof header !== 'string') return acceptsGzip(header);
    let yes = this.acceptEncodings.get(header);
    if (yes === undefined) {
      yes = acceptsGzip(header);
      if (this.acceptEncodings.size >= KNOWN_ACCEPT_ENCODINGS) this.acceptEncodings.clear();
      this.acceptEncodings.set(header, yes);
    }
    return yes;
  }

  /** What is held: copies and their bytes. */
  get stats(): { files: number; bytes: number } {
    return { files: this.copies.size, bytes: this.size };
  }

  private keep(file: ServedFile, copy: Buffer): Representation | null {
    const kept =
      copy.length < file.bytes.length ? new Representation(copy, `"${file.sha256}+gzip"`, true, true) : null;
    this.copies.set(file.sha256, kept);
    this.size += kept?.body.length ?? 0;
    for (const [sha256, old] of this.copies) {
      if (this.size <= this.maxBytes) break;
      this.copies.delete(sha256);
      this.size -= old?.body.length ?? 0;
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
  const versioned = route.version !== undefined;
  const varies = compressed !== undefined && file.bytes.length >= MIN_COMPRESSED_BYTES;
  const representation =
    (varies && compressed.acceptsGzip(headers['accept-encoding']) ? compressed.gzipOf(file) : undefined) ??
    compressed?.identityOf(file, varies) ??
    new Representation(file.bytes, `"${file.sha256}"`, false, false);
  const condition = headers['if-none-match'];
  const notModified = condition !== undefined && etagMatches(condition, representation.etag);
  return representation.answer(notModified ? 304 : 200, versioned);
}
