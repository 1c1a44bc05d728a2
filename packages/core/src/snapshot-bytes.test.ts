/** The one-pass snapshot encoder is the generic canonical encoder, byte for byte, or steps aside. */
import { testKey } from '@tufa/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalBytes, serializeJson } from './json.js';
import { type MetaFile, metadataToJson, type Snapshot, serializeMetadata, signedToJson } from './metadata.js';
import { expiresIn, newSnapshot, signMetadata } from './repository.js';
import { plainEnvelopeBytes, plainSnapshotBytes } from './snapshot-bytes.js';

const key = testKey(7);
const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
const entry = fc.record(
  {
    version: fc.integer({ min: 1, max: 2 ** 31 }),
    length: fc.integer({ min: 0, max: 2 ** 40 }),
    hashes: fc.oneof(
      hex(64).map((h) => ({ sha256: h })),
      fc.tuple(hex(64), hex(128)).map(([a, b]) => ({ sha512: b, sha256: a })),
    ),
    extra: fc.constant({}),
  },
  { requiredKeys: ['version', 'extra'] },
) as fc.Arbitrary<MetaFile>;
const name = fc.stringMatching(/^[A-Za-z0-9._/-]{1,20}$/).map((n) => `${n}.json`);
const snapshotOf = (meta: Record<string, MetaFile>, version = 3): Snapshot =>
  newSnapshot({
    version,
    expires: expiresIn(Date.UTC(2030, 0, 1), 1000),
    meta: { 'targets.json': { version: 1, extra: {} }, ...meta },
  });

describe('plainSnapshotBytes', () => {
  it('is the canonical encoding of any snapshot in the server shape, in any key order', () => {
    fc.assert(
      fc.property(
        fc.dictionary(name, entry, { maxKeys: 40 }),
        fc.integer({ min: 1, max: 2 ** 31 }),
        (meta, v) => {
          const s = snapshotOf(meta, v);
          expect(Buffer.from(plainSnapshotBytes(s)!)).toEqual(Buffer.from(canonicalBytes(signedToJson(s))));
        },
      ),
    );
  });

  it('steps aside for what would need an escape or carries extra fields', () => {
    const one = { version: 1, length: 2, hashes: { sha256: 'ab' }, extra: {} };
    for (const odd of ['a"b.json', 'a\\b.json', 'é.json', 'a\nb.json']) {
      expect(plainSnapshotBytes(snapshotOf({ [odd]: one })), odd).toBeUndefined();
    }
    expect(plainSnapshotBytes(snapshotOf({ 'a.json': { ...one, extra: { x: 1 } } }))).toBeUndefined();
    expect(plainSnapshotBytes({ ...snapshotOf({}), extra: { x: 1 } })).toBeUndefined();
  });

  it('signMetadata signs those bytes, and serializeMetadata wraps them as the generic encoder would', async () => {
    const s = snapshotOf({
      'bins-0.json': { version: 2, length: 9, hashes: { sha256: 'cd'.repeat(32) }, extra: {} },
    });
    const md = await signMetadata(s, [key.signer]);
    expect(Buffer.from(md.signedBytes)).toEqual(Buffer.from(canonicalBytes(signedToJson(s))));
    expect(plainEnvelopeBytes(md)).toBeDefined();
    expect(Buffer.from(serializeMetadata(md))).toEqual(Buffer.from(serializeJson(metadataToJson(md))));
    // A copy is not the document signMetadata made: encoded the generic way.
    expect(plainEnvelopeBytes({ ...md })).toBeUndefined();
  });
});
