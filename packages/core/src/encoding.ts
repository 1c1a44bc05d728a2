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

export function isLowerHex(value: string, length?: number): boolean {
  return (length === undefined || value.length === length) && HEX.test(value);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
