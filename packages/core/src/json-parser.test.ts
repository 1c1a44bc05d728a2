import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, isCanonical, type JsonValue, parseJson, serializeJson, utf8Encode } from './json.js';
import { parseJsonText, scanSignedDocument } from './json-parser.js';

const scan = (text: string) => scanSignedDocument(text, 64, undefined);

/** What the scan's served-form answer must equal: the bytes against a full encoding of the parse. */
const servedByEncoding = (text: string) => isCanonical(utf8Encode(text), parseJson(text));

describe('scanSignedDocument', () => {
  it('records the key list of large objects, the same keys as Object.keys, for this parse only', () => {
    for (const n of [255, 256, 257, 1000]) {
      const entries = Array.from({ length: n }, (_, i) => [i % 7 === 0 ? String(i) : `k${i}`, i]);
      const text = JSON.stringify(Object.fromEntries(entries));
      const s = scan(text);
      const v = s.document as Record<string, unknown>;
      expect([...s.keysAsParsed(v)].sort()).toEqual(Object.keys(v).sort());
      expect(s.keysAsParsed(v)).toHaveLength(n);
      // Another parse of the same text makes other objects: this scan's lists are not theirs.
      const other = parseJson(text) as Record<string, unknown>;
      other.added = 1;
      expect(s.keysAsParsed(other)).toHaveLength(n + 1);
    }
  });

  it('finds the canonical text of signed, and only when it is canonical', () => {
    const signed = { _type: 'targets', b: [1, 'x\ny'], c: { d: null } };
    const canonical = `{"signatures":[],"signed":${canonicalJson(signed)}}`;
    const s = scan(canonical);
    expect(s.signedSpan).toBeDefined();
    expect(canonical.slice(s.signedSpan!.start, s.signedSpan!.end)).toBe(canonicalJson(signed));
    for (const text of [
      JSON.stringify({ signatures: [], signed }, null, 1), // whitespace
      '{"signed":{"b":1,"a":2}}', // unsorted keys
      '{"signed":{"a":"\\u0041"}}', // an escape canonical JSON does not write
      '{"signed":{"a":"x\\ny"}}', // a control character escaped (canonical JSON writes it raw)
      '{"signed":{"a":"\u{1F600}"}}', // a surrogate pair: code point order, no shortcut
    ]) {
      expect(scan(text).signedSpan, text).toBeUndefined();
    }
    expect(scan('{"other":{"signed":{}}}').signedSpan).toBeUndefined();
  });

  it('tells the served form (serializeJson) from every other writing of the same value', () => {
    const doc = { signatures: [{ keyid: 'a', sig: 'b' }], signed: { pem: 'x\ny\u001f', n: -5, t: true } };
    const served = new TextDecoder().decode(serializeJson(doc));
    expect(scan(served).servedForm).toBe(true);
    for (const text of [
      canonicalJson(doc), // raw control characters: canonical JSON, not the served form
      JSON.stringify(doc, null, 1),
      ` ${served}`,
      `${served}\n`,
      served.replace('\\n', '\\u000a'), // a short escape written long
      served.replace('\\u001f', '\\u001F'),
      served.replace('"a"', '"\\u0061"'),
      served.replace('"b"', '"\\/"'),
      '{"b":1,"a":2}',
    ]) {
      expect(scan(text).servedForm, text).toBe(false);
      expect(servedByEncoding(text), text).toBe(false);
    }
  });

  it('leaves the answer to a full comparison when a key holds a character outside the BMP', () => {
    // Code point order puts U+1F600 after U+FFFD; UTF-16 order puts it before.
    const text = new TextDecoder().decode(serializeJson({ '\u{1F600}': 1, '\uFFFD': 2 }));
    expect(scan(text).servedForm).toBeUndefined();
    expect(servedByEncoding(text)).toBe(true);
    expect(scan('{"\u{1F600}":1}').servedForm).toBeUndefined();
    expect(scan('{"a":"\u{1F600}"}').servedForm).toBe(true);
  });

  // Any code point, and strings made of the characters where the two forms and escapes differ.
  const special = fc.constantFrom(
    'a',
    'b',
    '\n',
    '\b',
    '\u0001',
    '\u001f',
    '"',
    '\\',
    '/',
    '\u{1F600}',
    '\uFFFD',
    'é',
  );
  const text = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 12 }),
    fc.string({ unit: special, maxLength: 8 }),
  );
  const value: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      text,
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(text, tie('value'), { maxKeys: 4 }),
    ),
  })).value;
  /** Ways to write a value: the served form, canonical JSON, JSON.stringify, each touched a little. */
  const writing = fc.tuple(
    value,
    fc.constantFrom('served', 'canonical', 'stringify', 'pretty'),
    fc.constantFrom('none', 'escape-a', 'long-newline', 'space'),
  );

  it('answers as a full re-encoding does, on generated documents written many ways', () => {
    fc.assert(
      fc.property(writing, ([v, how, touch]) => {
        let t =
          how === 'served'
            ? new TextDecoder().decode(serializeJson(v))
            : how === 'canonical'
              ? canonicalJson(v)
              : how === 'stringify'
                ? JSON.stringify(v)
                : JSON.stringify(v, null, 2);
        if (touch === 'escape-a') t = t.replace('a', '\\u0061');
        if (touch === 'long-newline') t = t.replace('\\n', '\\u000a');
        if (touch === 'space') t = t.replace(',', ' ,');
        let expected: boolean;
        try {
          expected = servedByEncoding(t);
        } catch {
          return; // a touch that made invalid JSON (an escape inside a key outside a string)
        }
        const s = scan(t);
        expect(s.servedForm ?? expected).toBe(expected);
        const signed = scan(`{"signed":${t}}`);
        if (signed.signedSpan !== undefined) {
          const span = `{"signed":${t}}`.slice(signed.signedSpan.start, signed.signedSpan.end);
          expect(span).toBe(canonicalJson(parseJson(t)));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("the parser's fast paths", () => {
  /** Everything a parse answers (the value, in key order, and what the scan saw), or its refusal. */
  const outcome = (text: string, careful: boolean) => {
    try {
      const s = scanSignedDocument(text, 64, 'doc', undefined, careful);
      const plain = parseJsonText(text, 64, 'doc', careful);
      return {
        document: JSON.stringify(s.document),
        plain: JSON.stringify(plain),
        signedSpan: s.signedSpan,
        servedForm: s.servedForm,
      };
    } catch (e) {
      const err = e as { code?: string; message: string };
      return { code: err.code, message: err.message };
    }
  };

  // Keys that repeat across objects, long ones, and ones that need the careful path.
  const key = fc.oneof(
    fc.constantFrom('a', 'b', 'ab', 'hashes', 'length', 'sha256', 'x'.repeat(24), 'x'.repeat(25), ''),
    fc.constantFrom('a\u0001', 'a"b', 'a\\b', '\u{1F600}', '\uD800', 'é', 'a\nb'),
    fc.string({ maxLength: 6 }),
  );
  const number = fc.oneof(
    fc.integer(),
    fc.maxSafeInteger(),
    fc.constantFrom(0, -1, 999_999_999_999_999, -999_999_999_999_999, 1_000_000_000_000_000, 2 ** 53 - 1),
  );
  const value: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(null),
      fc.boolean(),
      number,
      key,
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(key, tie('value'), { maxKeys: 5 }),
    ),
  })).value;
  const written = fc
    .tuple(value, fc.constantFrom('served', 'canonical', 'stringify', 'pretty'))
    .map(([v, how]) => {
      const doc = { signatures: [], signed: v };
      // A lone surrogate has no canonical form: such a value is written by JSON.stringify only.
      if (how === 'served' || how === 'canonical') {
        try {
          return how === 'served' ? new TextDecoder().decode(serializeJson(doc)) : canonicalJson(doc);
        } catch {
          return JSON.stringify(doc);
        }
      }
      return how === 'stringify' ? JSON.stringify(doc) : JSON.stringify(doc, null, 2);
    });
  // Edits that break a document in the places the fast paths skip: numbers, keys, escapes, quotes.
  const piece = fc.constantFrom(
    '"',
    '\\',
    '\\u',
    '\\ud800',
    '\ud800',
    '\u0000',
    '\n',
    ' ',
    ',',
    ':',
    '{',
    '}',
    '[',
    ']',
    '0',
    '00',
    '-',
    '-0',
    '1',
    '.5',
    'e3',
    '9007199254740993',
    '1234567890123456',
    'a',
    '"a":1,',
    '"a"',
  );
  const edited = fc
    .tuple(written, fc.array(fc.tuple(fc.nat(), fc.nat(3), piece), { maxLength: 3 }))
    .map(([t, edits]) => {
      let out = t;
      for (const [at, remove, insert] of edits) {
        const p = at % (out.length + 1);
        out = out.slice(0, p) + insert + out.slice(p + remove);
      }
      return out;
    });

  it('answer as the careful paths do, refusals and their codes included, on generated documents', () => {
    fc.assert(
      fc.property(fc.oneof(written, edited), (t) => {
        expect(outcome(t, false)).toEqual(outcome(t, true));
      }),
      { numRuns: 5000 },
    );
  });

  it('answer as the careful paths do at the edges of the integer and string shortcuts', () => {
    const texts = [
      '{"a":999999999999999}',
      '{"a":-999999999999999}',
      '{"a":1000000000000000}',
      '{"a":9007199254740991}',
      '{"a":9007199254740992}',
      '{"a":-0}',
      '{"a":0}',
      '{"a":-01}',
      '{"a":01}',
      '{"a":1.0}',
      '{"a":1e2}',
      '{"a":-}',
      '{"x":{"ab":1},"y":{"ab":2,"ab":3}}',
      '{"x":{"ab":1},"y":{"a\u0062":2}}',
      '{"x":{"a\u0001":1},"y":{"a\u0001":2}}',
      `{"x":{"${'k'.repeat(24)}":1},"y":{"${'k'.repeat(24)}":1,"${'k'.repeat(24)}":2}}`,
      '{"x":{"ab":1},"y":{"ab',
    ];
    for (const t of texts) expect(outcome(t, false), t).toEqual(outcome(t, true));
    expect(outcome('{"a":-0}', false)).toMatchObject({ code: 'INVALID_JSON' });
    expect(outcome('{"x":{"ab":1},"y":{"ab":2,"ab":3}}', false)).toMatchObject({ code: 'INVALID_JSON' });
    expect(outcome('{"a":9007199254740992}', false)).toMatchObject({ code: 'INVALID_JSON' });
  });
});
