/**
 * Succinct hash bins (TAP 15) through the real `tufa` binary and tufa-server: `tufa init --hash-bins`,
 * each tag published into its own bin (only the bins that changed are re-signed), and list, lookup,
 * verify, status and threshold signing on a binned collection as on any other.
 */
import { succinctBinNameFor } from '@tufa/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, PASSPHRASES, startBackend } from './harness.test-util.js';

const digestOf = (n: number) => `sha256:${n.toString(16).padStart(2, '0').repeat(32)}`;

describe('a collection with succinct hash bins through the tufa CLI', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let url: string;
  const homes: Home[] = [];
  const home = (env?: Record<string, string>) => {
    const h = new Home(url, env ?? { ...PASSPHRASES, TUFA_TOKEN: backend.token });
    homes.push(h);
    return h;
  };

  beforeAll(async () => {
    backend = await startBackend('embedded');
    url = backend.server.url;
  }, 120_000);

  afterAll(async () => {
    for (const h of homes) h.remove();
    await backend?.stop();
  });

  it('init --hash-bins 16: tags go to their bins, one publish re-signs only the bins that changed', async () => {
    const pub = home();
    const gun = 'example.com/bins/story';
    const init = await pub.json(['init', gun, '--hash-bins', '16']);
    expect(init.hashBins).toEqual({ bins: 16, bitLength: 4, namePrefix: 'bins' });
    const succinct = { keyids: [], threshold: 1, bitLength: 4, namePrefix: 'bins', extra: {} };
    const binOf = (tag: string) => succinctBinNameFor(succinct, tag);

    const deploy = home({});
    const pin = ['--root-key', init.root.keyid, '--no-tofu'];
    const delegations = await deploy.json(['delegation', 'list', gun, ...pin]);
    expect(delegations.map((d: { role: string }) => d.role)).toEqual(
      Array.from({ length: 16 }, (_, i) => `bins-${i.toString(16)}`),
    );
    expect(
      delegations.every((d: { published: boolean; terminating: boolean }) => d.published && d.terminating),
    ).toBe(true);

    const tags = ['v1', 'v2', 'v3', 'latest'];
    for (const [i, tag] of tags.entries()) {
      const staged = await pub.json(['add', gun, tag, '--digest', digestOf(i), '--length', '10']);
      expect(staged.role).toBe(binOf(tag));
    }
    const first = await pub.json(['publish', gun]);
    // The collection's versions after each publish: a role moved on when its version did.
    const moved = (before: Record<string, number>, after: Record<string, number>) =>
      Object.keys(after)
        .filter((r) => after[r] !== (before[r] ?? 0) && r !== 'snapshot' && r !== 'timestamp')
        .sort();
    const initial = Object.fromEntries([
      ...Array.from({ length: 16 }, (_, i) => [`bins-${i.toString(16)}`, 1]),
      ['root', 1],
      ['targets', 1],
    ]);
    expect(moved(initial, first.versions)).toEqual([...new Set(tags.map(binOf))].sort());

    // One more tag: its bin alone is re-signed (with snapshot and timestamp, by the server).
    await pub.ok(['add', gun, 'v4', '--digest', digestOf(9), '--length', '10']);
    const second = await pub.json(['publish', gun]);
    expect(moved(first.versions, second.versions)).toEqual([binOf('v4')]);

    expect((await deploy.json(['list', gun, ...pin])).map((t: { tag: string }) => t.tag)).toEqual([
      'latest',
      'v1',
      'v2',
      'v3',
      'v4',
    ]);
    expect((await deploy.ok(['lookup', gun, 'v3', ...pin])).trim()).toBe(digestOf(2));
    expect((await deploy.run(['verify', gun, 'v4', '--digest', digestOf(9), ...pin])).code).toBe(0);
    const wrong = await deploy.run(['verify', gun, 'v4', '--digest', digestOf(1), ...pin]);
    expect(wrong.code).toBe(1);
    expect((await deploy.run(['lookup', gun, 'absent', ...pin])).code).toBe(4);

    const status = await pub.json(['status', gun]);
    const bins = status.roles.filter((r: { role: string }) => r.role.startsWith('bins-'));
    expect(bins).toHaveLength(16);
    expect(bins.every((r: { state: string }) => r.state === 'ok')).toBe(true);

    // Removing a tag re-signs its bin; the tag is gone for the deploy script.
    await pub.ok(['remove', gun, 'v1']);
    const third = await pub.json(['publish', gun]);
    expect(moved(second.versions, third.versions)).toEqual([binOf('v1')]);
    expect((await deploy.run(['lookup', gun, 'v1', ...pin])).code).toBe(4);
  });

  it('--hash-bins that is not a power of two from 2 to 65536 is a usage error, before any key is made', async () => {
    const pub = home();
    for (const n of ['3', '1', '0', '131072', 'x']) {
      const r = await pub.run(['init', `example.com/bins/bad${n}`, '--hash-bins', n, '--json']);
      expect(r.code, n).toBe(2);
      expect(JSON.parse(r.stdout).error.code).toBe('INVALID_ARGUMENT');
    }
    expect((await pub.json(['key', 'list'])).length).toBe(0);
  });

  it('threshold signing: 2-of-2 targets keys sign the bins too; a co-signer completes a bin publish', async () => {
    const gun = 'example.com/bins/threshold';
    const [alice, bob] = [home(), home()];
    const bobKey = await bob.newKeyFile('targets');
    const init = await alice.json([
      'init',
      gun,
      '--hash-bins',
      '2',
      '--targets-threshold',
      '2',
      '--targets-key',
      bobKey.file,
    ]);
    expect(init.published).toBe(false);
    expect(init.pending.status.roles.map((r: { role: string }) => r.role).sort()).toEqual([
      'bins-0',
      'bins-1',
      'root',
      'targets',
    ]);
    await bob.json(['sign', gun, 'targets', '--yes']);
    await bob.json(['sign', gun, 'bins-0', '--yes']);
    const done = await bob.json(['sign', gun, 'bins-1', '--yes']);
    expect(done.published).toBe(true);

    const succinct = { keyids: [], threshold: 2, bitLength: 1, namePrefix: 'bins', extra: {} };
    const bin = succinctBinNameFor(succinct, 'v1');
    await alice.ok(['add', gun, 'v1', '--digest', digestOf(5), '--length', '10']);
    const proposed = await alice.json(['publish', gun]);
    expect(proposed.published).toBe(false);
    expect(proposed.pending.status.roles.map((r: { role: string }) => r.role)).toEqual([bin]);
    const deploy = home({});
    const pin = ['--root-key', init.root.keyid, '--no-tofu'];
    expect((await deploy.run(['lookup', gun, 'v1', ...pin])).code).toBe(4);
    const signed = await bob.json(['sign', gun, bin, '--yes']);
    expect(signed.published).toBe(true);
    expect((await deploy.ok(['lookup', gun, 'v1', ...pin])).trim()).toBe(digestOf(5));
  });
});
