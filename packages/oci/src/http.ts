/**
 * One bounded HTTP exchange with a registry or its token service: a byte bound on the body
 * (TOO_LARGE, from Content-Length first, then as bytes arrive) and a time bound on the whole
 * exchange (TIMEOUT). Redirects are followed (at most 5, never from https to http), and the
 * Authorization header never follows one to another origin.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { explainTransportError } from '@tufa/client';
import { TufaError } from '@tufa/core';

export interface HttpResponse {
  readonly status: number;
  /** A header's value (lowercase name), joined with ", " when repeated; null when absent. */
  header(name: string): string | null;
  /** The body; empty for HEAD. */
  readonly body: Uint8Array;
  /** The URL that answered, after redirects. */
  readonly url: URL;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST';
  headers: Record<string, string>;
  /** Refuse with TOO_LARGE past this many body bytes. */
  maxBytes: number;
  /** The whole exchange, redirects included. */
  timeoutMs: number;
  /** What the request is for, in error messages (`the manifest of team/app:v1`). */
  what: string;
  body?: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/** Sends one request (and its redirects) and reads the whole bounded body. */
export async function exchange(url: URL, request: HttpRequest): Promise<HttpResponse> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, request.timeoutMs);
  try {
    let current = url;
    let headers = request.headers;
    for (let hops = 0; ; hops++) {
      const res = await send(current, { ...request, headers }, controller.signal).catch(async (err) => {
        if (timedOut) throw timeout(request, current);
        throw await networkError(request, current, err);
      });
      const status = res.statusCode ?? 0;
      if (REDIRECTS.has(status) && res.headers.location !== undefined && request.method !== 'POST') {
        res.resume();
        const next = new URL(res.headers.location, current);
        if (hops >= MAX_REDIRECTS || (current.protocol === 'https:' && next.protocol !== 'https:')) {
          throw new TufaError(
            'NETWORK',
            `${request.what}: ${hops >= MAX_REDIRECTS ? 'too many redirects' : 'a redirect from https to http'} (${origin(current)})`,
            { details: { url: current.origin } },
          );
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          throw new TufaError('NETWORK', `${request.what}: a redirect to ${next.protocol}`, {
            details: { url: current.origin },
          });
        }
        if (next.origin !== current.origin) {
          const { authorization: _dropped, ...rest } = headers;
          headers = rest;
        }
        current = next;
        continue;
      }
      const body = await readBody(res, request, current).catch((err) => {
        if (timedOut) throw timeout(request, current);
        throw err;
      });
      return {
        status,
        header(name) {
          const value = res.headers[name.toLowerCase()];
          if (value === undefined) return null;
          return Array.isArray(value) ? value.join(', ') : value;
        },
        body,
        url: current,
      };
    }
  } finally {
    clearTimeout(timer);
  }
}

function origin(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

function send(url: URL, request: HttpRequest, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const options = { method: request.method, headers: request.headers, signal };
    const req =
      url.protocol === 'https:' ? httpsRequest(url, options, resolve) : httpRequest(url, options, resolve);
    req.on('error', reject);
    req.end(request.body);
  });
}

async function readBody(res: IncomingMessage, request: HttpRequest, url: URL): Promise<Uint8Array> {
  if (request.method === 'HEAD') {
    res.resume();
    return new Uint8Array(0);
  }
  const declared = res.headers['content-length'];
  if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > request.maxBytes) {
    res.destroy();
    throw tooLarge(request, url, Number(declared));
  }
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      length += chunk.length;
      if (length > request.maxBytes) {
        res.destroy();
        throw tooLarge(request, url, `> ${request.maxBytes}`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof TufaError) throw err;
    throw await networkError(request, url, err);
  }
  const out = Buffer.concat(chunks, length);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

function tooLarge(request: HttpRequest, url: URL, found: number | string): TufaError {
  return new TufaError(
    'TOO_LARGE',
    `${request.what}: ${origin(url)} sends ${typeof found === 'number' ? found : 'more than'} bytes, more than the ${request.maxBytes} allowed`,
    { expected: `<= ${request.maxBytes}`, found, details: { url: origin(url) } },
  );
}

function timeout(request: HttpRequest, url: URL): TufaError {
  return new TufaError(
    'TIMEOUT',
    `${request.what}: no complete answer from ${origin(url)} within ${request.timeoutMs} ms`,
    {
      expected: request.timeoutMs,
      details: { url: origin(url) },
    },
  );
}

async function networkError(request: HttpRequest, url: URL, err: unknown): Promise<TufaError> {
  const why = (await explainTransportError(url, err).catch(() => undefined)) ?? describe(err);
  return new TufaError('NETWORK', `${request.what}: cannot reach ${origin(url)}: ${why}`, {
    details: { url: origin(url) },
    cause: err,
  });
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' && !message.includes(code) ? `${code} ${message}` : message;
}
