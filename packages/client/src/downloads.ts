/**
 * Target files against their trusted entry: a digest compared, a local file or stream hashed
 * while it is read, or a download from the targets base URL, length-bounded, hashed while
 * streaming and renamed into place only after verification. The checks are core's.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  checkDigest,
  fileUnreadable,
  formatDigest,
  parseDigest,
  preferredDigest,
  type TargetFile,
  TargetVerifier,
  TufaError,
} from '@tufa/core';
import type { ClientContext } from './context.js';
import type { TargetInfo } from './delegations.js';
import { streamDownload } from './fetcher.js';

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
  /** The trusted entry, looked up once the file is open. */
  findTarget: () => Promise<TargetInfo>;
}): Promise<VerifiedTarget> {
  const { tag, source } = options;
  // A file that cannot be opened is refused before any download.
  const handle =
    typeof source === 'string'
      ? await open(source, 'r').catch((err: unknown) => {
          throw fileUnreadable(source, `${tag}: the file to verify`, err);
        })
      : undefined;
  try {
    const target = await options.findTarget();
    const verifier = new TargetVerifier(asTargetFile(target), { path: tag, role: target.role });
    const input = handle?.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false }) ?? source;
    try {
      for await (const chunk of input as AsyncIterable<Uint8Array>) verifier.update(toBytes(chunk));
    } catch (err) {
      if (err instanceof TufaError) throw err;
      throw fileUnreadable(
        typeof source === 'string' ? source : '(stream)',
        `${tag}: the file to verify`,
        err,
      );
    }
    verifier.finish();
    return { ...target, digest: formatDigest(preferredDigest(asTargetFile(target), target.role)) };
  } finally {
    await handle?.close();
  }
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
): Promise<VerifiedTarget> {
  const { tag, destPath } = options;
  if (ctx.targetsUrl === undefined) {
    throw new TufaError('INVALID_ARGUMENT', 'downloadTarget needs a targetsUrl');
  }
  const { target, consistentSnapshot } = await options.findTarget();
  const file = asTargetFile(target);
  const verifier = new TargetVerifier(file, { path: tag, role: target.role });
  const url = ctx.targetsUrl + targetPath(tag, file, consistentSnapshot);
  await mkdir(dirname(destPath), { recursive: true });
  const temp = join(dirname(destPath), `.${basename(destPath)}.tufa-${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, 'wx', 0o644);
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
      for (let at = 0; at < chunk.length; ) at += (await handle.write(chunk, at)).bytesWritten;
    }
    verifier.finish();
    await handle.sync();
    await handle.close();
    done = true;
    await rename(temp, destPath);
  } catch (err) {
    if (!done) await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
  return { ...target, digest: formatDigest(preferredDigest(file, target.role)) };
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
