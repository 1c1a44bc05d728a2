/**
 * The collection a command works on: the server URL, the trust options, the client over the
 * trusted-metadata cache in TUFA_HOME, and the root this home pinned when it ran `tufa init`.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClientOptions, TrustOptions, TufaClient } from '@tufa/client';
import { TufaError } from '@tufa/core';
import type { Context } from './context.js';
import { gunFileName, readFileBounded, readLocalFile, writeFileAtomic } from './home.js';
import type { RemoteOptions } from './remote.js';

const CONFIG_LIMIT = 64 * 1024;

interface HomeConfig {
  server?: string;
  token?: string;
}

async function readConfig(ctx: Context): Promise<HomeConfig> {
  const bytes = await readFileBounded(join(ctx.home, 'config.json'), CONFIG_LIMIT, 'config file');
  if (bytes === undefined) return {};
  const { parseJson } = await import('@tufa/core');
  const doc = parseJson(bytes, { source: 'config.json' }) as Record<string, unknown>;
  const out: HomeConfig = {};
  if (typeof doc?.server === 'string') out.server = doc.server;
  if (typeof doc?.token === 'string') out.token = doc.token;
  return out;
}

/** --server, else TUFA_SERVER, else config.json in TUFA_HOME. */
export async function serverUrl(ctx: Context): Promise<string> {
  const fromFlag = ctx.options.server ?? ctx.env.TUFA_SERVER;
  const server = fromFlag !== undefined && fromFlag !== '' ? fromFlag : (await readConfig(ctx)).server;
  if (server === undefined) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'no server: give --server URL, set TUFA_SERVER, or put "server" in config.json',
    );
  }
  const { redactUrl } = await import('@tufa/client');
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new TufaError('INVALID_ARGUMENT', `not an http(s) URL: ${redactUrl(server)}`, {
      found: redactUrl(server),
    });
  }
  // Refused rather than sent as Basic auth: they would show in errors and cache folder names.
  if (url.username !== '' || url.password !== '') {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `the server URL must not carry a user name or password (${redactUrl(server)}): give a token with --token or TUFA_TOKEN`,
      { found: redactUrl(server) },
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TufaError('INVALID_ARGUMENT', `not an http(s) URL: ${redactUrl(server)}`, {
      found: redactUrl(server),
    });
  }
  return server.replace(/\/+$/, '');
}

const PEM_LIMIT = 1024 * 1024;

async function readPem(file: string | undefined, what: string): Promise<Buffer | undefined> {
  if (file === undefined || file === '') return undefined;
  const bytes = await readLocalFile(file, PEM_LIMIT, what);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** The token (--token, TUFA_TOKEN, config.json) and TLS files (--ca-file, --client-cert/--client-key or env). */
export async function accessOptions(
  ctx: Context,
): Promise<{ token?: string; ca?: Buffer; cert?: Buffer; key?: Buffer }> {
  const o = ctx.options;
  const token = o.token ?? ctx.env.TUFA_TOKEN ?? (await readConfig(ctx)).token;
  const certFile = o.clientCert ?? ctx.env.TUFA_CLIENT_CERT;
  const keyFile = o.clientKey ?? ctx.env.TUFA_CLIENT_KEY;
  if ((certFile === undefined || certFile === '') !== (keyFile === undefined || keyFile === '')) {
    throw new TufaError('INVALID_ARGUMENT', '--client-cert and --client-key go together');
  }
  const ca = await readPem(o.caFile ?? ctx.env.TUFA_CA_FILE, 'CA file');
  const cert = await readPem(certFile, 'client certificate');
  const key = await readPem(keyFile, 'client key');
  return {
    ...(token === undefined || token === '' ? {} : { token }),
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined || key === undefined ? {} : { cert, key }),
  };
}

export async function remoteOptions(ctx: Context): Promise<RemoteOptions> {
  return { server: await serverUrl(ctx), ...(await accessOptions(ctx)) };
}

/** Where `tufa init` keeps the root it created, so that this home never needs trust on first use. */
function pinnedRootPath(ctx: Context, gun: string): string {
  return join(ctx.home, 'trust', `${gunFileName(gun)}.root.json`);
}

/** The root keys `tufa init` made a root with, while that root waits for more signatures. */
function pinnedRootKeysPath(ctx: Context, gun: string): string {
  return join(ctx.home, 'trust', `${gunFileName(gun)}.root-keys.json`);
}

export async function pinRoot(ctx: Context, gun: string, rootBytes: Uint8Array): Promise<void> {
  await writeFileAtomic(pinnedRootPath(ctx, gun), rootBytes);
  await rm(pinnedRootKeysPath(ctx, gun), { force: true });
}

/** Pins a root by its key ids and threshold: its v1 (or the current root) must be signed by them. */
export async function pinRootKeys(
  ctx: Context,
  gun: string,
  keyids: readonly string[],
  threshold: number,
): Promise<void> {
  await writeFileAtomic(pinnedRootKeysPath(ctx, gun), `${JSON.stringify({ keyids, threshold })}\n`);
  await rm(pinnedRootPath(ctx, gun), { force: true });
}

async function readPinnedRootKeys(
  ctx: Context,
  gun: string,
): Promise<{ keyids: string[]; threshold: number } | undefined> {
  const file = pinnedRootKeysPath(ctx, gun);
  const bytes = await readFileBounded(file, 64 * 1024, 'pinned root keys');
  if (bytes === undefined) return undefined;
  const { parseJson } = await import('@tufa/core');
  const doc = parseJson(bytes, { source: file }) as { keyids?: unknown; threshold?: unknown };
  const keyids = Array.isArray(doc?.keyids) ? doc.keyids : [];
  const threshold = doc?.threshold;
  if (
    keyids.length === 0 ||
    !keyids.every((k) => typeof k === 'string' && /^[0-9a-f]{64}$/.test(k)) ||
    typeof threshold !== 'number' ||
    !Number.isSafeInteger(threshold) ||
    threshold < 1 ||
    threshold > keyids.length
  ) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${file} is damaged: remove it and pin the root with --trust-root`,
    );
  }
  return { keyids: keyids as string[], threshold };
}

export async function trustOptions(ctx: Context, gun: string): Promise<TrustOptions> {
  const o = ctx.options;
  const trust: TrustOptions = { allowTofu: o.tofu !== false };
  if (o.trustRoot !== undefined) trust.rootFile = o.trustRoot;
  else if (o.rootKey !== undefined && o.rootKey.length > 0) trust.rootKeyIds = o.rootKey;
  else {
    const pinned = await readFileBounded(pinnedRootPath(ctx, gun), 512 * 1024, 'pinned root');
    if (pinned !== undefined) trust.rootFile = pinned;
    else {
      const keys = await readPinnedRootKeys(ctx, gun);
      if (keys !== undefined) {
        trust.rootKeyIds = keys.keyids;
        trust.threshold = keys.threshold;
      }
    }
  }
  return trust;
}

/** `--offline` and `--max-age` of the reading commands. */
export interface ReadOptions {
  offline?: boolean;
  maxAge?: string;
}

/**
 * The client for a collection. With `offline`, the server URL only names the cache: no request is
 * made, and no token or TLS file is read.
 */
export async function openClient(ctx: Context, gun: string, read: ReadOptions = {}): Promise<TufaClient> {
  const { createClient } = await import('@tufa/client');
  const server = await serverUrl(ctx);
  const offline = read.offline === true;
  let maxAge: number | undefined;
  if (read.maxAge !== undefined) {
    if (!offline) throw new TufaError('INVALID_ARGUMENT', '--max-age applies to --offline answers');
    const { parseLifetime } = await import('./lifetime.js');
    maxAge = parseLifetime(read.maxAge);
  }
  const options: ClientOptions = {
    ...(offline ? { offline, ...(maxAge === undefined ? {} : { maxAge }) } : await accessOptions(ctx)),
    cacheDir: join(ctx.home, 'cache'),
    crypto: ctx.crypto,
    trust: await trustOptions(ctx, gun),
    // Trust on first use is always worth a line; a stale cache file replaced is routine.
    onNotice: (notice) => {
      if (notice.kind === 'tofu' || ctx.options.debug) ctx.out.note(`tufa: notice: ${notice.message}`);
    },
  };
  return createClient({ server, gun }, options);
}
