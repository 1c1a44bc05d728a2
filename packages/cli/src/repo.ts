/**
 * The collection a command works on: the server URL, the trust options, the client over the
 * trusted-metadata cache in TUFA_HOME, and the root this home pinned when it ran `tufa init`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClientOptions, TrustOptions, TufaClient } from '@tufa/client';
import { TufaError } from '@tufa/core';
import type { Context } from './context.js';
import { gunFileName, readFileBounded, writeFileAtomic } from './home.js';
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
  try {
    const url = new URL(server);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new TufaError('INVALID_ARGUMENT', `not an http(s) URL: ${server}`, { found: server });
  }
  return server.replace(/\/+$/, '');
}

export async function remoteOptions(ctx: Context): Promise<RemoteOptions> {
  const token = ctx.options.token ?? ctx.env.TUFA_TOKEN ?? (await readConfig(ctx)).token;
  const ca = ctx.options.caFile === undefined ? undefined : await readFile(ctx.options.caFile);
  return { server: await serverUrl(ctx), token: token === '' ? undefined : token, ca };
}

/** Where `tufa init` keeps the root it created, so that this home never needs trust on first use. */
function pinnedRootPath(ctx: Context, gun: string): string {
  return join(ctx.home, 'trust', `${gunFileName(gun)}.root.json`);
}

export async function pinRoot(ctx: Context, gun: string, rootBytes: Uint8Array): Promise<void> {
  await writeFileAtomic(pinnedRootPath(ctx, gun), rootBytes);
}

export async function trustOptions(ctx: Context, gun: string): Promise<TrustOptions> {
  const o = ctx.options;
  const trust: TrustOptions = { allowTofu: o.tofu !== false };
  if (o.trustRoot !== undefined) trust.rootFile = o.trustRoot;
  else if (o.rootKey !== undefined && o.rootKey.length > 0) trust.rootKeyIds = o.rootKey;
  else {
    const pinned = await readFileBounded(pinnedRootPath(ctx, gun), 512 * 1024, 'pinned root');
    if (pinned !== undefined) trust.rootFile = pinned;
  }
  return trust;
}

export async function openClient(ctx: Context, gun: string): Promise<TufaClient> {
  const { createClient } = await import('@tufa/client');
  const server = await serverUrl(ctx);
  const options: ClientOptions = {
    cacheDir: join(ctx.home, 'cache'),
    trust: await trustOptions(ctx, gun),
    // Trust on first use is always worth a line; a stale cache file replaced is routine.
    onNotice: (notice) => {
      if (notice.kind === 'tofu' || ctx.options.debug) ctx.out.note(`tufa: notice: ${notice.message}`);
    },
  };
  return createClient({ server, gun }, options);
}
