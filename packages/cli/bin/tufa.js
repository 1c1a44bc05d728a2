#!/usr/bin/env node
// Committed (dist/ is not) so that npm links `tufa` at install time, before anything is built.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const bundle = new URL('../dist/bundle/tufa.js', import.meta.url);
if (!existsSync(bundle)) {
  const message = `not built: ${fileURLToPath(bundle)} is missing; run \`npm run build\` at the repository root`;
  // The documented error forms: one line on stderr, or the JSON document with --json; 3 as INTERNAL.
  if (process.argv.includes('--json'))
    process.stdout.write(`${JSON.stringify({ error: { code: 'INTERNAL', message } })}\n`);
  process.stderr.write(`tufa: INTERNAL: ${message}\n`);
  process.exit(3);
}
// The bundle is CommonJS: required, not imported (an import would scan its 650 KB for export names).
createRequire(import.meta.url)(fileURLToPath(bundle));
