import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  canonicalJson,
  computeKeyId,
  expiresIn,
  newTargets,
  p256PublicKey,
  serializeMetadata,
  signMetadata,
  type TufaError,
  targetFileFor,
  utf8Encode,
} from '@tufa/core';
import { codeOf as code, testCrypto } from '@tufa/testing';
import { MetadataKind, Key as TufJsKey, Metadata as TufJsMetadata } from '@tufjs/models';
import { describe, expect, it } from 'vitest';
import { Keystore, parsePublicKeyFile, publicKeyFile } from './keystore.js';
import { exitCodeFor } from './output.js';
import { passphraseSource } from './passphrase.js';
import { applyChanges, Staging } from './staging.js';

const keyToJsonForTufJs = (key: { keytype: string; scheme: string; keyval: { public: string } }) => ({
  keytype: key.keytype,
  scheme: key.scheme,
  keyval: { public: key.keyval.public },
});

// Cheap scrypt parameters keep the tests fast; the format and the checks are the same.
const FAST = { N: 1024, r: 8, p: 1 };

describe('Keystore', () => {
  const dir = () => join(mkdtempSync(join(tmpdir(), 'tufa-ks-')), 'private');

  it('stores keys encrypted, 0600 in a 0700 folder, and unlocks them with the passphrase', async () => {
    const ks = new Keystore(dir(), testCrypto);
    const info = await ks.generate({ role: 'targets', gun: 'x/app', passphrase: 'pw', scryptParams: FAST });
    const file = join(ks.dir, `${info.keyid}.key`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(ks.dir).mode & 0o777).toBe(0o700);
    const text = readFileSync(file, 'utf8');
    const signer = await ks.unlock(info.keyid, 'pw');
    expect(text).not.toContain(Buffer.from(signer.privateKey).toString('hex'));
    expect(text).not.toContain(Buffer.from(signer.privateKey).toString('base64'));
    expect(signer.keyid).toBe(info.keyid);
    expect((await ks.list()).map((k) => [k.keyid, k.role, k.gun])).toEqual([
      [info.keyid, 'targets', 'x/app'],
    ]);
  });

  it('refuses a wrong passphrase with WRONG_PASSPHRASE naming the key', async () => {
    const ks = new Keystore(dir(), testCrypto);
    const info = await ks.generate({ role: 'root', passphrase: 'right', scryptParams: FAST });
    try {
      await ks.unlock(info.keyid, 'wrong');
      expect.unreachable();
    } catch (err) {
      expect((err as TufaError).code).toBe('WRONG_PASSPHRASE');
      expect((err as TufaError).message).toContain(info.keyid.slice(0, 12));
    }
    expect(await code(ks.generate({ role: 'root', passphrase: '' }))).toBe('INVALID_ARGUMENT');
  });

  it('shares a decryption under way or done with the same passphrase; a failed one is tried again', async () => {
    const ks = new Keystore(dir(), testCrypto);
    const info = await ks.generate({ role: 'targets', passphrase: 'right', scryptParams: FAST });
    const first = ks.unlock(info.keyid, 'right');
    expect(ks.unlock(info.keyid, 'right')).toBe(first);
    await first;
    expect(ks.unlock(info.keyid, 'right')).toBe(first);
    const wrong = ks.unlock(info.keyid, 'wrong');
    expect(ks.unlock(info.keyid, 'wrong')).toBe(wrong);
    expect(await code(wrong)).toBe('WRONG_PASSPHRASE');
    const again = ks.unlock(info.keyid, 'wrong');
    expect(again).not.toBe(wrong);
    expect(await code(again)).toBe('WRONG_PASSPHRASE');
    expect((await ks.unlock(info.keyid, 'right')).keyid).toBe(info.keyid);
  });

  it('a key file written again is read again; hasDefaultCost tells cheap key files from costly ones', async () => {
    const ks = new Keystore(dir(), testCrypto);
    const info = await ks.generate({ role: 'targets', passphrase: 'old', scryptParams: FAST });
    const opened = await ks.unlock(info.keyid, 'old');
    await ks.store({ role: 'targets', passphrase: 'new', privateKey: opened.privateKey, scryptParams: FAST });
    expect(await code(ks.unlock(info.keyid, 'old'))).toBe('WRONG_PASSPHRASE');
    expect((await ks.unlock(info.keyid, 'new')).keyid).toBe(info.keyid);
    expect(await ks.hasDefaultCost(info.keyid)).toBe(true);
    const costly = await ks.generate({ role: 'targets', passphrase: 'pw', scryptParams: { ...FAST, p: 2 } });
    expect(await ks.hasDefaultCost(costly.keyid)).toBe(false);
  });

  it('refuses tampered or hostile key files', async () => {
    const ks = new Keystore(dir(), testCrypto);
    const info = await ks.generate({ role: 'targets', passphrase: 'pw', scryptParams: FAST });
    const file = join(ks.dir, `${info.keyid}.key`);
    const good = JSON.parse(readFileSync(file, 'utf8'));
    const variants: [string, (f: any) => void, string][] = [
      ['scrypt N too large (a memory bomb)', (f) => (f.kdf.N = 2 ** 24), 'INVALID_KEY'],
      ['scrypt N not a power of two', (f) => (f.kdf.N = 1000), 'INVALID_KEY'],
      ['another key id', (f) => (f.keyid = 'a'.repeat(64)), 'INVALID_KEY'],
      ['public key swapped', (f) => (f.public.keyval.public = 'b'.repeat(64)), 'INVALID_KEY'],
      ['unknown cipher', (f) => (f.cipher.name = 'rot13'), 'INVALID_KEY'],
      [
        'ciphertext flipped',
        (f) => (f.ciphertext = Buffer.alloc(48, 1).toString('base64')),
        'WRONG_PASSPHRASE',
      ],
      // Damage that the structure shows is told apart from a wrong passphrase.
      [
        'a stray character in the ciphertext',
        (f) => (f.ciphertext = `*${f.ciphertext.slice(1)}`),
        'INVALID_KEY',
      ],
      ['the ciphertext cut short', (f) => (f.ciphertext = f.ciphertext.slice(0, 40)), 'INVALID_KEY'],
      [
        'a stray character in the nonce',
        (f) => (f.cipher.nonce = `${f.cipher.nonce.slice(0, -1)}!`),
        'INVALID_KEY',
      ],
      ['the salt not base64', (f) => (f.kdf.salt = `${f.kdf.salt}\n`), 'INVALID_KEY'],
    ];
    for (const [, edit, expected] of variants) {
      const f = JSON.parse(JSON.stringify(good));
      edit(f);
      writeFileSync(file, JSON.stringify(f));
      expect(await code(ks.unlock(info.keyid, 'pw'))).toBe(expected);
    }
    const f = JSON.parse(JSON.stringify(good));
    f.ciphertext = Buffer.alloc(48, 1).toString('base64');
    writeFileSync(file, JSON.stringify(f));
    await expect(ks.unlock(info.keyid, 'pw')).rejects.toThrow(/\(or a damaged key file\)/);
    // Not (strict) JSON: a bad key file (exit 2), which the JSON error only explains.
    writeFileSync(file, '{"tufa_key":1,"tufa_key":1}');
    expect(await code(ks.unlock(info.keyid, 'pw'))).toBe('INVALID_KEY');
    writeFileSync(file, 'not json');
    await expect(ks.unlock(info.keyid, 'pw')).rejects.toMatchObject({
      code: 'INVALID_KEY',
      message: expect.stringContaining(`${file}: not JSON`),
      cause: expect.objectContaining({ code: 'INVALID_JSON' }),
    });
    writeFileSync(file, 'x'.repeat(20_000));
    expect(await code(ks.unlock(info.keyid, 'pw'))).toBe('TOO_LARGE');
    expect(await code(ks.unlock('not-a-keyid', 'pw'))).toBe('INVALID_ARGUMENT');
    expect(await code(ks.unlock('c'.repeat(64), 'pw'))).toBe('NOT_FOUND');
  });

  it('exports and imports an encrypted key between homes; the passphrase must open it', async () => {
    const a = new Keystore(dir(), testCrypto);
    const b = new Keystore(dir(), testCrypto);
    const info = await a.generate({ role: 'delegation', passphrase: 'pw', scryptParams: FAST });
    const exported = utf8Encode(await a.exportEncrypted(info.keyid));
    expect(await code(b.importEncrypted(exported, 'nope', 'file'))).toBe('WRONG_PASSPHRASE');
    expect(await b.has(info.keyid)).toBe(false);
    await b.importEncrypted(exported, 'pw', 'file');
    expect((await b.unlock(info.keyid, 'pw')).keyid).toBe(info.keyid);
  });

  it('round-trips public key files and refuses what is not one', async () => {
    const ks = new Keystore(dir(), testCrypto);
    const info = await ks.generate({ role: 'delegation', passphrase: 'pw', scryptParams: FAST });
    expect(parsePublicKeyFile(utf8Encode(publicKeyFile(info.key)), 'alice.pub')).toEqual(info.key);
    expect(() => parsePublicKeyFile(utf8Encode('{"keytype":"ed25519"}'), 'x.pub')).toThrow(
      expect.objectContaining({ code: 'INVALID_KEY' }),
    );
    expect(() =>
      parsePublicKeyFile(
        utf8Encode('{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"zz"}}'),
        'x.pub',
      ),
    ).toThrow(expect.objectContaining({ code: 'INVALID_KEY' }));
  });
});

describe('passphrases', () => {
  it('come from the role variable, else a terminal, else a clear error at once', async () => {
    const noTerminal = { isTTY: false, prompt: async () => 'never' };
    const env = passphraseSource({ TUFA_TARGETS_PASSPHRASE: 'from-env' }, noTerminal);
    expect(await env.get('targets', 'the targets key')).toBe('from-env');
    // Known without asking: the environment only, never a prompt.
    expect(env.known('targets')).toBe('from-env');
    expect(env.known('root')).toBeUndefined();
    expect(passphraseSource({}, { isTTY: true, prompt: async () => 'typed' }).known('root')).toBeUndefined();
    try {
      await env.get('root', 'the root key');
      expect.unreachable();
    } catch (err) {
      expect((err as TufaError).code).toBe('PASSPHRASE_REQUIRED');
      expect((err as TufaError).message).toContain('TUFA_ROOT_PASSPHRASE');
    }
    const answers = ['a', 'b', 'c', 'd', 'e', 'f'];
    const terminal = passphraseSource({}, { isTTY: true, prompt: async () => answers.shift()! });
    expect(await code(terminal.get('root', 'new root key', true))).toBe('INVALID_ARGUMENT'); // the two differ, 3 times
    expect(answers).toEqual([]);
  });

  it('on a terminal, an empty or mismatched new passphrase asks again', async () => {
    const answers = ['', 'one', 'two', 'good', 'good'];
    const questions: string[] = [];
    const said: string[] = [];
    const terminal = passphraseSource(
      {},
      {
        isTTY: true,
        prompt: async (question) => {
          questions.push(question);
          return answers.shift()!;
        },
        say: (text) => said.push(text),
      },
    );
    expect(await terminal.get('targets', 'the new targets key', true)).toBe('good');
    expect(answers).toEqual([]);
    expect(questions.filter((q) => q.startsWith('Repeat'))).toHaveLength(2);
    expect(said).toEqual([
      'an empty passphrase protects nothing: try again',
      'the two passphrases differ: try again',
    ]);
    const empties = passphraseSource({}, { isTTY: true, prompt: async () => '' });
    expect(await code(empties.get('root', 'the new root key', true))).toBe('PASSPHRASE_REQUIRED');
  });
});

describe('staging', () => {
  it('keeps changes in order until reset, and refuses a corrupt file', async () => {
    const dirPath = mkdtempSync(join(tmpdir(), 'tufa-stage-'));
    const stage = new Staging(dirPath);
    const file = targetFileFor(testCrypto, utf8Encode('x'), { custom: { a: 1 } });
    await stage.add('x/app', { op: 'add', role: 'targets', path: 'v1', target: file });
    await stage.add('x/app', { op: 'remove', role: 'targets', path: 'v0' });
    expect((await stage.list('x/app')).map((c) => c.op)).toEqual(['add', 'remove']);
    const base = newTargets({ expires: expiresIn(Date.now(), 1e9) });
    const withV0 = applyChanges('targets', base, [{ op: 'add', role: 'targets', path: 'v0', target: file }]);
    const applied = applyChanges('targets', withV0, await stage.list('x/app'));
    expect(Object.keys(applied.targets)).toEqual(['v1']);
    expect(applied.targets.v1?.custom).toEqual({ a: 1 });
    expect(() => applyChanges('targets', base, [{ op: 'remove', role: 'targets', path: 'nope' }])).toThrow(
      expect.objectContaining({ code: 'NOT_FOUND' }),
    );
    expect(await stage.reset('x/app')).toBe(2);
    expect(await stage.list('x/app')).toEqual([]);
    writeFileSync(join(dirPath, `${encodeURIComponent('x/app')}.json`), '[{"op":"explode"}]');
    expect(await code(stage.list('x/app'))).toBe('INVALID_ARGUMENT');
  });
});

describe('exit codes', () => {
  it('map error codes to the documented exit statuses', () => {
    expect(exitCodeFor('HASH_MISMATCH')).toBe(1);
    expect(exitCodeFor('EXPIRED')).toBe(1);
    expect(exitCodeFor('UNTRUSTED_ROOT')).toBe(1);
    expect(exitCodeFor('WRONG_PASSPHRASE')).toBe(2);
    expect(exitCodeFor('INVALID_ARGUMENT')).toBe(2);
    expect(exitCodeFor('NETWORK')).toBe(3);
    expect(exitCodeFor('TIMEOUT')).toBe(3);
    expect(exitCodeFor('NOT_FOUND')).toBe(4);
  });
});

describe('P-256 keys in the keystore (kept from Notary)', () => {
  const FAST_P256 = { N: 1024, r: 8, p: 1 };

  it('records a key on a PKCS#11 token by URI and public key only; never unlocks or exports it', async () => {
    const ks = new Keystore(join(mkdtempSync(join(tmpdir(), 'tufa-ks-')), 'private'), testCrypto);
    const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ format: 'pem', type: 'spki' })
      .toString();
    const key = p256PublicKey(spki);
    const uri = 'pkcs11:token=t;object=k;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so';
    const info = await ks.storeReference({ role: 'root', gun: 'x/app', key, pkcs11: uri });
    expect(info).toMatchObject({ keyid: computeKeyId(key), role: 'root', gun: 'x/app', pkcs11: uri });
    expect(await ks.list()).toEqual([{ ...info, created: expect.any(String) }]);
    const text = readFileSync(join(ks.dir, `${info.keyid}.key`), 'utf8');
    expect(Object.keys(JSON.parse(text)).sort()).toEqual([
      'created',
      'gun',
      'keyid',
      'pkcs11',
      'public',
      'role',
      'tufa_key',
    ]);
    expect(await code(() => ks.unlock(info.keyid, 'pw'))).toBe('INVALID_ARGUMENT');
    expect(await code(() => ks.exportEncrypted(info.keyid))).toBe('INVALID_ARGUMENT');
    expect(await ks.hasDefaultCost(info.keyid)).toBe(false);
    expect(await code(() => ks.storeReference({ role: 'root', key, pkcs11: uri }))).toBe('INVALID_ARGUMENT');
    expect(
      await code(() => ks.storeReference({ role: 'root', key, pkcs11: 'pkcs11:id=%01?pin-value=1' })),
    ).toBe('INVALID_ARGUMENT');
    // A damaged reference (a PIN written into its URI, another public key) is a bad key file.
    const file = join(ks.dir, `${info.keyid}.key`);
    writeFileSync(
      file,
      text.replace('id=%01', 'id=%01?pin-value=1234').replace('?module-path', '&module-path'),
    );
    expect(await code(() => ks.info(info.keyid))).toBe('INVALID_KEY');
    const other = p256PublicKey(
      generateKeyPairSync('ec', { namedCurve: 'P-256' })
        .publicKey.export({ format: 'pem', type: 'spki' })
        .toString(),
    );
    writeFileSync(file, text.replace(JSON.stringify(key.keyval.public), JSON.stringify(other.keyval.public)));
    expect(await code(() => ks.info(info.keyid))).toBe('INVALID_KEY');
  });

  it('generates a P-256 key (type ecdsa) whose DER signatures core and tuf-js verify', async () => {
    const ks = new Keystore(join(mkdtempSync(join(tmpdir(), 'tufa-ks-')), 'private'), testCrypto);
    const info = await ks.generate({
      role: 'targets',
      passphrase: 'pw',
      type: 'ecdsa',
      scryptParams: FAST_P256,
    });
    expect(info.key).toMatchObject({ keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256' });
    expect((await ks.list()).map((k) => k.key.scheme)).toEqual(['ecdsa-sha2-nistp256']);
    const signer = await ks.unlock(info.keyid, 'pw');
    const doc = JSON.parse(
      Buffer.from(
        serializeMetadata(
          await signMetadata(newTargets({ expires: expiresIn(Date.now(), 86_400_000) }), [signer]),
        ),
      ).toString(),
    );
    expect(doc.signatures[0].sig.slice(0, 2)).toBe('30');
    const tufJsKey = TufJsKey.fromJSON(info.keyid, keyToJsonForTufJs(info.key));
    expect(() => tufJsKey.verifySignature(TufJsMetadata.fromJSON(MetadataKind.Targets, doc))).not.toThrow();
    doc.signed.version = 2;
    expect(() => tufJsKey.verifySignature(TufJsMetadata.fromJSON(MetadataKind.Targets, doc))).toThrow();
  });

  it('stores a P-256 key encrypted, unlocks it, and signs DER ECDSA that core and tuf-js verify', async () => {
    const ks = new Keystore(join(mkdtempSync(join(tmpdir(), 'tufa-ks-')), 'private'), testCrypto);
    const pkcs8 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      format: 'der',
      type: 'pkcs8',
    });
    const info = await ks.store({
      role: 'targets',
      passphrase: 'pw',
      privateKey: new Uint8Array(pkcs8),
      p256: true,
      scryptParams: FAST_P256,
    });
    expect(info.key).toMatchObject({ keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256' });
    expect(info.key.keyval.public).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(readFileSync(join(ks.dir, `${info.keyid}.key`), 'utf8')).not.toContain(
      Buffer.from(pkcs8).toString('base64'),
    );
    expect((await ks.info(info.keyid)).key).toEqual(info.key);
    const signer = await ks.unlock(info.keyid, 'pw');
    expect(await code(() => ks.unlock(info.keyid, 'wrong'))).toBe('WRONG_PASSPHRASE');
    const bytes = serializeMetadata(
      await signMetadata(newTargets({ expires: expiresIn(Date.now(), 86_400_000) }), [signer]),
    );
    const doc = JSON.parse(Buffer.from(bytes).toString());
    // DER: a SEQUENCE, not 64 raw bytes.
    expect(doc.signatures[0].sig.slice(0, 2)).toBe('30');
    expect(
      testCrypto
        .verifier(info.key)!
        .verify(Buffer.from(doc.signatures[0].sig, 'hex'), utf8Encode(canonicalJson(doc.signed))),
    ).toBe(true);
    const tufJsKey = TufJsKey.fromJSON(info.keyid, {
      keytype: 'ecdsa',
      scheme: 'ecdsa-sha2-nistp256',
      keyval: { public: info.key.keyval.public },
    });
    expect(() => tufJsKey.verifySignature(TufJsMetadata.fromJSON(MetadataKind.Targets, doc))).not.toThrow();
    doc.signed.version = 2;
    expect(() => tufJsKey.verifySignature(TufJsMetadata.fromJSON(MetadataKind.Targets, doc))).toThrow();
  });

  it('refuses a P-256 key file whose public key is not its key id', async () => {
    const ks = new Keystore(join(mkdtempSync(join(tmpdir(), 'tufa-ks-')), 'private'), testCrypto);
    const pkcs8 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      format: 'der',
      type: 'pkcs8',
    });
    const info = await ks.store({
      role: 'root',
      passphrase: 'pw',
      privateKey: new Uint8Array(pkcs8),
      p256: true,
      scryptParams: FAST_P256,
    });
    const file = join(ks.dir, `${info.keyid}.key`);
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ format: 'pem', type: 'spki' })
      .toString()
      .trim();
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    doc.public.keyval.public = other;
    writeFileSync(file, JSON.stringify(doc));
    expect(await code(() => ks.info(info.keyid))).toBe('INVALID_KEY');
  });
});
