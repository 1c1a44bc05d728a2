/**
 * The README's set-up and quick start, from the state a new user is in: a fresh copy of HEAD, the
 * README's set-up command (`npm ci`, then `npm start`: the build it does and the server it starts),
 * then the Quick start block pasted into bash, which must work as written.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO } from '@tufa/testing/server';
import { afterAll, beforeAll, expect, it } from 'vitest';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { ...options, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      done({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
    );
  });
}

/** The test runner's environment without what `npm test` and vitest add (npm_*, NODE_ENV=test). */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(npm_|INIT_CWD$|NODE_ENV$|NODE_OPTIONS$|VITEST)/.test(k)) env[k] = v;
  }
  return env;
}

let clone: string;
let userHome: string;
let install: Run;
let server: ChildProcess | undefined;
let serverOutput = '';
let serverUrl: string;

/** What the pasted commands see: a new shell; npx may only run what the clone installed. */
function shellEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '',
    HOME: userHome,
    npm_config_offline: 'true',
    npm_config_update_notifier: 'false',
  };
}

beforeAll(async () => {
  clone = mkdtempSync(join(tmpdir(), 'tufa-clone-'));
  // As a clone is (mkdtemp makes 0700): run as root, the embedded PostgreSQL runs as user postgres.
  chmodSync(clone, 0o755);
  userHome = mkdtempSync(join(tmpdir(), 'tufa-user-'));
  const copy = await run(
    'bash',
    ['-o', 'pipefail', '-c', 'git archive --format=tar HEAD | tar -x -C "$1"', 'copy', clone],
    {
      cwd: REPO,
      env: userEnv(),
    },
  );
  if (copy.code !== 0) throw new Error(`git archive: ${copy.stderr}`);
  install = await run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], {
    cwd: clone,
    env: userEnv(),
  });
  if (install.code !== 0) throw new Error(`npm ci: ${install.stdout}\n${install.stderr}`);
}, 180_000);

afterAll(async () => {
  if (server?.pid !== undefined && server.exitCode === null) {
    // npm, its shell and the server: one process group, stopped as Ctrl-C would (the server then stops its PostgreSQL, which has a group of its own).
    process.kill(-server.pid, 'SIGTERM');
    for (let i = 0; i < 600; i++) {
      try {
        process.kill(-server.pid, 0);
      } catch {
        break;
      }
      await sleep(50);
    }
  }
  if (clone !== undefined) rmSync(clone, { recursive: true, force: true });
  if (userHome !== undefined) rmSync(userHome, { recursive: true, force: true });
}, 60_000);

it('npm ci on a fresh clone runs only the install scripts package.json allows, quietly', () => {
  expect(`${install.stdout}${install.stderr}`).not.toMatch(/install-scripts|allowScripts/);
});

it('npx tufa and npx tufa-server exist right after npm ci, and say to build when nothing is built', async () => {
  const tufa = await run('npx', ['tufa', '--version'], { cwd: clone, env: shellEnv() });
  expect(tufa.code).toBe(3);
  expect(tufa.stderr).toMatch(/^tufa: INTERNAL: not built: .*run `npm run build` at the repository root\n$/);
  const tufaServer = await run('npx', ['tufa-server', '--help'], { cwd: clone, env: shellEnv() });
  expect(tufaServer.code).toBe(1);
  expect(tufaServer.stderr).toMatch(
    /^tufa-server: not built: .*run `npm run build` at the repository root\n$/,
  );
});

it('npm start builds what the quick start uses and serves', async () => {
  // As `npm start` starts it; port 0 instead of 4443 (other tests may run), the README's data folder.
  server = spawn('npm', ['start'], {
    cwd: clone,
    env: { ...userEnv(), TUFA_PORT: '0' },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout!.on('data', (c: Buffer) => {
    serverOutput += c.toString();
  });
  server.stderr!.on('data', (c: Buffer) => {
    serverOutput += c.toString();
  });
  serverUrl = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`npm start did not serve:\n${serverOutput}`)), 150_000);
    server!.stdout!.on('data', () => {
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(serverOutput);
      if (m !== null) {
        clearTimeout(timer);
        done(m[1]!);
      }
    });
    server!.once('exit', () => {
      clearTimeout(timer);
      fail(new Error(`npm start exited:\n${serverOutput}`));
    });
  });
  const version = JSON.parse(readFileSync(join(clone, 'packages/cli/package.json'), 'utf8'))
    .version as string;
  const tufa = await run('npx', ['tufa', '--version'], { cwd: clone, env: shellEnv() });
  expect([tufa.code, tufa.stdout, tufa.stderr]).toEqual([0, `${version}\n`, '']);
  expect((await run('npx', ['tufa-server', '--help'], { cwd: clone, env: shellEnv() })).code).toBe(0);
}, 180_000);

it('the quick start works when pasted', async () => {
  expect(serverUrl).toBeDefined();
  const readme = readFileSync(join(clone, 'README.md'), 'utf8');
  const block = /## Quick start[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBeDefined();
  expect(block).toContain('TUFA_SERVER=http://127.0.0.1:4443');
  expect(block).not.toMatch(/alias|dist\//);
  // The block as pasted, pointed at this server; set -e makes any failing line fail the test.
  const script = `set -e\n${block!.replace('http://127.0.0.1:4443', serverUrl)}`;
  const r = await run('bash', ['-c', script], { cwd: clone, env: shellEnv() });
  if (r.code !== 0) throw new Error(`the quick start exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  expect(r.stdout).toMatch(/^initialized example\.com\/hello$/m);
  expect(r.stdout).toMatch(/^v1\.0\tsha256:[0-9a-f]{64}\t13\ttargets$/m);
  expect(r.stdout).toMatch(/^trusted$/m);
  expect(r.stdout).toMatch(/^refused with exit code 1$/m);
  expect(r.stderr).toMatch(/tufa: LENGTH_MISMATCH|tufa: HASH_MISMATCH/);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}, 120_000);
