/** Two processes refreshing the same cache folder at once do not corrupt it. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NOW } from '@tufa/testing';
import { cachedVersions, type Setup, setup } from '@tufa/testing/client';
import { sourceArgs } from '@tufa/testing/process';
import { afterEach, expect, it } from 'vitest';

const run = promisify(execFile);
const child = fileURLToPath(new URL('./refresh-child.test-util.ts', import.meta.url));

let s: Setup | undefined;
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

it('keeps the cache consistent under two concurrent refreshing processes', async () => {
  s = await setup();
  const dir = join(s.dir, 'cache');
  const sim = s.sim;
  const publisher = setInterval(() => {
    sim.bump('releases');
    sim.publish();
  }, 20);
  const args = (rounds: number) => sourceArgs(child, sim.metadataUrl, dir, String(rounds), String(NOW));
  try {
    const [a, b] = await Promise.all([
      run(process.execPath, args(15), { cwd: process.cwd() }),
      run(process.execPath, args(15), { cwd: process.cwd() }),
    ]);
    for (const out of [a.stdout, b.stdout]) {
      const versions = JSON.parse(out) as number[];
      expect(versions).toHaveLength(15);
      // Each process only ever moves forward.
      expect([...versions].sort((x, y) => x - y)).toEqual(versions);
    }
  } finally {
    clearInterval(publisher);
  }
  expect(existsSync(join(dir, 'lock'))).toBe(false);
  // Whatever the interleaving, the cache loads through core and a refresh from it succeeds.
  const result = await s.newClient({ trust: { allowTofu: false } }).refresh();
  expect(result.timestamp).toBe(sim.timestampVersion);
  const cached = await cachedVersions(dir);
  expect(cached.timestamp).toBe(sim.timestampVersion);
}, 60_000);
