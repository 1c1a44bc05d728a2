/**
 * Target names come from whoever may sign a delegated role: a hostile delegate publishes names
 * that forge a line of `tufa list` and send escapes to the terminal (issue 17). Human output
 * shows them escaped, one line each; `--json` carries them exactly.
 */
import { expiresIn, newTargets, targetFileFor, utf8Encode, withTarget } from '@tufa/core';
import { DAY, sign, testCrypto } from '@tufa/testing';
import { keys, post, publishNew } from '@tufa/testing/publisher';
import { type ServerProcess, spawnServer, tempDir } from '@tufa/testing/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home } from './harness.test-util.js';

const FORGED = `releases/x\nv1\tsha256:${'f'.repeat(64)}\t4\ttargets`;
const ESCAPES = 'releases/\u001b[31mred\u0007\u202egpj.exe';

describe('hostile target names (tufa against tufa-server, embedded)', () => {
  let server: ServerProcess;
  const gun = 'example.com/hostile';
  let home: Home;

  beforeAll(async () => {
    server = await spawnServer(['--data-dir', tempDir()]);
    await publishNew(server.url, gun);
    let delegated = newTargets({ version: 1, expires: expiresIn(Date.now(), 30 * DAY) });
    for (const name of [FORGED, ESCAPES, 'releases/plain']) {
      delegated = withTarget(delegated, name, targetFileFor(testCrypto, utf8Encode(name)));
    }
    const res = await post(server.url, gun, { releases: sign(delegated, keys.releases) });
    expect(res.status).toBe(200);
    home = new Home(server.url);
  }, 120_000);

  afterAll(async () => {
    home?.remove();
    await server?.stop();
  });

  it('tufa list prints each name escaped on its own line, and --json exactly', async () => {
    const out = await home.ok(['list', gun]);
    const lines = out.split('\n').filter((l) => l !== '');
    // One line per target: no forged `v1` line, and no escape reaches the terminal.
    expect(lines.map((l) => l.split('\t')[0]).sort()).toEqual(
      [
        'app/v1',
        'releases/plain',
        `releases/x\\nv1\\tsha256:${'f'.repeat(64)}\\t4\\ttargets`,
        'releases/\\x1b[31mred\\x07\\u{202e}gpj.exe',
      ].sort(),
    );
    expect(lines).toHaveLength(4);
    for (const line of lines) expect(line.split('\t'), line).toHaveLength(4);
    expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f\u202e]/);
    const json = await home.json<{ tag: string }[]>(['list', gun]);
    expect(json.map((t) => t.tag).sort()).toEqual(['app/v1', ESCAPES, FORGED, 'releases/plain'].sort());
  });

  it('lookup and verify of such a name answer for it, and their human lines escape it too', async () => {
    const digest = (await home.json<{ digest: string }>(['lookup', gun, FORGED])).digest;
    const verified = await home.ok(['verify', gun, FORGED, '--digest', digest]);
    expect(verified.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(verified).toContain('releases/x\\nv1\\t');
  });
});
