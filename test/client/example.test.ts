/** examples/verify-before-pull.ts: exit 0 only for a trusted mapping, non-zero on any refusal. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { targetFileFor } from '@tufa/core';
import { GUN, RepoSim, testCrypto, text } from '@tufa/testing';
import { sourceArgs } from '@tufa/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../../examples/verify-before-pull.ts', import.meta.url));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, sourceArgs(script, ...args), (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let sim: RepoSim;
let dir: string;
let common: string[];
const digest = `sha256:${targetFileFor(testCrypto, text('app v1')).hashes.sha256}`;

beforeAll(async () => {
  sim = await RepoSim.start({ now: Date.now() });
  dir = await mkdtemp(join(tmpdir(), 'tufa-example-'));
  await writeFile(join(dir, 'root.json'), sim.files.get('metadata/1.root.json')!);
  common = [
    '--server',
    sim.baseUrl,
    '--gun',
    GUN,
    '--root',
    join(dir, 'root.json'),
    '--cache',
    join(dir, 'cache'),
  ];
});
afterAll(async () => {
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});

describe('verify-before-pull example', () => {
  it('exits 0 and pulls by digest when the tag maps to the digest', async () => {
    const r = await run([...common, '--tag', 'app/v1', '--digest', digest]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`pull ${GUN}@${digest}`);
  });

  it('exits non-zero with the code on a wrong digest, an unknown tag, or an attack', async () => {
    const wrong = await run([...common, '--tag', 'app/v1', '--digest', `sha256:${'1'.repeat(64)}`]);
    expect(wrong.code).toBe(1);
    expect(JSON.parse(wrong.stderr).code).toBe('HASH_MISMATCH');
    const unknown = await run([...common, '--tag', 'app/v9', '--digest', digest]);
    expect([unknown.code, JSON.parse(unknown.stderr).code]).toEqual([1, 'NOT_FOUND']);
    const old = sim.files.get('metadata/timestamp.json')!;
    sim.publish();
    expect((await run([...common, '--tag', 'app/v1', '--digest', digest])).code).toBe(0);
    sim.files.set('metadata/timestamp.json', old); // a rollback
    const rollback = await run([...common, '--tag', 'app/v1', '--digest', digest]);
    expect([rollback.code, JSON.parse(rollback.stderr).code]).toEqual([1, 'ROLLBACK']);
    expect((await run(['--tag', 'x'])).code).toBe(2);
  });
});
