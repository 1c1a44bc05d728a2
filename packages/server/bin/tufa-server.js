#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=8
// Committed (dist/ is not) so that npm links `tufa-server` at install time, before anything is built.
// The #! line carries SERVER_NODE_OPTIONS (src/node-options.ts): V8 reads them only at start.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    `tufa-server: not built: ${fileURLToPath(main)} is missing; run \`npm run build\` at the repository root\n`,
  );
  process.exit(1);
}
await import(main.href);
