import { codeOf } from '@tufa/testing';
import { canonicalize as tufjsCanonicalize } from '@tufjs/canonical-json';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TufaError } from './errors.js';
import {
  canonicalBytes,
  canonicalJson,
  compareCodePoints,
  isCanonical,
  type JsonValue,
  parseJson,
  serializeJson,
  utf8Encode,
} from './json.js';

describe('parseJson refuses what a signature cannot cover unambiguously', () => {
  it.each([
    ['duplicate key', '{"a":1,"a":2}'],
    ['duplicate key after escape', '{"a":1,"\\u0061":2}'],
    ['fraction', '{"v":1.5}'],
    ['exponent', '{"v":1e3}'],
    ['negative zero', '-0'],
    ['leading zero', '012'],
    ['unsafe integer', '9007199254740992'],
    ['NaN', 'NaN'],
    ['Infinity', 'Infinity'],
    ['trailing comma in array', '[1,]'],
    ['trailing comma in object', '{"a":1,}'],
    ['single quotes', "{'a':1}"],
    ['unquoted key', '{a:1}'],
    ['trailing data', '{} {}'],
    ['unterminated string', '"abc'],
    ['invalid escape', '"\\x41"'],
    ['lone high surrogate escape', '"\\ud800"'],
    ['lone low surrogate escape', '"\\udc00"'],
    ['high surrogate followed by a non-surrogate', '"\\ud800\\u0041"'],
    ['empty input', ''],
    ['comment', '{"a":1 /* c */}'],
  ])('%s', (_name, text) => {
    expect(codeOf(() => parseJson(utf8Encode(text)))).toBe('INVALID_JSON');
  });

  it('refuses invalid UTF-8 and a byte-order mark', () => {
    expect(codeOf(() => parseJson(new Uint8Array([0x22, 0xff, 0x22])))).toBe('INVALID_JSON');
    expect(codeOf(() => parseJson(new Uint8Array([0x22, 0xc0, 0xaf, 0x22])))).toBe('INVALID_JSON'); // overlong '/'
    expect(codeOf(() => parseJson(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])))).toBe('INVALID_JSON');
  });

  it('bounds nesting depth', () => {
    const deep = '['.repeat(65) + ']'.repeat(65);
    expect(codeOf(() => parseJson(deep))).toBe('INVALID_JSON');
    expect(codeOf(() => parseJson('['.repeat(64) + ']'.repeat(64)))).toBe('ok');
    expect(codeOf(() => parseJson(deep, { maxDepth: 100 }))).toBe('ok');
  });

  it('names the source and offset', () => {
    try {
      parseJson('{"a":1,"a":2}', { source: 'timestamp' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(TufaError);
      expect((err as TufaError).message).toMatch(/^timestamp: duplicate key "a" at offset 7/);
      expect((err as TufaError).details).toEqual({ offset: 7 });
    }
  });

  it('parses valid JSON with escapes and surrogate pairs', () => {
    const v = parseJson(
      '{"a":[1,-2,true,false,null,"x\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"], "b" : {} }',
    );
    expect(JSON.parse(JSON.stringify(v))).toEqual({
      a: [1, -2, true, false, null, 'x"\\/\b\f\n\r\té😀'],
      b: {},
    });
  });

  it('accepts raw control characters in strings, as canonical JSON writes them', () => {
    expect(parseJson('"a\nb\u0001"')).toBe('a\nb\u0001');
    const pem = { public: '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n' };
    expect(parseJson(canonicalBytes(pem))).toEqual(pem);
  });

  it('keeps __proto__ as an ordinary key', () => {
    const v = parseJson('{"__proto__":{"polluted":1}}') as Record<string, unknown>;
    expect(Object.keys(v)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(canonicalJson(v)).toBe('{"__proto__":{"polluted":1}}');
  });
});

describe('canonicalJson', () => {
  it('sorts keys, drops whitespace, escapes only quote and backslash', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'q"\\'], c: { z: 'line\nbreak', y: '\t' } })).toBe(
      '{"a":[true,null,"q\\"\\\\"],"b":1,"c":{"y":"\t","z":"line\nbreak"}}',
    );
  });

  it('keeps a PEM newline as a raw newline byte', () => {
    const pem = '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n';
    const bytes = canonicalBytes({ public: pem });
    expect(bytes.filter((b) => b === 0x0a).length).toBe(3);
    expect(new TextDecoder().decode(bytes)).not.toContain('\\n');
  });

  it.each([
    ['a float', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-0', -0],
    ['an unsafe integer', 2 ** 53],
    ['undefined', undefined],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a bigint', 1n],
    ['a Date', new Date(0)],
    ['a Map', new Map()],
    ['a Uint8Array', new Uint8Array(1)],
    ['a lone surrogate', '\ud800'],
    ['an undefined property', { a: undefined }],
    ['a nested float', { a: [{ b: 0.1 }] }],
  ])('refuses %s with CANONICAL_JSON', (_name, value) => {
    expect(codeOf(() => canonicalJson(value))).toBe('CANONICAL_JSON');
  });

  it('sorts keys outside the BMP by code point, as securesystemslib does', () => {
    // U+1F600 (surrogates D83D DE00) against U+FF21: code point order puts U+FF21 first, UTF-16 order the other way.
    const value = { '\u{1F600}': 1, '\uFF21': 2 };
    expect(canonicalJson(value)).toBe('{"\uFF21":2,"\u{1F600}":1}');
    expect(tufjsCanonicalize(value)).toBe('{"\u{1F600}":1,"\uFF21":2}'); // the documented difference
    expect(compareCodePoints('\uFF21', '\u{1F600}')).toBeLessThan(0);
    expect(compareCodePoints('a', 'ab')).toBeLessThan(0);
    expect(compareCodePoints('b', 'a')).toBeGreaterThan(0);
  });

  it('serializeJson escapes control characters, and only them, for strict JSON parsers', () => {
    const value = { 'k\u0001': 'a\nb\tc\u0000d\u001f"\\é' };
    const text = new TextDecoder().decode(serializeJson(value));
    expect(text).toBe('{"k\\u0001":"a\\nb\\tc\\u0000d\\u001f\\"\\\\é"}');
    expect(JSON.parse(text)).toEqual(value);
    expect(isCanonical(serializeJson(value), parseJson(text))).toBe(true);
    expect(isCanonical(canonicalBytes(value), parseJson(canonicalBytes(value)))).toBe(false);
    expect(serializeJson({ a: 'plain' })).toEqual(canonicalBytes({ a: 'plain' }));
  });

  it('isCanonical tells canonical bytes from any other serialisation', () => {
    const text = '{"a":1,"b":[2]}';
    expect(isCanonical(utf8Encode(text), parseJson(text))).toBe(true);
    const pretty = '{ "a": 1, "b": [2] }';
    expect(isCanonical(utf8Encode(pretty), parseJson(pretty))).toBe(false);
    const unsorted = '{"b":[2],"a":1}';
    expect(isCanonical(utf8Encode(unsorted), parseJson(unsorted))).toBe(false);
    const escaped = '{"a":"\\u0041"}';
    expect(isCanonical(utf8Encode(escaped), parseJson(escaped))).toBe(false);
  });
});

// Values canonical JSON can encode; keys restricted to the BMP where both implementations agree.
const bmpString = fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => !/[\ud800-\udfff]/.test(s));
const jsonValue: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger().filter((n) => !Object.is(n, -0)),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(bmpString, tie('value'), { maxKeys: 5 }),
  ),
})).value;

describe('canonical JSON properties', () => {
  it('equals @tufjs/canonical-json on generated values', () => {
    fc.assert(
      fc.property(jsonValue, (v) => {
        expect(canonicalJson(v)).toBe(tufjsCanonicalize(v));
      }),
      { numRuns: 400 },
    );
  });

  it('round-trips: parse(canonical(v)) is v, and its bytes are canonical', () => {
    fc.assert(
      fc.property(jsonValue, (v) => {
        const back = parseJson(canonicalBytes(v));
        expect(canonicalJson(back)).toBe(canonicalJson(v));
        const file = serializeJson(v);
        expect(isCanonical(file, parseJson(file))).toBe(true);
        expect(JSON.parse(new TextDecoder().decode(file))).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 400 },
    );
  });

  it('parses whatever JSON.stringify writes of safe values identically', () => {
    fc.assert(
      fc.property(jsonValue, (v) => {
        const text = JSON.stringify(v, null, 1);
        expect(JSON.stringify(parseJson(text))).toBe(JSON.stringify(JSON.parse(text)));
      }),
      { numRuns: 300 },
    );
  });
});
