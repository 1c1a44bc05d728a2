import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isLowerHex } from './encoding.js';

/** The rule isLowerHex implements with a table: pairs of lowercase hex digits, of a given length. */
const byRule = (s: string, length?: number) =>
  (length === undefined || s.length === length) && /^(?:[0-9a-f]{2})*$/.test(s);

describe('isLowerHex', () => {
  it('answers as the regular expression of its rule, on generated strings', () => {
    const hexish = fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEFg \u00e9\u0100\uD800') });
    fc.assert(
      fc.property(fc.oneof(hexish, fc.string()), fc.option(fc.nat(70), { nil: undefined }), (s, length) => {
        expect(isLowerHex(s, length)).toBe(byRule(s, length));
      }),
      { numRuns: 5000 },
    );
  });

  it('refuses odd lengths, upper case, characters beyond ASCII whose low byte is a digit, and a wrong length', () => {
    expect(isLowerHex('')).toBe(true);
    expect(isLowerHex('abc')).toBe(false);
    expect(isLowerHex('AB')).toBe(false);
    expect(isLowerHex('a\u0130')).toBe(false);
    expect(isLowerHex('\u0161a')).toBe(false);
    expect(isLowerHex('ab', 4)).toBe(false);
    expect(isLowerHex('a'.repeat(64), 64)).toBe(true);
  });
});
