import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// The tests Stryker runs against mutants of the rule modules (stryker.config.mjs): core's unit tests
// and the server's pending-route tests, not the CLI or attack suites (they run built bundles or
// child processes, which never load a mutant).
const src = (path: string) => resolve(import.meta.dirname, 'packages', path);

export default defineConfig({
  resolve: {
    // Stryker runs in a copy of the checkout; the aliases keep '@tufa/*' in that copy (the symlinks in
    // node_modules lead back to the unmutated sources).
    alias: [
      { find: /^@tufa\/core$/, replacement: src('core/src/index.ts') },
      { find: /^@tufa\/core\/errors$/, replacement: src('core/src/errors.ts') },
      { find: /^@tufa\/core\/noble$/, replacement: src('core/src/noble.ts') },
      { find: /^@tufa\/core\/node$/, replacement: src('core/src/node-crypto.ts') },
      { find: /^@tufa\/server$/, replacement: src('server/src/index.ts') },
      { find: /^@tufa\/testing$/, replacement: src('testing/src/index.ts') },
      { find: /^@tufa\/testing\/(\w+)$/, replacement: src('testing/src/$1.ts') },
    ],
  },
  test: {
    include: ['packages/core/src/**/*.test.ts', 'packages/server/src/pending*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
