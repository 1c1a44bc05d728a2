/** Byte encodings used by TUF metadata: lowercase hex and base64. */
import { TufaError } from './errors.js';

const HEX = /^(?:[0-9a-f]{2})*$/;
const HEX_ANY_CASE = /^(?:[0-9a-fA-F]{2})*$/;

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

/** Decodes hex; `strict` (default) accepts lowercase only, as TUF writes it. */
export function fromHex(hex: string, what = 'hex string', strict = true): Uint8Array {
  if (!(strict ? HEX : HEX_ANY_CASE).test(hex)) {
    throw new TufaError('INVALID_ARGUMENT', `${what} is not ${strict ? 'lowercase ' : ''}hex`);
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** 1 for the characters of lowercase hex, by character code (below 128). */
const LOWER_HEX_DIGIT = new Uint8Array(128);
for (const c of '0123456789abcdef') LOWER_HEX_DIGIT[c.charCodeAt(0)] = 1;

export function isLowerHex(value: string, length?: number): boolean {
  const n = value.length;
  if ((length !== undefined && n !== length) || n % 2 !== 0) return false;
  // A loop over a table, not HEX: this runs for every digest of a 100,000-target document (ADR 0017).
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c >= 128 || LOWER_HEX_DIGIT[c] === 0) return false;
  }
  return true;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
