/**
 * The verification worker's start loads no database code (ADR 0017 section 12): every large
 * update that starts a worker would pay for pg's modules, which the worker never uses. Each module
 * is loaded in a fresh worker thread, as verifier.ts starts one, and the CommonJS packages it
 * loaded (pg is one; `require.cache` is the thread's own) are read back.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

/** The npm packages a fresh thread has loaded through require once `file` is imported. */
function packagesLoadedBy(file: string): Promise<string[]> {
  const entry = JSON.stringify(new URL(file, import.meta.url).href);
  const tsxPackage = createRequire(import.meta.url).resolve('tsx/package.json');
  const tsx = JSON.stringify(pathToFileURL(join(dirname(tsxPackage), 'dist/esm/api/index.mjs')).href);
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     import(${tsx}).then(({ register }) => { register(); return import(${entry}); }).then(() => {
       const names = new Set();
       for (const path of Object.keys(require.cache)) {
         const parts = path.split(/[\\\\/]node_modules[\\\\/]/).pop().split(/[\\\\/]/);
         if (path.includes('node_modules')) names.add(parts[0].startsWith('@') ? parts[0] + '/' + parts[1] : parts[0]);
       }
       parentPort.postMessage([...names].sort());
     });`,
    { eval: true, execArgv: ['--conditions=tufa-source'] },
  );
  return new Promise((resolve, reject) => {
    worker.once('message', (names: string[]) => {
      resolve(names);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

const DATABASE = /^(pg|pg-.+|postgres-.+|undici)$/;

describe("the verification worker's modules", () => {
  it('a start loads no database driver (the collection state module does: the check sees pg)', async () => {
    const state = await packagesLoadedBy('./store/state.ts');
    expect(state).toContain('pg');
    const worker = await packagesLoadedBy('./verify-worker.ts');
    expect(worker.filter((name) => DATABASE.test(name))).toEqual([]);
  });
});
