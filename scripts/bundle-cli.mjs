/**
 * Bundles the CLI as tsc built it (packages/cli/dist) into packages/cli/dist/bundle/tufa.js, with
 * one chunk per group of lazily loaded commands: a `tufa` process then resolves and reads a
 * handful of files instead of about sixty, about 25 ms of every run here (`tufa verify`
 * 164 -> 138 ms median). Run by `npm run build`, `npm test` and `npm run bench` after tsc.
 */
import { chmodSync, readFileSync, rmSync } from 'node:fs';
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
// Chunk names carry a content hash: without this, every earlier build's chunks stay (and get packed).
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { tufa: `${root}packages/cli/dist/bin.js` },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  legalComments: 'none',
  // The optional native PKCS#11 binding (ADR 0016): loaded from node_modules on use, when installed.
  external: ['pkcs11js'],
  plugins: [commanderSpawnOnUse],
  // CommonJS dependencies (commander) call require() for node: modules.
  banner: {
    js: "import { createRequire as __tufaRequire } from 'node:module'; const require = __tufaRequire(import.meta.url);",
  },
});
chmodSync(`${outdir}/tufa.js`, 0o755);
