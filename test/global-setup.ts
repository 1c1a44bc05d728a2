/**
 * Builds before any test runs (stale outputs pruned, `tsc --build`, then the CLI bundle), so that tests which run the
 * built programs (each package's `dist`, the CLI bundle) test this commit's code
 * even under a bare `npx vitest`. Both steps are incremental: a no-op build takes about 0.4 s.
 */
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..');

export default function setup(): void {
  const step = (args: string[]) => {
    try {
      execFileSync(process.execPath, args, {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
        encoding: 'utf8',
      });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      throw new Error(
        `the build before the tests failed: node ${args.join(' ')}\n${e.stdout ?? ''}${e.stderr ?? ''}`,
      );
    }
  };
  step([join(REPO, 'scripts/prune-dist.mjs')]);
  step([join(REPO, 'node_modules/typescript/bin/tsc'), '--build']);
  step([join(REPO, 'scripts/bundle-cli.mjs')]);
}
