/**
 * A Notary v1 collection built in memory, in Notary's dialect, for the reader's refusal tests:
 * P-256 keys (node:crypto), root certificates made by openssl, signatures as Notary writes them
 * (ECDSA raw r‖s over its canonical JSON). Each role can be edited before it is signed, or
 * signed by other keys. The end-to-end tests use the real notary 0.7 instead.
 */
import { execFileSync } from 'node:child_process';
import { constants, createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NotaryKey, notaryCanonical, notaryKeyId } from './format.js';
import type { NotaryFetch } from './reader.js';

export const GUN = 'registry.example.com/team/app';
export const DAY = 24 * 3600 * 1000;

export interface SimKey {
  readonly id: string;
  readonly key: NotaryKey;
  readonly privateKey: KeyObject;
}

/** A P-256 key as Notary writes it in targets, snapshot and delegations (`ecdsa`, SPKI DER in base64). */
export function ecdsaKey(): SimKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key: NotaryKey = {
    keytype: 'ecdsa',
    public: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
  };
  return { id: notaryKeyId(key), key, privateKey };
}

/** An RSA key (`rsa`, SPKI DER in base64): Notary signs with it by RSASSA-PSS, SHA-256, salt as long as the hash. */
export function rsaKey(): SimKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key: NotaryKey = {
    keytype: 'rsa',
    public: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
  };
  return { id: notaryKeyId(key), key, privateKey };
}

/** A P-256 key in a self-signed certificate with CN=`cn` (`ecdsa-x509`), valid `days` from now. */
export function certificateKey(cn: string, days = 30): SimKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const dir = mkdtempSync(join(tmpdir(), 'tufa-notary-cert-'));
  try {
    writeFileSync(join(dir, 'key.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-key',
        'key.pem',
        '-out',
        'cert.pem',
        '-days',
        String(days),
        '-subj',
        `/CN=${cn.replaceAll('/', '\\/')}`,
      ],
      {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const key: NotaryKey = {
      keytype: 'ecdsa-x509',
      public: readFileSync(join(dir, 'cert.pem')).toString('base64'),
    };
    return { id: notaryKeyId(key), key, privateKey };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const keyJson = (k: SimKey) => ({ keytype: k.key.keytype, keyval: { private: null, public: k.key.public } });

/** A signed document as Notary serves it. */
export function signDocument(
  signed: Record<string, unknown>,
  keys: readonly SimKey[],
  options: { der?: boolean; method?: string } = {},
): Uint8Array {
  const message = notaryCanonical(signed);
  const signatures = keys.map((k) => {
    const rsa = k.key.keytype === 'rsa';
    const sig = rsa
      ? sign('sha256', message, {
          key: k.privateKey,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: 32,
        })
      : sign('sha256', message, {
          key: k.privateKey,
          dsaEncoding: options.der === true ? 'der' : 'ieee-p1363',
        });
    return { keyid: k.id, method: options.method ?? (rsa ? 'rsapss' : 'ecdsa'), sig: sig.toString('base64') };
  });
  return Buffer.from(JSON.stringify({ signed, signatures }));
}

const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');
const digest = (alg: 'sha256' | 'sha512', bytes: Uint8Array) => createHash(alg).update(bytes).digest('hex');
export const metaOf = (bytes: Uint8Array) => ({
  length: bytes.length,
  hashes: { sha256: b64(digest('sha256', bytes)), sha512: b64(digest('sha512', bytes)) },
});
/** Go's time format, with nanoseconds. */
export const expiresAt = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1123456Z');

type Edit = (signed: Record<string, any>) => void;

export interface SimOptions {
  /** Edits a role's signed part before it is signed: root, timestamp, snapshot, targets, targets/releases. */
  edit?: Partial<Record<string, Edit>>;
  /** Who signs a role (default: its keys). */
  signers?: Partial<Record<string, SimKey[]>>;
  /** Signatures in DER, or another method, for one role. */
  signOptions?: Partial<Record<string, { der?: boolean; method?: string }>>;
  /** Changes the bytes served for a file after everything is signed. */
  serve?: (file: string, bytes: Uint8Array) => Uint8Array | undefined;
  rootKeys?: SimKey[];
  rootThreshold?: number;
}

export interface SimKeys {
  root: SimKey[];
  targets: SimKey;
  snapshot: SimKey;
  timestamp: SimKey;
  releases: SimKey;
  nightly: SimKey;
}

/** Keys made once per test file: openssl for each certificate is the slow part. */
export function simKeys(gun = GUN): SimKeys {
  return {
    root: [certificateKey(gun)],
    targets: ecdsaKey(),
    snapshot: ecdsaKey(),
    timestamp: ecdsaKey(),
    releases: ecdsaKey(),
    nightly: ecdsaKey(),
  };
}

export interface SimCollection {
  files: Map<string, Uint8Array>;
  fetch: NotaryFetch;
  /** The root's version 1 bytes (what a trust dir would hold). */
  root: Uint8Array;
}

/**
 * targets: v1 and v2 and a delegation `targets/releases` (prefix `releases/`), which lists
 * `releases/r1` and delegates `targets/releases/nightly` (prefix `releases/nightly/`) with one tag.
 */
export function buildCollection(keys: SimKeys, options: SimOptions = {}): SimCollection {
  const now = Date.now();
  const rootKeys = options.rootKeys ?? keys.root;
  const files = new Map<string, Uint8Array>();
  const make = (role: string, signed: Record<string, any>, own: SimKey[]): Uint8Array => {
    options.edit?.[role]?.(signed);
    return signDocument(signed, options.signers?.[role] ?? own, options.signOptions?.[role]);
  };
  const target = (content: string) => metaOf(Buffer.from(content));
  const nightly = make(
    'targets/releases/nightly',
    {
      _type: 'Targets',
      version: 1,
      expires: expiresAt(now + 90 * DAY),
      targets: { 'releases/nightly/n1': target('n1') },
      delegations: { keys: {}, roles: [] },
    },
    [keys.nightly],
  );
  const releases = make(
    'targets/releases',
    {
      _type: 'Targets',
      version: 1,
      expires: expiresAt(now + 90 * DAY),
      targets: { 'releases/r1': target('r1') },
      delegations: {
        keys: { [keys.nightly.id]: keyJson(keys.nightly) },
        roles: [
          {
            name: 'targets/releases/nightly',
            keyids: [keys.nightly.id],
            threshold: 1,
            paths: ['releases/nightly/'],
          },
        ],
      },
    },
    [keys.releases],
  );
  const targets = make(
    'targets',
    {
      _type: 'Targets',
      version: 1,
      expires: expiresAt(now + 90 * DAY),
      targets: { v1: { ...target('one'), custom: { note: 'kept' } }, v2: target('two') },
      delegations: {
        keys: { [keys.releases.id]: keyJson(keys.releases) },
        roles: [{ name: 'targets/releases', keyids: [keys.releases.id], threshold: 1, paths: ['releases/'] }],
      },
    },
    [keys.targets],
  );
  const rootSigned = {
    _type: 'Root',
    version: 1,
    expires: expiresAt(now + 3650 * DAY),
    consistent_snapshot: false,
    keys: Object.fromEntries(
      [...rootKeys, keys.targets, keys.snapshot, keys.timestamp].map((k) => [k.id, keyJson(k)]),
    ),
    roles: {
      root: { keyids: rootKeys.map((k) => k.id), threshold: options.rootThreshold ?? 1 },
      targets: { keyids: [keys.targets.id], threshold: 1 },
      snapshot: { keyids: [keys.snapshot.id], threshold: 1 },
      timestamp: { keyids: [keys.timestamp.id], threshold: 1 },
    },
  };
  const root = make('root', rootSigned, rootKeys);
  const snapshot = make(
    'snapshot',
    {
      _type: 'Snapshot',
      version: 1,
      expires: expiresAt(now + 90 * DAY),
      meta: {
        root: metaOf(root),
        targets: metaOf(targets),
        'targets/releases': metaOf(releases),
        'targets/releases/nightly': metaOf(nightly),
      },
    },
    [keys.snapshot],
  );
  const timestamp = make(
    'timestamp',
    {
      _type: 'Timestamp',
      version: 1,
      expires: expiresAt(now + 14 * DAY),
      meta: { snapshot: metaOf(snapshot) },
    },
    [keys.timestamp],
  );
  const sha = (b: Uint8Array) => digest('sha256', b);
  files.set('root.json', root);
  files.set('1.root.json', root);
  files.set('timestamp.json', timestamp);
  files.set(`snapshot.${sha(snapshot)}.json`, snapshot);
  files.set(`targets.${sha(targets)}.json`, targets);
  files.set(`targets/releases.${sha(releases)}.json`, releases);
  files.set(`targets/releases/nightly.${sha(nightly)}.json`, nightly);
  return {
    files,
    root,
    fetch: async (file) => {
      const bytes = files.get(file);
      return bytes === undefined ? undefined : (options.serve?.(file, bytes) ?? bytes);
    },
  };
}
