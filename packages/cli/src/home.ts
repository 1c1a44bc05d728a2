/**
 * TUFA_HOME: the keystore, the trusted-metadata cache, staged changes and the config file.
 * Folders are 0700 and files 0600; every write is atomic (temp file, fsync, rename).
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { writeAtomic } from '@tufa/client';
import { fileUnreadable, isTufaError, TufaError } from '@tufa/core';

export function tufaHome(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.TUFA_HOME;
  return resolve(fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.tufa'));
}

export async function ensureDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
}

/** Writes a file atomically with mode 0600 in a 0700 folder (the client's atomic write). */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await ensureDir(dirname(path));
  await writeAtomic(path, data, 0o600);
}

/** Reads a file no larger than `limit` bytes; undefined when it does not exist. */
export async function readFileBounded(
  path: string,
  limit: number,
  what: string,
): Promise<Uint8Array | undefined> {
  try {
    return await readLocalFile(path, limit, what);
  } catch (err) {
    if (isTufaError(err, 'FILE_UNREADABLE') && err.details?.reason === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Reads a local file no larger than `limit` bytes (a key file, a PEM file, an artifact's
 * metadata): FILE_UNREADABLE with the path when it is missing, unreadable or not a regular file.
 */
export async function readLocalFile(path: string, limit: number, what: string): Promise<Uint8Array> {
  let size: number;
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw Object.assign(new Error('a directory'), { code: 'EISDIR' });
    if (!info.isFile()) throw new Error('not a regular file');
    size = info.size;
  } catch (err) {
    throw fileUnreadable(path, what, err);
  }
  if (size > limit) {
    throw new TufaError('TOO_LARGE', `${what} (${path}) is ${size} bytes, more than the ${limit} allowed`, {
      expected: limit,
      found: size,
    });
  }
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw fileUnreadable(path, what, err);
  }
}

/** A GUN as a file name: reversible, no separators. */
export function gunFileName(gun: string): string {
  return encodeURIComponent(gun);
}
