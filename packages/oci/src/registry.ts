/**
 * A registry client for the one thing tufa needs: the manifest a tag or a digest names, over the
 * OCI distribution API (`/v2/NAME/manifests/REFERENCE`). The digest is always computed from the
 * bytes received; `Docker-Content-Digest`, when sent, must agree. Anonymous, basic and bearer-token
 * access (`WWW-Authenticate`), https unless the registry is listed as insecure.
 */
import { createHash } from 'node:crypto';
import { isTufaError, parseJson, TufaError } from '@tufa/core';
import type { CredentialSource, RegistryCredentials } from './credentials.js';
import { exchange, type HttpResponse } from './http.js';
import type { ImageReference } from './reference.js';

export const MEDIA_TYPES = Object.freeze({
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
});

/** The manifest types tufa signs: the two that name one image, and the two lists (multi-platform). */
export const MANIFEST_MEDIA_TYPES: readonly string[] = Object.freeze(Object.values(MEDIA_TYPES));

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

/** distribution refuses manifests over 4 MiB; so does tufa. */
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const DEFAULT_REGISTRY_TIMEOUT_MS = 30_000;
const TOKEN_LIMIT = 256 * 1024;

export interface RegistryOptions {
  /** Registries (`host[:port]`) spoken to over plain http, as dockerd's --insecure-registry. */
  insecureRegistries?: readonly string[];
  /** Where credentials come from (default: none, anonymous). */
  credentials?: CredentialSource;
  /** The bound of a manifest (default 4 MiB). */
  maxManifestBytes?: number;
  /** The bound of each exchange with the registry or its token service (default 30 s). */
  timeoutMs?: number;
}

export interface Manifest {
  /** `sha256:HEX` of the bytes received. */
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
  readonly bytes: Uint8Array;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` (RFC 7235 auth-params). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+(.*))?$/s.exec(header);
  if (m === null) return undefined;
  const params: Record<string, string> = {};
  const rest = m[2] ?? '';
  const param = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)/gy;
  for (let found = param.exec(rest); found !== null && found[0] !== ''; found = param.exec(rest)) {
    params[found[1]!.toLowerCase()] = found[2] !== undefined ? found[2].replace(/\\(.)/g, '$1') : found[3]!;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The scheme of a host: http only when listed as insecure. */
function baseUrl(host: string, insecure: readonly string[]): string {
  return `${insecure.includes(host) ? 'http' : 'https'}://${host}`;
}

export class RegistryClient {
  readonly #ref: ImageReference;
  readonly #insecure: readonly string[];
  readonly #credentials: CredentialSource | undefined;
  readonly #maxBytes: number;
  readonly #timeoutMs: number;
  #authorization: string | undefined;
  #credentialsLookedUp: Promise<RegistryCredentials | undefined> | undefined;

  constructor(ref: ImageReference, options: RegistryOptions = {}) {
    this.#ref = ref;
    this.#insecure = options.insecureRegistries ?? [];
    this.#credentials = options.credentials;
    this.#maxBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_REGISTRY_TIMEOUT_MS;
  }

  /** `https://HOST` (or http for an insecure registry) of the registry's API. */
  get origin(): string {
    return baseUrl(this.#ref.apiHost, this.#insecure);
  }

  #name(reference: string): string {
    return `${this.#ref.gun}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
  }

  /**
   * HEAD of a manifest: the digest the registry says REFERENCE names (Docker-Content-Digest), or
   * undefined when it does not say. NOT_FOUND for an unknown tag or digest.
   */
  async headManifest(reference: string): Promise<{ digest: string | undefined; mediaType: string | null }> {
    const res = await this.#manifestRequest('HEAD', reference, this.#maxBytes);
    const digest = res.header('docker-content-digest');
    return {
      digest: digest !== null && /^sha256:[0-9a-f]{64}$/.test(digest) ? digest : undefined,
      mediaType: res.header('content-type'),
    };
  }

  /**
   * The manifest REFERENCE (a tag or `sha256:HEX`) names, checked: one of the four manifest types,
   * JSON with schemaVersion 2, its digest computed from the bytes and equal to the one asked for
   * (HASH_MISMATCH) and to Docker-Content-Digest when sent. `expectedLength` bounds the read and
   * must match (LENGTH_MISMATCH).
   */
  async getManifest(reference: string, options: { expectedLength?: number } = {}): Promise<Manifest> {
    const bound =
      options.expectedLength === undefined
        ? this.#maxBytes
        : Math.min(this.#maxBytes, options.expectedLength);
    let res: HttpResponse;
    try {
      res = await this.#manifestRequest('GET', reference, bound);
    } catch (err) {
      if (
        isTufaError(err, 'TOO_LARGE') &&
        options.expectedLength !== undefined &&
        bound === options.expectedLength
      ) {
        throw new TufaError(
          'LENGTH_MISMATCH',
          `${this.#name(reference)}: the registry sends more than the ${options.expectedLength} bytes signed`,
          { expected: options.expectedLength, found: err.found },
        );
      }
      throw err;
    }
    const name = this.#name(reference);
    const digest = sha256(res.body);
    if (options.expectedLength !== undefined && res.body.length !== options.expectedLength) {
      throw new TufaError(
        'LENGTH_MISMATCH',
        `${name}: the registry sends ${res.body.length} bytes, the signed manifest has ${options.expectedLength}`,
        { expected: options.expectedLength, found: res.body.length },
      );
    }
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new TufaError('HASH_MISMATCH', `${name}: the manifest the registry sends hashes to ${digest}`, {
        expected: reference,
        found: digest,
      });
    }
    const declared = res.header('docker-content-digest');
    if (declared !== null && declared !== digest) {
      throw new TufaError(
        'HASH_MISMATCH',
        `${name}: the registry's Docker-Content-Digest ${declared.slice(0, 80)} is not the digest of the bytes it sent (${digest})`,
        { expected: digest, found: declared.slice(0, 80) },
      );
    }
    const mediaType = (res.header('content-type') ?? '').split(';')[0]!.trim();
    checkManifest(name, mediaType, res.body);
    return { digest, size: res.body.length, mediaType, bytes: res.body };
  }

  async #manifestRequest(method: 'GET' | 'HEAD', reference: string, maxBytes: number): Promise<HttpResponse> {
    const url = new URL(`${this.origin}/v2/${this.#ref.repository}/manifests/${reference}`);
    const what = `the manifest of ${this.#name(reference)}`;
    const send = () =>
      exchange(url, {
        method,
        headers: {
          accept: ACCEPT,
          ...(this.#authorization === undefined ? {} : { authorization: this.#authorization }),
        },
        maxBytes,
        timeoutMs: this.#timeoutMs,
        what,
      });
    let res = await send();
    if (res.status === 401 && (await this.#authenticate(res, what))) res = await send();
    if (res.status >= 200 && res.status <= 299) return res;
    throw this.#refusal(res, what, reference);
  }

  #refusal(res: HttpResponse, what: string, reference: string): TufaError {
    const details = { registry: this.#ref.registry, status: res.status };
    if (res.status === 404) {
      return new TufaError(
        'NOT_FOUND',
        `${this.#name(reference)}: the registry has no such ${reference.startsWith('sha256:') ? 'manifest' : 'tag'} (HTTP 404)`,
        { details },
      );
    }
    if (res.status === 401) {
      const creds = this.#authorization === undefined ? 'without credentials' : 'with the credentials given';
      return new TufaError('UNAUTHORIZED', `${what}: the registry refuses access ${creds} (HTTP 401)`, {
        details,
      });
    }
    if (res.status === 403)
      return new TufaError('FORBIDDEN', `${what}: the registry forbids it (HTTP 403)`, { details });
    if (res.status === 429) {
      return new TufaError('RATE_LIMITED', `${what}: the registry refuses for now (HTTP 429)`, {
        details: { ...details, retryAfter: res.header('retry-after') },
      });
    }
    return new TufaError('NETWORK', `${what}: the registry answers HTTP ${res.status}`, { details });
  }

  #lookUpCredentials(): Promise<RegistryCredentials | undefined> {
    this.#credentialsLookedUp ??= this.#credentials?.(this.#ref.registry) ?? Promise.resolve(undefined);
    return this.#credentialsLookedUp;
  }

  /** Answers a 401's challenge; false when there is nothing new to try. */
  async #authenticate(res: HttpResponse, what: string): Promise<boolean> {
    if (this.#authorization !== undefined) return false;
    const challenge = parseChallenge(res.header('www-authenticate') ?? '');
    if (challenge === undefined) return false;
    const credentials = await this.#lookUpCredentials();
    if (challenge.scheme === 'basic') {
      if (credentials === undefined) {
        throw new TufaError(
          'UNAUTHORIZED',
          `${what}: the registry wants a user name and password (HTTP 401): docker login ${this.#ref.registry}, or --registry-user with TUFA_REGISTRY_PASSWORD`,
          { details: { registry: this.#ref.registry, status: 401 } },
        );
      }
      if (this.origin.startsWith('http:') && !isLoopback(this.#ref.apiHost)) {
        // An insecure registry takes its risk; a password in clear over a network is ours to refuse.
        throw new TufaError(
          'INVALID_ARGUMENT',
          `${what}: refusing to send a password over plain http to ${this.#ref.apiHost}`,
        );
      }
      this.#authorization = basic(credentials);
      return true;
    }
    if (challenge.scheme === 'bearer') {
      this.#authorization = `Bearer ${await this.#bearerToken(challenge, credentials, what)}`;
      return true;
    }
    return false;
  }

  async #bearerToken(
    challenge: Challenge,
    credentials: RegistryCredentials | undefined,
    what: string,
  ): Promise<string> {
    const realm = challenge.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new TufaError('NETWORK', `${what}: the registry's Bearer challenge has no usable realm`, {
        found: (realm ?? '').slice(0, 200),
      });
    }
    const registryHost = new URL(this.origin).hostname;
    const plainAllowed =
      this.#insecure.includes(url.host) || (this.origin.startsWith('http:') && url.hostname === registryHost);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && plainAllowed)) {
      throw new TufaError(
        'NETWORK',
        `${what}: the registry's token service ${url.origin} is not https (list it with --insecure-registry ${url.host} to allow it)`,
        { details: { realm: url.origin } },
      );
    }
    if (url.protocol === 'http:' && credentials !== undefined && !isLoopback(url.host)) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        `${what}: refusing to send a password over plain http to ${url.host}`,
      );
    }
    if (challenge.params.service !== undefined) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', challenge.params.scope ?? `repository:${this.#ref.repository}:pull`);
    const tokenWhat = `a token for ${this.#ref.gun} from ${url.origin}`;
    const res = await exchange(url, {
      method: 'GET',
      headers: {
        accept: 'application/json',
        ...(credentials === undefined ? {} : { authorization: basic(credentials) }),
      },
      maxBytes: TOKEN_LIMIT,
      timeoutMs: this.#timeoutMs,
      what: tokenWhat,
    });
    if (res.status === 401 || res.status === 403) {
      throw new TufaError(
        'UNAUTHORIZED',
        `${tokenWhat}: the token service refuses ${credentials === undefined ? 'anonymous access' : `the credentials from ${credentials.source}`} (HTTP ${res.status})`,
        { details: { registry: this.#ref.registry, status: res.status } },
      );
    }
    if (res.status < 200 || res.status > 299) {
      throw new TufaError('NETWORK', `${tokenWhat}: the token service answers HTTP ${res.status}`, {
        details: { status: res.status },
      });
    }
    let doc: unknown;
    try {
      doc = parseJson(res.body, { source: 'the token response' });
    } catch {
      throw new TufaError('NETWORK', `${tokenWhat}: the token service's answer is not JSON`);
    }
    const record = (doc ?? {}) as { token?: unknown; access_token?: unknown };
    const token =
      typeof record.token === 'string' && record.token !== '' ? record.token : record.access_token;
    if (typeof token !== 'string' || !/^[\x21-\x7e]{1,65536}$/.test(token)) {
      throw new TufaError('NETWORK', `${tokenWhat}: the token service's answer holds no token`);
    }
    return token;
  }
}

function isLoopback(host: string): boolean {
  const hostname = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return hostname === 'localhost' || hostname === '::1' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function basic(credentials: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

/** The bytes are a manifest of a type tufa signs: JSON, schemaVersion 2, its mediaType field (if any) the header's. */
function checkManifest(name: string, mediaType: string, bytes: Uint8Array): void {
  if (!MANIFEST_MEDIA_TYPES.includes(mediaType)) {
    throw new TufaError(
      'INVALID_METADATA',
      `${name}: the registry sends ${mediaType === '' ? 'no media type' : JSON.stringify(mediaType.slice(0, 100))}, not an OCI or Docker v2 manifest or index`,
      { expected: MANIFEST_MEDIA_TYPES, found: mediaType.slice(0, 100) },
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new TufaError('INVALID_METADATA', `${name}: the manifest is not JSON`);
  }
  const record = doc as { schemaVersion?: unknown; mediaType?: unknown } | null;
  if (record === null || typeof record !== 'object' || record.schemaVersion !== 2) {
    throw new TufaError('INVALID_METADATA', `${name}: the manifest is not a schemaVersion 2 JSON object`);
  }
  if (record.mediaType !== undefined && record.mediaType !== mediaType) {
    throw new TufaError(
      'INVALID_METADATA',
      `${name}: the manifest says it is ${String(record.mediaType).slice(0, 100)}, the registry says ${mediaType}`,
      { expected: mediaType, found: String(record.mediaType).slice(0, 100) },
    );
  }
}
