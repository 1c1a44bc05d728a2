import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { codeOf } from '@tufa/testing';
import { describe, expect, it } from 'vitest';
import { notaryKeyId } from './format.js';
import { decryptNotaryKey, listNotaryKeys, notaryPassphraseVariable, parseNotaryKeyFile } from './keys.js';

/** A key file as notary 0.7 writes it: PBES2 (PBKDF2, AES-256-CBC) PKCS#8 PEM with role and gun headers. */
function notaryKeyFile(passphrase: string, headers: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const id = notaryKeyId({
    keytype: 'ecdsa',
    public: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
  });
  const pem = privateKey
    .export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase })
    .toString();
  const text = pem.replace(
    '-----BEGIN ENCRYPTED PRIVATE KEY-----\n',
    `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${headers}\n`,
  );
  return { id, text, privateKey };
}

describe("Notary's private key files", () => {
  it('reads the role and gun headers and decrypts with the passphrase into PKCS#8', () => {
    const k = notaryKeyFile('pw', 'gun: example.com/app\nrole: targets\n');
    const file = parseNotaryKeyFile('/x.key', k.id, k.text)!;
    expect(file).toMatchObject({ role: 'targets', gun: 'example.com/app', id: k.id });
    const decrypted = decryptNotaryKey(file, 'pw');
    expect(Buffer.from(decrypted.pkcs8)).toEqual(k.privateKey.export({ format: 'der', type: 'pkcs8' }));
  });

  it('refuses a wrong passphrase (WRONG_PASSPHRASE) and a file holding another key than its name (INVALID_KEY)', () => {
    const k = notaryKeyFile('pw', 'role: root\n');
    expect(codeOf(() => decryptNotaryKey(parseNotaryKeyFile('/x.key', k.id, k.text)!, 'nope'))).toBe(
      'WRONG_PASSPHRASE',
    );
    expect(codeOf(() => decryptNotaryKey(parseNotaryKeyFile('/x.key', 'a'.repeat(64), k.text)!, 'pw'))).toBe(
      'INVALID_KEY',
    );
  });

  it('finds key files in the flat layout and older subfolders, and skips what is not one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tufa-notary-keys-'));
    const a = notaryKeyFile('pw', 'role: root\n');
    const b = notaryKeyFile('pw', 'role: targets/releases\n');
    mkdirSync(join(dir, 'private', 'tuf_keys', 'example.com'), { recursive: true });
    writeFileSync(join(dir, 'private', `${a.id}.key`), a.text);
    writeFileSync(join(dir, 'private', 'tuf_keys', 'example.com', `${b.id}.key`), b.text);
    writeFileSync(join(dir, 'private', `${'c'.repeat(64)}.key`), 'not a key');
    const found = await listNotaryKeys(dir);
    expect(found.map((f) => [f.id, f.role]).sort()).toEqual(
      [
        [a.id, 'root'],
        [b.id, 'targets/releases'],
      ].sort(),
    );
    expect(await listNotaryKeys(join(dir, 'absent'))).toEqual([]);
  });

  it("names Notary's passphrase variables", () => {
    expect(['root', 'targets', 'snapshot', 'targets/releases'].map(notaryPassphraseVariable)).toEqual([
      'NOTARY_ROOT_PASSPHRASE',
      'NOTARY_TARGETS_PASSPHRASE',
      'NOTARY_SNAPSHOT_PASSPHRASE',
      'NOTARY_DELEGATION_PASSPHRASE',
    ]);
  });
});
