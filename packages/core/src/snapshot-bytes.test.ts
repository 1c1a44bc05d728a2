/** The one-pass snapshot encoder is the generic canonical encoder, byte for byte, or steps aside. */
import { testKey } from '@tufa/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TufaError } from './errors.js';
import { canonicalBytes, serializeJson } from './json.js';
import {
  type MetaFile,
  metadataToJson,
  parseIndexedSnapshot,
  parseSignedEnvelope,
  type Snapshot,
  serializeMetadata,
  signedToJson,
} from './metadata.js';
import { expiresIn, newSnapshot, signMetadata, snapshotWithChanges } from './repository.js';
import { plainEnvelopeBytes, plainSnapshotBytes, SnapshotIndex, snapshotIndexOf } from './snapshot-bytes.js';

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

/** What a server writes for a role: sha256, length and version only. */
const serverEntry = fc.record({
  version: fc.integer({ min: 0, max: 2 ** 40 }),
  length: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  hashes: hex(64).map((h) => ({ sha256: h })),
  extra: fc.constant({}),
}) as fc.Arbitrary<MetaFile>;
const expiresAt = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2999, 0, 1) });
const generic = (s: Snapshot) => Buffer.from(canonicalBytes(signedToJson(s)));

/** A snapshot in the server's shape: targets.json's entry too. */
const serverSnapshotOf = (meta: Record<string, MetaFile>, version = 3): Snapshot =>
  snapshotOf({ 'targets.json': entryAt(9), ...meta }, version);

/** The index of a snapshot in the server's shape, from its canonical bytes. */
function indexOf(s: Snapshot): SnapshotIndex {
  const index = SnapshotIndex.scan(canonicalBytes(signedToJson(s)));
  if (index === undefined) throw new Error('not indexed');
  return index;
}

describe('SnapshotIndex', () => {
  it('reads every entry of a snapshot in the server shape from its bytes', () => {
    fc.assert(
      fc.property(fc.dictionary(name, serverEntry, { maxKeys: 30 }), (meta) => {
        const s = serverSnapshotOf(meta);
        const index = indexOf(s);
        expect(index.size).toBe(Object.keys(s.meta).length);
        for (const key of Object.keys(s.meta)) {
          const i = index.find(key);
          expect(index.key(i)).toBe(key);
          if (key !== 'targets.json') {
            const m = s.meta[key]!;
            expect(index.entry(i)).toEqual({
              version: m.version,
              length: m.length,
              sha256: m.hashes!.sha256,
            });
            expect(index.version(i)).toBe(m.version);
          }
        }
        expect(index.find('zzzz-not-there.json')).toBeLessThan(0);
      }),
    );
  });

  it('splices any changes into bytes identical to the generic encoding of the changed snapshot', () => {
    const change = fc.option(serverEntry, { nil: undefined, freq: 4 });
    fc.assert(
      fc.property(
        fc.dictionary(name, serverEntry, { maxKeys: 30 }),
        // New names anywhere (before the first, after the last, between), and changes or removals of existing ones.
        fc.array(fc.tuple(fc.oneof(name, fc.constantFrom('!.json', '~~.json', 'a.json')), change), {
          maxLength: 6,
        }),
        fc.array(fc.tuple(fc.nat(), change), { maxLength: 6 }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER - 1 }),
        expiresAt,
        (meta, added, existing, version, at) => {
          const base = serverSnapshotOf({ ...meta, 'targets.json': entryAt(7) });
          let index = indexOf(base);
          const keys = Object.keys(base.meta).sort();
          const changes = new Map<string, MetaFile | undefined>(added);
          for (const [n, m] of existing) changes.set(keys[n % keys.length]!, m);
          changes.set('targets.json', entryAt(8));
          const expected: Record<string, MetaFile> = { ...base.meta };
          for (const [key, m] of changes) {
            if (m === undefined) delete expected[key];
            else expected[key] = m;
          }
          // Twice: the second from the first's index, as the next publish splices from this one's.
          for (const v of [version, version + 1]) {
            const expires = expiresIn(at, 0);
            const next = snapshotWithChanges(index, { version: v, expires, changes })!;
            expect(next.version).toBe(v);
            const whole = newSnapshot({ version: v, expires, meta: { ...expected } });
            expect(Buffer.from(plainSnapshotBytes(next)!)).toEqual(generic(whole));
            expect({ ...next.meta }).toEqual({ ...whole.meta });
            // A copy of the object is a snapshot like any other: the generic encoder gives the same bytes.
            expect(generic({ ...next })).toEqual(generic(whole));
            // Its index is the one a scan of its bytes makes.
            const spliced = snapshotIndexOf({ metadata: { signed: next } as never })!;
            const scanned = SnapshotIndex.scan(spliced.bytes)!;
            expect(scanned.size).toBe(spliced.size);
            for (let i = 0; i < spliced.size; i++) {
              expect(spliced.key(i)).toBe(scanned.key(i));
              expect(spliced.entry(i)).toEqual(scanned.entry(i));
            }
            index = spliced;
          }
        },
      ),
    );
  });

  it('is signed and wrapped as the generic encoder would', async () => {
    const base = serverSnapshotOf({ 'bins-1.json': entryAt(1), 'bins-3.json': entryAt(3) });
    const changes = new Map([['bins-2.json', entryAt(2)]]);
    const next = snapshotWithChanges(indexOf(base), { version: 4, expires: base.expires, changes })!;
    const md = await signMetadata(next, [key.signer]);
    const whole = newSnapshot({
      version: 4,
      expires: base.expires,
      meta: { ...base.meta, 'bins-2.json': entryAt(2) },
    });
    expect(Buffer.from(md.signedBytes)).toEqual(generic(whole));
    const signedCopy = Buffer.from(md.signedBytes);
    const wire = serializeMetadata(md);
    expect(Buffer.from(wire)).toEqual(Buffer.from(serializeJson(metadataToJson(md))));
    // The document as stored and read back is indexed again from its bytes, to the same entries.
    const read = parseSignedEnvelope('snapshot', wire);
    expect(read.servedForm).toBe(true);
    expect(snapshotIndexOf(read)?.find('bins-2.json')).toBe(1);
    // The envelope is written once around the spliced bytes; a second one is a copy, the same bytes.
    expect(wire.buffer).toBe(md.signedBytes.buffer);
    const again = serializeMetadata(md);
    expect(again.buffer).not.toBe(wire.buffer);
    expect(Buffer.from(again)).toEqual(Buffer.from(wire));
    expect(Buffer.from(md.signedBytes)).toEqual(signedCopy);
    // A stored snapshot signed again (its index's bytes are a view of the stored bytes) leaves them as they are.
    const storedBytes = Buffer.from(read.bytes);
    const resigned = await signMetadata(read.metadata.signed, [testKey(8).signer]);
    expect(Buffer.from(serializeMetadata(resigned))).toEqual(
      Buffer.from(serializeJson(metadataToJson(resigned))),
    );
    expect(Buffer.from(read.bytes)).toEqual(storedBytes);
    // A snapshot signed the general way is indexed from the canonical bytes signMetadata made.
    const signedWhole = await signMetadata(whole, [key.signer]);
    expect(snapshotIndexOf({ metadata: signedWhole })?.size).toBe(4);
    expect(snapshotIndexOf({ metadata: { ...signedWhole, signed: { ...whole } } })).toBeUndefined();
  });

  it('refuses changes that are not in the shape it holds: the generic path then', () => {
    const index = indexOf(serverSnapshotOf({ 'a.json': entryAt(1) }));
    const expires = expiresIn(Date.UTC(2030, 0, 1), 0);
    const odd: [string, MetaFile][] = [
      ['b.json', { ...entryAt(2), hashes: { sha256: 'ab'.repeat(32), sha512: 'cd'.repeat(64) } }],
      ['b.json', { ...entryAt(2), hashes: { sha256: 'AB'.repeat(32) } }],
      ['b.json', { ...entryAt(2), hashes: { sha256: 'ab' } }],
      ['b.json', { version: 2, extra: {} }],
      ['b.json', { ...entryAt(2), extra: { x: 1 } }],
      ['b"c.json', entryAt(2)],
      ['é.json', entryAt(2)],
    ];
    for (const [key, m] of odd) {
      expect(
        snapshotWithChanges(index, { version: 2, expires, changes: new Map([[key, m]]) }),
        key,
      ).toBeUndefined();
    }
    expect(() =>
      snapshotWithChanges(index, { version: 2, expires, changes: new Map([['targets.json', undefined]]) }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }) as TufaError);
  });

  it('indexes nothing but the canonical bytes of the server shape', () => {
    const good = serverSnapshotOf({ 'a.json': entryAt(1), 'b.json': entryAt(2) });
    const text = new TextDecoder().decode(canonicalBytes(signedToJson(good)));
    const refused = [
      text.replace('"a.json":{', '"c.json":{'), // names out of order
      text.replace('"version":1}', '"version":01}'),
      text.replace('"length":1,', '"length":-1,'),
      text.replace('"length":1,', '"length":1.5,'),
      text.replace('"length":1,', `"length":${2 ** 53},`),
      text.replace('{"_type"', '{ "_type"'),
      text.replace('"a.json"', '"a\\.json"'),
      text.replace(entryText(1), entryText(1).replace('"length":1,', '')),
      text.replace('"spec_version"', '"x":1,"spec_version"'),
      `${text} `,
    ];
    for (const odd of refused) {
      expect(odd).not.toBe(text);
      expect(SnapshotIndex.scan(new TextEncoder().encode(odd)), odd).toBeUndefined();
    }
    // Damage anywhere: a scan either refuses the bytes or reads exactly what the parser reads in
    // them (bytes the parser refuses are never scanned: snapshotIndexOf takes parsed documents).
    const bytes = canonicalBytes(signedToJson(good));
    fc.assert(
      fc.property(fc.nat(bytes.length), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, b, cut) => {
        const damaged = cut ? bytes.slice(0, at) : bytes.slice();
        if (!cut && at < bytes.length) damaged[at] = b;
        const index = SnapshotIndex.scan(damaged);
        if (index === undefined) return;
        let reread: ReturnType<typeof parseSignedEnvelope<'snapshot'>>;
        try {
          reread = parseSignedEnvelope(
            'snapshot',
            `{"signatures":[],"signed":${new TextDecoder().decode(damaged)}}`,
          );
        } catch (err) {
          expect(err).toBeInstanceOf(TufaError);
          return;
        }
        expect(Buffer.from(damaged)).toEqual(Buffer.from(reread.metadata.signedBytes));
        expect({ ...index.meta() }).toEqual({ ...reread.metadata.signed.meta });
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves a stored snapshot not in the served form, or in another shape, to the generic path', async () => {
    const md = await signMetadata(serverSnapshotOf({ 'a.json': entryAt(1) }), [key.signer]);
    const wire = JSON.stringify(metadataToJson(md), null, 1);
    const pretty = parseSignedEnvelope('snapshot', wire);
    expect(pretty.servedForm).toBe(false);
    expect(snapshotIndexOf(pretty)).toBeUndefined();
    const sha512 = await signMetadata(
      serverSnapshotOf({
        'a.json': { ...entryAt(1), hashes: { sha256: 'ab'.repeat(32), sha512: 'cd'.repeat(64) } },
      }),
      [key.signer],
    );
    const stored = parseSignedEnvelope('snapshot', serializeMetadata(sha512));
    expect(stored.servedForm).toBe(true);
    expect(snapshotIndexOf(stored)).toBeUndefined();
    const served = parseSignedEnvelope('snapshot', serializeMetadata(md));
    expect(snapshotIndexOf(served)?.size).toBe(2);
  });
});

/** A served-form envelope around these signed bytes (signatures are not checked by a parse). */
function envelopeOf(signed: Uint8Array | string, signatures = '{"keyid":"ab","sig":"cd"}'): Uint8Array {
  const text = typeof signed === 'string' ? signed : new TextDecoder().decode(signed);
  return new TextEncoder().encode(`{"signatures":[${signatures}],"signed":${text}}`);
}

/** Both reads of `bytes`: the same document and facts, or the same refusal. */
function sameReads(bytes: Uint8Array): 'indexed' | 'parsed' | 'refused' {
  let whole: ReturnType<typeof parseSignedEnvelope<'snapshot'>>;
  try {
    whole = parseSignedEnvelope('snapshot', bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(TufaError);
    expect(parseIndexedSnapshot(bytes)).toBeUndefined();
    let code: string | undefined;
    try {
      parseSignedEnvelope('snapshot', bytes, { snapshotOnDemand: true });
    } catch (again) {
      code = (again as TufaError).code;
    }
    expect(code).toBe((err as TufaError).code);
    return 'refused';
  }
  const indexed = parseIndexedSnapshot(bytes);
  const read = parseSignedEnvelope('snapshot', bytes, { snapshotOnDemand: true });
  expect(metadataToJson(read.metadata)).toEqual(metadataToJson(whole.metadata));
  expect(Buffer.from(read.metadata.signedBytes)).toEqual(Buffer.from(whole.metadata.signedBytes));
  expect(read.servedForm).toBe(whole.servedForm);
  expect({ ...read.metadata.signed, meta: undefined }).toEqual({ ...whole.metadata.signed, meta: undefined });
  if (indexed === undefined) return 'parsed';
  // Read by the scan: the snapshot carries its index (the next publish splices it).
  expect(snapshotIndexOf(indexed)?.size).toBe(Object.keys(whole.metadata.signed.meta).length);
  expect({ ...indexed.metadata.signed.meta }).toEqual({ ...whole.metadata.signed.meta });
  return 'indexed';
}

describe('parseIndexedSnapshot (parseSignedEnvelope with snapshotOnDemand)', () => {
  it('reads any snapshot as the full parse does, by one scan when it is in the server shape', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(
        fc.dictionary(name, fc.oneof(serverEntry, entry), { maxKeys: 20 }),
        fc.integer({ min: 1, max: 2 ** 31 }),
        fc.constantFrom('{"keyid":"ab","sig":"cd"}', '', '{"keyid":"ab","sig":"cd","x":[1]}'),
        fc.boolean(),
        (meta, version, signatures, server) => {
          const s = (server ? serverSnapshotOf : snapshotOf)(meta, version);
          seen.add(sameReads(envelopeOf(canonicalBytes(signedToJson(s)), signatures)));
        },
      ),
      { numRuns: 300 },
    );
    // Both ways taken (refusals: the next test's near misses and damage).
    expect(seen).toContain('indexed');
    expect(seen).toContain('parsed');
  });

  it('damage anywhere: both reads accept the same document or refuse with the same code', async () => {
    const md = await signMetadata(serverSnapshotOf({ 'a.json': entryAt(1), 'b/c.json': entryAt(2) }), [
      key.signer,
    ]);
    const bytes = serializeMetadata(md);
    expect(sameReads(bytes)).toBe('indexed');
    const text = new TextDecoder().decode(bytes);
    const twoSignatures = text.replace('"signatures":[', '"signatures":[{"keyid":"ab","sig":"cd"},');
    expect(sameReads(new TextEncoder().encode(twoSignatures))).toBe('indexed');
    const odd = [
      text.replace('"version":1}', '"version":0}'), // an entry's version 0
      text.replace('"a.json"', '"a.jsn"'), // not ROLE.json
      text.replace('"a.json"', '".json"'),
      text.replace('"targets.json"', '"targets2.json"'), // no targets.json
      text.replace('"_type":"snapshot"', '"_type":"snapshot","_type":"snapshot"'),
      text.replace('"spec_version":"1.0.31"', '"spec_version":"x"'),
      text.replace(/"version":3}}$/, '"version":0}}'),
      text.replace('"signatures":', '"x":1,"signatures":'),
      text.replace(/}$/, ',"z":1}'),
      `${text} `,
      text.replace('"signed":{', '"signed": {'),
    ];
    for (const damaged of odd) {
      expect(damaged).not.toBe(text);
      expect(sameReads(new TextEncoder().encode(damaged)), damaged).not.toBe('indexed');
    }
    fc.assert(
      fc.property(fc.nat(bytes.length), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, b, cut) => {
        const damaged = cut ? bytes.slice(0, at) : bytes.slice();
        if (!cut && at < bytes.length) damaged[at] = b;
        sameReads(damaged);
      }),
      { numRuns: 2000 },
    );
  });
});

function entryAt(n: number): MetaFile {
  return { version: n, length: n, hashes: { sha256: n.toString(16).padStart(2, '0').repeat(32) }, extra: {} };
}

function entryText(n: number): string {
  return `{"hashes":{"sha256":"${n.toString(16).padStart(2, '0').repeat(32)}"},"length":${n},"version":${n}}`;
}
