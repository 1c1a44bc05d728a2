/** The README's quick start, pasted into bash against a real server: it must work as written. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO, startBackend } from './harness.test-util.js';

let backend: Awaited<ReturnType<typeof startBackend>>;

beforeAll(async () => {
  backend = await startBackend('embedded');
}, 120_000);

afterAll(async () => {
  await backend?.stop();
});

it('the quick start works when pasted', async () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const block = /## Quick start[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBeDefined();
  expect(block).toContain('TUFA_SERVER=http://127.0.0.1:4443');
  expect(block).toContain('token create');
  // The same script, pointed at this test's server and its data folder (the server runs with access
  // control: writes need the token the script makes); aliases need expand_aliases outside a terminal.
  const script = `shopt -s expand_aliases\nset -e\n${block!
    .replace('http://127.0.0.1:4443', backend.server.url)
    .replace('token create', `token create --data-dir ${backend.dataDir}`)}`;
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((done, fail) => {
    execFile(
      'bash',
      ['-c', script],
      { cwd: REPO, env: { PATH: process.env.PATH ?? '', HOME: REPO } },
      (err, out, errOut) =>
        err ? fail(new Error(`${err.message}\n${out}\n${errOut}`)) : done({ stdout: out, stderr: errOut }),
    );
  });
  expect(stdout).toMatch(/^initialized example\.com\/hello$/m);
  expect(stdout).toMatch(/^v1\.0\tsha256:[0-9a-f]{64}\t13\ttargets$/m);
  expect(stdout).toMatch(/^trusted$/m);
  expect(stdout).toMatch(/^refused with exit code 1$/m);
  expect(stderr).toMatch(/tufa: LENGTH_MISMATCH|tufa: HASH_MISMATCH/);
});
