/**
 * The ed25519 public-key rule against noble's own checks (`isSmallOrder`, `isTorsionFree`), which
 * it replaced for speed: the same verdict on every kind of key.
 */
import * as ed from '@noble/ed25519';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { acceptablePublicKey, isTorsionFree } from './ed25519-points.js';
import { fromHex, toHex } from './encoding.js';

const { p: P, n: L } = ed.Point.CURVE();

/** noble's verdict, as the rule was written before. */
function nobleVerdict(bytes: Uint8Array): boolean {
  try {
    const point = ed.Point.fromBytes(bytes, false);
    return !point.isSmallOrder() && point.isTorsionFree();
  } catch {
    return false;
  }
}

const verdict = (bytes: Uint8Array) => acceptablePublicKey(bytes, new Map());

// The eight points of small order (the identity, order 2, two of order 4, four of order 8).
const SMALL_ORDER = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '0000000000000000000000000000000000000000000000000000000000000000',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
].map((h) => fromHex(h, 'point', false));

const littleEndian = (n: bigint, sign = false): Uint8Array => {
  const bytes = fromHex(n.toString(16).padStart(64, '0'), 'n', false).reverse();
  if (sign) bytes[31]! |= 0x80;
  return bytes;
};

const torsion = SMALL_ORDER.map((b) => ed.Point.fromBytes(b, true));
const scalar = fc.bigInt({ min: 1n, max: L - 1n });

describe('acceptablePublicKey: the same verdict as noble', () => {
  it('refuses the eight small-order points, and each of them is of small order', () => {
    expect(torsion.map((t) => t.multiply(8n, false).is0())).toEqual(Array(8).fill(true));
    expect(new Set(SMALL_ORDER.map((b) => toHex(b))).size).toBe(8);
    for (const bytes of SMALL_ORDER) expect([verdict(bytes), nobleVerdict(bytes)]).toEqual([false, false]);
  });

  it('refuses every non-canonical encoding (y >= p, either sign; x = 0 with the sign bit)', () => {
    const encodings: Uint8Array[] = [];
    for (let y = P; y < 1n << 255n; y++) encodings.push(littleEndian(y), littleEndian(y, true));
    encodings.push(littleEndian(1n, true), littleEndian(P - 1n, true));
    expect(encodings).toHaveLength(40);
    for (const bytes of encodings) expect([verdict(bytes), nobleVerdict(bytes)]).toEqual([false, false]);
  });

  it('accepts valid keys and refuses each mixed-order key made from one', () => {
    fc.assert(
      fc.property(scalar, (k) => {
        const key = ed.Point.BASE.multiply(k);
        expect([verdict(key.toBytes()), nobleVerdict(key.toBytes())]).toEqual([true, true]);
        for (const t of torsion.slice(1)) {
          const mixed = key.add(t);
          expect([verdict(mixed.toBytes()), nobleVerdict(mixed.toBytes())]).toEqual([false, false]);
          expect([isTorsionFree(mixed), mixed.isTorsionFree()]).toEqual([false, false]);
        }
        // A point straight from arithmetic (Z != 1) is answered alike.
        expect(isTorsionFree(key)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it('agrees with noble on any 32 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        expect(verdict(bytes)).toBe(nobleVerdict(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('isTorsionFree agrees with noble on every torsion component, the identity included', () => {
    fc.assert(
      fc.property(scalar, fc.integer({ min: 0, max: 7 }), (k, i) => {
        const point = ed.Point.BASE.multiply(k).add(torsion[i]!);
        expect(isTorsionFree(point)).toBe(point.isTorsionFree());
        const affine = ed.Point.fromBytes(point.toBytes(), false);
        expect(isTorsionFree(affine)).toBe(i === 0);
      }),
      { numRuns: 60 },
    );
    for (const t of torsion) expect(isTorsionFree(t)).toBe(t.isTorsionFree());
  });
});
