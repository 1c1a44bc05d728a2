/**
 * Notary v1's dialect of TUF, parsed strictly into typed objects: `_type` "Root"/"Targets"/…,
 * base64 hashes and signatures with a `method`, key objects with `"private": null`, x509 root
 * keys, snapshot meta by role name without version, hierarchical delegations with prefix paths,
 * `expires` with nanoseconds. Nothing here is a TUF 1.0 rule: core never sees this dialect.
 */
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import {
  type CryptoProvider,
  instantCeilingMs,
  type JsonValue,
  type Key,
  parseJson,
  parseRfc3339,
  TufaError,
  toHex,
} from '@tufa/core';

export type NotaryRoleType = 'Root' | 'Targets' | 'Snapshot' | 'Timestamp';

/** A Notary public key as metadata carries it. */
export interface NotaryKey {
  readonly keytype: 'ecdsa' | 'ecdsa-x509' | 'ed25519' | 'rsa' | 'rsa-x509';
  /** keyval.public: base64 of SPKI DER, of a PEM certificate (x509 types), or of 32 bytes (ed25519). */
  readonly public: string;
}

export interface NotarySignature {
  readonly keyid: string;
  readonly method: string;
  readonly sig: Uint8Array;
}

export interface NotaryMeta {
  readonly length: number;
  /** Hex digests by algorithm (decoded from Notary's base64). */
  readonly hashes: Readonly<Record<string, string>>;
}

export interface NotaryTarget extends NotaryMeta {
  readonly custom: JsonValue | undefined;
}

export interface NotaryRole {
  readonly keyids: readonly string[];
  readonly threshold: number;
}

export interface NotaryDelegation extends NotaryRole {
  readonly name: string;
  /** Path prefixes; "" delegates every path. */
  readonly paths: readonly string[];
}

interface Common {
  readonly version: number;
  readonly expires: string;
  /** `expires` in milliseconds since the epoch (nanoseconds dropped). */
  readonly expiresMs: number;
}

export interface NotaryRootSigned extends Common {
  readonly type: 'Root';
  readonly keys: Readonly<Record<string, NotaryKey>>;
  readonly roles: Readonly<Record<'root' | 'targets' | 'snapshot' | 'timestamp', NotaryRole>>;
}

export interface NotaryTargetsSigned extends Common {
  readonly type: 'Targets';
  readonly targets: Readonly<Record<string, NotaryTarget>>;
  readonly delegationKeys: Readonly<Record<string, NotaryKey>>;
  readonly delegations: readonly NotaryDelegation[];
}

export interface NotarySnapshotSigned extends Common {
  readonly type: 'Snapshot';
  /** By role name (`root`, `targets`, `targets/releases`), without `.json`. */
  readonly meta: Readonly<Record<string, NotaryMeta>>;
}

export interface NotaryTimestampSigned extends Common {
  readonly type: 'Timestamp';
  readonly meta: Readonly<Record<string, NotaryMeta>>;
}

export type NotarySigned =
  | NotaryRootSigned
  | NotaryTargetsSigned
  | NotarySnapshotSigned
  | NotaryTimestampSigned;

/** A parsed Notary document: its signed part, the bytes its signatures cover, its signatures. */
export interface NotaryDocument<T extends NotarySigned = NotarySigned> {
  readonly signed: T;
  readonly canonical: Uint8Array;
  readonly signatures: readonly NotarySignature[];
  /** sha256 of the bytes as served. */
  readonly bytes: Uint8Array;
}

const KEY_TYPES = new Set(['ecdsa', 'ecdsa-x509', 'ed25519', 'rsa', 'rsa-x509']);
// RFC 3339 as Go writes time.Time: up to nine fractional digits, Z or an offset.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function malformed(role: string, what: string, found?: unknown): never {
  throw new TufaError('INVALID_METADATA', `notary ${role}: ${what}`, {
    role,
    ...(found === undefined ? {} : { found }),
  });
}

type Obj = Record<string, JsonValue>;

function obj(v: JsonValue | undefined, role: string, what: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) malformed(role, `${what} is not an object`);
  return v as Obj;
}

function str(v: JsonValue | undefined, role: string, what: string): string {
  if (typeof v !== 'string') malformed(role, `${what} is not a string`);
  return v;
}

function int(v: JsonValue | undefined, role: string, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    malformed(role, `${what} is not an integer of at least ${min}`, v);
  }
  return v;
}

function only(o: Obj, allowed: readonly string[], role: string, what: string): void {
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) malformed(role, `${what} has an unknown field "${k}"`);
}

/** Strict base64 (Go's StdEncoding): padded, no stray characters. */
export function base64Bytes(v: string, role: string, what: string): Uint8Array {
  if (v.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) malformed(role, `${what} is not base64`);
  return new Uint8Array(Buffer.from(v, 'base64'));
}

/**
 * Notary's `expires` (RFC 3339, nanoseconds, `Z` or an offset) as the smallest whole millisecond not
 * before it: core's exact reading, which refuses impossible dates (Date.parse rolls 02-30 into March).
 */
export function parseExpires(v: string, role: string): number {
  const instant = RFC3339.test(v) ? parseRfc3339(v) : undefined;
  if (instant === undefined) malformed(role, 'expires is not an RFC 3339 time', v);
  return instantCeilingMs(instant);
}

function parseKey(v: JsonValue | undefined, role: string, what: string): NotaryKey {
  const o = obj(v, role, what);
  only(o, ['keytype', 'keyval'], role, what);
  const keytype = str(o.keytype, role, `${what}.keytype`);
  if (!KEY_TYPES.has(keytype)) malformed(role, `${what} has an unknown key type`, keytype);
  const keyval = obj(o.keyval, role, `${what}.keyval`);
  only(keyval, ['public', 'private'], role, `${what}.keyval`);
  // A private key has no place in metadata.
  if (keyval.private !== null && keyval.private !== undefined)
    malformed(role, `${what} carries a private key`);
  const pub = str(keyval.public, role, `${what}.keyval.public`);
  base64Bytes(pub, role, `${what}.keyval.public`);
  return { keytype: keytype as NotaryKey['keytype'], public: pub };
}

/** Notary's key id: sha256 of the canonical JSON of its key object, `"private": null` included. */
export function notaryKeyId(key: NotaryKey): string {
  return toHex(
    createHash('sha256')
      .update(notaryCanonical({ keytype: key.keytype, keyval: { private: null, public: key.public } }))
      .digest(),
  );
}

function parseKeys(v: JsonValue | undefined, role: string, what: string): Record<string, NotaryKey> {
  const o = obj(v, role, what);
  const keys: Record<string, NotaryKey> = Object.create(null);
  for (const [id, k] of Object.entries(o)) {
    const key = parseKey(k, role, `${what}["${id.slice(0, 16)}"]`);
    // Notary's client looks keys up by id: an id that is not the key's own would let one key pose as two.
    if (notaryKeyId(key) !== id) malformed(role, `key id ${id.slice(0, 16)}… is not the id of its key`, id);
    keys[id] = key;
  }
  return keys;
}

function parseRole(
  v: JsonValue | undefined,
  role: string,
  what: string,
  extra: readonly string[] = [],
): NotaryRole {
  const o = obj(v, role, what);
  only(o, ['keyids', 'threshold', ...extra], role, what);
  if (!Array.isArray(o.keyids)) malformed(role, `${what}.keyids is not a list`);
  const keyids = (o.keyids as JsonValue[]).map((k) => str(k, role, `${what}.keyids`));
  if (new Set(keyids).size !== keyids.length) malformed(role, `${what}.keyids lists a key twice`);
  return { keyids, threshold: int(o.threshold, role, `${what}.threshold`, 1) };
}

function parseMeta(v: JsonValue | undefined, role: string, what: string, custom: boolean): NotaryTarget {
  const o = obj(v, role, what);
  only(o, custom ? ['length', 'hashes', 'custom'] : ['length', 'hashes'], role, what);
  const length = int(o.length, role, `${what}.length`, 0);
  const hashesIn = obj(o.hashes, role, `${what}.hashes`);
  const hashes: Record<string, string> = Object.create(null);
  for (const [alg, h] of Object.entries(hashesIn)) {
    hashes[alg] = toHex(base64Bytes(str(h, role, `${what}.hashes.${alg}`), role, `${what}.hashes.${alg}`));
  }
  // Notary's client needs sha256 or sha512 and checks every one it knows.
  if (hashes.sha256 === undefined && hashes.sha512 === undefined)
    malformed(role, `${what} has no sha256 or sha512`);
  if (hashes.sha256 !== undefined && hashes.sha256.length !== 64)
    malformed(role, `${what}: a sha256 is 32 bytes`);
  if (hashes.sha512 !== undefined && hashes.sha512.length !== 128)
    malformed(role, `${what}: a sha512 is 64 bytes`);
  return { length, hashes, custom: o.custom === undefined || o.custom === null ? undefined : o.custom };
}

const DELEGATED_NAME = /^targets(\/[A-Za-z0-9_.-]+)+$/;

function parseSigned(role: string, expected: NotaryRoleType, v: JsonValue | undefined): NotarySigned {
  const o = obj(v, role, 'signed');
  const type = o._type;
  if (type !== expected) {
    throw new TufaError('WRONG_TYPE', `notary ${role}: _type is ${JSON.stringify(type)}, not "${expected}"`, {
      role,
      expected,
      found: type,
    });
  }
  const version = int(o.version, role, 'version', 1);
  const expires = str(o.expires, role, 'expires');
  const common = { version, expires, expiresMs: parseExpires(expires, role) };
  switch (expected) {
    case 'Root': {
      only(o, ['_type', 'version', 'expires', 'keys', 'roles', 'consistent_snapshot'], role, 'signed');
      const keys = parseKeys(o.keys, role, 'keys');
      const rolesIn = obj(o.roles, role, 'roles');
      const roles = {} as Record<'root' | 'targets' | 'snapshot' | 'timestamp', NotaryRole>;
      for (const name of ['root', 'targets', 'snapshot', 'timestamp'] as const) {
        if (rolesIn[name] === undefined) malformed(role, `roles has no ${name}`);
        const r = parseRole(rolesIn[name], role, `roles.${name}`);
        for (const id of r.keyids)
          if (keys[id] === undefined)
            malformed(role, `roles.${name} names a key that root does not carry`, id);
        if (r.threshold > r.keyids.length)
          malformed(role, `roles.${name}: threshold above its number of keys`);
        roles[name] = r;
      }
      return { type: 'Root', ...common, keys, roles };
    }
    case 'Targets': {
      only(o, ['_type', 'version', 'expires', 'targets', 'delegations'], role, 'signed');
      const targetsIn = obj(o.targets, role, 'targets');
      const targets: Record<string, NotaryTarget> = Object.create(null);
      for (const [path, t] of Object.entries(targetsIn))
        targets[path] = parseMeta(t, role, `targets["${path.slice(0, 64)}"]`, true);
      let delegationKeys: Record<string, NotaryKey> = Object.create(null);
      const delegations: NotaryDelegation[] = [];
      if (o.delegations !== undefined && o.delegations !== null) {
        const d = obj(o.delegations, role, 'delegations');
        only(d, ['keys', 'roles'], role, 'delegations');
        delegationKeys = parseKeys(d.keys, role, 'delegations.keys');
        if (!Array.isArray(d.roles)) malformed(role, 'delegations.roles is not a list');
        for (const [i, r] of (d.roles as JsonValue[]).entries()) {
          const what = `delegations.roles[${i}]`;
          const base = parseRole(r, role, what, ['name', 'paths']);
          const ro = r as Obj;
          const name = str(ro.name, role, `${what}.name`);
          // Notary: a delegated role is named under its delegator (targets/a, targets/a/b).
          if (
            !DELEGATED_NAME.test(name) ||
            !name.startsWith(`${role}/`) ||
            name.slice(role.length + 1).includes('/')
          ) {
            malformed(role, `${what}: ${name} is not a role directly under ${role}`, name);
          }
          if (!Array.isArray(ro.paths)) malformed(role, `${what}.paths is not a list`);
          const paths = (ro.paths as JsonValue[]).map((p) => str(p, role, `${what}.paths`));
          for (const id of base.keyids)
            if (delegationKeys[id] === undefined)
              malformed(role, `${what} names a key that delegations.keys does not carry`, id);
          if (base.threshold > base.keyids.length)
            malformed(role, `${what}: threshold above its number of keys`);
          if (delegations.some((x) => x.name === name)) malformed(role, `${name} is delegated twice`);
          delegations.push({ ...base, name, paths });
        }
      }
      return { type: 'Targets', ...common, targets, delegationKeys, delegations };
    }
    case 'Snapshot':
    case 'Timestamp': {
      only(o, ['_type', 'version', 'expires', 'meta'], role, 'signed');
      const metaIn = obj(o.meta, role, 'meta');
      const meta: Record<string, NotaryMeta> = Object.create(null);
      for (const [name, m] of Object.entries(metaIn)) {
        const { length, hashes } = parseMeta(m, role, `meta["${name.slice(0, 64)}"]`, false);
        meta[name] = { length, hashes };
      }
      return expected === 'Snapshot'
        ? { type: 'Snapshot', ...common, meta }
        : { type: 'Timestamp', ...common, meta };
    }
  }
}

/** The `_type` a role's document carries in Notary's dialect. */
export function notaryType(role: string): NotaryRoleType {
  if (role === 'root') return 'Root';
  if (role === 'snapshot') return 'Snapshot';
  if (role === 'timestamp') return 'Timestamp';
  return 'Targets';
}

/** Parses the bytes Notary served for `role`. */
export function parseNotaryDocument<T extends NotarySigned>(
  role: string,
  bytes: Uint8Array,
): NotaryDocument<T> {
  let doc: JsonValue;
  try {
    doc = parseJson(bytes, { source: `notary ${role}` });
  } catch (err) {
    throw new TufaError('INVALID_JSON', `notary ${role}: not JSON (${(err as Error).message})`, {
      role,
      cause: err,
    });
  }
  const top = obj(doc, role, 'the document');
  only(top, ['signed', 'signatures'], role, 'the document');
  const signed = parseSigned(role, notaryType(role), top.signed) as T;
  if (!Array.isArray(top.signatures)) malformed(role, 'signatures is not a list');
  const signatures = (top.signatures as JsonValue[]).map((s, i) => {
    const o = obj(s, role, `signatures[${i}]`);
    only(o, ['keyid', 'method', 'sig'], role, `signatures[${i}]`);
    return {
      keyid: str(o.keyid, role, `signatures[${i}].keyid`),
      method: str(o.method, role, `signatures[${i}].method`),
      sig: base64Bytes(str(o.sig, role, `signatures[${i}].sig`), role, `signatures[${i}].sig`),
    };
  });
  return { signed, canonical: notaryCanonical(top.signed), signatures, bytes };
}

/**
 * The bytes Notary signs: its canonical JSON (docker/go's canonical mode of encoding/json) of the
 * signed object as decoded — keys sorted by their UTF-8 bytes, no whitespace, only `"` and `\`
 * escaped in strings (measured: notary 0.7 signs `<`, `&` and U+2028 raw, though it serves them
 * escaped). Where this differed from Go, a signature would fail: it fails closed.
 */
export function notaryCanonical(value: unknown): Uint8Array {
  return Buffer.from(canonical(value), 'utf8');
}

function canonical(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v))
      throw new TufaError('INVALID_METADATA', `notary: a number that is not an integer: ${v}`);
    return String(v);
  }
  if (typeof v === 'string') return goString(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    // Go sorts map keys by their UTF-8 bytes.
    const keys = Object.keys(o).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return `{${keys.map((k) => `${goString(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  throw new TufaError('INVALID_METADATA', 'notary: a value JSON cannot hold');
}

function goString(s: string): string {
  // docker/go's canonical mode escapes only these two; notary 0.7 signs < > & U+2028 and control characters raw.
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** A Notary key as a TUF key object tufa's crypto provider verifies with, and its certificate if any. */
export interface DecodedKey {
  readonly key: Key;
  readonly certificate: X509Certificate | undefined;
  /** The signature method Notary writes for this key type. */
  readonly method: string;
}

/** Decodes a key: an x509 key yields its certificate's public key. */
export function decodeNotaryKey(key: NotaryKey, role: string): DecodedKey {
  const raw = Buffer.from(key.public, 'base64');
  try {
    if (key.keytype === 'ed25519') {
      if (raw.length !== 32) malformed(role, 'an ed25519 key is 32 bytes');
      return {
        key: { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: toHex(raw) }, extra: {} },
        certificate: undefined,
        method: 'eddsa',
      };
    }
    let certificate: X509Certificate | undefined;
    let spki: string;
    if (key.keytype === 'ecdsa-x509' || key.keytype === 'rsa-x509') {
      certificate = new X509Certificate(raw);
      spki = certificate.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    } else {
      spki = createPublicKey({ key: raw, format: 'der', type: 'spki' })
        .export({ format: 'pem', type: 'spki' })
        .toString();
    }
    const ecdsa = key.keytype.startsWith('ecdsa');
    const keyObject = createPublicKey(spki);
    if (
      ecdsa &&
      (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    ) {
      throw new TufaError('UNSUPPORTED_KEY', `notary ${role}: an ecdsa key that is not P-256`, { role });
    }
    if (!ecdsa && keyObject.asymmetricKeyType !== 'rsa')
      malformed(role, `a ${key.keytype} key that is not RSA`);
    return {
      key: {
        keytype: ecdsa ? 'ecdsa' : 'rsa',
        scheme: ecdsa ? 'ecdsa-sha2-nistp256' : 'rsassa-pss-sha256',
        keyval: { public: spki.trim() },
        extra: {},
      },
      certificate,
      method: ecdsa ? 'ecdsa' : 'rsapss',
    };
  } catch (err) {
    if (err instanceof TufaError) throw err;
    throw new TufaError(
      'INVALID_KEY',
      `notary ${role}: a ${key.keytype} key that does not decode (${(err as Error).message})`,
      {
        role,
        cause: err,
      },
    );
  }
}

/**
 * The id Notary gives the key inside a certificate (its "canonical" id: the private key file's
 * name, what `notary key list` shows): the id of the `ecdsa`/`rsa` key object of the same public key.
 */
export function canonicalKeyId(key: NotaryKey): string {
  if (key.keytype !== 'ecdsa-x509' && key.keytype !== 'rsa-x509') return notaryKeyId(key);
  const cert = new X509Certificate(Buffer.from(key.public, 'base64'));
  const der = cert.publicKey.export({ format: 'der', type: 'spki' });
  return notaryKeyId({
    keytype: key.keytype === 'ecdsa-x509' ? 'ecdsa' : 'rsa',
    public: der.toString('base64'),
  });
}

/** Whether `sig` is a valid signature by `key` over `message` (Notary's methods: ecdsa raw r‖s, eddsa, rsapss). */
export function verifyNotarySignature(
  crypto: CryptoProvider,
  decoded: DecodedKey,
  signature: NotarySignature,
  message: Uint8Array,
): boolean {
  if (signature.method !== decoded.method) return false;
  // Notary writes ECDSA as raw r‖s: anything else is not its signature.
  if (decoded.method === 'ecdsa' && signature.sig.length !== 64) return false;
  return crypto.verifier(decoded.key)?.verify(signature.sig, message) ?? false;
}
