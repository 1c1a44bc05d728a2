/** `tufa add | remove | reset`: changes staged locally until a publish succeeds. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type DelegatedRole,
  fileUnreadable,
  isDelegatedPath,
  isTufaError,
  type JsonValue,
  parseDigest,
  parseJson,
  succinctBinNameFor,
  type TargetFile,
  type Targets,
  TufaError,
  toHex,
} from '@tufa/core';
import type { Context } from '../context.js';
import type { CollectionView } from '../publishing.js';
import { type StagedChange, Staging, type TargetChange } from '../staging.js';

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
  const h256 = ctx.crypto.createHash('sha256');
  const h512 = ctx.crypto.createHash('sha512');
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

/** `sha256:HEX` (or the first hash there is) of a target, as the CLI shows it. */
export function targetDigest(target: TargetFile): string {
  const sha256 = target.hashes.sha256;
  if (sha256 !== undefined) return `sha256:${sha256}`;
  const [algorithm, hex] = Object.entries(target.hashes)[0] ?? ['?', '?'];
  return `${algorithm}:${hex}`;
}

function sameTarget(a: TargetFile, b: TargetFile): boolean {
  const common = Object.keys(a.hashes).filter((alg) => Object.hasOwn(b.hashes, alg));
  return a.length === b.length && common.length > 0 && common.every((alg) => a.hashes[alg] === b.hashes[alg]);
}

/**
 * The trusted state to check a change against as it is staged, read through expired roles (a
 * role that has expired is being fixed). Offline (the server cannot be reached) a change is staged
 * unchecked, with a note: tufa publish checks every change against the state it fetches.
 */
async function trustedView(ctx: Context, gun: string): Promise<CollectionView | undefined> {
  const { openCollection } = await import('../publishing.js');
  try {
    return await openCollection(ctx, gun, true);
  } catch (err) {
    if (isTufaError(err, 'NETWORK') || isTufaError(err, 'TIMEOUT')) {
      ctx.out.note(
        `tufa: note: cannot fetch the trusted state of ${gun} (${err.code}): staged without checking it; tufa publish checks it`,
      );
      return undefined;
    }
    throw err;
  }
}

/** A role's published targets and, for a delegated role, the delegation that trusts it (staged ones first). */
async function roleState(
  view: CollectionView,
  staged: readonly StagedChange[],
  gun: string,
  role: string,
): Promise<{ targets: Readonly<Record<string, TargetFile>>; delegation: DelegatedRole | undefined }> {
  if (role === 'targets') return { targets: view.set.targets?.signed.targets ?? {}, delegation: undefined };
  const change = staged.findLast(
    (c) => (c.op === 'delegation-add' || c.op === 'delegation-remove') && c.name === role,
  );
  if (change?.op === 'delegation-remove') {
    throw new TufaError('NOT_FOUND', `${role}: its delegation is staged for removal (tufa status ${gun})`, {
      role,
    });
  }
  let found: Awaited<ReturnType<CollectionView['role']>>;
  try {
    found = await view.role(role);
  } catch (err) {
    if (!isTufaError(err, 'NOT_FOUND')) throw err;
    throw new TufaError(
      'NOT_FOUND',
      change === undefined
        ? `${role}: no trusted role delegates it; delegate it first (tufa delegation add ${gun} ${role} …)`
        : `${role}: only a staged change delegates it; publish the delegation first (tufa publish ${gun}), then stage into it`,
      { role },
    );
  }
  // A staged change of the delegation (its paths) is what the next publish signs.
  const delegation: DelegatedRole | undefined =
    change?.op === 'delegation-add'
      ? {
          name: role,
          keyids: [],
          threshold: change.threshold,
          terminating: change.terminating,
          paths: change.paths,
          extra: {},
        }
      : found.delegation;
  return { targets: found.current?.signed.targets ?? {}, delegation };
}

/**
 * The role a tag is staged into: as given, except that a collection whose targets delegates to
 * succinct hash bins (TAP 15) keeps each tag in its bin, so targets (or no --role) means its bin.
 */
export function roleForTag(targets: Targets | undefined, role: string, tag: string): string {
  const succinct = targets?.delegations?.succinctRoles;
  return role === 'targets' && succinct !== undefined ? succinctBinNameFor(succinct, tag) : role;
}

function checkDelegated(delegation: DelegatedRole | undefined, role: string, path: string): void {
  if (delegation === undefined || isDelegatedPath(delegation, path)) return;
  const paths = delegation.paths ?? delegation.pathHashPrefixes ?? [];
  throw new TufaError(
    'PATH_NOT_DELEGATED',
    `${path} is outside the paths delegated to ${role} (${paths.join(', ')}): it could never be published there`,
    { role, expected: paths, found: path },
  );
}

export async function add(
  ctx: Context,
  gun: string,
  tag: string,
  file: string | undefined,
  options: { digest?: string; length?: string; custom?: string; role?: string },
): Promise<void> {
  checkTag(tag);
  const stage = staging(ctx);
  // Checked against the trusted state before any hashing: a refusal costs nothing.
  const view = await trustedView(ctx, gun);
  const role = roleForTag(view?.set.targets?.signed, checkRoleName(options.role), tag);
  let published: TargetFile | undefined;
  if (view !== undefined) {
    const state = await roleState(view, await stage.list(gun), gun, role);
    checkDelegated(state.delegation, role, tag);
    published = Object.hasOwn(state.targets, tag) ? state.targets[tag] : undefined;
  }
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
  const replaced = await stage.putTarget(gun, { role, path: tag }, { op: 'add', role, path: tag, target });
  const digest = targetDigest(target);
  const notes: string[] = [];
  if (replaced !== undefined) {
    notes.push(
      `replaces the staged ${replaced.op} of ${tag}${replaced.op === 'add' ? ` (${targetDigest(replaced.target)})` : ''}`,
    );
  }
  if (published !== undefined && !sameTarget(published, target)) {
    notes.push(
      `warning: ${tag} is published as ${targetDigest(published)} (${published.length} bytes): publishing re-points it to ${digest}`,
    );
  } else if (published !== undefined) {
    notes.push(`${tag} is published with this digest already`);
  }
  for (const note of notes) ctx.out.note(`tufa: ${note}`);
  ctx.out.result(
    {
      gun,
      tag,
      role,
      staged: 'add',
      digest,
      length: target.length,
      hashes: target.hashes,
      previous:
        published === undefined ? null : { digest: targetDigest(published), length: published.length },
      replaced: replaced === undefined ? null : replaced.op,
      checked: view !== undefined,
      notes,
    },
    `staged: add ${tag} -> ${digest} (${target.length} bytes) to ${role}; run tufa publish ${gun}`,
  );
}

export async function remove(
  ctx: Context,
  gun: string,
  tag: string,
  options: { role?: string },
): Promise<void> {
  checkTag(tag);
  const stage = staging(ctx);
  const view = await trustedView(ctx, gun);
  const role = roleForTag(view?.set.targets?.signed, checkRoleName(options.role), tag);
  let published: TargetFile | undefined;
  if (view !== undefined) {
    const state = await roleState(view, await stage.list(gun), gun, role);
    published = Object.hasOwn(state.targets, tag) ? state.targets[tag] : undefined;
    if (published === undefined) {
      const staged = (await stage.list(gun)).find(
        (c): c is TargetChange => c.op === 'add' && c.role === role && c.path === tag,
      );
      if (staged === undefined) {
        throw new TufaError('NOT_FOUND', `${tag} is not a published target of ${role}: nothing to remove`, {
          role,
          found: tag,
        });
      }
      // Never published: removing it is dropping the staged add.
      await stage.putTarget(gun, { role, path: tag }, undefined);
      ctx.out.result(
        { gun, tag, role, staged: null, dropped: 'add', checked: true },
        `${tag} was only staged (never published): dropped its staged add from ${role}`,
      );
      return;
    }
  }
  const replaced = await stage.putTarget(gun, { role, path: tag }, { op: 'remove', role, path: tag });
  if (replaced !== undefined) ctx.out.note(`tufa: replaces the staged ${replaced.op} of ${tag}`);
  ctx.out.result(
    {
      gun,
      tag,
      role,
      staged: 'remove',
      previous:
        published === undefined ? null : { digest: targetDigest(published), length: published.length },
      replaced: replaced === undefined ? null : replaced.op,
      checked: view !== undefined,
    },
    `staged: remove ${tag}${published === undefined ? '' : ` (${targetDigest(published)})`} from ${role}; run tufa publish ${gun}`,
  );
}

/** Drops every staged change of a collection, or those of one tag. */
export async function reset(
  ctx: Context,
  gun: string,
  tag: string | undefined,
  options: { role?: string } = {},
): Promise<void> {
  if (tag === undefined) {
    if (options.role !== undefined) throw new TufaError('INVALID_ARGUMENT', '--role goes with a TAG');
    const dropped = await staging(ctx).reset(gun);
    ctx.out.result(
      { gun, dropped },
      `dropped ${dropped} staged change${dropped === 1 ? '' : 's'} for ${gun}`,
    );
    return;
  }
  checkTag(tag);
  const role = options.role === undefined ? undefined : checkRoleName(options.role);
  const dropped = await staging(ctx).dropTarget(gun, tag, role);
  if (dropped.length === 0) {
    throw new TufaError(
      'NOT_FOUND',
      `no staged change of ${tag}${role === undefined ? '' : ` in ${role}`} for ${gun} (tufa status ${gun})`,
      { found: tag },
    );
  }
  ctx.out.result(
    { gun, tag, dropped: dropped.length, changes: dropped.map((c) => ({ op: c.op, role: c.role })) },
    `dropped ${dropped.map((c) => `${c.op} ${tag} (${c.role})`).join(', ')} for ${gun}`,
  );
}
