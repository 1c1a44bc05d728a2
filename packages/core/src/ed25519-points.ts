/**
 * The ed25519 public-key rule both providers apply before verifying (not part of the main entry:
 * only the providers load @noble/ed25519's point arithmetic).
 */
import * as ed from '@noble/ed25519';
import { toHex } from './encoding.js';

/** Most public keys one provider instance remembers the answer for. */
const MAX_REMEMBERED = 1024;

/**
 * Whether an ed25519 public key is one both providers treat alike: canonically encoded, not of
 * small order, torsion-free. OpenSSL accepts small-order keys (the identity verifies anything);
 * noble refuses them; mixed-order keys make cofactored and cofactorless checks disagree. The
 * answer is remembered in `memo` (the calling provider instance's own).
 */
export function acceptablePublicKey(publicKey: Uint8Array, memo: Map<string, boolean>): boolean {
  const id = toHex(publicKey);
  let ok = memo.get(id);
  if (ok === undefined) {
    try {
      // Strict RFC 8032 decoding (y < p, no x = 0 with the sign bit set): the canonical encoding.
      const point = ed.Point.fromBytes(publicKey, false);
      // In the prime-order subgroup, the only point of small order is the identity.
      ok = !point.is0() && isTorsionFree(point);
    } catch {
      ok = false;
    }
    if (memo.size >= MAX_REMEMBERED) memo.clear();
    memo.set(id, ok);
  }
  return ok;
}

const { p: P, n: L, d } = ed.Point.CURVE();
const LOW_255 = (1n << 255n) - 1n;
const D2 = (2n * d) % P;
// L's bits after the leading one, most significant first: the double-and-add schedule.
const L_BITS = L.toString(2).slice(1);

/** x mod p for 0 <= x < 2^520: two folds of 2^255 = 19 (mod p), then one subtraction at most. */
function modP(x: bigint): bigint {
  let r = (x >> 255n) * 19n + (x & LOW_255);
  r = (r >> 255n) * 19n + (r & LOW_255);
  return r >= P ? r - P : r;
}

/**
 * Whether [L]A is the identity (A torsion-free, i.e. in the prime-order subgroup): the same
 * answer as noble's `isTorsionFree()`, with a quarter of its BigInt work and no object per step
 * (it made a frozen Point and reduced with `%` at every one of its 315 steps: the largest part of
 * a cold `tufa verify`'s own work, and of its scavenges). Extended coordinates, the complete
 * formulas for a = -1 (dbl-2008-hwcd; add-2008-hwcd-3 with A affine); T only when an addition
 * follows. Every value stays in [0, 4p): a difference adds p or 2p first.
 */
export function isTorsionFree(point: ed.Point): boolean {
  const { x, y } = point.Z === 1n ? { x: point.X, y: point.Y } : point.toAffine();
  const yMinusX = (y - x + P) % P;
  const yPlusX = (y + x) % P;
  const t2d = modP(modP(x * y) * D2);
  let X = x;
  let Y = y;
  let Z = 1n;
  let T = modP(x * y);
  for (let i = 0; i < L_BITS.length; i++) {
    const add = L_BITS.charCodeAt(i) === 49;
    const A = modP(X * X);
    const B = modP(Y * Y);
    const C = modP(2n * Z * Z);
    const s = X + Y;
    const E = modP(s * s) + 2n * P - A - B;
    const G = B - A + P;
    const F = G - C + P;
    const H = 2n * P - A - B;
    X = modP(E * F);
    Y = modP(G * H);
    Z = modP(F * G);
    if (!add) continue;
    T = modP(E * H);
    const a = modP((Y - X + P) * yMinusX);
    const b = modP((Y + X) * yPlusX);
    const c = modP(T * t2d);
    const dd = 2n * Z;
    const E2 = b - a + P;
    const F2 = dd - c + P;
    const G2 = dd + c;
    const H2 = b + a;
    X = modP(E2 * F2);
    Y = modP(G2 * H2);
    Z = modP(F2 * G2);
    T = modP(E2 * H2);
  }
  return X === 0n && Y === Z;
}
