import { EventEmitter } from 'node:events';
import fc from 'fast-check';
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

/**
 * The cache as it was before its index by GUN (second-chance eviction over one map, and an
 * invalidation that scans the whole map): the new bookkeeping must keep exactly what this kept.
 */
class ScanningModel {
  readonly entries = new Map<string, { file: CachedFile; referenced: boolean }>();
  size = 0;
  constructor(private readonly maxBytes: number) {}
  get(gun: string, role: string, version?: number): CachedFile | undefined {
    const hit = this.entries.get(`${gun}\u0000${role}\u0000${version ?? 'latest'}`);
    if (hit !== undefined) hit.referenced = true;
    return hit?.file;
  }
  set(gun: string, role: string, version: number | undefined, file: CachedFile): void {
    if (file.bytes.length > this.maxBytes / 4) return;
    const key = `${gun}\u0000${role}\u0000${version ?? 'latest'}`;
    const old = this.entries.get(key);
    if (old !== undefined) {
      this.size -= old.file.bytes.length;
      this.entries.delete(key);
    }
    this.entries.set(key, { file, referenced: false });
    this.size += file.bytes.length;
    while (this.size > this.maxBytes) {
      const [k, v] = this.entries.entries().next().value!;
      this.entries.delete(k);
      if (v.referenced) {
        v.referenced = false;
        this.entries.set(k, v);
      } else this.size -= v.file.bytes.length;
    }
  }
  invalidate(gun: string): void {
    for (const [k, v] of this.entries) {
      if (k.startsWith(`${gun}\u0000`)) {
        this.entries.delete(k);
        this.size -= v.file.bytes.length;
      }
    }
  }
}

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

  it("drops a GUN's files only, from its index, and forgets a GUN once its last file is evicted", async () => {
    const { cache } = await started(100);
    for (let v = 1; v <= 3; v++) cache.set('x/app', 'targets', v, file(v, 20), cache.generation('x/app'));
    cache.set('x/other', 'targets', undefined, file(9, 20), cache.generation('x/other'));
    cache.set('x/app-two', 'targets', undefined, file(8, 10), cache.generation('x/app-two'));
    expect(cache.stats).toEqual({ files: 5, bytes: 90, guns: 3 });
    cache.invalidate('x/app');
    expect(cache.stats).toEqual({ files: 2, bytes: 30, guns: 2 });
    expect(cache.get('x/other', 'targets')?.version).toBe(9);
    expect(cache.get('x/app-two', 'targets')?.version).toBe(8); // a GUN that x/app is a prefix of
    cache.invalidate('x/app'); // nothing held: nothing to do
    expect(cache.stats).toEqual({ files: 2, bytes: 30, guns: 2 });
    // A new GUN's files push the others out (read ones get a second chance first).
    for (let v = 1; v <= 9; v++) cache.set('x/new', 'r', v, file(v, 20), cache.generation('x/new'));
    expect(cache.stats).toEqual({ files: 5, bytes: 100, guns: 1 }); // the evicted GUNs left the index
    expect(cache.get('x/other', 'targets')).toBeUndefined();
    expect(cache.get('x/app-two', 'targets')).toBeUndefined();
    cache.invalidate('x/new');
    expect(cache.stats).toEqual({ files: 0, bytes: 0, guns: 0 });
    await cache.stop();
  });

  it('keeps exactly what the scanning cache kept, over any sequence of reads, writes and drops', async () => {
    // GUNs that are prefixes of each other, and enough of them that some are evicted whole.
    const gun = fc.constantFrom('a', 'a/b', 'ab', 'c', 'd', 'e', 'f', 'g');
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('set' as const),
        gun,
        role: fc.constantFrom('targets', 'timestamp'),
        version: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
        size: fc.integer({ min: 1, max: 30 }),
      }),
      fc.record({
        kind: fc.constant('get' as const),
        gun,
        role: fc.constantFrom('targets', 'timestamp'),
        version: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
      }),
      fc.record({ kind: fc.constant('invalidate' as const), gun }),
    );
    const { cache } = await started(100);
    fc.assert(
      fc.property(fc.array(op, { minLength: 50, maxLength: 300 }), (ops) => {
        cache.clear();
        const model = new ScanningModel(100);
        let n = 0;
        for (const o of ops) {
          if (o.kind === 'set') {
            const f = file(n++, o.size);
            cache.set(o.gun, o.role, o.version, f, cache.generation(o.gun));
            model.set(o.gun, o.role, o.version, f);
          } else if (o.kind === 'get') {
            expect(cache.get(o.gun, o.role, o.version)).toBe(model.get(o.gun, o.role, o.version));
          } else {
            cache.invalidate(o.gun);
            model.invalidate(o.gun);
          }
          const guns = new Set([...model.entries.keys()].map((k) => k.split('\u0000')[0]));
          expect(cache.stats).toEqual({ files: model.entries.size, bytes: model.size, guns: guns.size });
        }
      }),
    );
    await cache.stop();
  });
});
