/**
 * Deletes compiled files in packages/*\/dist whose TypeScript source is gone. `tsc --build` never
 * removes the output of a deleted source (nor does `--clean`, which only knows current outputs),
 * so a checkout that has built an older commit would pack stale modules and maps pointing at
 * missing sources. The CLI bundle (dist/bundle) is rebuilt whole and left alone.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

// `node scripts/prune-dist.mjs [ROOT]`: ROOT is the checkout (this one by default).
const REPO = resolve(process.argv[2] ?? join(import.meta.dirname, '..'));
const OUTPUT = /\.(d\.ts\.map|d\.ts|js\.map|js)$/;

function prune(dist, src) {
  for (const entry of readdirSync(dist, { withFileTypes: true })) {
    const path = join(dist, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'bundle') prune(path, join(src, entry.name));
      continue;
    }
    const match = OUTPUT.exec(entry.name);
    if (match === null) continue;
    const stem = entry.name.slice(0, -match[0].length);
    const sources = [`${stem}.ts`, `${stem}.mts`, `${stem}.mjs`, `${stem}.js`].map((n) => join(src, n));
    if (!sources.some((s) => existsSync(s))) {
      rmSync(path);
      console.log(`pruned ${relative(REPO, path)} (its source is gone)`);
    }
  }
}

for (const pkg of readdirSync(join(REPO, 'packages'))) {
  const dist = join(REPO, 'packages', pkg, 'dist');
  if (existsSync(dist)) prune(dist, join(REPO, 'packages', pkg, 'src'));
}
