import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, isCanonical, type JsonValue, parseJson, serializeJson, utf8Encode } from './json.js';
import { scanSignedDocument } from './json-parser.js';

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
