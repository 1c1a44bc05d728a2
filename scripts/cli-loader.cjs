#!/usr/bin/env node
/**
 * `dist/bundle/tufa.js`, the `tufa` entry (copied by scripts/bundle-cli.mjs): runs the CommonJS
 * bundle `main.js` with a V8 code cache beside it, one per command. A run without a usable cache
 * compiles as `require` would and, when it succeeds, leaves the bytecode of every function it ran
 * in `main.js.COMMAND.v8cache` on exit; the next run of that command compiles almost nothing (a
 * warm `tufa verify`: about 11% less CPU, ADR 0017 section 7).
 *
 * The cache is code, so it lives with the code: only in this folder, never in TUFA_HOME or a
 * temp folder; whoever can write here can already rewrite main.js. When the folder is read-only
 * (an install owned by root) nothing is written and every run compiles. A cache is used only for
 * the main.js it was made from (its size and mtime, recorded in the first 16 bytes; a build empties
 * this folder), and V8 refuses one from another V8 version or other flags (`cachedDataRejected`),
 * which is then made again.
 */
'use strict';
const {
  closeSync,
  fstatSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} = require('node:fs');
const Module = require('node:module');
const { join } = require('node:path');
const { Script } = require('node:vm');

/** The commands with a cache of their own; any other run shares `other`. */
const COMMANDS = new Set([
  'init',
  'add',
  'remove',
  'reset',
  'lookup',
  'verify',
  'list',
  'export',
  'image',
  'pull',
  'root',
  'publish',
  'status',
  'renew',
  'delegation',
  'notary',
  'key',
  'threshold',
  'pending',
  'sign',
]);
const HEADER = 16;

const file = join(__dirname, 'main.js');
const fd = openSync(file, 'r');
const { size, mtimeMs } = fstatSync(fd);
// The bundle's first line is its #! line: a comment of the same length keeps every line number.
const source = readFileSync(fd, 'utf8').replace(/^#!/, '//');
closeSync(fd);
const header = Buffer.alloc(HEADER);
header.writeDoubleLE(size, 0);
header.writeDoubleLE(mtimeMs, 8);

const command = COMMANDS.has(process.argv[2]) ? process.argv[2] : 'other';
const cacheFile = join(__dirname, `main.js.${command}.v8cache`);
let cachedData;
try {
  const bytes = readFileSync(cacheFile);
  if (bytes.length > HEADER && header.equals(bytes.subarray(0, HEADER))) cachedData = bytes.subarray(HEADER);
} catch {
  // No cache (yet) for this command.
}

const script = new Script(Module.wrap(source), {
  filename: file,
  ...(cachedData === undefined ? {} : { cachedData }),
});
// Made by a run that did its command's whole work: one that failed early or only printed help
// would leave a cache without most of the functions the command runs.
const helpOnly = process.argv.includes('--help') || process.argv.includes('-h');
if ((cachedData === undefined || script.cachedDataRejected === true) && !helpOnly) {
  process.once('exit', (code) => {
    if (code !== 0) return;
    const temp = `${cacheFile}.${process.pid}.tmp`;
    let out;
    try {
      out = openSync(temp, 'wx', 0o644);
    } catch {
      return; // A read-only install: every run compiles, as without a cache, and makes none.
    }
    try {
      writeFileSync(out, Buffer.concat([header, script.createCachedData()]));
      closeSync(out);
      renameSync(temp, cacheFile);
    } catch {
      try {
        closeSync(out);
      } catch {}
      try {
        rmSync(temp, { force: true });
      } catch {}
    }
  });
}
const main = new Module(file, module);
main.filename = file;
script.runInThisContext().call(main.exports, main.exports, Module.createRequire(file), main, file, __dirname);
