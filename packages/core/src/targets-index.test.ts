import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from './encoding.js';
import { canonicalJson, type JsonObject, type JsonValue, serializeJson, utf8Encode } from './json.js';
import { parseSignedEnvelope, targetFileOf } from './metadata.js';
import { scanServedTargets } from './targets-index.js';

/**
 * Everything a parse answers, the whole map read, or its refusal (code and message). Only the
 * parse may refuse: reading the map of an accepted document must not throw.
 */
function outcome(bytes: Uint8Array, targetsOnDemand: boolean) {
  let envelope: ReturnType<typeof parseSignedEnvelope<'targets'>>;
  try {
    envelope = parseSignedEnvelope('targets', bytes, { targetsOnDemand });
  } catch (e) {
    const err = e as { code?: string; message: string };
    return { code: err.code, message: err.message };
  }
  const m = envelope.metadata;
  return {
    signed: m.signed,
    paths: Object.keys(m.signed.targets),
    signatures: m.signatures,
    extra: m.extra,
    signedBytes: toHex(m.signedBytes),
    servedForm: envelope.servedForm,
  };
}

const hex = (n: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });
// Paths that share prefixes (the binary search), name a prototype's members, or need care.
const path = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'constructor',
      '__proto__',
      'toString',
      'é',
      '日本/タグ',
      'a/b',
      'a',
      'ab',
      'x'.repeat(40),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('\u{1F600}', 'a"b', 'a\\b', 'a\nb', 'a\u0001', '', '\uFFFD', '\u007f'),
  },
  {
    weight: 8,
    arbitrary: fc.string({ unit: fc.constantFrom('a', 'b', '/', 'é', '0'), minLength: 1, maxLength: 5 }),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);
/** Mostly absent: an entry is the usual one unless one of these is drawn. */
const rarely = <T>(a: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 15, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: a });
const key = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('mediaType', 'a', 'b', '', 'é') },
  { weight: 1, arbitrary: fc.constantFrom('a"b', '\u{1F600}') },
  { weight: 1, arbitrary: fc.string({ maxLength: 4 }) },
);
// Integers of 16 digits take the full parse: rarer, so most documents still take the index.
const number = fc.oneof(
  { weight: 6, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.maxSafeInteger() },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 999_999_999_999_999, 1_000_000_000_000_000, 2 ** 53 - 1) },
);
const custom: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    number,
    key,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(key, tie('value'), { maxKeys: 4 }),
  ),
})).value;
const entry: fc.Arbitrary<JsonObject> = fc
  .record(
    {
      length: fc.oneof(
        { weight: 10, arbitrary: fc.nat() },
        { weight: 1, arbitrary: fc.constantFrom(0, 999_999_999_999_999, 2 ** 53 - 1, 1_000_000_000_000_000) },
      ),
      sha256: hex(64),
      sha512: fc.option(hex(128), { nil: undefined }),
      other: rarely(fc.constantFrom('md5', 'sha384', 'blake2b')),
      custom: fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: custom }),
      extra: rarely(custom),
    },
    { requiredKeys: ['length', 'sha256', 'sha512', 'other', 'custom', 'extra'] },
  )
  .map(({ length, sha256, sha512, other, custom, extra }) => {
    const hashes: JsonObject = { sha256 };
    if (sha512 !== undefined) hashes.sha512 = sha512;
    if (other !== undefined) hashes[other] = other === 'sha384' ? '0'.repeat(96) : 'ab';
    const out: JsonObject = { hashes, length };
    if (custom !== undefined) out.custom = custom;
    if (extra !== undefined) out.unknown = extra;
    return out;
  });
export const documentArb = fc
  .record({
    targets: fc.dictionary(path, entry, { maxKeys: 10 }),
    delegated: fc.boolean(),
    extra: rarely(custom),
  })
  .map(({ targets, delegated, extra }): JsonObject => {
    const signed: JsonObject = {
      _type: 'targets',
      expires: '2030-01-01T00:00:00Z',
      spec_version: '1.0.31',
      targets,
      version: 1,
    };
    if (extra !== undefined) signed.zzz = extra;
    if (delegated) {
      signed.delegations = {
        keys: {},
        roles: [{ keyids: [], name: 'r', paths: ['a/*'], terminating: false, threshold: 1 }],
      };
    }
    return { signatures: [{ keyid: 'ab', sig: 'cd' }], signed };
  });
const written = fc
  .tuple(documentArb, fc.constantFrom('served', 'served', 'served', 'canonical', 'stringify', 'pretty'))
  .map(([doc, how]) => {
    try {
      if (how === 'served') return serializeJson(doc);
      if (how === 'canonical') return utf8Encode(canonicalJson(doc));
    } catch {
      // A value with no canonical form (a lone surrogate): written by JSON.stringify.
    }
    return utf8Encode(how === 'pretty' ? JSON.stringify(doc, null, 1) : JSON.stringify(doc));
  });
// Edits in the places the index's pass reads: quotes, escapes, numbers, UTF-8, keys and order.
const piece = fc.oneof(
  fc
    .constantFrom(
      '"',
      '\\',
      '\\u0041',
      '\\ud800',
      '\\"',
      ' ',
      ',',
      ':',
      '{',
      '}',
      '[',
      ']',
      '0',
      '-',
      '-0',
      '.5',
      'e3',
      '1234567890123456',
      '9007199254740993',
      'A',
      'g',
      '"a":1,',
      '"custom":1,',
      '"sha256":"',
      '"app":{"hashes":{"sha256":"00"},"length":1},',
      'true',
      'nul',
    )
    .map((s) => utf8Encode(s)),
  fc
    .constantFrom(
      [0xff],
      [0x80],
      [0xc0, 0x80],
      [0xc3],
      [0xe0, 0x80, 0x80],
      [0xed, 0xa0, 0x80],
      [0xef, 0xbb, 0xbf],
      [0xf0, 0x9f, 0x98, 0x80],
      [0x01],
      [0x0a],
    )
    .map((b) => Uint8Array.from(b)),
);
/** Replaces, inserts, or copies a span elsewhere (repeated keys and entries out of order). */
const edit = fc.oneof(
  fc.tuple(fc.constant('put' as const), fc.nat(), fc.nat(3), piece),
  fc.tuple(fc.constant('copy' as const), fc.nat(), fc.nat(120), fc.nat()),
);
const edited = fc.tuple(written, fc.array(edit, { minLength: 1, maxLength: 3 })).map(([bytes, edits]) => {
  let out = bytes;
  for (const e of edits) {
    if (e[0] === 'put') {
      const [, at, remove, insert] = e;
      const p = at % (out.length + 1);
      out = Uint8Array.from([...out.subarray(0, p), ...insert, ...out.subarray(p + remove)]);
    } else {
      const [, from, size, to] = e;
      const s = from % (out.length + 1);
      const span = out.subarray(s, s + size);
      const p = to % (out.length + 1);
      out = Uint8Array.from([...out.subarray(0, p), ...span, ...out.subarray(p)]);
    }
  }
  return out;
});

/** Paths a lookup asks for beside the document's own: absent ones, near ones, odd ones. */
function probes(paths: readonly string[]): string[] {
  const near = paths.flatMap((p) => [p, `${p}x`, p.slice(0, -1), `${p}\u0000`]);
  return [
    ...near,
    'constructor',
    '__proto__',
    'toString',
    'hasOwnProperty',
    '',
    'zzz',
    '\uD800',
    '\uFFFD',
    'é',
  ];
}

describe('targets read through a path index (targetsOnDemand)', () => {
  it('answer as the full parse does, refusals included, and a lookup finds what the map holds', () => {
    let indexed = 0;
    fc.assert(
      fc.property(fc.oneof(written, edited), (bytes) => {
        const full = outcome(bytes, false);
        const envelope = (() => {
          try {
            return parseSignedEnvelope('targets', bytes, { targetsOnDemand: true });
          } catch {
            return undefined;
          }
        })();
        if (envelope !== undefined && 'signed' in full) {
          // Lookups first, before anything reads the whole map.
          const signed = envelope.metadata.signed;
          for (const p of probes(full.paths ?? [])) {
            const expected = Object.hasOwn(full.signed.targets, p) ? full.signed.targets[p] : undefined;
            expect(targetFileOf(signed, p), p).toEqual(expected);
          }
          if (scanServedTargets(bytes) !== undefined) indexed++;
        }
        expect(outcome(bytes, true)).toEqual(full);
      }),
      { numRuns: 4000 },
    );
    // Most unedited served documents take the index: the property is not only about the fallback.
    expect(indexed).toBeGreaterThan(400);
  });

  it('index a served document whatever its paths hold, and leave the unusual to the full parse', () => {
    const doc = (targets: JsonObject) =>
      serializeJson({
        signatures: [],
        signed: {
          _type: 'targets',
          expires: '2030-01-01T00:00:00Z',
          spec_version: '1.0.31',
          targets,
          version: 1,
        },
      });
    const usual = { hashes: { sha256: 'a'.repeat(64) }, length: 1 };
    const sure: JsonObject[] = [
      {},
      { constructor: usual, __proto__x: usual },
      { é: usual, 日本: { ...usual, custom: { mediaType: 'application/json', n: [1, -2, true, null] } } },
      { a: { hashes: { sha256: 'a'.repeat(64), sha512: 'b'.repeat(128) }, length: 999_999_999_999_999 } },
    ];
    for (const targets of sure)
      expect(scanServedTargets(doc(targets)), JSON.stringify(targets)).toBeDefined();
    const unsure: JsonObject[] = [
      { '': usual }, // refused by the full parse
      { 'a"b': usual }, // an escape
      { 'a\nb': usual },
      { '\u{1F600}': usual }, // outside the BMP
      { a: { ...usual, length: 1_000_000_000_000_000 } }, // 16 digits
      { a: { ...usual, unknown: 1 } }, // an extra field
      { a: { hashes: { md5: 'ab' }, length: 1 } }, // an algorithm readers do not know
      { a: { hashes: { sha256: 'A'.repeat(64) }, length: 1 } }, // refused by the full parse
      { a: { hashes: { sha256: 'a'.repeat(62) }, length: 1 } },
      { a: { hashes: {}, length: 1 } },
      { a: { ...usual, length: -1 } },
    ];
    for (const targets of unsure)
      expect(scanServedTargets(doc(targets)), JSON.stringify(targets)).toBeUndefined();
    // Not the served form: whitespace, keys out of order, a repeated path.
    const served = new TextDecoder().decode(doc({ a: usual, b: usual }));
    for (const text of [
      served.replace('"targets":{', '"targets": {'),
      served.replace('"a":', '"c":'),
      served.replace('"b":', '"a":'),
    ]) {
      expect(scanServedTargets(utf8Encode(text)), text).toBeUndefined();
    }
    expect(outcome(utf8Encode(served.replace('"b":', '"a":')), true)).toMatchObject({ code: 'INVALID_JSON' });
  });

  it('answer as the full parse does at the edges of the pass: numbers, UTF-8, nesting', () => {
    const usual = { hashes: { sha256: 'a'.repeat(64) }, length: 1 };
    // A served document whose path `P` and custom value `"C"` are then replaced by raw bytes.
    const served = serializeJson({
      signatures: [],
      signed: {
        _type: 'targets',
        expires: '2030-01-01T00:00:00Z',
        spec_version: '1.0.31',
        targets: { 0: usual, P: { ...usual, custom: 'C' } },
        version: 1,
      },
    });
    const text = new TextDecoder().decode(served);
    const put = (pathBytes: number[], customBytes: number[]) => {
      const [before, rest] = text.split('"P"') as [string, string];
      const [middle, after] = rest.split('"C"') as [string, string];
      return Uint8Array.from([
        ...utf8Encode(`${before}"`),
        ...pathBytes,
        ...utf8Encode(`"${middle}`),
        ...customBytes,
        ...utf8Encode(after),
      ]);
    };
    const ascii = (s: string) => [...utf8Encode(s)];
    const quoted = (b: number[]) => [0x22, ...b, 0x22];
    const badUtf8 = [
      [0x80],
      [0xc0, 0x80],
      [0xc1, 0xbf],
      [0xc3],
      [0xc3, 0x61],
      [0xe1, 0x80, 0x61],
      [0xe1, 0x61, 0x80],
      [0xe0, 0x80, 0x80],
      [0xe0, 0x9f, 0xbf],
    ];
    const moreUtf8 = [
      [0xed, 0xa0, 0x80],
      [0xed, 0xbf, 0xbf],
      [0xf0, 0x9f, 0x98, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
    ];
    const goodUtf8 = [
      [0xc3, 0xa9],
      [0xe0, 0xa0, 0x80],
      [0xed, 0x9f, 0xbf],
      [0xef, 0xbb, 0xbf],
      [0xef, 0xbf, 0xbf],
    ];
    const customs = [
      '-0',
      '0',
      '-1',
      '01',
      '1.0',
      '1e2',
      '999999999999999',
      '-999999999999999',
      '1000000000000000',
      '9007199254740992',
      'true',
      'tru',
      'nul',
      '[]',
      '{}',
      '[1,]',
      '{"b":1,"a":2}',
      '{"a":1,"a":2}',
      '{"":1}',
      `${'['.repeat(70)}${']'.repeat(70)}`,
      `${'['.repeat(50)}${']'.repeat(50)}`,
    ];
    const cases = [
      ...customs.map((c) => put(ascii('p'), ascii(c))),
      ...[...badUtf8, ...moreUtf8, ...goodUtf8].flatMap((b) => [
        put(ascii('p').concat(b), ascii('1')),
        put(ascii('p'), quoted(ascii('v').concat(b))),
        put(b, ascii('1')),
      ]),
    ];
    for (const bytes of cases) {
      const full = outcome(bytes, false);
      expect(outcome(bytes, true), new TextDecoder().decode(bytes)).toEqual(full);
      if ('signed' in full) {
        const signed = parseSignedEnvelope('targets', bytes, { targetsOnDemand: true }).metadata.signed;
        for (const p of probes(full.paths ?? [])) {
          const expected = Object.hasOwn(full.signed.targets, p) ? full.signed.targets[p] : undefined;
          expect(targetFileOf(signed, p), p).toEqual(expected);
        }
      }
    }
    // The usual ones are read through the index (else this test would say nothing about it).
    expect(scanServedTargets(put(ascii('p'), ascii('-1')))).toBeDefined();
    expect(scanServedTargets(put([0xe0, 0xa0, 0x80], ascii('1')))).toBeDefined();
    expect(scanServedTargets(put(ascii('p'), ascii(`${'['.repeat(50)}${']'.repeat(50)}`)))).toBeDefined();
  });

  it('make the whole map only when it is read, and the same map as the full parse', () => {
    const targets: JsonObject = {};
    for (let i = 0; i < 300; i++)
      targets[`app/v${String(i).padStart(4, '0')}`] = { hashes: { sha256: 'c'.repeat(64) }, length: i };
    const bytes = serializeJson({
      signatures: [],
      signed: {
        _type: 'targets',
        expires: '2030-01-01T00:00:00Z',
        spec_version: '1.0.31',
        targets,
        version: 1,
      },
    });
    const signed = parseSignedEnvelope('targets', bytes, { targetsOnDemand: true }).metadata.signed;
    expect(targetFileOf(signed, 'app/v0123')).toMatchObject({
      length: 123,
      hashes: { sha256: 'c'.repeat(64) },
    });
    expect(targetFileOf(signed, 'app/v0300')).toBeUndefined();
    expect(signed.targets).toEqual(parseSignedEnvelope('targets', bytes).metadata.signed.targets);
    expect(Object.keys(signed.targets)).toHaveLength(300);
    // The map, once made, answers lookups: the same entry object, nothing decoded again.
    expect(targetFileOf(signed, 'app/v0123')).toBe(signed.targets['app/v0123']);
    expect(targetFileOf(signed, 'constructor')).toBeUndefined();
  });
});
