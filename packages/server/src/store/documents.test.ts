import {
  newTargets,
  parseSignedEnvelope,
  type StoredRole,
  serializeMetadata,
  sha256Of,
  signMetadata,
} from '@tufa/core';
import { testCrypto } from '@tufa/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DocumentCache, sha256Hex } from './documents.js';

/** A document of `size` bytes (only its bytes matter to the cache). */
const doc = (size: number, fill = 1): StoredRole =>
  ({ bytes: new Uint8Array(size).fill(fill), metadata: {} }) as unknown as StoredRole;

/**
 * The cache as it was before its index by collection: one map in insertion order, and a scan of
 * the whole map at every insert. The new bookkeeping must keep exactly what this kept.
 */
class ScanningModel {
  readonly map = new Map<string, StoredRole>();
  bytes = 0;
  constructor(private readonly maxBytes: number) {}
  get(id: string, role: string, sha256: string): StoredRole | undefined {
    return this.map.get(`${id}\u0000${role}\u0000${sha256}`);
  }
  remember(id: string, role: string, sha256: string, stored: StoredRole): void {
    const key = `${id}\u0000${role}\u0000${sha256}`;
    if (this.map.has(key)) return;
    for (const [k, v] of this.map) {
      if (k.startsWith(`${id}\u0000${role}\u0000`)) {
        this.map.delete(k);
        this.bytes -= v.bytes.length;
      }
    }
    this.map.set(key, stored);
    this.bytes += stored.bytes.length;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      if (k.startsWith(`${id}\u0000`)) continue;
      this.map.delete(k);
      this.bytes -= v.bytes.length;
    }
  }
}

describe('DocumentCache', () => {
  it('holds one version per role of a collection: a new one replaces the older', () => {
    const cache = new DocumentCache(1000);
    const v1 = doc(10);
    const v2 = doc(30);
    cache.remember('1', 'targets', 'a', v1);
    cache.remember('1', 'root', 'r', doc(5));
    expect(cache.get('1', 'targets', 'a')).toBe(v1);
    cache.remember('1', 'targets', 'b', v2);
    expect(cache.get('1', 'targets', 'a')).toBeUndefined();
    expect(cache.get('1', 'targets', 'b')).toBe(v2);
    expect(cache.get('1', 'root', 'r')).toBeDefined();
    expect(cache.stats).toEqual({ documents: 2, bytes: 35, collections: 1 });
    // The same document again changes nothing.
    cache.remember('1', 'targets', 'b', doc(99));
    expect(cache.get('1', 'targets', 'b')).toBe(v2);
    expect(cache.stats).toEqual({ documents: 2, bytes: 35, collections: 1 });
  });

  it("past its budget drops other collections' documents, oldest first, never the writing one's", () => {
    const cache = new DocumentCache(100);
    cache.remember('1', 'targets', 'a', doc(40));
    cache.remember('2', 'targets', 'b', doc(40));
    cache.remember('1', 'root', 'c', doc(10));
    cache.remember('3', 'targets', 'd', doc(40)); // 130 bytes: collection 1's targets (oldest) goes
    expect(cache.get('1', 'targets', 'a')).toBeUndefined();
    expect(cache.get('1', 'root', 'c')).toBeDefined();
    expect(cache.get('2', 'targets', 'b')).toBeDefined();
    expect(cache.stats).toEqual({ documents: 3, bytes: 90, collections: 3 });
    // A collection larger than the budget keeps all it writes; everyone else goes.
    cache.remember('4', 'targets', 'e', doc(80));
    cache.remember('4', 'a', 'f', doc(80));
    expect(cache.stats).toEqual({ documents: 2, bytes: 160, collections: 1 });
    expect(cache.get('4', 'targets', 'e')).toBeDefined();
    expect(cache.get('4', 'a', 'f')).toBeDefined();
  });

  it('keeps exactly what the scanning cache kept, over any sequence of inserts', () => {
    const op = fc.record({
      id: fc.constantFrom('1', '2', '3', '11'),
      role: fc.constantFrom('root', 'targets', 'a', 'b'),
      sha256: fc.constantFrom('x', 'y', 'z'),
      size: fc.integer({ min: 1, max: 60 }),
    });
    fc.assert(
      fc.property(fc.array(op, { minLength: 20, maxLength: 200 }), (ops) => {
        const cache = new DocumentCache(150);
        const model = new ScanningModel(150);
        for (const o of ops) {
          const stored = doc(o.size);
          cache.remember(o.id, o.role, o.sha256, stored);
          model.remember(o.id, o.role, o.sha256, stored);
          expect(cache.stats.bytes).toBe(model.bytes);
          expect(cache.stats.documents).toBe(model.map.size);
        }
        const collections = new Set([...model.map.keys()].map((k) => k.split('\u0000')[0]));
        expect(cache.stats.collections).toBe(collections.size);
        for (const id of ['1', '2', '3', '11'])
          for (const role of ['root', 'targets', 'a', 'b'])
            for (const sha256 of ['x', 'y', 'z'])
              expect(cache.get(id, role, sha256)).toBe(model.get(id, role, sha256));
      }),
    );
  });

  it('keeps a parsed envelope as it is: its digest is the one it was given, never hashed again', async () => {
    const cache = new DocumentCache();
    const md = await signMetadata(newTargets({ expires: '2030-01-01T00:00:00Z', targets: {} }), []);
    const stored = parseSignedEnvelope('targets', serializeMetadata(md), { sha256: 'from-the-row' });
    cache.remember('1', 'targets', stored.sha256(testCrypto), stored);
    const held = cache.get('1', 'targets', 'from-the-row');
    expect(held).toBe(stored);
    // The digest a store read from its row: sha256Of takes it, as the next snapshot will.
    expect(sha256Of(testCrypto, held!)).toBe('from-the-row');
    expect(sha256Of(testCrypto, { bytes: stored.bytes })).toBe(sha256Hex(stored.bytes));
  });
});
