/**
 * The tufa server's write API as the CLI uses it: online public keys, atomic updates.
 * Responses are size-bounded and parsed strictly; the server's error codes come back as TufaErrors.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ERROR_CODES, type ErrorCode, type Key, parseJson, TufaError } from '@tufa/core';

export interface RemoteOptions {
  server: string;
  token?: string | undefined;
  /** PEM CA bundle for HTTPS servers with a private CA. */
  ca?: string | Buffer | undefined;
  timeoutMs?: number;
}

interface Response {
  status: number;
  body: Uint8Array;
}

const RESPONSE_LIMIT = 1024 * 1024;

export function collectionUrl(server: string, gun: string): string {
  const base = server.replace(/\/+$/, '');
  return `${base}/v2/${gun.split('/').map(encodeURIComponent).join('/')}/_trust/tuf/`;
}

function send(
  options: RemoteOptions,
  method: string,
  url: string,
  body?: Uint8Array,
  contentType = 'application/json',
): Promise<Response> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return Promise.reject(new TufaError('INVALID_ARGUMENT', `not a server URL: ${options.server}`));
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return Promise.reject(
      new TufaError('INVALID_ARGUMENT', `the server URL must be http or https: ${options.server}`),
    );
  }
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (body !== undefined) {
    headers['content-type'] = contentType;
    headers['content-length'] = String(body.length);
  }
  const requestFn = parsed.protocol === 'https:' ? httpsRequest : httpRequest;
  const timeout = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const req = requestFn(
      parsed,
      { method, headers, timeout, ...(options.ca !== undefined ? { ca: options.ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > RESPONSE_LIMIT) {
            req.destroy(
              new TufaError('TOO_LARGE', `the server's answer to ${method} ${parsed.pathname} is too large`, {
                expected: RESPONSE_LIMIT,
              }),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: new Uint8Array(Buffer.concat(chunks)) }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(
        new TufaError('TIMEOUT', `no answer from ${parsed.origin} within ${timeout} ms`, {
          expected: timeout,
        }),
      ),
    );
    req.on('error', (err) => {
      if (err instanceof TufaError) return reject(err);
      reject(
        new TufaError(
          'NETWORK',
          `cannot reach ${parsed.origin}: ${(err as NodeJS.ErrnoException).code ?? err.message}`,
          {
            cause: err,
          },
        ),
      );
    });
    if (body !== undefined) req.end(Buffer.from(body.buffer, body.byteOffset, body.length));
    else req.end();
  });
}

/** Turns an error answer into a TufaError with the server's code when it is one of ours. */
function failure(res: Response, what: string): TufaError {
  let code: ErrorCode = res.status === 404 ? 'NOT_FOUND' : res.status === 409 ? 'CONFLICT' : 'NETWORK';
  let message = `${what}: the server answered ${res.status}`;
  let details: Record<string, unknown> = { status: res.status };
  try {
    const doc = parseJson(res.body, { source: 'server answer' }) as { error?: Record<string, unknown> };
    const e = doc?.error;
    if (e && typeof e.message === 'string') message = `${what}: ${e.message}`;
    if (
      e &&
      typeof e.code === 'string' &&
      (ERROR_CODES as readonly string[]).includes(e.code) &&
      res.status < 500
    ) {
      code = e.code as ErrorCode;
    }
    if (e?.details && typeof e.details === 'object') details = { ...details, ...(e.details as object) };
  } catch {
    // Not our JSON error body: the status says enough.
  }
  if (res.status === 401 || res.status === 403) code = 'NETWORK';
  // 409: the collection moved on under this update (a lost race, a stale version): refresh and retry.
  if (res.status === 409) {
    details = { ...details, serverCode: code };
    code = 'CONFLICT';
  }
  return new TufaError(code, message, { details });
}

function parseKey(body: Uint8Array, role: string): Key {
  const doc = parseJson(body, { source: `${role} key` }) as Record<string, unknown>;
  const keyval = doc?.keyval as Record<string, unknown> | undefined;
  if (
    typeof doc?.keytype !== 'string' ||
    typeof doc.scheme !== 'string' ||
    typeof keyval?.public !== 'string'
  ) {
    throw new TufaError('INVALID_KEY', `the server's ${role} key is not a TUF key object`, { role });
  }
  return { keytype: doc.keytype, scheme: doc.scheme, keyval: { public: keyval.public }, extra: {} };
}

/** The server's online public key for `role` (timestamp or snapshot), created if the caller may. */
export async function getOnlineKey(
  options: RemoteOptions,
  gun: string,
  role: 'timestamp' | 'snapshot',
): Promise<Key> {
  const res = await send(options, 'GET', `${collectionUrl(options.server, gun)}${role}.key`);
  if (res.status !== 200) throw failure(res, `${role} key of ${gun}`);
  return parseKey(res.body, role);
}

/** Asks the server to make the next online key for `role`; it signs once a root names it. */
export async function rotateOnlineKey(
  options: RemoteOptions,
  gun: string,
  role: 'timestamp' | 'snapshot',
): Promise<Key> {
  const res = await send(
    options,
    'POST',
    `${collectionUrl(options.server, gun)}${role}.key`,
    new Uint8Array(0),
  );
  if (res.status !== 200 && res.status !== 201) throw failure(res, `rotating the ${role} key of ${gun}`);
  return parseKey(res.body, role);
}

/**
 * Uploads signed documents (role → exact bytes) as one atomic update. The body is a JSON object
 * whose members are the documents, byte for byte.
 */
export async function publishRoles(
  options: RemoteOptions,
  gun: string,
  documents: ReadonlyMap<string, Uint8Array>,
): Promise<Record<string, number>> {
  const parts: Buffer[] = [Buffer.from('{')];
  let first = true;
  for (const [role, bytes] of documents) {
    parts.push(Buffer.from(`${first ? '' : ','}${JSON.stringify(role)}:`), Buffer.from(bytes));
    first = false;
  }
  parts.push(Buffer.from('}'));
  const res = await send(
    options,
    'POST',
    collectionUrl(options.server, gun),
    new Uint8Array(Buffer.concat(parts)),
  );
  if (res.status !== 200 && res.status !== 201) throw failure(res, `publishing ${gun}`);
  const doc = parseJson(res.body, { source: 'server answer' }) as { versions?: Record<string, number> };
  return doc?.versions ?? {};
}

/** Reads a metadata file of the collection as served (for the CLI's own checks). */
export async function fetchRoleBytes(options: RemoteOptions, gun: string, file: string): Promise<Uint8Array> {
  const res = await send(options, 'GET', `${collectionUrl(options.server, gun)}${file}`);
  if (res.status !== 200) throw failure(res, `${file} of ${gun}`);
  return res.body;
}
