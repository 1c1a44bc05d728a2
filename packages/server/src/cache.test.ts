import { EventEmitter } from 'node:events';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { type CachedFile, MetadataCache, NOTIFY_CHANNEL } from './cache.js';

/** A stand-in for the LISTEN connection: it can deliver notifications and drop the connection. */
class FakeListener extends EventEmitter {
  queries: string[] = [];
  ended = false;
  async connect(): Promise<void> {}
  async query(text: string): Promise<void> {
    this.queries.push(text);
  }
  async end(): Promise<void> {
    this.ended = true;
  }
  notify(gun: string): void {
    this.emit('notification', { channel: NOTIFY_CHANNEL, payload: gun });
  }
}

const file = (version: number, size = 10): CachedFile => ({
  bytes: Buffer.alloc(size, version),
  sha256: `sha${version}`,
  version,
  expiresAt: 0,
});

async function started(maxBytes?: number) {
  const listeners: FakeListener[] = [];
  const cache = new MetadataCache(
    () => {
      const l = new FakeListener();
      listeners.push(l);
      return l as unknown as pg.Client;
    },
    undefined,
    maxBytes,
  );
  await cache.start();
  return { cache, listeners };
}

describe('MetadataCache', () => {
  it('listens, serves what it was given, and drops a GUN on its notification', async () => {
    const { cache, listeners } = await started();
    expect(listeners[0]!.queries).toEqual([`LISTEN ${NOTIFY_CHANNEL}`]);
    cache.set('x/app', 'targets', undefined, file(1), cache.generation('x/app'));
    cache.set('x/other', 'targets', undefined, file(7), cache.generation('x/other'));
    expect(cache.get('x/app', 'targets')?.version).toBe(1);
    listeners[0]!.notify('x/app');
    expect(cache.get('x/app', 'targets')).toBeUndefined();
    expect(cache.get('x/other', 'targets')?.version).toBe(7); // another GUN, untouched
    await cache.stop();
  });

  it('never stores a read that raced a commit', async () => {
    const { cache, listeners } = await started();
    const before = cache.generation('x/app'); // a GET starts its query…
    listeners[0]!.notify('x/app'); // …a publish commits meanwhile…
    cache.set('x/app', 'targets', undefined, file(1), before); // …and the stale answer is not kept
    expect(cache.get('x/app', 'targets')).toBeUndefined();
    await cache.stop();
  });

  it('is off while the LISTEN connection is down, and forgets everything from before', async () => {
    const { cache, listeners } = await started();
    const before = cache.generation('x/app');
    cache.set('x/app', 'targets', undefined, file(1), before);
    listeners[0]!.emit('error', new Error('connection reset'));
    expect(cache.enabled).toBe(false);
    expect(cache.get('x/app', 'targets')).toBeUndefined();
    cache.set('x/app', 'targets', undefined, file(2), cache.generation('x/app'));
    expect(cache.get('x/app', 'targets')).toBeUndefined();
    await cache.start(); // what the retry timer does
    expect(cache.enabled).toBe(true);
    cache.set('x/app', 'targets', undefined, file(3), before); // a read from before the outage
    expect(cache.get('x/app', 'targets')).toBeUndefined();
    await cache.stop();
    expect(listeners.every((l) => l.ended)).toBe(true);
  });

  it('evicts by second chance: read entries move back once, the budget always holds', async () => {
    const { cache } = await started(10_000 * 10);
    for (let v = 1; v <= 10_000; v++)
      cache.set('x/app', 'r', v, file(v % 200, 10), cache.generation('x/app'));
    for (let v = 1; v <= 10_000; v += 2) expect(cache.get('x/app', 'r', v)).toBeDefined();
    // A file of a quarter of the budget: 2,500 entries must go; the unread ones (even) first.
    cache.set('x/app', 'big', undefined, file(1, 25_000), cache.generation('x/app'));
    expect(cache.get('x/app', 'big')).toBeDefined();
    const kept = (from: number) => {
      let n = 0;
      for (let v = from; v <= 10_000; v += 2) if (cache.get('x/app', 'r', v) !== undefined) n++;
      return n;
    };
    expect(kept(1)).toBe(5_000);
    expect(kept(2)).toBe(2_500);
    await cache.stop();
  });

  it('keeps at most its byte budget, the least recently used going first', async () => {
    const { cache } = await started(100);
    for (let v = 1; v <= 5; v++) cache.set('x/app', 'targets', v, file(v, 20), cache.generation('x/app'));
    expect(cache.get('x/app', 'targets', 1)).toBeDefined(); // used: now the most recent
    cache.set('x/app', 'targets', 6, file(6, 20), cache.generation('x/app'));
    expect(cache.get('x/app', 'targets', 2)).toBeUndefined();
    expect(cache.get('x/app', 'targets', 1)).toBeDefined();
    cache.set('x/app', 'targets', 7, file(7, 60), cache.generation('x/app')); // over a quarter: not kept
    expect(cache.get('x/app', 'targets', 7)).toBeUndefined();
    await cache.stop();
  });
});
