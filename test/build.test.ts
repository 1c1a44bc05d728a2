/** The build's pruning of stale outputs (scripts/prune-dist.mjs): what `tsc --build` leaves behind. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, tempDir } from '@tufa/testing/server';
import { describe, expect, it } from 'vitest';

describe('scripts/prune-dist.mjs', () => {
  it('deletes the outputs of a deleted source and keeps every other file', () => {
    const root = tempDir('tufa-prune-');
    const src = join(root, 'packages/x/src');
    const dist = join(root, 'packages/x/dist');
    mkdirSync(join(src, 'sub'), { recursive: true });
    mkdirSync(join(dist, 'sub'), { recursive: true });
    mkdirSync(join(dist, 'bundle'), { recursive: true });
    writeFileSync(join(src, 'kept.ts'), '');
    writeFileSync(join(src, 'sub/inner.ts'), '');
    const kept = [
      'kept.js',
      'kept.js.map',
      'kept.d.ts',
      'kept.d.ts.map',
      'sub/inner.js',
      'bundle/tufa.js',
      '.tsbuildinfo',
    ];
    const stale = ['gone.js', 'gone.js.map', 'gone.d.ts', 'gone.d.ts.map', 'sub/old.js'];
    for (const f of [...kept, ...stale]) writeFileSync(join(dist, f), '');
    execFileSync(process.execPath, [join(REPO, 'scripts/prune-dist.mjs'), root], { stdio: 'pipe' });
    expect(kept.filter((f) => !existsSync(join(dist, f)))).toEqual([]);
    expect(stale.filter((f) => existsSync(join(dist, f)))).toEqual([]);
  });
});
