/**
 * `tufa add … --publish`: stage a target and publish in one process (as notary's `add -p`), so a
 * publisher pays one start, one key decryption and a warm second refresh instead of two commands.
 */
import { TufaError } from '@tufa/core';
import type { Context } from '../context.js';
import { collecting } from '../output.js';
import { prefetchSigners } from '../publishing.js';

export interface AddOptions {
  digest?: string;
  length?: string;
  custom?: string;
  role?: string;
  publish?: boolean;
  expires?: string;
}

export async function addCommand(
  ctx: Context,
  gun: string,
  tag: string,
  file: string | undefined,
  options: AddOptions,
): Promise<void> {
  const { publish: publishing, expires, ...change } = options;
  if (expires !== undefined && publishing !== true) {
    throw new TufaError('INVALID_ARGUMENT', '--expires goes with --publish (or give it to tufa publish)');
  }
  const { add } = await import('./stage.js');
  if (publishing !== true) return add(ctx, gun, tag, file, change);
  // The keys' scrypt (about 0.1 s) runs while add refreshes the trusted state; publish finds them unlocked.
  prefetchSigners(ctx, gun, [change.role === undefined ? 'targets' : 'delegation', 'snapshot']);
  const staged = collecting(ctx);
  await add(staged.ctx, gun, tag, file, change);
  const { publish } = await import('./publish.js');
  await publish(staged.ctx, gun, expires === undefined ? {} : { expires });
  const [added, published] = staged.results as [
    { tag: string; digest: string; length: number; role: string },
    unknown,
  ];
  ctx.out.result({ ...added, published: published ?? null }, [
    `staged: add ${added.tag} -> ${added.digest} (${added.length} bytes) to ${added.role}`,
    ...staged.lines.slice(1),
  ]);
}
