/**
 * Notary's private key files (`TRUST_DIR/private/ID.key`): encrypted PKCS#8 PEM (PBES2: PBKDF2
 * with a few thousand iterations, AES-256-CBC) with `role:` and `gun:` header lines. Decrypted
 * here once, to be re-encrypted at once into tufa's keystore (scrypt, AES-256-GCM).
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TufaError } from '@tufa/core';
import { readFileBounded } from '../home.js';
import { notaryKeyId } from './format.js';

export interface NotaryPrivateKeyFile {
  readonly path: string;
  /** The file's name: Notary's canonical key id of its public key. */
  readonly id: string;
  readonly role: string;
  readonly gun: string | undefined;
  /** The PEM without its header lines, as OpenSSL reads it. */
  readonly pem: string;
}

const PEM =
  /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n((?:[A-Za-z]+: [^\n]*\n)*)\n?([A-Za-z0-9+/=\n]+)-----END ENCRYPTED PRIVATE KEY-----\n?$/;

/** Parses one key file; undefined for a file that is not one (Notary keeps nothing else there). */
export function parseNotaryKeyFile(path: string, id: string, text: string): NotaryPrivateKeyFile | undefined {
  const m = PEM.exec(text.replace(/\r\n/g, '\n'));
  if (m === null) return undefined;
  const headers = new Map<string, string>();
  for (const line of m[1]!.split('\n').filter((l) => l !== '')) {
    const at = line.indexOf(': ');
    headers.set(line.slice(0, at), line.slice(at + 2));
  }
  const role = headers.get('role');
  if (role === undefined) return undefined;
  return {
    path,
    id,
    role,
    gun: headers.get('gun'),
    pem: `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${m[2]}-----END ENCRYPTED PRIVATE KEY-----\n`,
  };
}

/** Every Notary private key file under `TRUST_DIR/private` (0.7's flat layout and the older subfolders). */
export async function listNotaryKeys(trustDir: string): Promise<NotaryPrivateKeyFile[]> {
  const out: NotaryPrivateKeyFile[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory() && depth < 8) await walk(path, depth + 1);
      else if (e.isFile() && /^[0-9a-f]{64}\.key$/.test(e.name)) {
        const bytes = await readFileBounded(path, 64 * 1024, 'notary key file');
        const file =
          bytes === undefined
            ? undefined
            : parseNotaryKeyFile(path, e.name.slice(0, 64), Buffer.from(bytes).toString('utf8'));
        if (file !== undefined) out.push(file);
      }
    }
  };
  await walk(join(trustDir, 'private'), 0);
  return out;
}

export interface DecryptedNotaryKey {
  readonly file: NotaryPrivateKeyFile;
  readonly privateKey: KeyObject;
  /** PKCS#8 DER, unencrypted: handed straight to the keystore, never written. */
  readonly pkcs8: Uint8Array;
}

/** Decrypts a key file with its passphrase; checks that it holds the key its name says. */
export function decryptNotaryKey(file: NotaryPrivateKeyFile, passphrase: string): DecryptedNotaryKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: file.pem, format: 'pem', passphrase });
  } catch (cause) {
    throw new TufaError(
      'WRONG_PASSPHRASE',
      `notary ${file.role} key ${file.id.slice(0, 12)}…: wrong passphrase (or a damaged key file ${file.path})`,
      {
        role: file.role,
        details: { keyid: file.id },
        cause,
      },
    );
  }
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const type = privateKey.asymmetricKeyType;
  const keytype = type === 'ec' ? 'ecdsa' : type === 'rsa' ? 'rsa' : undefined;
  if (keytype === undefined) {
    throw new TufaError(
      'UNSUPPORTED_KEY',
      `notary ${file.role} key ${file.id.slice(0, 12)}…: a ${type} key`,
      { role: file.role },
    );
  }
  if (notaryKeyId({ keytype, public: spki.toString('base64') }) !== file.id) {
    throw new TufaError('INVALID_KEY', `${file.path} holds another key than its name says`, {
      role: file.role,
      found: file.id,
    });
  }
  const pkcs8 = new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' }));
  return { file, privateKey, pkcs8 };
}

/** NOTARY_ROOT_PASSPHRASE, NOTARY_TARGETS_PASSPHRASE, NOTARY_SNAPSHOT_PASSPHRASE, or NOTARY_DELEGATION_PASSPHRASE. */
export function notaryPassphraseVariable(role: string): string {
  if (role === 'root' || role === 'targets' || role === 'snapshot')
    return `NOTARY_${role.toUpperCase()}_PASSPHRASE`;
  return 'NOTARY_DELEGATION_PASSPHRASE';
}
