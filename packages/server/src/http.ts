/** HTTP helpers: the request as access control and routes see it, strict bounded bodies, TufaError → status and JSON body. */
import type { X509Certificate } from 'node:crypto';
import { type IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ERROR_TABLE, type ErrorCode, parseJson, TufaError } from '@tufa/core';
import { clientAddress, type TrustedProxies } from './proxies.js';

/** A TufaError that also fixes its HTTP status (415, 413 before the body is read, …). */
export class HttpStatusError extends TufaError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    details?: Record<string, unknown>,
    /** Response headers that go with the refusal (WWW-Authenticate, Retry-After). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(code, message, { details });
  }
}

/**
 * Where this server's answer differs from core's table: a collection declaring more delegated
 * roles than the server stores is refused as too large, like a document over the size limit.
 */
const SERVER_STATUS: Partial<Record<ErrorCode, number>> = { DELEGATION_LIMIT: 413 };

/** Every refusal of a client's input is a 4xx (core's ERROR_TABLE); only server failures are 5xx. */
export function statusOf(err: TufaError): number {
  if (err instanceof HttpStatusError) return err.status;
  return SERVER_STATUS[err.code] ?? ERROR_TABLE[err.code]?.httpStatus ?? 500;
}

/** Core's GUN grammar, refused with 400 (INVALID_ARGUMENT): `%2e%2e`, `_trust` or `a//b` never name a collection. */
export { checkGun, MAX_GUN_LENGTH } from '@tufa/core';

/** What access control, the routes and an embedding application's authorizer see of a request. */
export interface RequestInfo {
  readonly method: string;
  /** The path as sent, still percent-encoded, without the query. */
  readonly path: string;
  /** The query string as sent, without its `?` ('' when none). */
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
  /**
   * The client's address: the TCP peer's ('unknown' once the socket is gone), or, when the peer
   * is a trusted proxy (`--trusted-proxy`), the address the proxies forwarded (proxies.ts).
   */
  readonly remoteAddress: string;
  /** The client certificate the TLS handshake verified; undefined over plain HTTP or without one. */
  readonly peerCertificate: X509Certificate | undefined;
}

/** A request target → its raw path and query: `?` starts the query, `#` ends both; an absolute-form target loses its scheme and host. */
export function splitTarget(url: string): { path: string; query: string } {
  let target = url;
  if (target.charCodeAt(0) !== 0x2f) {
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target);
    if (m !== null) {
      const rest = target.slice(m[0].length);
      target = rest.startsWith('/') ? rest : `/${rest}`;
    }
  }
  const hash = target.indexOf('#');
  if (hash >= 0) target = target.slice(0, hash);
  const q = target.indexOf('?');
  return q < 0 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

class NodeRequest implements RequestInfo {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string;
  private certificate: X509Certificate | undefined | null = null;

  constructor(
    private readonly req: IncomingMessage,
    proxies: TrustedProxies | undefined,
  ) {
    this.method = req.method ?? 'GET';
    const { path, query } = splitTarget(req.url ?? '/');
    this.path = path;
    this.query = query;
    this.headers = req.headers;
    this.remoteAddress = clientAddress(req.socket.remoteAddress ?? 'unknown', req.headers, proxies);
  }

  // Read on first use: most requests never need the certificate.
  get peerCertificate(): X509Certificate | undefined {
    if (this.certificate === null) {
      const socket = this.req.socket as Partial<TLSSocket>;
      this.certificate =
        typeof socket.getPeerX509Certificate === 'function' && socket.authorized === true
          ? socket.getPeerX509Certificate()
          : undefined;
    }
    return this.certificate;
  }
}

/**
 * Gives node:http's IncomingMessage and ServerResponse their whole shape before the first request
 * (ADR 0017, section 10). V8 sizes a class's objects when its 7th instance is made, from the
 * properties its earlier instances were given; a full garbage collection between the first
 * answers and the 7th (a server idle after a few start-up requests) clears that record, every
 * later response then gets too few fields and, at the constructor's symbol-keyed stores, turns into
 * a dictionary: each response's properties go through the slow paths for the life of the process
 * (18-21 instead of 12-14 µs of CPU a GET under wrk). Eight whole answers made here, on a socket
 * never connected and in one synchronous run (no collection can intervene), fix the size from
 * complete ones. Nothing is sent or kept; a loopback connection instead would bring client-side
 * streams into this process, which slows node:http's shared stream code (measured: 15-17 µs).
 */
export function settleHttpShapes(): void {
  const socket = new Socket();
  const body = Buffer.alloc(1);
  for (let i = 0; i < 8; i++) {
    const req = new IncomingMessage(socket);
    req.method = 'GET';
    req.url = '/';
    req.headers = {};
    const res = new ServerResponse(req);
    // Both ways the listener writes headers: a stored file's flat list, and an object.
    if (i % 2 === 0) res.writeHead(200, ['Content-Length', '1']);
    else res.writeHead(404, { 'Content-Type': 'application/json', 'Content-Length': 1 });
    res.end(body);
  }
}

export function describeRequest(req: IncomingMessage, proxies?: TrustedProxies): RequestInfo {
  return new NodeRequest(req, proxies);
}

/** The media type of a request's Content-Type, lowercase ('' when there is none). */
export function mediaTypeOf(headers: IncomingHttpHeaders): string {
  return (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** 415 unless the request says its body is JSON. */
export function requireJson(headers: IncomingHttpHeaders): void {
  const type = mediaTypeOf(headers);
  if (type !== 'application/json') {
    throw new HttpStatusError(415, 'INVALID_ARGUMENT', 'send application/json', { found: type || 'nothing' });
  }
}

/**
 * The bytes of request bodies held by the whole process, at most `budget`: one pusher with many
 * concurrent large uploads cannot exhaust the server. A request holds what it declares (or what
 * has arrived of a chunked body) until its answer is written.
 */
export class BodyBudget {
  private held = 0;

  constructor(readonly budget: number) {
    if (!(budget > 0)) throw new TufaError('INVALID_ARGUMENT', 'the body budget must be positive');
  }

  /** Bytes held now by requests in flight. */
  get inFlight(): number {
    return this.held;
  }

  /** What one request holds; `release` gives all of it back (once). */
  open(): BodyHold {
    let mine = 0;
    let released = false;
    return {
      take: (bytes: number) => {
        if (released) return;
        if (this.held + bytes > this.budget) {
          throw new HttpStatusError(
            503,
            'NETWORK',
            `the server holds as many request bodies as it may (${this.budget} bytes in flight): retry shortly`,
            { budget: this.budget },
            // The body is not read: closing the connection spares sending the rest of it.
            { 'Retry-After': '1', Connection: 'close' },
          );
        }
        this.held += bytes;
        mine += bytes;
      },
      release: () => {
        if (released) return;
        released = true;
        this.held -= mine;
        mine = 0;
      },
    };
  }
}

export interface BodyHold {
  /** Holds `bytes` more, or throws 503 (NETWORK, Retry-After) when the process budget is spent. */
  take(bytes: number): void;
  release(): void;
}

/**
 * 413 for a body past `limit`, framed either way. The rest of the body is never read, so the
 * connection closes after the answer: a kept-alive one would hold unread bytes (or a request
 * stream already torn down) in front of the next request.
 */
function bodyTooLarge(req: IncomingMessage, limit: number): HttpStatusError {
  req.resume();
  return new HttpStatusError(
    413,
    'TOO_LARGE',
    `the body is larger than ${limit} bytes`,
    { limit },
    { Connection: 'close' },
  );
}

/**
 * Reads a request body up to `limit` bytes; 413 as soon as it is known to be larger, however it
 * is framed. Its bytes are taken from `hold` first: a declared length before any byte is read,
 * a chunked body as its chunks arrive.
 */
export async function readBody(req: IncomingMessage, limit: number, hold?: BodyHold): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw bodyTooLarge(req, limit);
  const length = declared === undefined ? undefined : Number(declared);
  if (length !== undefined && length > 0) hold?.take(length);
  // A declared length is read into one buffer of that size: the body is held once, not as
  // chunks and then their copy (HTTP framing guarantees no more than that arrives).
  const whole = length === undefined ? undefined : Buffer.allocUnsafe(length);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      const c = chunk as Buffer;
      if (size + c.length > limit) throw bodyTooLarge(req, limit);
      if (whole !== undefined) c.copy(whole, size);
      else {
        hold?.take(c.length);
        chunks.push(c);
      }
      size += c.length;
    }
  } catch (err) {
    if (err instanceof TufaError) throw err;
    // The client went away mid-body: its mistake, not the server's.
    throw new HttpStatusError(400, 'NETWORK', 'the request body was cut short', { received: size });
  }
  if (whole !== undefined) return size === whole.length ? whole : whole.subarray(0, size);
  return Buffer.concat(chunks);
}

/**
 * The update body: a JSON object mapping role name → metadata document. The whole body is
 * parsed strictly first; then each document's exact bytes are cut out of the body, so that what
 * is stored is byte for byte what the client sent (and its canonical form is checked by core).
 */
/**
 * The members of an update body `{"ROLE": DOCUMENT, …}`, each as the exact bytes sent (a view,
 * no copy). Only the envelope is scanned here, strictly (separators, role names, duplicates,
 * nothing after it); each document is then parsed strictly, once, by the update rules. Scanning
 * bytes is safe for UTF-8: no byte of a multi-byte sequence is below 0x80.
 */
export function parseUpdateBody(body: Uint8Array): Map<string, Uint8Array> {
  const n = body.length;
  const buf = Buffer.from(body.buffer, body.byteOffset, body.length);
  let i = 0;
  const fail = (what: string, at: number): never => {
    throw new TufaError('INVALID_JSON', `update body: ${what} at offset ${at}`, { details: { offset: at } });
  };
  const ws = () => {
    while (i < n && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++;
  };
  const skipString = () => {
    const start = i;
    let from = i + 1; // after the opening quote
    for (;;) {
      // The next quote (memchr); it closes the string unless an odd run of backslashes escapes it.
      const quote = buf.indexOf(0x22, from);
      if (quote === -1) fail('unterminated string', start);
      let backslashes = 0;
      while (quote - backslashes - 1 > start && body[quote - backslashes - 1] === 0x5c) backslashes++;
      if (backslashes % 2 === 0) {
        i = quote + 1;
        return;
      }
      from = quote + 1;
    }
  };
  const skipValue = () => {
    const start = i;
    const c = body[i];
    if (c === 0x22) return skipString();
    if (c === 0x7b || c === 0x5b) {
      // The document's end by nesting depth; its content is checked by the strict parse later.
      let depth = 0;
      do {
        if (i >= n) fail('unterminated document', start);
        const d = body[i]!;
        if (d === 0x22) {
          skipString();
          continue;
        }
        if (d === 0x7b || d === 0x5b) depth++;
        else if (d === 0x7d || d === 0x5d) depth--;
        i++;
      } while (depth > 0);
      return;
    }
    while (i < n && ![0x2c, 0x7d, 0x5d, 0x20, 0x0a, 0x0d, 0x09].includes(body[i]!)) i++;
    if (i === start) fail('expected a document', start);
  };
  ws();
  if (body[i] !== 0x7b) {
    if (i >= n) fail('empty body', i);
    throw new TufaError(
      'INVALID_ARGUMENT',
      'the update body must be a JSON object mapping role names to documents',
    );
  }
  i++;
  const out = new Map<string, Uint8Array>();
  ws();
  if (body[i] === 0x7d) i++;
  else {
    for (;;) {
      ws();
      if (body[i] !== 0x22) fail('expected a role name', i);
      const keyStart = i;
      skipString();
      const name = parseJson(body.subarray(keyStart, i), { source: 'update body' }) as string;
      if (out.has(name)) fail(`duplicate key ${JSON.stringify(name)}`, keyStart);
      ws();
      if (body[i] !== 0x3a) fail("expected ':' after a role name", i);
      i++;
      ws();
      const start = i;
      skipValue();
      out.set(name, body.subarray(start, i));
      ws();
      if (body[i] === 0x2c) {
        i++;
        continue;
      }
      if (body[i] === 0x7d) {
        i++;
        break;
      }
      fail("expected ',' or '}'", i);
    }
  }
  ws();
  if (i !== n) fail('unexpected data after the update', i);
  return out;
}

export function errorBody(err: TufaError): {
  error: { code: string; message: string; details: Record<string, unknown> };
} {
  const details: Record<string, unknown> = { ...err.details };
  if (err.role !== undefined) details.role = err.role;
  if (err.expected !== undefined) details.expected = err.expected;
  if (err.found !== undefined) details.found = err.found;
  return { error: { code: err.code, message: err.message, details } };
}
