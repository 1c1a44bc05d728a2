/**
 * The TUF 1.0 metadata model: strict parsing from bytes into typed, read-only objects, and
 * serialisation back. Fields this version does not know are kept in `extra` at every level
 * and written back, so signatures over metadata with extra fields still verify.
 */
import { type CryptoProvider, HASH_HEX_LENGTH, isHashAlgorithm } from './crypto.js';
import { isLowerHex, toHex } from './encoding.js';
import { TufaError } from './errors.js';
import {
  canonicalBytes,
  isCanonical,
  type JsonObject,
  type JsonValue,
  jsonObject,
  serializeJson,
  utf8Decode,
  utf8Encode,
} from './json.js';
import { parseJsonText, scanSignedDocument } from './json-parser.js';
import { type Key, keyToJson } from './keys.js';
import { indexedSnapshot, plainEnvelopeBytes, SnapshotIndex } from './snapshot-bytes.js';
import { scanServedTargets, type TargetPathIndex } from './targets-index.js';

export const TOP_LEVEL_ROLES = Object.freeze(['root', 'timestamp', 'snapshot', 'targets'] as const);
export type TopLevelRole = (typeof TOP_LEVEL_ROLES)[number];
export type MetadataType = TopLevelRole;

/** The spec version tufa writes. */
export const SPEC_VERSION = '1.0.31';

export interface Signature {
  readonly keyid: string;
  /** Hex-encoded signature over the canonical JSON of `signed`. */
  readonly sig: string;
  readonly extra: Readonly<JsonObject>;
}

interface SignedCommon {
  readonly specVersion: string;
  readonly version: number;
  /**
   * As written: tufa writes `YYYY-MM-DDTHH:MM:SSZ`, and reads any RFC 3339 date-time with an
   * offset (fractions of a second, `+hh:mm`), as other repositories write them.
   */
  readonly expires: string;
  /**
   * `expires` in milliseconds since the epoch, rounded up to a whole millisecond: `expiresAt <= now`
   * is exact for any fraction (parseRfc3339 gives the instant itself).
   */
  readonly expiresAt: number;
  readonly extra: Readonly<JsonObject>;
}

export interface RoleKeys {
  readonly keyids: readonly string[];
  readonly threshold: number;
  readonly extra: Readonly<JsonObject>;
}

export interface Root extends SignedCommon {
  readonly type: 'root';
  /** Absent in the document when undefined (the spec's default is false). */
  readonly consistentSnapshot: boolean | undefined;
  readonly keys: Readonly<Record<string, Key>>;
  readonly roles: Readonly<Record<TopLevelRole, RoleKeys>>;
}

export interface MetaFile {
  readonly version: number;
  readonly length?: number | undefined;
  readonly hashes?: Readonly<Record<string, string>> | undefined;
  readonly extra: Readonly<JsonObject>;
}

export interface Timestamp extends SignedCommon {
  readonly type: 'timestamp';
  /** The one entry of `meta`: `snapshot.json`. */
  readonly snapshotMeta: MetaFile;
  /** Extra fields inside `meta` besides `snapshot.json` are refused, so none are kept. */
}

export interface Snapshot extends SignedCommon {
  readonly type: 'snapshot';
  /** Keyed as in the document: `targets.json`, `ROLE.json` (and a legacy `root.json`). */
  readonly meta: Readonly<Record<string, MetaFile>>;
}

export interface TargetFile {
  readonly length: number;
  readonly hashes: Readonly<Record<string, string>>;
  readonly custom?: JsonValue | undefined;
  readonly extra: Readonly<JsonObject>;
}

export interface DelegatedRole {
  readonly name: string;
  readonly keyids: readonly string[];
  readonly threshold: number;
  readonly terminating: boolean;
  /** Exactly one of `paths` and `pathHashPrefixes` is set. */
  readonly paths?: readonly string[] | undefined;
  readonly pathHashPrefixes?: readonly string[] | undefined;
  readonly extra: Readonly<JsonObject>;
}

/**
 * TAP 15 succinct hash bins: 2^bitLength delegated roles named `namePrefix-HEX`, one key set and
 * threshold for all, each trusted for the target paths whose sha256 starts with its bits.
 */
export interface SuccinctRoles {
  readonly keyids: readonly string[];
  readonly threshold: number;
  /** 1..32: the number of leading bits of sha256(path) that name a path's bin. */
  readonly bitLength: number;
  readonly namePrefix: string;
  readonly extra: Readonly<JsonObject>;
}

export interface Delegations {
  readonly keys: Readonly<Record<string, Key>>;
  /** The delegations listed by name; empty (and absent in the document) with `succinctRoles`. */
  readonly roles: readonly DelegatedRole[];
  /** TAP 15: set instead of `roles` (a document carries exactly one of the two). */
  readonly succinctRoles?: SuccinctRoles | undefined;
  readonly extra: Readonly<JsonObject>;
}

export interface Targets extends SignedCommon {
  readonly type: 'targets';
  readonly targets: Readonly<Record<string, TargetFile>>;
  readonly delegations?: Delegations | undefined;
}

export type Signed = Root | Timestamp | Snapshot | Targets;
export type SignedOf<T extends MetadataType> = Extract<Signed, { type: T }>;

/** A signed document: `{"signed": …, "signatures": […]}`. */
export interface Metadata<T extends Signed = Signed> {
  readonly signed: T;
  readonly signatures: readonly Signature[];
  readonly extra: Readonly<JsonObject>;
  /** Canonical JSON bytes of `signed` exactly as parsed: what the signatures cover. */
  readonly signedBytes: Uint8Array;
}

/**
 * A record for keys that come from untrusted input: nothing inherited, so a key named
 * `__proto__` is an ordinary entry (json.ts's jsonObject).
 */
export function dict<T>(): Record<string, T> {
  return jsonObject<T>();
}

// ---------------------------------------------------------------------------------------------
// Field readers. Every failure names the role and the path of the field.

class Reader {
  /**
   * `keysAsParsed`: set only by parseSignedEnvelope, for the document its scan just made and that
   * nothing else holds: its objects may become the result's, and its key lists are read as parsed.
   */
  constructor(
    readonly role: string,
    readonly keysAsParsed?: (obj: object) => readonly string[],
  ) {}

  fail(path: string, what: string, found?: unknown): never {
    throw new TufaError('INVALID_METADATA', `${this.role}: ${path} ${what}`, {
      role: this.role,
      details: { field: path },
      found: found === undefined ? undefined : describe(found),
    });
  }

  object(value: JsonValue | undefined, path: string): JsonObject {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.fail(path, 'must be an object', value);
    }
    return value;
  }

  string(value: JsonValue | undefined, path: string): string {
    if (typeof value !== 'string') this.fail(path, 'must be a string', value);
    return value;
  }

  nonEmptyString(value: JsonValue | undefined, path: string): string {
    const s = this.string(value, path);
    if (s.length === 0) this.fail(path, 'must not be empty');
    return s;
  }

  boolean(value: JsonValue | undefined, path: string): boolean {
    if (typeof value !== 'boolean') this.fail(path, 'must be a boolean', value);
    return value;
  }

  positiveInteger(value: JsonValue | undefined, path: string): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      this.fail(path, 'must be a positive integer', value);
    }
    return value;
  }

  nonNegativeInteger(value: JsonValue | undefined, path: string): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      this.fail(path, 'must be a non-negative integer', value);
    }
    return value;
  }

  stringArray(value: JsonValue | undefined, path: string, unique: boolean): string[] {
    if (!Array.isArray(value)) this.fail(path, 'must be an array', value);
    const out: string[] = [];
    const seen = new Set<string>();
    value.forEach((item, i) => {
      const s = this.string(item, `${path}[${i}]`);
      if (unique && seen.has(s)) this.fail(path, `lists ${JSON.stringify(s)} more than once`);
      seen.add(s);
      out.push(s);
    });
    return out;
  }

  /** Hash maps: algorithm → lowercase hex of that algorithm's length (others: lowercase hex). */
  hashes(value: JsonValue | undefined, path: string): Record<string, string> {
    const obj = this.object(value, path);
    const out: Record<string, string> = dict();
    const names = Object.keys(obj);
    if (names.length === 0) this.fail(path, 'must name at least one hash');
    for (const alg of names) {
      const digest = this.string(obj[alg], `${path}.${alg}`);
      const length = isHashAlgorithm(alg) ? HASH_HEX_LENGTH[alg] : undefined;
      if (!isLowerHex(digest, length) || digest.length === 0) {
        this.fail(
          `${path}.${alg}`,
          length === undefined ? 'must be lowercase hex' : `must be ${length} lowercase hex digits`,
          digest,
        );
      }
      out[alg] = digest;
    }
    return out;
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  // A long string's first 100 units encode to the same first 77 characters: never encode it all.
  const text = JSON.stringify(typeof value === 'string' && value.length > 100 ? value.slice(0, 100) : value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Copies the fields of `obj` not named in `known`. */
function extraFields(obj: JsonObject, known: readonly string[]): JsonObject {
  const out: JsonObject = dict();
  for (const k of Object.keys(obj)) if (!known.includes(k)) out[k] = obj[k]!;
  return out;
}

const EXPIRES = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

/** The epoch ms of a civil UTC date-time, or undefined when no such date exists (30 February). */
function civilUtc(year: number, month: number, day: number, hour: number, minute: number, second: number) {
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const d = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC maps years 0-99 to 1900-1999: set the full year explicitly.
  d.setUTCFullYear(year, month - 1, day);
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) {
    return undefined;
  }
  return d.getTime();
}

/** Parses the format tufa writes (UTC, whole seconds: `YYYY-MM-DDTHH:MM:SSZ`), refusing impossible dates. */
export function parseExpires(value: string): number | undefined {
  const m = EXPIRES.exec(value);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return civilUtc(year, month, day, hour, minute, second);
}

// RFC 3339 section 5.6 date-time: full-date "T" full-time, time-offset Z or ±hh:mm; T and Z in
// either case (its ABNF is case-insensitive).
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * An RFC 3339 date-time as an exact instant: whole seconds since the epoch, and the fraction of
 * a second as written (digits, trailing zeros dropped, so two equal instants have equal parts).
 */
export interface Rfc3339Instant {
  readonly epochSeconds: number;
  readonly fraction: string;
}

/**
 * Parses any RFC 3339 date-time with an explicit offset (fractions of any length, `Z` or
 * `±hh:mm`), refusing everything else: impossible dates, hours past 23, and the leap second
 * `:60`, which no clock here can represent.
 */
export function parseRfc3339(value: string): Rfc3339Instant | undefined {
  const m = RFC3339.exec(value);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const t = civilUtc(year, month, day, hour, minute, second);
  if (t === undefined) return undefined;
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  // Local time minus its offset is UTC.
  return { epochSeconds: t / 1000 - offsetMinutes * 60, fraction: (m[7] ?? '').replace(/0+$/, '') };
}

/** Compares two instants exactly (negative, zero, positive), fractions of any length included. */
export function compareInstants(a: Rfc3339Instant, b: Rfc3339Instant): number {
  if (a.epochSeconds !== b.epochSeconds) return a.epochSeconds < b.epochSeconds ? -1 : 1;
  const width = Math.max(a.fraction.length, b.fraction.length);
  const fa = a.fraction.padEnd(width, '0');
  const fb = b.fraction.padEnd(width, '0');
  return fa === fb ? 0 : fa < fb ? -1 : 1;
}

/**
 * The smallest whole millisecond not before the instant: for a whole-millisecond `now` (all a
 * clock gives), `expiresAt <= now` holds exactly when the instant is not after `now`, whatever
 * the length of the fraction.
 */
export function instantCeilingMs(instant: Rfc3339Instant): number {
  const ms = instant.fraction.slice(0, 3).padEnd(3, '0');
  const beyond = /[1-9]/.test(instant.fraction.slice(3));
  return instant.epochSeconds * 1000 + Number(ms) + (beyond ? 1 : 0);
}

/** Formats milliseconds since the epoch as the spec's expiry (fractions of a second dropped). */
export function formatExpires(ms: number): string {
  if (!Number.isFinite(ms)) throw new TufaError('INVALID_ARGUMENT', 'expiry must be a finite time');
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

const SPEC_VERSION_FORMAT = /^(0|[1-9]\d*)\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?$/;

function readCommon(r: Reader, signed: JsonObject, type: MetadataType) {
  const found = signed._type;
  if (found !== type) {
    throw new TufaError('WRONG_TYPE', `${r.role}: signed._type must be ${JSON.stringify(type)}`, {
      role: r.role,
      expected: type,
      found: typeof found === 'string' ? found : describe(found),
    });
  }
  const specVersion = r.string(signed.spec_version, 'signed.spec_version');
  const m = SPEC_VERSION_FORMAT.exec(specVersion);
  if (m === null || m[1] !== '1') {
    throw new TufaError('UNSUPPORTED_SPEC_VERSION', `${r.role}: spec_version ${specVersion} is not 1.x`, {
      role: r.role,
      expected: '1.x.y',
      found: specVersion,
    });
  }
  const version = r.positiveInteger(signed.version, 'signed.version');
  const expires = r.string(signed.expires, 'signed.expires');
  const instant = parseRfc3339(expires);
  if (instant === undefined) {
    r.fail('signed.expires', 'must be an RFC 3339 date-time with an offset (YYYY-MM-DDTHH:MM:SSZ)', expires);
  }
  return { specVersion, version, expires, expiresAt: instantCeilingMs(instant) };
}

const COMMON_FIELDS = ['_type', 'spec_version', 'version', 'expires'] as const;

function readKey(r: Reader, value: JsonValue | undefined, path: string): Key {
  const obj = r.object(value, path);
  const keytype = r.nonEmptyString(obj.keytype, `${path}.keytype`);
  const scheme = r.nonEmptyString(obj.scheme, `${path}.scheme`);
  const keyval = r.object(obj.keyval, `${path}.keyval`);
  const pub = r.nonEmptyString(keyval.public, `${path}.keyval.public`);
  return {
    keytype,
    scheme,
    keyval: { ...keyval, public: pub },
    extra: extraFields(obj, ['keytype', 'scheme', 'keyval']),
  };
}

function readKeys(r: Reader, value: JsonValue | undefined, path: string): Record<string, Key> {
  const obj = r.object(value, path);
  const out: Record<string, Key> = dict();
  for (const keyid of Object.keys(obj)) {
    if (keyid.length === 0) r.fail(path, 'has an empty key id');
    out[keyid] = readKey(r, obj[keyid], `${path}.${keyid}`);
  }
  return out;
}

function readMetaFile(r: Reader, value: JsonValue | undefined, path: string): MetaFile {
  const obj = r.object(value, path);
  const meta: { -readonly [K in keyof MetaFile]: MetaFile[K] } = {
    version: r.positiveInteger(obj.version, `${path}.version`),
    extra: extraFields(obj, ['version', 'length', 'hashes']),
  };
  if (obj.length !== undefined) meta.length = r.nonNegativeInteger(obj.length, `${path}.length`);
  if (obj.hashes !== undefined) meta.hashes = r.hashes(obj.hashes, `${path}.hashes`);
  return meta;
}

function parseRootSigned(r: Reader, signed: JsonObject): Root {
  const common = readCommon(r, signed, 'root');
  let consistentSnapshot: boolean | undefined;
  if (signed.consistent_snapshot !== undefined) {
    consistentSnapshot = r.boolean(signed.consistent_snapshot, 'signed.consistent_snapshot');
  }
  const keys = readKeys(r, signed.keys, 'signed.keys');
  const rolesObj = r.object(signed.roles, 'signed.roles');
  const roles = {} as Record<TopLevelRole, RoleKeys>;
  for (const name of TOP_LEVEL_ROLES) {
    const path = `signed.roles.${name}`;
    if (rolesObj[name] === undefined) r.fail(path, 'is missing');
    const role = r.object(rolesObj[name], path);
    roles[name] = {
      keyids: r.stringArray(role.keyids, `${path}.keyids`, true),
      threshold: r.positiveInteger(role.threshold, `${path}.threshold`),
      extra: extraFields(role, ['keyids', 'threshold']),
    };
  }
  for (const name of Object.keys(rolesObj)) {
    if (!(TOP_LEVEL_ROLES as readonly string[]).includes(name)) {
      r.fail(`signed.roles.${name}`, 'is not a top-level role');
    }
  }
  return {
    type: 'root',
    ...common,
    consistentSnapshot,
    keys,
    roles,
    extra: extraFields(signed, [...COMMON_FIELDS, 'consistent_snapshot', 'keys', 'roles']),
  };
}

function parseTimestampSigned(r: Reader, signed: JsonObject): Timestamp {
  const common = readCommon(r, signed, 'timestamp');
  const meta = r.object(signed.meta, 'signed.meta');
  const names = Object.keys(meta);
  if (names.length !== 1 || names[0] !== 'snapshot.json') {
    r.fail('signed.meta', 'must hold exactly one entry, snapshot.json', names.join(', '));
  }
  return {
    type: 'timestamp',
    ...common,
    snapshotMeta: readMetaFile(r, meta['snapshot.json'], 'signed.meta.snapshot.json'),
    extra: extraFields(signed, [...COMMON_FIELDS, 'meta']),
  };
}

function parseSnapshotSigned(r: Reader, signed: JsonObject): Snapshot {
  const common = readCommon(r, signed, 'snapshot');
  const metaObj = r.object(signed.meta, 'signed.meta');
  // As for targets: the scan's own `meta` object becomes the result's, its usual entries in place
  // (at 16,384 hash bins, a copy and a field path per entry were a third of a client's parse).
  const own = r.keysAsParsed;
  const meta = (own !== undefined ? metaObj : dict()) as Record<string, MetaFile>;
  for (const name of own !== undefined ? own(metaObj) : Object.keys(metaObj)) {
    if (!name.endsWith('.json') || name.length === '.json'.length) {
      r.fail(`signed.meta.${name}`, 'must be named ROLE.json');
    }
    const value = metaObj[name];
    if (own !== undefined && quickMetaFile(value) !== undefined) continue;
    meta[name] = readMetaFile(r, value, `signed.meta.${name}`);
  }
  if (meta['targets.json'] === undefined) r.fail('signed.meta', 'must list targets.json');
  return { type: 'snapshot', ...common, meta, extra: extraFields(signed, [...COMMON_FIELDS, 'meta']) };
}

function readTargetFile(r: Reader, value: JsonValue | undefined, path: string): TargetFile {
  const obj = r.object(value, path);
  const file: { -readonly [K in keyof TargetFile]: TargetFile[K] } = {
    length: r.nonNegativeInteger(obj.length, `${path}.length`),
    hashes: r.hashes(obj.hashes, `${path}.hashes`),
    extra: extraFields(obj, ['length', 'hashes', 'custom']),
  };
  if (obj.custom !== undefined) file.custom = obj.custom;
  return file;
}

/**
 * The usual target entry, `{"hashes": {...}, "length": N}` (and `custom`) with nothing wrong and
 * no extra field, read without building field paths for messages; undefined sends anything
 * else through readTargetFile, which reads it the same way and names any problem. Only for the
 * document of parseSignedEnvelope's own scan (Reader.keysAsParsed): its objects are kept, and
 * `for…in` is safe on them (their prototype is empty and frozen).
 */
function quickTargetFile(value: JsonValue | undefined): TargetFile | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const length = value.length;
  const hashes = value.hashes;
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) return undefined;
  for (const k in value) {
    if (k !== 'length' && k !== 'hashes' && k !== 'custom') return undefined;
  }
  if (!quickHashes(hashes)) return undefined;
  // The parser's objects (nothing inherited, only the fields just checked) become the entry:
  // `extra` added in place, the `hashes` object kept as is.
  (value as { extra?: JsonValue }).extra = NO_EXTRA;
  return value as unknown as TargetFile;
}

/** A `hashes` object with at least one digest, each non-empty lowercase hex of its algorithm's length. */
function quickHashes(hashes: JsonValue | undefined): boolean {
  if (hashes === null || typeof hashes !== 'object' || Array.isArray(hashes)) return false;
  let count = 0;
  for (const alg in hashes) {
    const digest = hashes[alg];
    if (typeof digest !== 'string' || digest.length === 0) return false;
    if (!isLowerHex(digest, isHashAlgorithm(alg) ? HASH_HEX_LENGTH[alg] : undefined)) return false;
    count++;
  }
  return count > 0;
}

/**
 * The usual snapshot entry, `{"hashes": {...}, "length": N, "version": V}` (length and hashes
 * optional) with nothing wrong and no extra field, read as quickTargetFile reads a target entry:
 * undefined sends anything else through readMetaFile, which reads it the same way and names any
 * problem.
 */
function quickMetaFile(value: JsonValue | undefined): MetaFile | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const { version, length, hashes } = value;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) return undefined;
  if (length !== undefined && (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0)) {
    return undefined;
  }
  for (const k in value) {
    if (k !== 'version' && k !== 'length' && k !== 'hashes') return undefined;
  }
  if (hashes !== undefined && !quickHashes(hashes)) return undefined;
  (value as { extra?: JsonValue }).extra = NO_EXTRA;
  return value as unknown as MetaFile;
}

/** The `extra` of the many target entries that have no unknown field: one frozen empty record. */
const NO_EXTRA: Readonly<JsonObject> = Object.freeze(dict<JsonValue>());

const HASH_PREFIX = /^[0-9a-f]{1,64}$/;

function readDelegations(r: Reader, value: JsonValue | undefined): Delegations {
  const path = 'signed.delegations';
  const obj = r.object(value, path);
  const keys = readKeys(r, obj.keys, `${path}.keys`);
  const extra = extraFields(obj, ['keys', 'roles', 'succinct_roles']);
  if ((obj.roles === undefined) === (obj.succinct_roles === undefined)) {
    r.fail(path, 'must have exactly one of roles and succinct_roles');
  }
  if (obj.succinct_roles !== undefined) {
    return { keys, roles: [], succinctRoles: readSuccinctRoles(r, obj.succinct_roles), extra };
  }
  if (!Array.isArray(obj.roles)) r.fail(`${path}.roles`, 'must be an array', obj.roles);
  const seen = new Set<string>();
  const roles = obj.roles.map((item, i): DelegatedRole => {
    const rp = `${path}.roles[${i}]`;
    const role = r.object(item, rp);
    const name = r.nonEmptyString(role.name, `${rp}.name`);
    if ((TOP_LEVEL_ROLES as readonly string[]).includes(name)) {
      r.fail(`${rp}.name`, 'must not be a top-level role name', name);
    }
    if (seen.has(name)) r.fail(`${rp}.name`, `delegates ${JSON.stringify(name)} more than once`);
    seen.add(name);
    const out: { -readonly [K in keyof DelegatedRole]: DelegatedRole[K] } = {
      name,
      keyids: r.stringArray(role.keyids, `${rp}.keyids`, true),
      threshold: r.positiveInteger(role.threshold, `${rp}.threshold`),
      terminating: r.boolean(role.terminating, `${rp}.terminating`),
      extra: extraFields(role, ['name', 'keyids', 'threshold', 'terminating', 'paths', 'path_hash_prefixes']),
    };
    const hasPaths = role.paths !== undefined;
    const hasPrefixes = role.path_hash_prefixes !== undefined;
    if (hasPaths === hasPrefixes) r.fail(rp, 'must have exactly one of paths and path_hash_prefixes');
    if (hasPaths) out.paths = r.stringArray(role.paths, `${rp}.paths`, false);
    if (hasPrefixes) {
      const prefixes = r.stringArray(role.path_hash_prefixes, `${rp}.path_hash_prefixes`, false);
      prefixes.forEach((p, j) => {
        if (!HASH_PREFIX.test(p)) r.fail(`${rp}.path_hash_prefixes[${j}]`, 'must be lowercase hex', p);
      });
      out.pathHashPrefixes = prefixes;
    }
    return out;
  });
  return { keys, roles, extra };
}

/** TAP 15: the most leading bits of sha256(path) a bin name may take (8 hex digits). */
export const MAX_SUCCINCT_BIT_LENGTH = 32;

function readSuccinctRoles(r: Reader, value: JsonValue | undefined): SuccinctRoles {
  const path = 'signed.delegations.succinct_roles';
  const obj = r.object(value, path);
  const bitLength = r.positiveInteger(obj.bit_length, `${path}.bit_length`);
  if (bitLength > MAX_SUCCINCT_BIT_LENGTH) {
    r.fail(`${path}.bit_length`, `must be 1 to ${MAX_SUCCINCT_BIT_LENGTH}`, bitLength);
  }
  return {
    keyids: r.stringArray(obj.keyids, `${path}.keyids`, true),
    threshold: r.positiveInteger(obj.threshold, `${path}.threshold`),
    bitLength,
    namePrefix: r.string(obj.name_prefix, `${path}.name_prefix`),
    extra: extraFields(obj, ['keyids', 'threshold', 'bit_length', 'name_prefix']),
  };
}

function parseTargetsSigned(r: Reader, signed: JsonObject): Targets {
  const common = readCommon(r, signed, 'targets');
  const targetsObj = r.object(signed.targets, 'signed.targets');
  // The scan's own `targets` object becomes the result's, its values replaced in place: refilling
  // a record of 100,000 entries costs more than the parse itself (ADR 0011). Values are replaced
  // below, never keys, so the key list as parsed stays this object's.
  const own = r.keysAsParsed;
  const targets = (own !== undefined ? targetsObj : dict()) as Record<string, TargetFile>;
  for (const name of own !== undefined ? own(targetsObj) : Object.keys(targetsObj)) {
    if (name.length === 0) r.fail('signed.targets', 'has an empty target path');
    const value = targetsObj[name];
    // The usual entry becomes the target file in place (no store into the record).
    if (own !== undefined && quickTargetFile(value) !== undefined) continue;
    targets[name] = readTargetFile(r, value, `signed.targets.${name}`);
  }
  const out: { -readonly [K in keyof Targets]: Targets[K] } = {
    type: 'targets',
    ...common,
    targets,
    extra: extraFields(signed, [...COMMON_FIELDS, 'targets', 'delegations']),
  };
  if (signed.delegations !== undefined) out.delegations = readDelegations(r, signed.delegations);
  return out;
}

const SIGNED_PARSERS = {
  root: parseRootSigned,
  timestamp: parseTimestampSigned,
  snapshot: parseSnapshotSigned,
  targets: parseTargetsSigned,
} as const;

export interface ParseMetadataOptions {
  /** The role name for messages (a delegated role's name); defaults to the type. */
  role?: string;
}

export interface ParseSignedEnvelopeOptions extends ParseMetadataOptions {
  /** The sha256 (hex) of the bytes when the caller has it already (a store's row): not hashed again. */
  sha256?: string;
  /**
   * A targets document in tufa's served form: its entries are checked in one pass over the bytes
   * and made into objects only when `signed.targets` is first read; `targetFileOf` reads one entry
   * from the bytes (a client's lookup, an upload whose entries no rule reads). Every answer is the
   * same as without it (ADR 0013, ADR 0017 section 6).
   */
  targetsOnDemand?: boolean;
  /**
   * A snapshot in the shape a server writes (SnapshotIndex) is read by one scan of its entries
   * (parseIndexedSnapshot): `signed.meta` made from the bytes when first read. Every answer is the
   * same as without it (ADR 0017 section 12).
   */
  snapshotOnDemand?: boolean;
}

/**
 * A signed document parsed from bytes: the typed metadata, and what is true of the bytes
 * themselves. Everything here is fixed when the bytes are parsed: changing `metadata` afterwards
 * (it is read-only by type, not frozen) changes neither `servedForm` nor `metadata.signedBytes`.
 * It has the shape of a stored role (`bytes`, `metadata`).
 */
export class SignedEnvelope<T extends Signed = Signed> {
  #sha256: string | undefined;
  constructor(
    /** The input, not copied: it must not be changed afterwards. */
    readonly bytes: Uint8Array,
    readonly metadata: Metadata<T>,
    /**
     * True when the bytes are exactly tufa's serialisation of the document (serializeJson): what
     * the server stores and serves, byte for byte.
     */
    readonly servedForm: boolean,
    sha256?: string,
  ) {
    this.#sha256 = sha256;
  }

  /** The sha256 (hex) of the bytes: the one given at parse, else hashed with `crypto` on first use, once. */
  sha256(crypto: CryptoProvider): string {
    this.#sha256 ??= toHex(crypto.hash('sha256', this.bytes));
    return this.#sha256;
  }
}

/**
 * The sha256 (hex) of a document's bytes: a parsed envelope's own (hashed at most once), else
 * hashed now.
 */
export function sha256Of(crypto: CryptoProvider, document: { readonly bytes: Uint8Array }): string {
  if (document instanceof SignedEnvelope) return document.sha256(crypto);
  return toHex(crypto.hash('sha256', document.bytes));
}

/**
 * Parses a signed metadata document of the expected type from bytes, strictly, in one pass.
 * Signatures are not checked here: that is the trusted-metadata set's job. Every speed-up of the
 * parse lives behind this function (ADR 0011): the canonical bytes of `signed` are a view of the
 * input when the input holds them already, whether the input is the served form is read off the
 * same pass, and the parsed objects become the result's without a copy.
 */
export function parseSignedEnvelope<T extends MetadataType>(
  type: T,
  input: Uint8Array | string,
  options: ParseSignedEnvelopeOptions = {},
): SignedEnvelope<SignedOf<T>> {
  const role = options.role ?? type;
  if (options.snapshotOnDemand === true && type === 'snapshot' && typeof input !== 'string') {
    const indexed = parseIndexedSnapshot(input, { role, sha256: options.sha256 });
    if (indexed !== undefined) return indexed as SignedEnvelope<SignedOf<T>>;
  }
  if (options.targetsOnDemand === true && type === 'targets' && typeof input !== 'string') {
    const indexed = targetsIndexed(input, role, options.sha256);
    if (indexed !== undefined) return indexed as SignedEnvelope<SignedOf<T>>;
  }
  const text = typeof input === 'string' ? input : utf8Decode(input, role);
  if (options.targetsOnDemand === true && type === 'targets' && typeof input !== 'string') {
    const checked = targetsChecked(input, text, role, options.sha256);
    if (checked !== undefined) return checked as SignedEnvelope<SignedOf<T>>;
  }
  const bytes = typeof input === 'string' ? utf8Encode(input) : input;
  const scan = scanSignedDocument(text, 64, role);
  const doc = scan.document;
  // Both answers come from the source now, before the reading below takes the parsed objects as
  // parts of the result (a value replaced in place would change a later encoding).
  const signed = isObject(doc) && isObject(doc.signed) ? doc.signed : undefined;
  let signedBytes: Uint8Array | undefined;
  if (scan.signedSpan !== undefined) {
    const { start, end } = scan.signedSpan;
    // ASCII input (one byte per character): the canonical bytes are a slice of the input, no copy.
    signedBytes =
      typeof input !== 'string' && text.length === input.length
        ? input.subarray(start, end)
        : utf8Encode(text.slice(start, end));
  } else if (signed !== undefined) {
    signedBytes = canonicalBytes(signed);
  }
  const servedForm = scan.servedForm ?? isCanonical(bytes, doc);
  const metadata = readMetadata(type, doc, new Reader(role, scan.keysAsParsed), signedBytes);
  return new SignedEnvelope(bytes, metadata, servedForm, options.sha256);
}

/** Where the signed part of a served-form snapshot in the shape a server writes starts, after `"signed":`. */
const SNAPSHOT_SIGNED = utf8Encode('"signed":{"_type":"snapshot","expires":"');

/**
 * parseSignedEnvelope's result for a snapshot in tufa's served form whose signed part is in the
 * shape a server writes (SnapshotIndex: every entry version, length and sha256 only), read by one
 * scan of its entries instead of a parse of each: the rest of the document parsed in full with
 * only targets.json's entry in `meta`, and `meta` made from the bytes on first read (the index
 * stays with the snapshot: snapshotIndexOf). Undefined whenever the scan or the parse of the rest
 * is unsure or refuses: parseSignedEnvelope then reads it all, so no answer depends on the way.
 */
export function parseIndexedSnapshot(
  bytes: Uint8Array,
  options: { readonly role?: string | undefined; readonly sha256?: string | undefined } = {},
): SignedEnvelope<Snapshot> | undefined {
  const role = options.role ?? 'snapshot';
  const n = bytes.length;
  if (n === 0 || bytes[n - 1] !== 0x7d) return undefined;
  // Inside the plain signed part no string holds a quote: its head occurs once, where it starts.
  const at = lastIndexOf(bytes, SNAPSHOT_SIGNED);
  if (at < 0) return undefined;
  const start = at + '"signed":'.length;
  const signedBytes = bytes.subarray(start, n - 1);
  const index = SnapshotIndex.scan(signedBytes);
  const targets = index?.find('targets.json') ?? -1;
  if (index === undefined || targets < 0 || !index.entriesAsParsed()) return undefined;
  const span = index.entriesSpan;
  const target = index.entryBytes(targets);
  const rest = new Uint8Array(n - (span.end - span.start) + target.length);
  rest.set(bytes.subarray(0, start + span.start), 0);
  rest.set(target, start + span.start);
  rest.set(bytes.subarray(start + span.end), start + span.start + target.length);
  try {
    const text = utf8Decode(rest, role);
    if (text.length !== rest.length) return undefined;
    const scan = scanSignedDocument(text, 64, role);
    if (scan.servedForm !== true || scan.signedSpan?.start !== start) return undefined;
    const metadata = readMetadata(
      'snapshot',
      scan.document,
      new Reader(role, scan.keysAsParsed),
      signedBytes,
    );
    const { specVersion, version, expires, expiresAt } = metadata.signed;
    const signed = indexedSnapshot(index, { specVersion, version, expires, expiresAt });
    return new SignedEnvelope(bytes, { ...metadata, signed }, true, options.sha256);
  } catch {
    return undefined;
  }
}

/** The offset of the last occurrence of `want` in `bytes`, or -1. */
function lastIndexOf(bytes: Uint8Array, want: Uint8Array): number {
  const first = want[0]!;
  for (
    let at = bytes.lastIndexOf(first, bytes.length - want.length);
    at >= 0;
    at = bytes.lastIndexOf(first, at - 1)
  ) {
    let i = 1;
    while (i < want.length && bytes[at + i] === want[i]) i++;
    if (i === want.length) return at;
    if (at === 0) break;
  }
  return -1;
}

/** The path index of a targets role read by targetsIndexed, and the role's name for messages. */
const TARGET_INDEXES = new WeakMap<
  Targets,
  { index: TargetPathIndex; role: string; entries?: Targets['targets'] | undefined }
>();

/**
 * parseSignedEnvelope with targetsOnDemand, first: a document in tufa's served form whose
 * `signed.targets` one pass over the bytes finds usual and sure (targets-index.ts) has the rest
 * of it parsed in full with `{}` in place of that object, and its entries left as bytes: a lookup
 * (targetFileOf) reads one entry, `signed.targets` is the full parse's, made on first read.
 * Undefined whenever that pass or the parse of the rest is unsure or refuses: the caller then
 * parses it all, so no answer depends on which way it was read (ADR 0017 section 6).
 */
function targetsIndexed(
  bytes: Uint8Array,
  role: string,
  sha256: string | undefined,
): SignedEnvelope<Targets> | undefined {
  const found = scanServedTargets(bytes);
  if (found === undefined) return undefined;
  try {
    // Both cuts are at an ASCII byte ('{' and after '}'): each side is whole UTF-8.
    const text = `${utf8Decode(bytes.subarray(0, found.targetsStart), role)}{}${utf8Decode(bytes.subarray(found.targetsEnd), role)}`;
    const scan = scanSignedDocument(text, 64, role);
    if (scan.servedForm !== true || scan.signedSpan === undefined) return undefined;
    const signedBytes = bytes.subarray(found.signedStart, found.signedEnd);
    const metadata = readMetadata('targets', scan.document, new Reader(role, scan.keysAsParsed), signedBytes);
    if (Object.keys(metadata.signed.targets).length !== 0) return undefined;
    const indexed: { index: TargetPathIndex; role: string; entries?: Targets['targets'] } = {
      index: found.index,
      role,
    };
    Object.defineProperty(metadata.signed, 'targets', {
      enumerable: true,
      get: () => {
        indexed.entries ??= parseSignedEnvelope('targets', bytes, { role }).metadata.signed.targets;
        return indexed.entries;
      },
    });
    TARGET_INDEXES.set(metadata.signed, indexed);
    return new SignedEnvelope(bytes, metadata, true, sha256);
  } catch {
    return undefined;
  }
}

/** Any UTF-16 surrogate: such a path is never in an index (its documents hold none). */
const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * The entry of `path` in a targets role, or undefined: what `signed.targets[path]` holds (own
 * entries only), read from the bytes alone when the role was read with an index (targetsIndexed),
 * so a lookup never makes the whole map.
 */
export function targetFileOf(signed: Targets, path: string): TargetFile | undefined {
  const indexed = TARGET_INDEXES.get(signed);
  // Once the whole map is made (a listing), it answers: no entry is decoded twice.
  if (indexed === undefined || indexed.entries !== undefined) {
    const map = indexed?.entries ?? signed.targets;
    return Object.hasOwn(map, path) ? map[path] : undefined;
  }
  if (SURROGATE.test(path)) return undefined;
  const entry = indexed.index.entry(utf8Encode(path));
  if (entry === undefined) return undefined;
  const value = parseJsonText(utf8Decode(entry, indexed.role), 64, indexed.role);
  return quickTargetFile(value) ?? readTargetFile(new Reader(indexed.role), value, `signed.targets.${path}`);
}

/**
 * parseSignedEnvelope with targetsOnDemand, when targetsIndexed is unsure: one pass that reads the
 * document strictly but checks each target entry as the usual entry (quickTargetFile) and drops
 * it (an upload whose entries are unusual is still not held as objects); `signed.targets` is then
 * the full parse's, made on first read. Undefined unless that pass was sure and found nothing to
 * refuse: the full parse then gives the answer (a refusal, an unusual entry, a repeated key, a
 * document not in the served form), so no answer depends on which way it was read.
 */
function targetsChecked(
  bytes: Uint8Array,
  text: string,
  role: string,
  sha256: string | undefined,
): SignedEnvelope<Targets> | undefined {
  try {
    const scan = scanSignedDocument(
      text,
      64,
      role,
      (path, entry) => path.length > 0 && quickTargetFile(entry) !== undefined,
    );
    if (scan.targetsEntries !== 'checked' || scan.servedForm !== true || scan.signedSpan === undefined) {
      return undefined;
    }
    const { start, end } = scan.signedSpan;
    const signedBytes =
      text.length === bytes.length ? bytes.subarray(start, end) : utf8Encode(text.slice(start, end));
    const metadata = readMetadata('targets', scan.document, new Reader(role, scan.keysAsParsed), signedBytes);
    let entries: Targets['targets'] | undefined;
    Object.defineProperty(metadata.signed, 'targets', {
      enumerable: true,
      get: () => {
        entries ??= parseSignedEnvelope('targets', bytes, { role }).metadata.signed.targets;
        return entries;
      },
    });
    return new SignedEnvelope(bytes, metadata, true, sha256);
  } catch {
    return undefined;
  }
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Parses a signed metadata document of the expected type from bytes, strictly (parseSignedEnvelope's
 * metadata). The result's `signedBytes` may be a view into `bytes` (no copy): the input must not
 * be changed afterwards.
 */
export function parseMetadata<T extends MetadataType>(
  type: T,
  bytes: Uint8Array | string,
  options: ParseMetadataOptions = {},
): Metadata<SignedOf<T>> {
  return parseSignedEnvelope(type, bytes, options).metadata;
}

/** As parseMetadata, from an already parsed JSON value (the caller's: read, never changed). */
export function metadataFromJson<T extends MetadataType>(
  type: T,
  doc: JsonValue,
  options: ParseMetadataOptions = {},
): Metadata<SignedOf<T>> {
  return readMetadata(type, doc, new Reader(options.role ?? type), undefined);
}

/** Most signatures one document may carry: far above any real threshold, it bounds what one parse lets through. */
export const MAX_SIGNATURES = 1024;

/**
 * `signedBytes`: the canonical bytes of `signed` as parseSignedEnvelope fixed them; encoded here
 * for a caller's document (whose objects the reader copies, never changes).
 */
function readMetadata<T extends MetadataType>(
  type: T,
  doc: JsonValue,
  r: Reader,
  signedBytes: Uint8Array | undefined,
): Metadata<SignedOf<T>> {
  const envelope = r.object(doc, 'document');
  const signedObj = r.object(envelope.signed, 'signed');
  if (!Array.isArray(envelope.signatures)) r.fail('signatures', 'must be an array', envelope.signatures);
  if (envelope.signatures.length > MAX_SIGNATURES) {
    throw new TufaError(
      'TOO_MANY_SIGNATURES',
      `${r.role}: ${envelope.signatures.length} signatures, more than any role may carry (${MAX_SIGNATURES})`,
      { role: r.role, expected: `<= ${MAX_SIGNATURES}`, found: envelope.signatures.length },
    );
  }
  const keyids = new Set<string>();
  const signatures = envelope.signatures.map((item, i): Signature => {
    const s = r.object(item, `signatures[${i}]`);
    const keyid = r.string(s.keyid, `signatures[${i}].keyid`);
    // 5.2 and the spec's signatures field: a key id MUST appear at most once.
    if (keyids.has(keyid)) {
      throw new TufaError('DUPLICATE_SIGNATURE', `${r.role}: signatures[${i}] repeats key id ${keyid}`, {
        role: r.role,
        expected: 'each key id at most once in signatures',
        found: keyid,
        details: { field: `signatures[${i}].keyid` },
      });
    }
    keyids.add(keyid);
    return { keyid, sig: r.string(s.sig, `signatures[${i}].sig`), extra: extraFields(s, ['keyid', 'sig']) };
  });
  const bytes = signedBytes ?? canonicalBytes(signedObj);
  const signed = SIGNED_PARSERS[type](r, signedObj) as SignedOf<T>;
  return {
    signed,
    signatures,
    extra: extraFields(envelope, ['signed', 'signatures']),
    signedBytes: bytes,
  };
}

// ---------------------------------------------------------------------------------------------
// Serialisation. Objects are built with their keys in canonical order (when there are no extra
// fields): canonical JSON then takes its native JSON.stringify path instead of sorting.

/** The keys of a record in canonical order (a copy, sorted only when it is not in order already). */
function orderedKeys(record: object): string[] {
  const keys = Object.keys(record);
  for (let i = 1; i < keys.length; i++) if (!(keys[i - 1]! < keys[i]!)) return keys.sort();
  return keys;
}

function metaFileToJson(m: MetaFile): JsonObject {
  const out: JsonObject = { ...m.extra };
  if (m.hashes !== undefined) out.hashes = { ...m.hashes };
  if (m.length !== undefined) out.length = m.length;
  out.version = m.version;
  return out;
}

function keysToJson(keys: Readonly<Record<string, Key>>): JsonObject {
  const out: JsonObject = dict();
  for (const id of orderedKeys(keys)) out[id] = keyToJson(keys[id]!);
  return out;
}

export function targetFileToJson(t: TargetFile): JsonObject {
  const out: JsonObject = { ...t.extra };
  if (t.custom !== undefined) out.custom = t.custom;
  out.hashes = { ...t.hashes };
  out.length = t.length;
  return out;
}

function delegatedRoleToJson(d: DelegatedRole): JsonObject {
  const out: JsonObject = { ...d.extra, keyids: [...d.keyids], name: d.name };
  if (d.pathHashPrefixes !== undefined) out.path_hash_prefixes = [...d.pathHashPrefixes];
  if (d.paths !== undefined) out.paths = [...d.paths];
  out.terminating = d.terminating;
  out.threshold = d.threshold;
  return out;
}

/** The JSON object of a `signed` part, unknown fields included. */
export function signedToJson(s: Signed): JsonObject {
  const out: JsonObject = { ...s.extra, _type: s.type };
  switch (s.type) {
    case 'root': {
      const roles: JsonObject = {};
      for (const name of [...TOP_LEVEL_ROLES].sort()) {
        const role = s.roles[name];
        roles[name] = { ...role.extra, keyids: [...role.keyids], threshold: role.threshold };
      }
      if (s.consistentSnapshot !== undefined) out.consistent_snapshot = s.consistentSnapshot;
      out.expires = s.expires;
      out.keys = keysToJson(s.keys);
      out.roles = roles;
      break;
    }
    case 'timestamp':
      out.expires = s.expires;
      out.meta = { 'snapshot.json': metaFileToJson(s.snapshotMeta) };
      break;
    case 'snapshot': {
      const meta: JsonObject = dict();
      for (const name of orderedKeys(s.meta)) meta[name] = metaFileToJson(s.meta[name]!);
      out.expires = s.expires;
      out.meta = meta;
      break;
    }
    case 'targets': {
      const targets: JsonObject = dict();
      for (const name of orderedKeys(s.targets)) targets[name] = targetFileToJson(s.targets[name]!);
      if (s.delegations !== undefined) {
        const d = s.delegations;
        const succinct = d.succinctRoles;
        if (succinct !== undefined && d.roles.length > 0) {
          throw new TufaError('INVALID_ARGUMENT', 'delegations hold exactly one of roles and succinct roles');
        }
        out.delegations =
          succinct === undefined
            ? { ...d.extra, keys: keysToJson(d.keys), roles: d.roles.map(delegatedRoleToJson) }
            : {
                ...d.extra,
                keys: keysToJson(d.keys),
                succinct_roles: {
                  ...succinct.extra,
                  bit_length: succinct.bitLength,
                  keyids: [...succinct.keyids],
                  name_prefix: succinct.namePrefix,
                  threshold: succinct.threshold,
                },
              };
      }
      out.expires = s.expires;
      out.spec_version = s.specVersion;
      out.targets = targets;
      out.version = s.version;
      return out;
    }
  }
  out.spec_version = s.specVersion;
  out.version = s.version;
  return out;
}

export function metadataToJson(m: Metadata): JsonObject {
  return {
    ...m.extra,
    signatures: m.signatures.map((s) => ({ ...s.extra, keyid: s.keyid, sig: s.sig })),
    signed: signedToJson(m.signed),
  };
}

/**
 * The bytes of a whole document as tufa stores, serves and hashes it: canonical JSON with control
 * characters escaped (serializeJson), so that every JSON parser reads it.
 */
export function serializeMetadata(m: Metadata): Uint8Array {
  return plainEnvelopeBytes(m) ?? serializeJson(metadataToJson(m));
}

/** The file name of a role's metadata in a snapshot's meta and in URLs (`ROLE.json`). */
export function metaFileName(role: string): string {
  return `${role}.json`;
}
