import { defineConfig } from 'vitest/config';

// 'tufa-source' makes workspace packages resolve to their TypeScript sources in tests.
export default defineConfig({
  resolve: { conditions: ['tufa-source'] },
  ssr: { resolve: { conditions: ['tufa-source', 'node'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    // The tests of built programs must see this commit's build (test/global-setup.ts).
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The JSON report gives CI its closing line (.ci/summary.mjs).
    reporters: ['default', ['json', { outputFile: '.vitest-report.json' }]],
  },
});
