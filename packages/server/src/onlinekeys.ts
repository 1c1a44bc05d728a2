/**
 * Online keys (timestamp, snapshot): ed25519 private seeds encrypted at rest with AES-256-GCM
 * under the operator's master key. The additional data binds each ciphertext to its row, so a
 * ciphertext copied to another collection or role does not decrypt.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { TufaError } from '@tufa/core';
import { readSecretFile, unreadable } from './database-config.js';

const IV_LENGTH = 12;
const TAG_LENGTH = 16;

/** Parses a 32-byte master key written as 64 hex digits or base64. */
export function parseMasterKey(text: string, source: string): Buffer {
  const t = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=?$/.test(t)) key = Buffer.from(t, 'base64');
  if (key === undefined || key.length !== 32) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${source}: the master key must be 32 bytes as 64 hex digits or base64`,
    );
  }
  return key;
}

export interface MasterKeySource {
  /** TUFA_MASTER_KEY's value. */
  value?: string | undefined;
  /** A file holding the key. */
  file?: string | undefined;
  /** Where to generate one when none is given (the embedded default); undefined: required. */
  generateAt?: string | undefined;
}

/** Loads the master key; generates one (mode 0600) only where allowed. `generated` says which happened. */
export function loadMasterKey(source: MasterKeySource): { key: Buffer; generated?: string } {
  if (source.value !== undefined && source.value !== '')
    return { key: parseMasterKey(source.value, 'TUFA_MASTER_KEY') };
  const file = source.file ?? source.generateAt;
  if (file === undefined) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'a master key is required with an external database: set TUFA_MASTER_KEY or --master-key-file',
    );
  }
  if (existsSync(file)) {
    const { text, mode } = readSecretFile(file, 'master key file');
    // Whoever reads it can decrypt every online key: as ssh does with private keys, refuse.
    if ((mode & 0o077) !== 0) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        `master key file ${file} can be read or written by group or others (mode 0${mode.toString(8)}): chmod 600 ${file}`,
        { details: { file, mode: `0${mode.toString(8)}` } },
      );
    }
    return { key: parseMasterKey(text, file) };
  }
  if (source.file !== undefined) {
    throw unreadable(file, 'master key file', Object.assign(new Error('ENOENT'), { code: 'ENOENT' }));
  }
  const key = randomBytes(32);
  writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  return { key, generated: file };
}

export function encryptSecret(masterKey: Buffer, plaintext: Uint8Array, aad: string): Buffer {
  const iv = randomBytes(IV_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', masterKey, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

export function decryptSecret(masterKey: Buffer, sealed: Uint8Array, aad: string): Buffer {
  if (sealed.length < IV_LENGTH + TAG_LENGTH)
    throw new TufaError('INTERNAL', 'an encrypted key is truncated');
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length);
  const decipher = createDecipheriv('aes-256-gcm', masterKey, buf.subarray(0, IV_LENGTH));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(buf.subarray(IV_LENGTH, IV_LENGTH + TAG_LENGTH));
  try {
    return Buffer.concat([decipher.update(buf.subarray(IV_LENGTH + TAG_LENGTH)), decipher.final()]);
  } catch (cause) {
    throw new TufaError('INTERNAL', 'an online key does not decrypt under this master key', { cause });
  }
}

/** Additional data of a key row. */
export function keyAad(collectionId: string, role: string, keyid: string): string {
  return `tufa-online-key\u0000${collectionId}\u0000${role}\u0000${keyid}`;
}

export const MASTER_KEY_CHECK_AAD = 'tufa-master-key-check';
export const MASTER_KEY_CHECK_TEXT = Buffer.from('the tufa master key', 'utf8');
