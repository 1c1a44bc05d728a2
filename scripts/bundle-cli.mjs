/**
 * Bundles the CLI as tsc built it (packages/cli/dist) into one CommonJS file,
 * packages/cli/dist/bundle/main.js, and puts the entry beside it: tufa.js, a copy of
 * scripts/cli-loader.cjs, which runs main.js with a V8 code cache per command (see there). A
 * command's modules are evaluated when it runs (esbuild wraps each lazily imported module), so
 * `verify` still runs none of publishing's code. One CommonJS file rather than ESM chunks: a
 * `tufa verify` compiles all 650 KB and is still about 5% less CPU than with 11 ESM chunks (430 KB
 * of them), Node 20's ESM loader costing more per module than the compile of the rest; and only a
 * script (vm.Script) takes a code cache in Node 20 (ADR 0017, section 7).
 * Run by `npm run build`, `npm test` and `npm run bench` after tsc.
 */
import { chmodSync, copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}packages/cli/dist/bundle`;
/**
 * commander requires node:child_process at load for executable subcommands, which tufa has none
 * of: loading it (with dgram and the process bindings) is about 2 ms of every run. It is required
 * when commander would spawn one. The build fails if commander's line is not there.
 */
const commanderSpawnOnUse = {
  name: 'commander-spawn-on-use',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]commander[\\/]lib[\\/]command\.js$/ }, (args) => {
      const line = "const childProcess = require('node:child_process');";
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes(line)) throw new Error(`${args.path}: no "${line}" to load on use`);
      const onUse = "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };";
      return { contents: source.replace(line, onUse), loader: 'js' };
    });
  },
};
// Earlier builds' chunks and code caches: a cache must never outlive the main.js it was made from.
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: [`${root}packages/cli/dist/bin.js`],
  outfile: `${outdir}/main.js`,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  legalComments: 'none',
  // import() of node: modules as require(): a script run by vm.Script has no ESM loader to ask.
  supported: { 'dynamic-import': false },
  // The optional native PKCS#11 binding (ADR 0016): loaded from node_modules on use, when installed.
  external: ['pkcs11js'],
  plugins: [commanderSpawnOnUse],
});
// The package is "type": "module": this folder's .js files are CommonJS.
writeFileSync(`${outdir}/package.json`, '{ "type": "commonjs" }\n');
copyFileSync(`${root}scripts/cli-loader.cjs`, `${outdir}/tufa.js`);
chmodSync(`${outdir}/tufa.js`, 0o755);
