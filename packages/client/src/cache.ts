/**
 * The on-disk trusted-metadata cache: one folder per repository. Files are written atomically
 * (temp file, fsync, rename, fsync of the folder), and a refresh holds an exclusive lock file so
 * that two processes refreshing the same cache do not interleave their writes. Nothing read from
 * here is trusted as such: the updater loads every file through core's rules.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { TufaError, utf8Encode } from '@tufa/core';
import { localFileName } from './file-names.js';

/** The default parent of every cache folder: ~/.tufa/cache. */
export function defaultCacheRoot(): string {
  return join(homedir(), '.tufa', 'cache');
}

/** A folder name for a repository: readable prefix plus a hash of the full identity. */
export function cacheFolderName(identity: string): string {
  const readable = identity
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/[^A-Za-z0-9.-]+/g, '_')
    .replace(/^[._-]+/, '')
    .slice(0, 80);
  // node:crypto, not core's sha256Id (@noble/hashes): the same digest, without a cold JS SHA-256 in every run.
  const digest = createHash('sha256').update(identity, 'utf8').digest('hex').slice(0, 16);
  return `${readable || 'repo'}-${digest}`;
}

/** The cache file name of a role's metadata; delegated role names are escaped (file-names.ts). */
export function cacheFileName(role: string): string {
  if (role === 'root' || role === 'timestamp' || role === 'snapshot' || role === 'targets') {
    return `${role}.json`;
  }
  return join('delegated', `${localFileName(role)}.json`);
}

/** The record of the last successful refresh (`last-refresh` in the cache folder). */
export interface LastRefresh {
  /** The refresh's reference time, ms since the epoch. */
  at: number;
}

const LAST_REFRESH = 'last-refresh';

export interface LockOptions {
  /** Give up waiting for another process's lock after this long (TIMEOUT). Default 60 s. */
  waitMs?: number;
  /** A lock older than this is taken to be left by a crashed process. Default 5 min. */
  staleMs?: number;
}

export class MetadataCache {
  constructor(readonly dir: string) {}

  private path(role: string): string {
    return join(this.dir, cacheFileName(role));
  }

  /** The cached bytes of a role, or undefined. A file larger than `maxBytes` is refused. */
  async read(role: string, maxBytes: number): Promise<Uint8Array | undefined> {
    const file = this.path(role);
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch (err) {
      if (isCode(err, 'ENOENT')) return undefined;
      throw cacheIoError(file, err);
    }
    if (size > maxBytes) {
      throw new TufaError('TOO_LARGE', `trusted cache: ${file} holds ${size} bytes, more than ${maxBytes}`, {
        role,
        expected: `<= ${maxBytes}`,
        found: size,
        details: { source: 'cache', file },
      });
    }
    try {
      return new Uint8Array(await readFile(file));
    } catch (err) {
      if (isCode(err, 'ENOENT')) return undefined;
      throw cacheIoError(file, err);
    }
  }

  /** Writes a role's bytes atomically: a reader sees the old file or the new one, never a mix. */
  async write(role: string, bytes: Uint8Array): Promise<void> {
    const file = this.path(role);
    await writeAtomic(file, bytes);
  }

  async remove(role: string): Promise<void> {
    await rm(this.path(role), { force: true });
  }

  /** What the cached root was first trusted under (see trustAnchor in trust-anchor.ts); undefined if unknown. */
  async readAnchor(): Promise<string | undefined> {
    try {
      const text = await readFile(join(this.dir, 'trust-anchor'), 'utf8');
      return text.length <= 4096 ? text : undefined;
    } catch (err) {
      if (isCode(err, 'ENOENT')) return undefined;
      throw cacheIoError(join(this.dir, 'trust-anchor'), err);
    }
  }

  async writeAnchor(anchor: string): Promise<void> {
    await writeAtomic(join(this.dir, 'trust-anchor'), utf8Encode(anchor));
  }

  /**
   * When the last refresh that succeeded started; undefined when there is no record or it is
   * damaged (a caller that bounds the cache's age then refuses it).
   */
  async readLastRefresh(): Promise<LastRefresh | undefined> {
    const file = join(this.dir, LAST_REFRESH);
    let text: string;
    try {
      // Bounded: the record is one short line, anything longer is not one.
      const handle = await open(file, 'r');
      try {
        const { bytesRead, buffer } = await handle.read(Buffer.alloc(128), 0, 128, 0);
        text = buffer.subarray(0, bytesRead).toString('utf8');
      } finally {
        await handle.close();
      }
    } catch (err) {
      if (isCode(err, 'ENOENT')) return undefined;
      throw cacheIoError(file, err);
    }
    const m = /^\{"refreshed_at":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"\}\n$/.exec(text);
    const at = m === null ? Number.NaN : Date.parse(m[1]!);
    return Number.isFinite(at) ? { at } : undefined;
  }

  /**
   * Records a successful refresh, atomically, after every file it accepted is written. Not
   * fsynced: a crash can only leave the older record or a damaged one, and both make `maxAge`
   * stricter, never looser (a damaged record counts as none).
   */
  async writeLastRefresh(record: LastRefresh): Promise<void> {
    const text = `${JSON.stringify({ refreshed_at: new Date(record.at).toISOString() })}\n`;
    await writeAtomic(join(this.dir, LAST_REFRESH), text, 0o644, { durable: false });
  }

  /** True when the folder holds a cached root: the least an offline answer needs. */
  async exists(): Promise<boolean> {
    return stat(this.path('root')).then(
      () => true,
      () => false,
    );
  }

  /** Drops every cached document (not the lock): the next refresh starts from the trust anchor. */
  async clear(): Promise<void> {
    await rm(join(this.dir, LAST_REFRESH), { force: true });
    for (const role of ['root', 'timestamp', 'snapshot', 'targets']) await this.remove(role);
    await rm(join(this.dir, 'delegated'), { recursive: true, force: true });
    await rm(join(this.dir, 'trust-anchor'), { force: true });
  }

  /** Runs `fn` holding the folder's exclusive lock file. */
  async withLock<T>(fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
    const release = await acquireLock(join(this.dir, 'lock'), options);
    try {
      return await fn();
    } finally {
      await release();
    }
  }
}

/**
 * temp + fsync + rename + fsync(folder): a reader sees the old file or the new one, never a mix.
 * `durable: false` leaves out both fsyncs (about 1 ms each here, more on a real disk), for a file
 * whose loss in a crash is harmless.
 */
export async function writeAtomic(
  file: string,
  bytes: Uint8Array | string,
  mode = 0o644,
  { durable = true }: { durable?: boolean } = {},
): Promise<void> {
  const dir = join(file, '..');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(bytes);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw cacheIoError(file, err);
  }
  if (durable) await syncDir(dir);
}

/** fsync of a folder after a rename, so the new name survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some platforms cannot fsync a folder; the rename is still atomic.
  }
}

async function acquireLock(lockFile: string, options: LockOptions): Promise<() => Promise<void>> {
  const waitMs = options.waitMs ?? 60_000;
  const staleMs = options.staleMs ?? 5 * 60_000;
  await mkdir(join(lockFile, '..'), { recursive: true });
  const token = `${process.pid} ${Date.now()} ${randomBytes(8).toString('hex')}`;
  const deadline = Date.now() + waitMs;
  let delay = 10;
  for (;;) {
    try {
      const handle = await open(lockFile, 'wx', 0o644);
      try {
        // Not fsynced: a lock outlives no crash of its machine, and an empty one is stale after a second.
        await handle.writeFile(token);
      } finally {
        await handle.close();
      }
      return async () => {
        const held = await readFile(lockFile, 'utf8').catch(() => undefined);
        if (held === token) await unlink(lockFile).catch(() => undefined);
      };
    } catch (err) {
      if (!isCode(err, 'EEXIST')) throw cacheIoError(lockFile, err);
    }
    if (await isStale(lockFile, staleMs)) {
      await unlink(lockFile).catch(() => undefined);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new TufaError('TIMEOUT', `trusted cache: ${lockFile} is held by another process`, {
        expected: `lock within ${waitMs} ms`,
        details: { source: 'cache', file: lockFile },
      });
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(200, delay * 2);
  }
}

/** A lock is stale when its process is gone (same host) or it is older than `staleMs`. */
async function isStale(lockFile: string, staleMs: number): Promise<boolean> {
  let text: string;
  let mtime: number;
  try {
    text = await readFile(lockFile, 'utf8');
    mtime = (await stat(lockFile)).mtimeMs;
  } catch {
    return false; // released meanwhile: try again
  }
  if (Date.now() - mtime > staleMs) return true;
  const pid = Number(text.split(' ')[0]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return text.length > 0 || Date.now() - mtime > 1000;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return isCode(err, 'ESRCH');
  }
}

function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

function cacheIoError(file: string, err: unknown): TufaError {
  if (err instanceof TufaError) return err;
  return new TufaError('INTERNAL', `trusted cache: cannot use ${file}: ${(err as Error).message}`, {
    details: { source: 'cache', file },
    cause: err,
  });
}
