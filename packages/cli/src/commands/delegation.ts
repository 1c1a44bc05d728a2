import { computeKeyId, TufaError } from '@tufa/core';
import type { Context } from '../context.js';
import { readPublicKey } from '../keystore.js';
import { printable } from '../output.js';
import { openCollection } from '../publishing.js';
import { checkRoleName, staging } from './stage.js';

export async function delegationAdd(
  ctx: Context,
  gun: string,
  name: string,
  options: { key?: string[]; paths?: string[]; threshold?: string; terminating?: boolean; parent?: string },
): Promise<void> {
  checkRoleName(name);
  if (name === 'targets') throw new TufaError('INVALID_ARGUMENT', 'targets is not a delegated role name');
  const parent = checkRoleName(options.parent);
  const keyFiles = options.key ?? [];
  const paths = options.paths ?? [];
  if (keyFiles.length === 0) throw new TufaError('INVALID_ARGUMENT', 'give at least one --key PUBKEY_FILE');
  if (paths.length === 0)
    throw new TufaError('INVALID_ARGUMENT', "give at least one --paths PATTERN, e.g. 'releases/*'");
  const threshold = options.threshold === undefined ? 1 : Number(options.threshold);
  if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > keyFiles.length) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `--threshold must be between 1 and the number of keys (${keyFiles.length})`,
    );
  }
  const keys = await Promise.all(keyFiles.map(readPublicKey));
  await staging(ctx).add(gun, {
    op: 'delegation-add',
    role: parent,
    name,
    keys,
    threshold,
    terminating: options.terminating === true,
    paths,
  });
  ctx.out.result(
    { gun, staged: 'delegation-add', role: name, parent, keyids: keys.map(computeKeyId), paths, threshold },
    `staged: delegate ${paths.join(', ')} to ${name} (${threshold} of ${keys.length} keys) in ${parent}; run tufa publish ${gun}`,
  );
}

export async function delegationRemove(
  ctx: Context,
  gun: string,
  name: string,
  options: { parent?: string },
): Promise<void> {
  checkRoleName(name);
  const parent = checkRoleName(options.parent);
  await staging(ctx).add(gun, { op: 'delegation-remove', role: parent, name });
  ctx.out.result(
    { gun, staged: 'delegation-remove', role: name, parent },
    `staged: remove delegation ${name} from ${parent}; run tufa publish ${gun}`,
  );
}

export async function delegationList(ctx: Context, gun: string): Promise<void> {
  const view = await openCollection(ctx, gun);
  const rows = (await view.client.listDelegations()).map((found) => ({
    role: found.name,
    delegator: found.delegator,
    keyids: found.delegation.keyids,
    threshold: found.delegation.threshold,
    terminating: found.delegation.terminating,
    paths: found.delegation.paths ?? null,
    pathHashPrefixes: found.delegation.pathHashPrefixes ?? null,
    published: found.metadata !== undefined,
  }));
  ctx.out.result(
    rows,
    rows.length === 0
      ? [`${gun}: no delegations`]
      : rows.map(
          (r) =>
            `${printable(r.role)}  (by ${printable(r.delegator)})  paths: ${(r.paths ?? r.pathHashPrefixes ?? []).map(printable).join(', ')}  ${r.threshold} of ${r.keyids.length} keys${r.terminating ? '  terminating' : ''}${r.published ? '' : '  (nothing published yet)'}`,
        ),
  );
}
