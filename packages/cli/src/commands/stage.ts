/** `tufa add | remove | reset`: changes staged locally until a publish succeeds. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createHash,
  fileUnreadable,
  isTufaError,
  type JsonValue,
  parseDigest,
  parseJson,
  type TargetFile,
  TufaError,
  toHex,
} from '@tufa/core';
import type { Context } from '../context.js';
import { Staging } from '../staging.js';

export function staging(ctx: Context): Staging {
  return new Staging(join(ctx.home, 'staged'));
}

/** Target paths as tags: non-empty, no control characters, bounded. */
export function checkTag(tag: string): string {
  if (tag.length === 0 || tag.length > 1024 || /[\u0000-\u001f\u007f]/.test(tag)) {
    throw new TufaError('INVALID_ARGUMENT', 'a tag is 1 to 1024 characters with no control characters', {
      found: tag.slice(0, 80),
    });
  }
  return tag;
}

export function checkRoleName(role: string | undefined): string {
  const name = role ?? 'targets';
  if (name !== 'targets' && !/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/.test(name)) {
    throw new TufaError('INVALID_ARGUMENT', `not a role name: ${name.slice(0, 80)}`, {
      found: name.slice(0, 80),
    });
  }
  if (['root', 'snapshot', 'timestamp'].includes(name)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `targets are staged into targets or a delegated role, not ${name}`,
    );
  }
  return name;
}

/** Streams content through sha256 and sha512, showing progress on a terminal for large files. */
async function hashStream(
  ctx: Context,
  input: AsyncIterable<Uint8Array>,
  size: number | undefined,
): Promise<TargetFile> {
  const h256 = createHash('sha256');
  const h512 = createHash('sha512');
  let length = 0;
  const progress = !ctx.out.json && process.stderr.isTTY && size !== undefined && size >= 64 * 1024 * 1024;
  let shown = -1;
  for await (const chunk of input) {
    h256.update(chunk);
    h512.update(chunk);
    length += chunk.length;
    if (progress) {
      const percent = Math.floor((length / size) * 100);
      if (percent !== shown) {
        shown = percent;
        process.stderr.write(
          `\rhashing [${'#'.repeat(Math.floor(percent / 4)).padEnd(25, '.')}] ${percent}%`,
        );
      }
    }
  }
  if (progress) process.stderr.write('\n');
  return { length, hashes: { sha256: toHex(h256.digest()), sha512: toHex(h512.digest()) }, extra: {} };
}

export async function add(
  ctx: Context,
  gun: string,
  tag: string,
  file: string | undefined,
  options: { digest?: string; length?: string; custom?: string; role?: string },
): Promise<void> {
  checkTag(tag);
  const role = checkRoleName(options.role);
  let target: TargetFile;
  if (options.digest !== undefined) {
    if (file !== undefined)
      throw new TufaError('INVALID_ARGUMENT', 'give a FILE or --digest with --length, not both');
    const digest = parseDigest(options.digest);
    const length = Number(options.length);
    if (options.length === undefined || !/^\d+$/.test(options.length) || !Number.isSafeInteger(length)) {
      throw new TufaError('INVALID_ARGUMENT', '--digest needs --length N (the artifact size in bytes)');
    }
    target = { length, hashes: { [digest.algorithm]: digest.hex }, extra: {} };
  } else if (file === '-') {
    target = await hashStream(ctx, process.stdin, undefined);
  } else if (file !== undefined) {
    let size: number;
    try {
      const info = await stat(file);
      if (!info.isFile()) throw new Error('not a regular file');
      size = info.size;
    } catch (err) {
      throw fileUnreadable(file, 'the artifact to add', err);
    }
    try {
      target = await hashStream(ctx, createReadStream(file, { highWaterMark: 1024 * 1024 }), size);
    } catch (err) {
      throw isTufaError(err) ? err : fileUnreadable(file, 'the artifact to add', err);
    }
  } else {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'give a FILE (or - for stdin), or --digest ALGORITHM:HEX --length N',
    );
  }
  if (options.custom !== undefined) {
    let custom: JsonValue;
    try {
      custom = parseJson(options.custom, { source: '--custom' });
    } catch (err) {
      throw new TufaError('INVALID_ARGUMENT', `--custom must be JSON: ${(err as Error).message}`);
    }
    target = { ...target, custom };
  }
  await staging(ctx).add(gun, { op: 'add', role, path: tag, target });
  const sha = target.hashes.sha256 ?? Object.values(target.hashes)[0];
  ctx.out.result(
    { gun, tag, role, staged: 'add', length: target.length, hashes: target.hashes },
    `staged: add ${tag} -> ${target.hashes.sha256 ? 'sha256:' : ''}${sha} (${target.length} bytes) to ${role}; run tufa publish ${gun}`,
  );
}

export async function remove(
  ctx: Context,
  gun: string,
  tag: string,
  options: { role?: string },
): Promise<void> {
  checkTag(tag);
  const role = checkRoleName(options.role);
  await staging(ctx).add(gun, { op: 'remove', role, path: tag });
  ctx.out.result(
    { gun, tag, role, staged: 'remove' },
    `staged: remove ${tag} from ${role}; run tufa publish ${gun}`,
  );
}

export async function reset(ctx: Context, gun: string): Promise<void> {
  const dropped = await staging(ctx).reset(gun);
  ctx.out.result({ gun, dropped }, `dropped ${dropped} staged change${dropped === 1 ? '' : 's'} for ${gun}`);
}
