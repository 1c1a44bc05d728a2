/** `tufa --version`, and the committed bin files npm links (`tufa`, `tufa-server`) with and without a build. */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '@tufa/testing/server';
import { afterAll, describe, expect, it } from 'vitest';
import { Home, type RunResult } from './harness.test-util.js';

const VERSION = JSON.parse(readFileSync(join(REPO, 'packages/cli/package.json'), 'utf8')).version as string;
const home = new Home('http://127.0.0.1:9');
const unbuilt = mkdtempSync(join(tmpdir(), 'tufa-unbuilt-'));

afterAll(() => {
  home.remove();
  rmSync(unbuilt, { recursive: true, force: true });
});

function node(args: string[]): Promise<RunResult> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      args,
      { env: { PATH: process.env.PATH ?? '', HOME: home.dir } },
      (err, stdout, stderr) => done({ code: err === null ? 0 : Number(err.code), stdout, stderr }),
    );
  });
}

/** A package folder as npm installs it before `npm run build`: the bin file, no dist/. */
function unbuiltCopy(pkg: string, bin: string): string {
  mkdirSync(join(unbuilt, pkg, 'bin'), { recursive: true });
  copyFileSync(join(REPO, 'packages', pkg, 'bin', bin), join(unbuilt, pkg, 'bin', bin));
  return join(unbuilt, pkg, 'bin', bin);
}

describe('tufa --version', () => {
  it('prints the version of @tufa/cli', async () => {
    for (const flag of ['--version', '-V']) {
      expect(await home.run([flag])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    }
  });

  it('leaves the --version option of pending drop and sign to them', async () => {
    const r = await home.run(['pending', 'drop', 'example.com/app', 'targets', '--version', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('tufa: INVALID_ARGUMENT: --version must be a positive integer\n');
  });
});

describe('commands defined when run', () => {
  it('runs each command tufa --help lists by its name alone, and the same help with a global option first', async () => {
    const help = await home.run(['--help']);
    expect(help.code).toBe(0);
    const names = [...help.stdout.split('Commands:\n')[1]!.matchAll(/^ {2}([a-z]+)/gm)].map((m) => m[1]!);
    expect(names).toEqual(
      expect.arrayContaining(['init', 'verify', 'lookup', 'key', 'pending', 'sign', 'help']),
    );
    // The loader keeps a code cache per command: the same names.
    const loader = readFileSync(join(REPO, 'scripts/cli-loader.cjs'), 'utf8');
    const cached = loader.split('const COMMANDS = new Set([')[1]!.split(']);')[0]!;
    expect([...cached.matchAll(/'([a-z]+)'/g)].map((m) => m[1])).toEqual(names.filter((n) => n !== 'help'));
    for (const name of names.filter((n) => n !== 'help')) {
      const alone = await home.run([name, '--help']);
      expect(alone.code, name).toBe(0);
      expect(alone.stdout, name).toMatch(new RegExp(`^Usage: tufa ${name} `));
      // A global option first: every command is defined, and the help is the same.
      expect(await home.run(['--debug', name, '--help']), name).toEqual(alone);
    }
  });
});

describe('the bin files npm links', () => {
  it('tufa runs the bundle', async () => {
    expect(await node([join(REPO, 'packages/cli/bin/tufa.js'), '--version'])).toEqual({
      code: 0,
      stdout: `${VERSION}\n`,
      stderr: '',
    });
  });

  it('tufa-server runs the build', async () => {
    const r = await node([join(REPO, 'packages/server/bin/tufa-server.js'), '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/tufa-server/);
  });

  it('say in one line to build when nothing is built (the JSON error with --json)', async () => {
    const tufa = unbuiltCopy('cli', 'tufa.js');
    const r = await node([tufa, 'verify', 'example.com/app', 'v1', '--digest', `sha256:${'0'.repeat(64)}`]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `tufa: INTERNAL: not built: ${join(unbuilt, 'cli/dist/bundle/tufa.js')} is missing; run \`npm run build\` at the repository root\n`,
    );
    const json = await node([tufa, 'list', 'example.com/app', '--json']);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout).error.code).toBe('INTERNAL');
    const server = await node([unbuiltCopy('server', 'tufa-server.js')]);
    expect(server.code).toBe(1);
    expect(server.stderr).toBe(
      `tufa-server: not built: ${join(unbuilt, 'server/dist/bin.js')} is missing; run \`npm run build\` at the repository root\n`,
    );
  });
});

describe("the bundle's code cache (scripts/cli-loader.cjs)", () => {
  /** A copy of the built bundle folder, without the caches the other tests' runs left. */
  function bundleCopy(): string {
    const dir = mkdtempSync(join(unbuilt, 'bundle-'));
    for (const name of ['main.js', 'tufa.js', 'package.json']) {
      copyFileSync(join(REPO, 'packages/cli/dist/bundle', name), join(dir, name));
    }
    return dir;
  }
  const caches = (dir: string) =>
    readdirSync(dir)
      .filter((n) => n.endsWith('.v8cache'))
      .sort();

  it('is made by the first run of a command, beside the bundle, and used (not remade) by the next', async () => {
    const dir = bundleCopy();
    const version = { code: 0, stdout: `${VERSION}\n`, stderr: '' };
    expect(await node([join(dir, 'tufa.js'), '--version'])).toEqual(version);
    expect(caches(dir)).toEqual(['main.js.other.v8cache']);
    const cache = join(dir, 'main.js.other.v8cache');
    const old = new Date(Date.now() - 60_000);
    utimesSync(cache, old, old);
    expect(await node([join(dir, 'tufa.js'), '--version'])).toEqual(version);
    expect(Math.round(statSync(cache).mtimeMs)).toBe(old.getTime());
    // Neither help nor a failed run makes a command's cache: it would hold few of its functions.
    expect((await node([join(dir, 'tufa.js'), 'verify', '--help'])).code).toBe(0);
    expect((await node([join(dir, 'tufa.js'), 'verify', 'example.com/app', 'v1'])).code).toBe(2);
    expect(caches(dir)).toEqual(['main.js.other.v8cache']);
    expect((await node([join(dir, 'tufa.js'), 'key', 'list', '--json'])).code).toBe(0);
    expect(caches(dir)).toEqual(['main.js.key.v8cache', 'main.js.other.v8cache']);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('is remade when main.js changed since, or when V8 refuses it; a bad cache never changes an answer', async () => {
    const dir = bundleCopy();
    const cache = join(dir, 'main.js.other.v8cache');
    const version = { code: 0, stdout: `${VERSION}\n`, stderr: '' };
    expect(await node([join(dir, 'tufa.js'), '--version'])).toEqual(version);
    const made = readFileSync(cache);
    // main.js rebuilt (another mtime): the cache is not used, and is made again for this main.js.
    utimesSync(join(dir, 'main.js'), new Date(), new Date(Date.now() + 5000));
    expect(await node([join(dir, 'tufa.js'), '--version'])).toEqual(version);
    expect(readFileSync(cache).subarray(8, 16).equals(made.subarray(8, 16))).toBe(false);
    // The right header, then bytes V8 does not take as a cache: refused by V8, then made again.
    const header = readFileSync(cache).subarray(0, 16);
    writeFileSync(cache, Buffer.concat([header, Buffer.alloc(4096, 7)]));
    expect(await node([join(dir, 'tufa.js'), '--version'])).toEqual(version);
    expect(readFileSync(cache).length).toBeGreaterThan(4096 + 16);
    expect(existsSync(join(dir, 'main.js'))).toBe(true);
  });
});

describe('what the tufa bundle loads', () => {
  it("takes node:crypto from @tufa/core/node and never the pure provider's @noble/curves (start time)", async () => {
    const { build } = await import('esbuild');
    const result = await build({
      entryPoints: [join(REPO, 'packages/cli/dist/bin.js')],
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      outdir: join(unbuilt, 'bundle-check'),
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((p) => p.endsWith('core/dist/node-crypto.js'))).toBe(true);
    expect(inputs.filter((p) => p.includes('@noble/curves') || p.endsWith('core/dist/noble.js'))).toEqual([]);
  });
});
