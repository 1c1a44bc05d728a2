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
      const point = ed.Point.fromBytes(publicKey, false);
      ok = !point.isSmallOrder() && point.isTorsionFree();
    } catch {
      ok = false;
    }
    if (memo.size >= MAX_REMEMBERED) memo.clear();
    memo.set(id, ok);
  }
  return ok;
}
