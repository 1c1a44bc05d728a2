/**
 * Bounded HTTP downloads. Every response is read as a stream under four guards: a byte bound
 * (TOO_LARGE, checked against Content-Length first and then chunk by chunk, so nothing past the
 * bound is ever held), a time to first byte of the response headers, an idle time between
 * chunks, and a minimum average rate (all TIMEOUT). Transport failures are NETWORK.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import { TufaError } from '@tufa/core';

/** What the client reads of a body: a WHATWG ReadableStream fits. */
export interface FetchBody {
  getReader(): {
    read(): Promise<{ done: true; value?: undefined } | { done: false; value: Uint8Array }>;
    cancel(reason?: unknown): Promise<void>;
    releaseLock(): void;
  };
  cancel(reason?: unknown): Promise<void>;
}

/** What the client reads of a response: a WHATWG Response fits. */
export interface FetchResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: FetchBody | null;
}

/**
 * The subset of the WHATWG fetch the client uses: Node's global fetch fits. The default,
 * nodeFetch, answers with a lighter FetchResponse over node:http, which spares a CLI process
 * loading undici and web streams (about 20 ms).
 */
export type FetchLike = (
  url: string,
  init: {
    signal: AbortSignal;
    redirect: 'follow';
    /** `accept-encoding: gzip` for metadata: a WHATWG fetch decodes on its own, nodeFetch only then. */
    headers?: Readonly<Record<string, string>>;
  },
) => Promise<FetchResponse>;

/** A token for the server, and TLS material for a private CA or mutual TLS. */
export interface HttpAuthOptions {
  /** Sent as `Authorization: Bearer TOKEN`, only to `tokenOrigin`. */
  token?: string | undefined;
  /** The origin (`https://host:port`) the token belongs to; other origins never see it. */
  tokenOrigin?: string | undefined;
  /** PEM CA certificate(s) to trust instead of the system's. */
  ca?: string | Uint8Array | undefined;
  /** PEM client certificate and its private key, for servers that require mutual TLS. */
  cert?: string | Uint8Array | undefined;
  key?: string | Uint8Array | undefined;
}

/** node:tls types want a Buffer; a view over the caller's bytes, not a copy. */
function pem(material: string | Uint8Array): string | Buffer {
  return typeof material === 'string'
    ? material
    : Buffer.from(material.buffer, material.byteOffset, material.byteLength);
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/**
 * A FetchLike over node:http/https with a token and TLS options (Node's global fetch takes no CA
 * or client certificate). Follows at most 5 redirects, never from https to http, and drops the
 * token on any redirect that leaves its origin.
 */
export function nodeFetch(options: HttpAuthOptions): FetchLike {
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new TufaError('INVALID_ARGUMENT', 'a client certificate and its key go together');
  }
  if (options.token !== undefined && !/^[A-Za-z0-9._~+/-]+=*$/.test(options.token)) {
    throw new TufaError('INVALID_ARGUMENT', 'the token has characters a Bearer token cannot have');
  }
  const tls = {
    ...(options.ca === undefined ? {} : { ca: pem(options.ca) }),
    ...(options.cert === undefined || options.key === undefined
      ? {}
      : { cert: pem(options.cert), key: pem(options.key) }),
  };
  // node:https (with tls) and node:zlib load on first use: a CLI reading a plain-http server spares them.
  const once = async (url: URL, signal: AbortSignal, gzip: boolean): Promise<IncomingMessage> => {
    const httpsRequest = url.protocol === 'https:' ? (await import('node:https')).request : undefined;
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = gzip
        ? { accept: '*/*', 'accept-encoding': 'gzip' }
        : { accept: '*/*' };
      if (options.token !== undefined && url.origin === options.tokenOrigin) {
        headers.authorization = `Bearer ${options.token}`;
      }
      const req =
        httpsRequest !== undefined
          ? httpsRequest(url, { method: 'GET', headers, signal, ...tls }, resolve)
          : httpRequest(url, { method: 'GET', headers, signal }, resolve);
      req.on('error', (err) => {
        explainTransportError(url, err).then(
          (why) =>
            reject(
              why === undefined
                ? err
                : new TufaError('NETWORK', `cannot reach ${url.origin}: ${why}`, {
                    details: { url: url.href },
                    cause: err,
                  }),
            ),
          () => reject(err),
        );
      });
      req.end();
    });
  };
  return async (url, init) => {
    // Asked for by metadata downloads only: a target file is hashed as sent, even by a server that
    // labels a .tar.gz `Content-Encoding: gzip` (as some do) without being asked.
    const gzip = init.headers?.['accept-encoding'] === 'gzip';
    let current = new URL(url);
    for (let hops = 0; ; hops++) {
      if (current.protocol !== 'http:' && current.protocol !== 'https:') {
        throw new TypeError(`not an http(s) URL: ${current.protocol}`);
      }
      const res = await once(current, init.signal, gzip);
      const status = res.statusCode ?? 0;
      if (REDIRECTS.has(status)) {
        res.resume();
        const location = res.headers.location;
        if (location === undefined || hops >= MAX_REDIRECTS) {
          throw new TypeError(
            location === undefined ? 'a redirect without a Location' : 'too many redirects',
          );
        }
        const next = new URL(location, current);
        if (current.protocol === 'https:' && next.protocol !== 'https:') {
          throw new TypeError('refusing a redirect from https to http');
        }
        current = next;
        continue;
      }
      if (status < 200 || status > 599) {
        res.resume();
        throw new TypeError(`unexpected HTTP status ${status}`);
      }
      const empty = status === 204 || status === 205 || status === 304;
      if (empty) res.resume();
      const encoding = gzip
        ? (res.headers['content-encoding'] ?? 'identity').trim().toLowerCase()
        : 'identity';
      const gzipped = encoding === 'gzip' || encoding === 'x-gzip';
      if (!empty && !gzipped && encoding !== 'identity') {
        res.resume();
        throw new TypeError(`a body in ${encoding.slice(0, 40)}, which was not asked for`);
      }
      return {
        status,
        headers: {
          get(name: string): string | null {
            const key = name.toLowerCase();
            // A gzipped body's Content-Length is of the compressed bytes: the bounds count decoded ones.
            if (gzipped && key === 'content-length') return null;
            const value = res.headers[key];
            if (value === undefined) return null;
            return Array.isArray(value) ? value.join(', ') : value;
          },
        },
        body: empty ? null : gzipped ? await gunzipBody(res) : messageBody(res, res),
      };
    }
  };
}

/** A URL (or what was meant as one) with any user name and password replaced by `***`. */
export function redactUrl(text: string): string {
  // Trimmed first, as the URL parser does; up to the last @ is user info when no separator comes
  // before it, or when a ':' comes before the first separator (a password that holds a '/').
  const t = text.trim();
  const at = t.lastIndexOf('@');
  if (at < 0) return t;
  const prefix = /^[A-Za-z][A-Za-z0-9+.-]*:[\\/]*/.exec(t)?.[0] ?? '';
  const part = t.slice(prefix.length, at);
  const separator = part.search(/[/?#\\]/);
  if (separator === -1 || part.slice(0, separator).includes(':')) return `${prefix}***${t.slice(at)}`;
  return t;
}

/**
 * What a transport failure means when the URL's scheme does not match the server: TLS spoken to
 * a plain HTTP server reads its answer as a bad TLS record ("wrong version number"); plain HTTP
 * spoken to a TLS server gets the connection closed or an unparsable answer, and a TLS handshake
 * with the same address then tells. Undefined when the error is something else.
 */
export async function explainTransportError(url: URL, err: unknown): Promise<string | undefined> {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const message = err instanceof Error ? err.message : '';
  const other = new URL(url.href);
  if (url.protocol === 'https:') {
    const notTls =
      code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
      code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' ||
      /wrong version number|packet length too long|http request/i.test(message);
    if (!notTls) return undefined;
    other.protocol = 'http:';
    return `the server does not speak TLS: use ${other.origin}`;
  }
  const closed =
    code === 'ECONNRESET' ||
    /socket hang up/.test(message) ||
    (typeof code === 'string' && code.startsWith('HPE_'));
  if (url.protocol !== 'http:' || !closed || !(await speaksTls(url))) return undefined;
  other.protocol = 'https:';
  return `the server speaks TLS: use ${other.origin}`;
}

/** Whether a TLS handshake with the URL's host and port gets a TLS answer (a probe: no data sent). */
async function speaksTls(url: URL, timeoutMs = 3000): Promise<boolean> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const { connect: tlsConnect } = await import('node:tls');
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host,
      port: Number(url.port === '' ? 80 : url.port),
      // Only the handshake is looked at, and nothing is sent over it.
      rejectUnauthorized: false,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      timeout: timeoutMs,
    });
    const done = (answer: boolean): void => {
      socket.destroy();
      resolve(answer);
    };
    socket.once('secureConnect', () => done(true));
    // A TLS alert (a client certificate required, say) is a TLS answer too.
    socket.once('error', (e: NodeJS.ErrnoException) =>
      done(typeof e.code === 'string' && e.code.startsWith('ERR_SSL_') && !e.code.includes('WRONG_VERSION')),
    );
    socket.once('timeout', () => done(false));
  });
}

/** A response body over node:http's message: chunks as they arrive; cancel destroys the message. */
function messageBody(res: IncomingMessage, stream: Readable): FetchBody {
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const cancel = async (): Promise<void> => {
    res.destroy();
    stream.destroy();
  };
  return {
    getReader() {
      return {
        async read() {
          const next = await chunks.next();
          if (next.done === true) return { done: true };
          const b = next.value;
          return { done: false, value: new Uint8Array(b.buffer, b.byteOffset, b.length) };
        },
        cancel,
        releaseLock() {},
      };
    },
    cancel,
  };
}

/**
 * A gzipped body, decoded as it is read: zlib writes at most 16 KiB per chunk and waits for the
 * reader, so a compression bomb grows no further than the reader's byte bound plus one chunk.
 * Bad gzip is an error of the read (NETWORK).
 */
async function gunzipBody(res: IncomingMessage): Promise<FetchBody> {
  const [{ createGunzip }, { pipeline }] = await Promise.all([import('node:zlib'), import('node:stream')]);
  const gunzip = createGunzip();
  pipeline(res, gunzip, () => undefined);
  return messageBody(res, gunzip);
}

/** The server's refusal of the caller (401, 403 for a missing scope, 429), or undefined. */
function accessError(response: FetchResponse, role: string, url: string): TufaError | undefined {
  const challenge = response.headers.get('www-authenticate') ?? '';
  if (response.status === 401) {
    // RFC 6750 3.1: the challenge says whether the token was refused or none was sent.
    const message = /error="invalid_token"/.test(challenge)
      ? 'the server refused the token: it is unknown or revoked (HTTP 401)'
      : /error="invalid_request"/.test(challenge)
        ? 'the server refused the Authorization header: it wants "Bearer TOKEN" (HTTP 401)'
        : 'the server wants a token to read this collection (HTTP 401)';
    return new TufaError('UNAUTHORIZED', message, { role, details: { url, status: 401 } });
  }
  if (response.status === 403 && /error="insufficient_scope"/.test(challenge)) {
    return new TufaError('FORBIDDEN', "the token's scopes do not cover reading this collection (HTTP 403)", {
      role,
      details: { url, status: 403 },
    });
  }
  if (response.status === 429) {
    const retry = response.headers.get('retry-after');
    return new TufaError(
      'RATE_LIMITED',
      `${role}: the server refuses for now (HTTP 429), retry in ${retry ?? '?'} s`,
      {
        role,
        details: { url, status: 429, retryAfter: retry },
      },
    );
  }
  return undefined;
}

export interface Timeouts {
  /** Until the response headers arrive (connect, TLS, server think time). Default 10 s. */
  connectMs?: number;
  /** The longest pause between two chunks of a body. Default 10 s. */
  idleMs?: number;
  /** A whole metadata download, headers to last byte. Default 60 s. Not applied to targets. */
  totalMs?: number;
  /**
   * Slow-retrieval guard: once `rateGraceMs` have passed, the average rate since the
   * headers arrived must stay at or above this. Default 1024 bytes/s after 5 s.
   */
  minBytesPerSecond?: number;
  rateGraceMs?: number;
}

export const DEFAULT_TIMEOUTS: Readonly<Required<Timeouts>> = Object.freeze({
  connectMs: 10_000,
  idleMs: 10_000,
  totalMs: 60_000,
  minBytesPerSecond: 1024,
  rateGraceMs: 5_000,
});

export interface DownloadOptions {
  /** The role (or target path) the download is for, named in errors. */
  role: string;
  /** Refuse with TOO_LARGE as soon as more than this many bytes arrive. */
  maxBytes: number;
  timeouts: Required<Timeouts>;
  /** Apply `timeouts.totalMs` (metadata), or not (target files, which may be large). */
  total: boolean;
  fetch: FetchLike;
  /** The error for a body larger than `maxBytes` (default TOO_LARGE). */
  tooLarge?: (found: number | string) => TufaError;
  /** Ask for a gzipped body and read it decoded (metadata); every bound counts decoded bytes. */
  gzip?: boolean;
  /**
   * The length signed metadata states (at most `maxBytes`): `download` then reads into one
   * buffer of that size, so the document is held once, never as chunks plus their copy.
   */
  statedLength?: number;
  /** The caller's: when it aborts, the download stops (and rejects, as NETWORK). */
  signal?: AbortSignal;
}

type Reason = { kind: 'timeout'; what: string; limit: number } | { kind: 'caller' };

function timeoutError(role: string, url: string, what: string, limit: number): TufaError {
  return new TufaError('TIMEOUT', `${role}: ${what} (${limit}) exceeded downloading ${url}`, {
    role,
    expected: limit,
    details: { url, guard: what },
  });
}

/**
 * Downloads `url` and yields its body chunk by chunk, each guard enforced as it goes. The
 * consumer may stop early (return/throw): the request is then aborted.
 */
export async function* streamDownload(url: string, options: DownloadOptions): AsyncGenerator<Uint8Array> {
  const { role, maxBytes, timeouts } = options;
  const controller = new AbortController();
  let reason: Reason | undefined;
  let reader: ReturnType<FetchBody['getReader']> | undefined;
  const abort = (r: Reason): void => {
    if (reason !== undefined) return;
    reason = r;
    controller.abort();
    // A body not tied to the signal (an injected fetch) is cancelled too: a pending read ends.
    reader?.cancel().catch(() => undefined);
  };
  const timers: NodeJS.Timeout[] = [];
  const after = (ms: number, what: string): NodeJS.Timeout => {
    const t = setTimeout(() => abort({ kind: 'timeout', what, limit: ms }), ms);
    timers.push(t);
    return t;
  };
  const translate = (err: unknown): TufaError => {
    if (err instanceof TufaError) return err;
    if (reason?.kind === 'timeout') return timeoutError(role, url, reason.what, reason.limit);
    return new TufaError('NETWORK', `${role}: cannot download ${url}: ${describeError(err)}`, {
      role,
      details: { url },
      cause: err,
    });
  };

  const callerAbort = () => abort({ kind: 'caller' });
  if (options.signal?.aborted === true) callerAbort();
  options.signal?.addEventListener('abort', callerAbort, { once: true });
  const connectTimer = after(timeouts.connectMs, 'connect timeout (ms)');
  if (options.total) after(timeouts.totalMs, 'total download time (ms)');
  try {
    if (reason !== undefined) throw translate(new Error('aborted'));
    let response: FetchResponse;
    try {
      response = await options.fetch(
        url,
        options.gzip === true
          ? { signal: controller.signal, redirect: 'follow', headers: { 'accept-encoding': 'gzip' } }
          : { signal: controller.signal, redirect: 'follow' },
      );
    } catch (err) {
      throw translate(err);
    }
    clearTimeout(connectTimer);
    const refused = accessError(response, role, url);
    if (refused !== undefined) {
      await response.body?.cancel().catch(() => undefined);
      throw refused;
    }
    if (response.status === 404 || response.status === 403) {
      await response.body?.cancel().catch(() => undefined);
      throw new TufaError('NOT_FOUND', `${role}: ${url} not found (HTTP ${response.status})`, {
        role,
        details: { url, status: response.status },
      });
    }
    if (response.status < 200 || response.status > 299) {
      await response.body?.cancel().catch(() => undefined);
      throw new TufaError('NETWORK', `${role}: HTTP ${response.status} for ${url}`, {
        role,
        details: { url, status: response.status },
      });
    }
    const declared = response.headers.get('content-length');
    if (declared !== null && /^\d+$/.test(declared) && Number(declared) > maxBytes) {
      await response.body?.cancel().catch(() => undefined);
      throw (
        options.tooLarge?.(Number(declared)) ??
        new TufaError('TOO_LARGE', `${role}: ${url} declares ${declared} bytes, more than ${maxBytes}`, {
          role,
          expected: `<= ${maxBytes}`,
          found: Number(declared),
          details: { url },
        })
      );
    }
    if (response.body === null) return;
    reader = response.body.getReader();
    const started = Date.now();
    let received = 0;
    let idle = after(timeouts.idleMs, 'idle time between chunks (ms)');
    const rateCheck = setInterval(
      () => {
        const elapsed = Date.now() - started;
        if (elapsed >= timeouts.rateGraceMs && (received * 1000) / elapsed < timeouts.minBytesPerSecond) {
          abort({
            kind: 'timeout',
            what: 'minimum average rate (bytes/s)',
            limit: timeouts.minBytesPerSecond,
          });
        }
      },
      Math.max(10, Math.min(1000, Math.floor(timeouts.rateGraceMs / 4) || 10)),
    );
    timers.push(rateCheck);
    for (;;) {
      let chunk: Awaited<ReturnType<ReturnType<FetchBody['getReader']>['read']>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        throw translate(err);
      }
      if (reason !== undefined) throw translate(new Error('aborted'));
      if (chunk.done) return;
      clearTimeout(idle);
      idle = after(timeouts.idleMs, 'idle time between chunks (ms)');
      received += chunk.value.length;
      if (received > maxBytes) {
        throw (
          options.tooLarge?.(`> ${maxBytes}`) ??
          new TufaError('TOO_LARGE', `${role}: more than ${maxBytes} bytes from ${url}`, {
            role,
            expected: `<= ${maxBytes}`,
            found: `> ${maxBytes}`,
            details: { url },
          })
        );
      }
      yield chunk.value;
    }
  } finally {
    options.signal?.removeEventListener('abort', callerAbort);
    for (const t of timers) clearTimeout(t);
    if (reason === undefined) reason = { kind: 'caller' };
    controller.abort();
    try {
      reader?.releaseLock();
    } catch {
      // already released with the aborted stream
    }
  }
}

/** Downloads a whole (small) document into memory, under the same guards. */
export async function download(url: string, options: DownloadOptions): Promise<Uint8Array> {
  const stated = options.statedLength;
  if (stated !== undefined && stated <= options.maxBytes) {
    // Nothing past `maxBytes` arrives (streamDownload refuses it), so the buffer never overflows.
    const out = new Uint8Array(stated);
    let at = 0;
    for await (const chunk of streamDownload(url, { ...options, maxBytes: stated })) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return at === stated ? out : out.subarray(0, at);
  }
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of streamDownload(url, options)) {
    chunks.push(chunk);
    length += chunk.length;
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return `${err.message} (${cause.message})`;
    return err.message;
  }
  return String(err);
}
