/** `tufa lookup | verify | list`: what deploy scripts call, so they load only the client. */
import { createReadStream } from 'node:fs';
import type { TufaClient } from '@tufa/client';
import { fileUnreadable, TufaError } from '@tufa/core';
import type { Context } from '../context.js';
import { printable } from '../output.js';
import { openClient, type ReadOptions } from '../repo.js';

/** What JSON output adds offline: that the answer came from the cache, and how old it is. */
async function offlineFields(client: TufaClient, read: ReadOptions): Promise<Record<string, unknown>> {
  if (read.offline !== true) return {};
  return { offline: true, refreshedAt: (await client.lastRefresh()) ?? null };
}

export async function lookup(ctx: Context, gun: string, tag: string, read: ReadOptions = {}): Promise<void> {
  const client = await openClient(ctx, gun, read);
  const target = await client.getTarget(tag);
  const sha256 = target.hashes.sha256;
  const digest = sha256 !== undefined ? `sha256:${sha256}` : `sha512:${target.hashes.sha512 ?? ''}`;
  ctx.out.result(
    {
      gun,
      tag,
      digest,
      length: target.length,
      hashes: target.hashes,
      role: target.role,
      custom: target.custom ?? null,
      ...(await offlineFields(client, read)),
    },
    digest,
  );
}

export async function verify(
  ctx: Context,
  gun: string,
  tag: string,
  source: string | undefined,
  options: { digest?: string; file?: string } & ReadOptions,
): Promise<void> {
  const given = [options.digest !== undefined, options.file !== undefined, source === '-'].filter(
    Boolean,
  ).length;
  if (given !== 1) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'give exactly one of --digest ALGORITHM:HEX, --file PATH, or - (stdin)',
    );
  }
  const client = await openClient(ctx, gun, options);
  let result: Awaited<ReturnType<typeof client.verifyDigest>>;
  if (options.digest !== undefined) result = await client.verifyDigest(tag, options.digest);
  else if (options.file !== undefined)
    result = await client.verifyFile(tag, await withProgress(ctx, options.file));
  else result = await client.verifyFile(tag, process.stdin);
  ctx.out.result(
    {
      gun,
      tag,
      trusted: true,
      digest: result.digest,
      length: result.length,
      role: result.role,
      ...(await offlineFields(client, options)),
    },
    `trusted: ${gun} ${printable(tag)} -> ${result.digest} (${result.length} bytes, signed by ${printable(result.role)})${options.offline === true ? ' (offline, from the trusted cache)' : ''}`,
  );
}

/** A file source; on a terminal, large files show a progress bar on stderr. */
async function withProgress(ctx: Context, path: string): Promise<string | AsyncIterable<Uint8Array>> {
  if (ctx.out.json || !process.stderr.isTTY) return path;
  const { stat } = await import('node:fs/promises');
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return path; // the client reports the unreadable file
  }
  if (size < 64 * 1024 * 1024) return path;
  return progressStream(path, size);
}

async function* progressStream(path: string, size: number): AsyncIterable<Uint8Array> {
  let done = 0;
  let shown = -1;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
      done += (chunk as Buffer).length;
      const percent = Math.floor((done / size) * 100);
      if (percent !== shown) {
        shown = percent;
        const bar = '#'.repeat(Math.floor(percent / 4)).padEnd(25, '.');
        process.stderr.write(`\rhashing [${bar}] ${percent}%`);
      }
      yield chunk as Buffer;
    }
  } catch (err) {
    throw fileUnreadable(path, 'the file to verify', err);
  } finally {
    process.stderr.write('\n');
  }
}

export async function list(ctx: Context, gun: string, read: ReadOptions = {}): Promise<void> {
  const client = await openClient(ctx, gun, read);
  const targets = await client.listTargets();
  ctx.out.result(
    targets.map((t) => ({
      tag: t.name,
      length: t.length,
      hashes: t.hashes,
      role: t.role,
      custom: t.custom ?? null,
    })),
    targets.length === 0
      ? [`${gun}: no targets`]
      : targets.map(
          (t) =>
            // Names come from whoever may sign a delegated role: one escaped line each, never raw.
            `${printable(t.name)}\t${t.hashes.sha256 !== undefined ? `sha256:${printable(t.hashes.sha256)}` : '-'}\t${t.length}\t${printable(t.role)}`,
        ),
  );
}

/**
 * `tufa export GUN DIR`: the trusted metadata (every delegated role loaded first) in the standard
 * repository layout, for another TUF client or an archive.
 */
export async function exportMetadata(
  ctx: Context,
  gun: string,
  dir: string,
  read: ReadOptions,
): Promise<void> {
  const client = await openClient(ctx, gun, read);
  const result = await client.exportMetadata(dir);
  ctx.out.result(
    {
      gun,
      dir: result.dir,
      files: result.files,
      roles: result.roles,
      ...(await offlineFields(client, read)),
    },
    [`${gun}: ${result.roles.length} roles exported to ${result.dir}`, ...result.files.map((f) => `  ${f}`)],
  );
}

/**
 * `tufa root export GUN`: the newest root this home has verified for GUN (after a refresh), as
 * the root.json a deploy script or a library pins (`--trust-root FILE`, the client's trust.rootFile).
 */
export async function rootExport(ctx: Context, gun: string): Promise<void> {
  const client = await openClient(ctx, gun);
  const set = await client.trustedMetadata();
  const { serializeMetadata } = await import('@tufa/core');
  process.stdout.write(serializeMetadata(set.root));
  ctx.out.note(
    `tufa: root v${set.root.signed.version} of ${gun} (keys ${set.root.signed.roles.root!.keyids.map((k) => k.slice(0, 12)).join(', ')}, threshold ${set.root.signed.roles.root!.threshold}), expires ${set.root.signed.expires}`,
  );
}
