/**
 * A publisher's view (`publisherView()`, used by `tufa renew`): every rule but expiry, never
 * written to the cache, never the set that answers lookups.
 */
import { join } from 'node:path';
import { bumpVersion, expiresIn } from '@tufa/core';
import { codeOf, DAY, NOW, testKey } from '@tufa/testing';
import { cachedVersions, type Setup, setup } from '@tufa/testing/client';
import { afterEach, describe, expect, it } from 'vitest';

let s: Setup | undefined;
afterEach(async () => {
  await s?.cleanup();
  s = undefined;
});

describe('publisher view', () => {
  it('reads expired targets and delegated roles without touching the cache or the lookups', async () => {
    s = await setup();
    const { sim, client, dir } = s;
    await client.refresh();
    await client.getTarget('releases/r1');
    const before = await cachedVersions(join(dir, 'cache'));
    expect(before).toEqual({ root: 1, timestamp: 1, snapshot: 1, targets: 1, 'delegated/releases': 1 });

    // Root v2, and targets and releases republished already expired.
    sim.publishRoot(bumpVersion(sim.root, sim.root.expires), sim.keys.root);
    sim.targets = bumpVersion(sim.targets, expiresIn(NOW, -60_000));
    const releases = sim.delegated.get('releases')!;
    releases.signed = bumpVersion(releases.signed, expiresIn(NOW, -60_000));
    sim.publish();

    const view = await client.publisherView();
    expect(view.set.allowExpired).toBe(true);
    expect([view.set.root.signed.version, view.set.targets?.signed.version]).toEqual([2, 2]);
    const found = await view.findRole('releases');
    expect([found.delegator, found.metadata?.signed.version]).toEqual(['targets', 2]);
    expect(await codeOf(view.findRole('nobody'))).toBe('NOT_FOUND');
    expect(await cachedVersions(join(dir, 'cache'))).toEqual(before);

    // The client's own set is still the last refresh's, with expiry enforced.
    const trusted = await client.trustedMetadata();
    expect([trusted.allowExpired, trusted.targets?.signed.version]).toEqual([false, 1]);
    expect((await client.getTarget('releases/r1')).role).toBe('releases');
    const refused = await client.refresh().catch((err: unknown) => err);
    expect([(refused as { code?: string }).code, (refused as { role?: string }).role]).toEqual([
      'EXPIRED',
      'targets',
    ]);
  });

  it('made first, leaves a later lookup to a refresh of its own', async () => {
    s = await setup();
    const { sim, client } = s;
    sim.targets = bumpVersion(sim.targets, expiresIn(NOW, -60_000));
    sim.publish();
    const view = await client.publisherView();
    expect(view.set.targets?.signed.version).toBe(2);
    expect(await codeOf(client.getTarget('app/v1'))).toBe('EXPIRED');
    expect(await codeOf(client.trustedMetadata())).toBe('EXPIRED');
  });

  it('reads through an expired timestamp and snapshot, still refusing a bad signature', async () => {
    s = await setup();
    const { sim, client, clock } = s;
    await client.refresh();
    clock.now = NOW + 40 * DAY; // timestamp (1 day) and snapshot (30 days) have expired
    const view = await client.publisherView();
    expect([view.set.timestamp?.signed.version, view.set.snapshot?.signed.version]).toEqual([1, 1]);
    expect(await codeOf(client.refresh())).toBe('EXPIRED');

    sim.keys.timestamp = [testKey(10)]; // not the root's timestamp key
    sim.publish();
    expect(await codeOf(client.publisherView())).toBe('THRESHOLD_NOT_MET');
  });
});
