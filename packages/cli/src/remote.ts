/**
 * The tufa server's write API as the CLI uses it: online public keys, atomic updates.
 * Responses are size-bounded and parsed strictly; the server's error codes come back as TufaErrors.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { explainTransportError } from '@tufa/client';
import {
  checkGun,
  ERROR_TABLE,
  type ErrorCode,
  type ErrorKind,
  isErrorCode,
  type Key,
  parseJson,
  TufaError,
} from '@tufa/core';

export interface RemoteOptions {
  server: string;
  token?: string | undefined;
  /** PEM CA bundle for HTTPS servers with a private CA. */
  ca?: string | Buffer | undefined;
  /** PEM client certificate and key for servers that require mutual TLS. */
  cert?: string | Buffer | undefined;
  key?: string | Buffer | undefined;
  timeoutMs?: number;
}

interface Response {
  status: number;
  body: Uint8Array;
}

const RESPONSE_LIMIT = 1024 * 1024;

/** The collection's URL; the GUN goes as it is (core's grammar allows only URL-safe characters). */
export function collectionUrl(server: string, gun: string): string {
  const base = server.replace(/\/+$/, '');
  return `${base}/v2/${checkGun(gun)}/_trust/tuf/`;
}

function send(
  options: RemoteOptions,
  method: string,
  url: string,
  body?: Uint8Array,
  contentType = 'application/json',
  limit = RESPONSE_LIMIT,
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
      {
        method,
        headers,
        timeout,
        ...(options.ca !== undefined ? { ca: options.ca } : {}),
        ...(options.cert !== undefined ? { cert: options.cert, key: options.key } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            req.destroy(
              new TufaError('TOO_LARGE', `the server's answer to ${method} ${parsed.pathname} is too large`, {
                expected: limit,
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
      const fallback = (err as NodeJS.ErrnoException).code ?? err.message;
      explainTransportError(parsed, err)
        .catch(() => undefined)
        .then((why) =>
          reject(
            new TufaError('NETWORK', `cannot reach ${parsed.origin}: ${why ?? fallback}`, { cause: err }),
          ),
        );
    });
    if (body !== undefined) req.end(Buffer.from(body.buffer, body.byteOffset, body.length));
    else req.end();
  });
}

const LOCAL_KINDS: ReadonlySet<ErrorKind> = new Set(['local-file', 'cache', 'internal']);

/** Turns an error answer into a TufaError with the server's code when it is one of ours. */
function failure(res: Response, what: string): TufaError {
  let code: ErrorCode = res.status === 404 ? 'NOT_FOUND' : res.status === 409 ? 'CONFLICT' : 'NETWORK';
  let message = `${what}: the server answered ${res.status}`;
  let details: Record<string, unknown> = { status: res.status };
  try {
    const doc = parseJson(res.body, { source: 'server answer' }) as { error?: Record<string, unknown> };
    const e = doc?.error;
    if (e && typeof e.message === 'string') message = `${what}: ${e.message}`;
    // A server's word is taken for refusals, never for this machine's own failures (a local file, its cache, a bug here).
    if (e && isErrorCode(e.code) && res.status < 500 && !LOCAL_KINDS.has(ERROR_TABLE[e.code].kind))
      code = e.code;
    if (e?.details && typeof e.details === 'object') details = { ...details, ...(e.details as object) };
  } catch {
    // Not our JSON error body: the status says enough.
  }
  // The caller was refused: say so, whatever the body claims.
  if (res.status === 401) code = 'UNAUTHORIZED';
  else if (res.status === 403) code = 'FORBIDDEN';
  else if (res.status === 429) code = 'RATE_LIMITED';
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
  const res = await send(options, 'POST', collectionUrl(options.server, gun), updateBody(documents));
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

/** An update body: a JSON object whose members are the documents, byte for byte. */
function updateBody(documents: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const parts: Buffer[] = [Buffer.from('{')];
  let first = true;
  for (const [role, bytes] of documents) {
    parts.push(Buffer.from(`${first ? '' : ','}${JSON.stringify(role)}:`), Buffer.from(bytes));
    first = false;
  }
  parts.push(Buffer.from('}'));
  return new Uint8Array(Buffer.concat(parts));
}

// ---------------------------------------------------------------------------------------------
// Threshold signing: pending updates (the server's /_trust/pending/ routes)

/** A pending update answer may carry every document of the update (base64): allow more. */
const PENDING_RESPONSE_LIMIT = 64 * 1024 * 1024;

export function pendingUrl(server: string, gun: string): string {
  return collectionUrl(server, gun).replace(/\/_trust\/tuf\/$/, '/_trust/pending/');
}

export interface ThresholdStatus {
  by: string;
  threshold: number;
  signed: string[];
  missing: string[];
  needed: number;
  verified: boolean;
}

export interface PendingStatus {
  id: string;
  complete: boolean;
  needed: number;
  roles: { role: string; version: number; complete: boolean; oneOf?: true; thresholds: ThresholdStatus[] }[];
}

export interface PendingSummary {
  id: string;
  state: 'pending' | 'superseded' | 'invalid';
  created: string;
  updated: string;
  expires: string;
  roles: { role: string; version: number }[];
  status?: PendingStatus;
  error?: { code: string; message: string };
  changes: unknown[];
}

export interface ProposeAnswer {
  id: string;
  published: boolean;
  versions?: Record<string, number>;
  status: PendingStatus;
}

function answer<T>(res: Response, what: string, ok: number[] = [200]): T {
  if (!ok.includes(res.status)) throw failure(res, what);
  const doc = parseJson(res.body, { source: 'server answer' });
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new TufaError('NETWORK', `${what}: the server's answer is not a JSON object`);
  }
  return doc as T;
}

/** Uploads an update whose signatures do not meet every threshold yet; published at once if they do. */
export async function proposeUpdate(
  options: RemoteOptions,
  gun: string,
  documents: ReadonlyMap<string, Uint8Array>,
  expiresInSeconds?: number,
): Promise<ProposeAnswer> {
  const query = expiresInSeconds === undefined ? '' : `?expires_in=${expiresInSeconds}`;
  const res = await send(
    options,
    'POST',
    `${pendingUrl(options.server, gun)}${query}`,
    updateBody(documents),
  );
  return answer<ProposeAnswer>(res, `proposing an update of ${gun}`, [200, 202]);
}

export async function listPending(options: RemoteOptions, gun: string): Promise<PendingSummary[]> {
  const res = await send(
    options,
    'GET',
    pendingUrl(options.server, gun),
    undefined,
    undefined,
    PENDING_RESPONSE_LIMIT,
  );
  const doc = answer<{ pending?: PendingSummary[] }>(res, `pending updates of ${gun}`);
  if (!Array.isArray(doc.pending))
    throw new TufaError('NETWORK', `pending updates of ${gun}: no list in the answer`);
  return doc.pending;
}

/** One pending update with its documents, role → exact bytes. */
export async function getPending(
  options: RemoteOptions,
  gun: string,
  id: string,
): Promise<PendingSummary & { documents: Map<string, Uint8Array> }> {
  const res = await send(
    options,
    'GET',
    `${pendingUrl(options.server, gun)}${id}`,
    undefined,
    undefined,
    PENDING_RESPONSE_LIMIT,
  );
  const doc = answer<PendingSummary & { documents?: Record<string, unknown> }>(
    res,
    `pending update ${id} of ${gun}`,
  );
  const documents = new Map<string, Uint8Array>();
  for (const [role, b64] of Object.entries(doc.documents ?? {})) {
    if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
      throw new TufaError('NETWORK', `pending update ${id}: ${role} is not base64`);
    }
    documents.set(role, new Uint8Array(Buffer.from(b64, 'base64')));
  }
  if (documents.size === 0)
    throw new TufaError('NETWORK', `pending update ${id}: no documents in the answer`);
  return { ...doc, documents };
}

export async function addPendingSignatures(
  options: RemoteOptions,
  gun: string,
  id: string,
  signatures: Record<string, { keyid: string; sig: string }[]>,
): Promise<ProposeAnswer> {
  const res = await send(
    options,
    'POST',
    `${pendingUrl(options.server, gun)}${id}/signatures`,
    new Uint8Array(Buffer.from(JSON.stringify({ signatures }))),
  );
  return answer<ProposeAnswer>(res, `signing pending update ${id} of ${gun}`);
}

export async function dropPending(options: RemoteOptions, gun: string, id: string): Promise<void> {
  const res = await send(options, 'DELETE', `${pendingUrl(options.server, gun)}${id}`);
  answer(res, `dropping pending update ${id} of ${gun}`);
}
