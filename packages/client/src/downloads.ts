/**
 * Target files against their trusted entry: a digest compared, a local file or stream hashed
 * while it is read, or a download from the targets base URL, length-bounded, hashed while
 * streaming and renamed into place only after verification. The checks are core's.
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  type CryptoProvider,
  checkDigest,
  fileUnreadable,
  fileUnwritable,
  formatDigest,
  isTufaError,
  parseDigest,
  preferredDigest,
  type TargetFile,
  TargetVerifier,
  TufaError,
} from '@tufa/core';
import { syncDir } from './cache.js';
import type { ClientContext } from './context.js';
import type { TargetInfo } from './delegations.js';
import { streamDownload } from './fetcher.js';
import { targetFileName } from './file-names.js';

export interface VerifiedTarget extends TargetInfo {
  /** The digest that was compared, `ALGORITHM:HEX`. */
  digest: string;
}

export type FileSource = string | AsyncIterable<Uint8Array>;

/** Compares `ALGORITHM:HEX` with the trusted entry: HASH_MISMATCH saying what differed. */
export async function verifyDigest(options: {
  tag: string;
  digest: string;
  /** The trusted entry, looked up once the digest string is known to be well formed. */
  findTarget: () => Promise<TargetInfo>;
}): Promise<VerifiedTarget> {
  const parsed = parseDigest(options.digest);
  const target = await options.findTarget();
  checkDigest(asTargetFile(target), parsed, { path: options.tag, role: target.role });
  return { ...target, digest: formatDigest(parsed) };
}

/** Streams a file (a path or any async iterable of bytes) through the trusted length and hashes. */
export async function verifyFile(options: {
  tag: string;
  source: FileSource;
  crypto: CryptoProvider;
  /** The trusted entry, looked up once the file is open. */
  findTarget: () => Promise<TargetInfo>;
}): Promise<VerifiedTarget> {
  const { tag, source } = options;
  const name = sourceName(source);
  const unreadable = (err: unknown) =>
    err instanceof TufaError ? err : fileUnreadable(name, `${tag}: the file to verify`, err);
  // A file that cannot be read is FILE_UNREADABLE whatever the tag: checked before the lookup.
  const handle = typeof source === 'string' ? await openForReading(source, unreadable) : undefined;
  try {
    const input = handle?.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false }) ?? source;
    const chunks = (input as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    try {
      // The first chunk is read before the lookup too: a stream over a missing file fails here.
      let next = await chunks.next().catch((err: unknown) => {
        throw unreadable(err);
      });
      const target = await options.findTarget();
      const verifier = new TargetVerifier(options.crypto, asTargetFile(target), {
        path: tag,
        role: target.role,
      });
      while (next.done !== true) {
        verifier.update(toBytes(next.value));
        next = await chunks.next().catch((err: unknown) => {
          throw unreadable(err);
        });
      }
      verifier.finish();
      return { ...target, digest: formatDigest(preferredDigest(asTargetFile(target), target.role)) };
    } finally {
      await chunks.return?.()?.catch(() => undefined);
    }
  } finally {
    await handle?.close();
  }
}

/** Opens a file to read; a folder is refused as one (EISDIR), since Linux opens folders. */
async function openForReading(path: string, unreadable: (err: unknown) => TufaError): Promise<FileHandle> {
  const handle = await open(path, 'r').catch((err: unknown) => {
    throw unreadable(err);
  });
  try {
    if ((await handle.stat()).isDirectory()) {
      throw unreadable(Object.assign(new Error('is a directory'), { code: 'EISDIR' }));
    }
  } catch (err) {
    await handle.close();
    throw unreadable(err);
  }
  return handle;
}

/** What errors call a source: its path, a file stream's path, or `(stream)`. */
function sourceName(source: FileSource): string {
  if (typeof source === 'string') return source;
  const path = (source as { path?: unknown }).path;
  return typeof path === 'string' ? path : '(stream)';
}

/** Where a download goes: a file path, or a folder in which the client names the file. */
export type DownloadDestination = string | { dir: string };

export interface DownloadedTarget extends VerifiedTarget {
  /** The local file, verified. */
  path: string;
}

/** The local path of a target for a destination: `{ dir }` names it with `targetFileName`. */
export function destinationPath(tag: string, destination: DownloadDestination): string {
  if (typeof destination === 'string') return destination;
  if (typeof destination !== 'object' || destination === null || typeof destination.dir !== 'string') {
    throw new TufaError('INVALID_ARGUMENT', 'a destination is a file path or { dir: FOLDER }');
  }
  return join(destination.dir, targetFileName(tag));
}

/**
 * The local file of a target when it already matches the trusted entry (length and every hash),
 * else undefined (no such file, or other bytes). Nothing is downloaded.
 */
export async function findCachedTarget(options: {
  tag: string;
  path: string;
  crypto: CryptoProvider;
  findTarget: () => Promise<TargetInfo>;
}): Promise<DownloadedTarget | undefined> {
  const { tag, path } = options;
  let verified: VerifiedTarget;
  try {
    verified = await verifyFile({
      tag,
      source: path,
      crypto: options.crypto,
      findTarget: options.findTarget,
    });
  } catch (err) {
    if (isTufaError(err, 'FILE_UNREADABLE') && err.details?.reason === 'ENOENT') {
      await options.findTarget(); // no file, but a tag that does not exist is still NOT_FOUND
      return undefined;
    }
    if (isTufaError(err, 'HASH_MISMATCH') || isTufaError(err, 'LENGTH_MISMATCH')) return undefined;
    throw err;
  }
  return { ...verified, path };
}

/**
 * Downloads a target from the targets base URL into `destPath`: length-bounded, every hash
 * checked while streaming, written to a temp file that is renamed only after verification.
 */
export async function downloadTarget(
  ctx: ClientContext,
  options: {
    tag: string;
    destPath: string;
    /** The trusted entry, and whether the root asks for consistent snapshots. */
    findTarget: () => Promise<{ target: TargetInfo; consistentSnapshot: boolean }>;
  },
): Promise<DownloadedTarget> {
  const { tag, destPath } = options;
  if (ctx.targetsUrl === undefined) {
    throw new TufaError('INVALID_ARGUMENT', 'downloadTarget needs a targetsUrl');
  }
  if (ctx.offline) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'offline: downloadTarget needs the network; findCachedTarget answers from a local file',
    );
  }
  const { target, consistentSnapshot } = await options.findTarget();
  const file = asTargetFile(target);
  const verifier = new TargetVerifier(ctx.crypto, file, { path: tag, role: target.role });
  const url = ctx.targetsUrl + targetPath(tag, file, consistentSnapshot);
  const folder = dirname(destPath);
  const unwritable = (err: unknown) => fileUnwritable(destPath, `${tag}: the download`, err);
  await mkdir(folder, { recursive: true }).catch((err: unknown) => {
    throw unwritable(err);
  });
  // Never a name the folder encoding makes: those never start with a dot.
  const temp = join(folder, `.${basename(destPath)}.tufa-${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, 'wx', 0o644).catch((err: unknown) => {
    throw unwritable(err);
  });
  let done = false;
  try {
    const lengthError = (found: number | string) =>
      new TufaError('LENGTH_MISMATCH', `${tag}: more than the trusted ${target.length} bytes`, {
        role: target.role,
        expected: target.length,
        found,
        details: { url },
      });
    for await (const chunk of streamDownload(url, {
      role: tag,
      maxBytes: target.length,
      timeouts: ctx.timeouts,
      total: false,
      fetch: ctx.fetch,
      tooLarge: lengthError,
    })) {
      verifier.update(chunk);
      try {
        for (let at = 0; at < chunk.length; ) at += (await handle.write(chunk, at)).bytesWritten;
      } catch (err) {
        throw unwritable(err);
      }
    }
    verifier.finish();
    try {
      await handle.sync();
      await handle.close();
      done = true;
      await rename(temp, destPath);
    } catch (err) {
      throw unwritable(err);
    }
  } catch (err) {
    if (!done) await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
  await syncDir(folder);
  return { ...target, digest: formatDigest(preferredDigest(file, target.role)), path: destPath };
}

/** With consistent snapshots, `DIR/HASH.NAME` (the first hash the metadata lists). */
function targetPath(tag: string, file: TargetFile, consistent: boolean): string {
  const segments = tag.split('/');
  if (consistent) {
    const hash = Object.values(file.hashes)[0]!;
    segments[segments.length - 1] = `${hash}.${segments[segments.length - 1]}`;
  }
  return segments.map(encodeURIComponent).join('/');
}

function asTargetFile(t: TargetInfo): TargetFile {
  return { length: t.length, hashes: t.hashes, custom: t.custom, extra: {} };
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === 'string') return new TextEncoder().encode(chunk);
  throw new TufaError('INVALID_ARGUMENT', 'a file stream must yield bytes');
}
