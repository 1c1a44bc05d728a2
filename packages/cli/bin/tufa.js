#!/usr/bin/env node
// Committed (dist/ is not) so that npm links `tufa` at install time, before anything is built.
// CommonJS (bin/package.json), as the bundle is: an ES module here would start Node's ESM loader
// for this one file, about 3 ms of every run.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const bundle = join(__dirname, '..', 'dist', 'bundle', 'tufa.js');
if (!existsSync(bundle)) {
  const message = `not built: ${bundle} is missing; run \`npm run build\` at the repository root`;
  // The documented error forms: one line on stderr, or the JSON document with --json; 3 as INTERNAL.
  if (process.argv.includes('--json'))
    process.stdout.write(`${JSON.stringify({ error: { code: 'INTERNAL', message } })}\n`);
  process.stderr.write(`tufa: INTERNAL: ${message}\n`);
  process.exit(3);
}
require(bundle);
