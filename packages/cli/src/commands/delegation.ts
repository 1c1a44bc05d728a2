import { computeKeyId, TufaError } from '@tufa/core';
import type { Context } from '../context.js';
import { readPublicKey } from '../keystore.js';
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
  const rows: {
    role: string;
    delegator: string;
    keyids: readonly string[];
    threshold: number;
    terminating: boolean;
    paths: readonly string[] | null;
    pathHashPrefixes: readonly string[] | null;
    published: boolean;
  }[] = [];
  const queue: { name: string; signed: NonNullable<typeof view.set.targets>['signed'] }[] = [
    { name: 'targets', signed: view.set.targets!.signed },
  ];
  const seen = new Set<string>(['targets']);
  while (queue.length > 0) {
    const { name, signed } = queue.shift()!;
    for (const d of signed.delegations?.roles ?? []) {
      if (seen.has(d.name)) continue;
      seen.add(d.name);
      const current = (await view.role(d.name)).current;
      rows.push({
        role: d.name,
        delegator: name,
        keyids: d.keyids,
        threshold: d.threshold,
        terminating: d.terminating,
        paths: d.paths ?? null,
        pathHashPrefixes: d.pathHashPrefixes ?? null,
        published: current !== undefined,
      });
      if (current !== undefined) queue.push({ name: d.name, signed: current.signed });
    }
  }
  ctx.out.result(
    rows,
    rows.length === 0
      ? [`${gun}: no delegations`]
      : rows.map(
          (r) =>
            `${r.role}  (by ${r.delegator})  paths: ${(r.paths ?? r.pathHashPrefixes ?? []).join(', ')}  ${r.threshold} of ${r.keyids.length} keys${r.terminating ? '  terminating' : ''}${r.published ? '' : '  (nothing published yet)'}`,
        ),
  );
}
