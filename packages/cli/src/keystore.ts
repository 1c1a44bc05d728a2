/**
 * The keystore: ed25519 private keys encrypted with a passphrase (scrypt, parameters stored in
 * the file; AES-256-GCM with the key id as associated data), one file per key, mode 0600. ECDSA
 * P-256 keys (generated with `--type ecdsa`, or imported from Notary by `tufa notary import
 * --keep-keys`) are stored the same way (PKCS#8 DER inside) and sign ecdsa-sha2-nistp256 with DER
 * signatures, as securesystemslib does. A key on a PKCS#11 token has a file here too, holding
 * only its public key and its PKCS#11 URI (pkcs11.ts signs with it).
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as nodeSign,
  randomBytes,
  scrypt,
} from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type CryptoProvider,
  computeKeyId,
  ed25519Signer,
  generateEd25519Key,
  type JsonObject,
  type Key,
  keyToJson,
  p256PublicKey,
  parseJson,
  parsePkcs11Uri,
  type Signer,
  TufaError,
} from '@tufa/core';
import { readFileBounded, readLocalFile, writeFileAtomic } from './home.js';

/** What a key is for: the role whose passphrase variable unlocks it. */
export type KeyRole = 'root' | 'targets' | 'snapshot' | 'delegation';
export const KEY_ROLES: readonly KeyRole[] = Object.freeze(['root', 'targets', 'snapshot', 'delegation']);

/** scrypt cost: 2^15 × 8 ≈ 32 MiB and about 0.1 s here; files may state up to 2^20 (1 GiB). */
export const DEFAULT_SCRYPT = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });
const MAX_SCRYPT = { N: 2 ** 20, r: 16, p: 4 };
const KEY_FILE_LIMIT = 16 * 1024;

export type UnlockedKey = Signer & { privateKey: Uint8Array };

/** The key types the keystore generates: ed25519, or ECDSA P-256 (`ecdsa-sha2-nistp256`, as tokens make). */
export type KeyType = 'ed25519' | 'ecdsa';
export const KEY_TYPES: readonly KeyType[] = Object.freeze(['ed25519', 'ecdsa']);

export interface StoredKeyInfo {
  readonly keyid: string;
  readonly role: KeyRole;
  /** The collection the key was made for, when it was made for one. */
  readonly gun: string | undefined;
  readonly key: Key;
  readonly created: string;
  /** Where the private key lives when not in this keystore: its PKCS#11 URI (RFC 7512). */
  readonly pkcs11: string | undefined;
}

/** What every key file says of its key, wherever the private key lives. */
interface KeyFileHead {
  tufa_key: 1;
  keyid: string;
  role: KeyRole;
  gun: string | null;
  created: string;
  public: JsonObject;
}

interface KeyFile extends KeyFileHead {
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  cipher: { name: 'aes-256-gcm'; nonce: string };
  ciphertext: string;
}

/** A key on a PKCS#11 token: what names it there, and its public key; nothing secret. */
interface ReferenceFile extends KeyFileHead {
  pkcs11: string;
}

const isReference = (file: KeyFile | ReferenceFile): file is ReferenceFile => 'pkcs11' in file;

function deriveKey(
  passphrase: string,
  salt: Buffer,
  params: { N: number; r: number; p: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(
      passphrase.normalize('NFC'),
      salt,
      32,
      { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
}

export class Keystore {
  /** Decryptions started in this process, by key id (a publish starts them early: prefetch). */
  private readonly unlocking = new Map<string, { passphrase: string; signer: Promise<UnlockedKey> }>();

  constructor(
    readonly dir: string,
    /** Derives, signs and checks the keys (the command's provider). */
    private readonly crypto: CryptoProvider,
  ) {}

  private path(keyid: string): string {
    if (!/^[0-9a-f]{64}$/.test(keyid)) {
      throw new TufaError('INVALID_ARGUMENT', `not a key id: ${keyid.slice(0, 80)}`, {
        found: keyid.slice(0, 80),
      });
    }
    return join(this.dir, `${keyid}.key`);
  }

  /** Generates a key (ed25519 unless `type` says ecdsa) and stores it encrypted under `passphrase`. */
  async generate(options: {
    role: KeyRole;
    gun?: string | undefined;
    passphrase: string;
    type?: KeyType;
    now?: number;
    scryptParams?: { N: number; r: number; p: number };
  }): Promise<StoredKeyInfo> {
    if (options.type === 'ecdsa') {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const pkcs8 = new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' }));
      return this.store({ ...options, privateKey: pkcs8, p256: true });
    }
    const pair = generateEd25519Key(this.crypto);
    return this.store({ ...options, privateKey: pair.privateKey });
  }

  /**
   * Stores an existing private key encrypted under `passphrase`: an ed25519 seed (32 bytes), or
   * with `p256` a P-256 key as PKCS#8 DER.
   */
  async store(options: {
    role: KeyRole;
    gun?: string | undefined;
    passphrase: string;
    privateKey: Uint8Array;
    p256?: boolean;
    now?: number;
    scryptParams?: { N: number; r: number; p: number };
  }): Promise<StoredKeyInfo> {
    if (options.passphrase.length === 0)
      throw new TufaError('INVALID_ARGUMENT', 'an empty passphrase protects nothing');
    const signer =
      options.p256 === true ? p256Signer(options.privateKey) : ed25519Signer(this.crypto, options.privateKey);
    const params = options.scryptParams ?? DEFAULT_SCRYPT;
    const salt = randomBytes(16);
    const nonce = randomBytes(12);
    const key = await deriveKey(options.passphrase, salt, params);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(Buffer.from(signer.keyid));
    const ciphertext = Buffer.concat([
      cipher.update(options.privateKey),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    const created = new Date(options.now ?? Date.now()).toISOString();
    const file: KeyFile = {
      tufa_key: 1,
      keyid: signer.keyid,
      role: options.role,
      gun: options.gun ?? null,
      created,
      public: keyToJson(signer.key),
      kdf: { name: 'scrypt', ...params, salt: salt.toString('base64') },
      cipher: { name: 'aes-256-gcm', nonce: nonce.toString('base64') },
      ciphertext: ciphertext.toString('base64'),
    };
    await writeFileAtomic(this.path(signer.keyid), `${JSON.stringify(file, null, 2)}\n`);
    this.unlocking.delete(signer.keyid);
    return {
      keyid: signer.keyid,
      role: options.role,
      gun: options.gun,
      key: signer.key,
      created,
      pkcs11: undefined,
    };
  }

  /** Records a key that lives on a PKCS#11 token: its URI and public key (P-256 or Ed25519). */
  async storeReference(options: {
    role: KeyRole;
    gun?: string | undefined;
    key: Key;
    pkcs11: string;
    now?: number;
  }): Promise<StoredKeyInfo> {
    parsePkcs11Uri(options.pkcs11);
    const keyid = computeKeyId(options.key);
    const created = new Date(options.now ?? Date.now()).toISOString();
    const file: ReferenceFile = {
      tufa_key: 1,
      keyid,
      role: options.role,
      gun: options.gun ?? null,
      created,
      public: keyToJson(options.key),
      pkcs11: options.pkcs11,
    };
    const source = `key file ${this.path(keyid)}`;
    checkReferenceFile(file, keyid, source);
    if (await this.has(keyid)) {
      throw new TufaError('INVALID_ARGUMENT', `key ${keyid.slice(0, 12)}… is in this home already`, {
        found: keyid,
      });
    }
    await writeFileAtomic(this.path(keyid), `${JSON.stringify(file, null, 2)}\n`);
    return { keyid, role: options.role, gun: options.gun, key: options.key, created, pkcs11: options.pkcs11 };
  }

  async list(): Promise<StoredKeyInfo[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: StoredKeyInfo[] = [];
    for (const name of names.sort()) {
      if (!/^[0-9a-f]{64}\.key$/.test(name)) continue;
      out.push(await this.info(name.slice(0, 64)));
    }
    return out;
  }

  async has(keyid: string): Promise<boolean> {
    return (await readFileBounded(this.path(keyid), KEY_FILE_LIMIT, 'key file')) !== undefined;
  }

  async info(keyid: string): Promise<StoredKeyInfo> {
    const file = await this.read(keyid);
    return {
      keyid: file.keyid,
      role: file.role,
      gun: file.gun ?? undefined,
      key: publicKeyOf(file),
      created: file.created,
      pkcs11: isReference(file) ? file.pkcs11 : undefined,
    };
  }

  /**
   * Decrypts a key; a wrong passphrase is a clear error naming the key. A decryption under way
   * or done in this process with the same passphrase is shared, not run again; a failed one is
   * forgotten (the next call reads the file again).
   */
  unlock(keyid: string, passphrase: string): Promise<UnlockedKey> {
    const started = this.unlocking.get(keyid);
    if (started !== undefined && started.passphrase === passphrase) return started.signer;
    const signer = this.read(keyid).then((file) => decrypt(this.crypto, encrypted(file), passphrase));
    const entry = { passphrase, signer };
    this.unlocking.set(keyid, entry);
    signer.catch(() => {
      if (this.unlocking.get(keyid) === entry) this.unlocking.delete(keyid);
    });
    return signer;
  }

  /** Whether the key's file asks no more of scrypt than tufa's default (about 0.1 s, 32 MiB). */
  async hasDefaultCost(keyid: string): Promise<boolean> {
    const file = await this.read(keyid);
    if (isReference(file)) return false;
    const { N, r, p } = file.kdf;
    return N <= DEFAULT_SCRYPT.N && r <= DEFAULT_SCRYPT.r && p <= DEFAULT_SCRYPT.p;
  }

  /** The stored (still encrypted) key file, for `tufa key export --private`. */
  async exportEncrypted(keyid: string): Promise<string> {
    return `${JSON.stringify(encrypted(await this.read(keyid)), null, 2)}\n`;
  }

  /** Imports a key file written by `key export --private`; the passphrase must open it. */
  async importEncrypted(bytes: Uint8Array, passphrase: string, source: string): Promise<StoredKeyInfo> {
    const file = parsePrivateKeyFile(bytes, source);
    const keyid = file.keyid;
    await decrypt(this.crypto, file, passphrase);
    await writeFileAtomic(this.path(keyid), `${JSON.stringify(file, null, 2)}\n`);
    this.unlocking.delete(keyid);
    return this.info(keyid);
  }

  private async read(keyid: string): Promise<KeyFile | ReferenceFile> {
    const bytes = await readFileBounded(this.path(keyid), KEY_FILE_LIMIT, 'key file');
    if (bytes === undefined) {
      throw new TufaError('NOT_FOUND', `no private key ${keyid.slice(0, 12)}… in ${this.dir}`, {
        found: keyid,
      });
    }
    const source = `key file ${this.path(keyid)}`;
    const doc = keyFileJson(bytes, source, PRIVATE_KEY_FORMAT);
    if (field(doc, 'pkcs11') !== undefined) return checkReferenceFile(doc, keyid, source);
    return checkKeyFile(doc, keyid, source);
  }
}

/** The encrypted key file; a key on a token has none (its private key never leaves it). */
function encrypted(file: KeyFile | ReferenceFile): KeyFile {
  if (isReference(file)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `key ${file.keyid.slice(0, 12)}… lives on a PKCS#11 token (${file.pkcs11}): its private key never leaves it`,
      { found: file.pkcs11 },
    );
  }
  return file;
}

function checkReferenceFile(doc: unknown, keyid: string, source: string): ReferenceFile {
  const bad = (what: string): never => {
    throw new TufaError('INVALID_KEY', `${source}: ${what} (a PKCS#11 key reference)`, { found: keyid });
  };
  const f = (...path: string[]) => field(doc, ...path);
  if (f('tufa_key') !== 1) bad('no "tufa_key": 1');
  if (f('keyid') !== keyid) bad('names another key id');
  if (!KEY_ROLES.includes(f('role') as KeyRole)) bad('unknown role');
  const gun = f('gun');
  if (gun !== null && typeof gun !== 'string') bad('bad gun');
  if (typeof f('created') !== 'string') bad('bad creation time');
  const pub = f('public', 'keyval', 'public');
  const ed25519 = f('public', 'keytype') === 'ed25519' && f('public', 'scheme') === 'ed25519';
  const p256 = f('public', 'keytype') === 'ecdsa' && f('public', 'scheme') === 'ecdsa-sha2-nistp256';
  if (
    typeof pub !== 'string' ||
    !(
      (p256 && /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----$/.test(pub)) ||
      (ed25519 && /^[0-9a-f]{64}$/.test(pub))
    )
  ) {
    bad('not an ecdsa-sha2-nistp256 or ed25519 public key');
  }
  const key: Key = p256
    ? p256PublicKey(pub as string)
    : { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: pub as string }, extra: {} };
  if (computeKeyId(key) !== keyid) bad('public key does not match its key id');
  const uri = f('pkcs11');
  if (typeof uri !== 'string') return bad('no PKCS#11 URI');
  try {
    parsePkcs11Uri(uri);
  } catch (err) {
    bad((err as Error).message);
  }
  return doc as ReferenceFile;
}

async function decrypt(
  crypto: CryptoProvider,
  file: KeyFile,
  passphrase: string,
): Promise<Signer & { privateKey: Uint8Array }> {
  const key = await deriveKey(passphrase, Buffer.from(file.kdf.salt, 'base64'), file.kdf);
  const blob = Buffer.from(file.ciphertext, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(file.cipher.nonce, 'base64'));
  decipher.setAAD(Buffer.from(file.keyid));
  decipher.setAuthTag(blob.subarray(blob.length - 16));
  let seed: Uint8Array;
  try {
    seed = new Uint8Array(
      Buffer.concat([decipher.update(blob.subarray(0, blob.length - 16)), decipher.final()]),
    );
  } catch {
    // AES-GCM cannot tell the two apart; the file's structure was checked already.
    throw new TufaError(
      'WRONG_PASSPHRASE',
      `wrong passphrase for ${file.role} key ${file.keyid.slice(0, 12)}… (or a damaged key file)`,
      {
        role: file.role,
        details: { keyid: file.keyid },
      },
    );
  }
  const signer = file.public.keytype === 'ecdsa' ? p256Signer(seed) : ed25519Signer(crypto, seed);
  if (signer.keyid !== file.keyid) {
    throw new TufaError('INVALID_KEY', `key file ${file.keyid.slice(0, 12)}… holds another key`, {
      found: signer.keyid,
    });
  }
  return { ...signer, privateKey: seed };
}

/** A signer for a P-256 private key (PKCS#8 DER): ECDSA with SHA-256, DER-encoded signatures. */
export function p256Signer(pkcs8: Uint8Array): Signer {
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  } catch (cause) {
    throw new TufaError('INVALID_KEY', 'not a PKCS#8 private key', { cause });
  }
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TufaError('UNSUPPORTED_KEY', 'an ECDSA key that is not on P-256');
  }
  const key = p256PublicKey(createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString());
  return {
    keyid: computeKeyId(key),
    key,
    sign: async (message) =>
      new Uint8Array(nodeSign('sha256', message, { key: privateKey, dsaEncoding: 'der' })),
  };
}

function publicKeyOf(file: KeyFile | ReferenceFile): Key {
  if (file.public.keytype === 'ecdsa')
    return p256PublicKey(field(file, 'public', 'keyval', 'public') as string);
  return {
    keytype: 'ed25519',
    scheme: 'ed25519',
    keyval: { public: field(file, 'public', 'keyval', 'public') as string },
    extra: {},
  };
}

function field(value: unknown, ...path: string[]): unknown {
  let v = value;
  for (const p of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, p)) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

/** What `tufa key import` reads, for messages that say what was expected. */
const PRIVATE_KEY_FORMAT =
  'a private key file written by `tufa key export KEYID --private` (JSON with "tufa_key": 1)';
const PUBLIC_KEY_FORMAT =
  'a public key file written by `tufa key export KEYID` (a TUF key object: keytype, scheme, keyval.public)';

/** The JSON of a key file; a file that is not JSON is a bad key file (INVALID_KEY), named by `source`. */
function keyFileJson(bytes: Uint8Array, source: string, expected: string): unknown {
  try {
    return parseJson(bytes, { source });
  } catch (err) {
    throw new TufaError(
      'INVALID_KEY',
      `${source}: not JSON (${(err as Error).message}); expected ${expected}`,
      {
        expected,
        cause: err,
      },
    );
  }
}

/** A private key file to import, checked whole; `source` (its path) names it in every refusal. */
export function parsePrivateKeyFile(bytes: Uint8Array, source: string): KeyFile {
  const doc = keyFileJson(bytes, source, PRIVATE_KEY_FORMAT);
  if (field(doc, 'tufa_key') === undefined && field(doc, 'keyval') !== undefined) {
    throw new TufaError(
      'INVALID_KEY',
      `${source}: a public key, not a private key file; expected ${PRIVATE_KEY_FORMAT} (a public key is given to --key, --root-key or tufa key add)`,
      { expected: PRIVATE_KEY_FORMAT },
    );
  }
  const keyid = field(doc, 'keyid');
  return checkKeyFile(doc, typeof keyid === 'string' ? keyid : '', source);
}

function checkKeyFile(doc: unknown, keyid: string, source: string): KeyFile {
  const bad = (what: string): never => {
    throw new TufaError('INVALID_KEY', `${source}: ${what}; expected ${PRIVATE_KEY_FORMAT}`, {
      expected: PRIVATE_KEY_FORMAT,
      ...(keyid === '' ? {} : { found: keyid }),
    });
  };
  const f = (...path: string[]) => field(doc, ...path);
  const int = (v: unknown, max: number): v is number =>
    typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= max;
  // Strict base64 (Buffer.from skips stray characters): a damaged field is found here, before
  // AES-GCM, which cannot tell a damaged ciphertext from a wrong passphrase.
  const b64 = (v: unknown): number =>
    typeof v === 'string' && v.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(v)
      ? Buffer.from(v, 'base64').length
      : -1;
  if (f('tufa_key') !== 1) bad('no "tufa_key": 1');
  if (typeof f('keyid') !== 'string' || !/^[0-9a-f]{64}$/.test(f('keyid') as string)) bad('no key id');
  if (f('keyid') !== keyid) bad('names another key id');
  if (!KEY_ROLES.includes(f('role') as KeyRole)) bad('unknown role');
  const gun = f('gun');
  if (gun !== null && typeof gun !== 'string') bad('bad gun');
  const p256 = f('public', 'keytype') === 'ecdsa' && f('public', 'scheme') === 'ecdsa-sha2-nistp256';
  if (!p256 && (f('public', 'keytype') !== 'ed25519' || f('public', 'scheme') !== 'ed25519')) {
    bad('not an ed25519 or ecdsa-sha2-nistp256 key');
  }
  const pub = f('public', 'keyval', 'public');
  if (
    typeof pub !== 'string' ||
    !(
      p256 ? /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----$/ : /^[0-9a-f]{64}$/
    ).test(pub)
  ) {
    bad('bad public key');
  }
  const key: Key = p256
    ? p256PublicKey(pub as string)
    : { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: pub as string }, extra: {} };
  if (computeKeyId(key) !== keyid) bad('public key does not match its key id');
  const [N, r, p] = [f('kdf', 'N'), f('kdf', 'r'), f('kdf', 'p')];
  if (
    f('kdf', 'name') !== 'scrypt' ||
    !int(N, MAX_SCRYPT.N) ||
    !int(r, MAX_SCRYPT.r) ||
    !int(p, MAX_SCRYPT.p)
  ) {
    return bad('scrypt parameters missing or out of bounds');
  }
  if (N < 2 || (N & (N - 1)) !== 0) bad('scrypt N must be a power of two');
  const salt = b64(f('kdf', 'salt'));
  if (salt < 16)
    bad(salt < 0 ? 'the salt is not base64 (a damaged file)' : 'the salt is shorter than 16 bytes');
  if (f('cipher', 'name') !== 'aes-256-gcm') bad('unknown cipher');
  const nonce = b64(f('cipher', 'nonce'));
  if (nonce !== 12)
    bad(nonce < 0 ? 'the nonce is not base64 (a damaged file)' : `the nonce is ${nonce} bytes, not 12`);
  const ciphertext = b64(f('ciphertext'));
  // A P-256 PKCS#8 DER is about 138 bytes; an ed25519 seed is 32.
  if (p256 ? ciphertext < 16 + 64 || ciphertext > 16 + 512 : ciphertext !== 32 + 16) {
    bad(
      ciphertext < 0
        ? 'the ciphertext is not base64 (a damaged file)'
        : `the ciphertext is ${ciphertext} bytes, not ${p256 ? 'a P-256 key' : 48} (a damaged file)`,
    );
  }
  if (typeof f('created') !== 'string') bad('bad creation time');
  return doc as KeyFile;
}

/** A key this home holds (in the keystore or on a token), named by its key id. */
export async function homeKey(keystore: Keystore, keyid: string, option: string): Promise<StoredKeyInfo> {
  if (!/^[0-9a-f]{64}$/.test(keyid)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${option}: not a key id (64 hex digits): ${keyid.slice(0, 80)}`,
      {
        found: keyid.slice(0, 80),
      },
    );
  }
  if (!(await keystore.has(keyid))) {
    throw new TufaError('NOT_FOUND', `${option}: this home holds no key ${keyid} (see tufa key list)`, {
      found: keyid,
    });
  }
  return keystore.info(keyid);
}

/** A public key file as `tufa key export` writes it: the TUF key object. */
export function publicKeyFile(key: Key): string {
  return `${JSON.stringify(keyToJson(key), null, 2)}\n`;
}

/** Reads a public key file (`tufa key export` output, or any TUF ed25519/ecdsa/rsa key object). */
export function parsePublicKeyFile(bytes: Uint8Array, source: string): Key {
  const doc = keyFileJson(bytes, source, PUBLIC_KEY_FORMAT);
  const [keytype, scheme, pub] = [
    field(doc, 'keytype'),
    field(doc, 'scheme'),
    field(doc, 'keyval', 'public'),
  ];
  if (typeof keytype !== 'string' || typeof scheme !== 'string' || typeof pub !== 'string') {
    throw new TufaError(
      'INVALID_KEY',
      `${source}: not a TUF public key object (keytype, scheme, keyval.public)`,
    );
  }
  const key: Key = { keytype, scheme, keyval: { public: pub }, extra: {} };
  if (keytype === 'ed25519' && !/^[0-9a-f]{64}$/.test(pub)) {
    throw new TufaError('INVALID_KEY', `${source}: an ed25519 public key is 64 lowercase hex digits`);
  }
  return key;
}

/** Reads a public key file (`tufa key export` output) from disk, bounded. */
export async function readPublicKey(file: string): Promise<Key> {
  return parsePublicKeyFile(await readLocalFile(file, 64 * 1024, 'public key file'), file);
}
