/**
 * The TUF 1.0 metadata model: strict parsing from bytes into typed, read-only objects, and
 * serialisation back. Fields this version does not know are kept in `extra` at every level
 * and written back, so signatures over metadata with extra fields still verify.
 */
import { HASH_HEX_LENGTH, isHashAlgorithm } from './crypto.js';
import { isLowerHex } from './encoding.js';
import { TufaError } from './errors.js';
import {
  canonicalBytes,
  type JsonObject,
  type JsonValue,
  jsonObject,
  parseSignedDocument,
  serializeJson,
  utf8Encode,
} from './json.js';
import { type Key, keyToJson } from './keys.js';
import { ownKeys } from './parsed-keys.js';

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
  /** As written: `YYYY-MM-DDTHH:MM:SSZ`. */
  readonly expires: string;
  /** `expires` in milliseconds since the epoch. */
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

export interface Delegations {
  readonly keys: Readonly<Record<string, Key>>;
  readonly roles: readonly DelegatedRole[];
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
  /** `owned`: the parsed document is the reader's own (its objects may be kept, not copied). */
  constructor(
    readonly role: string,
    readonly owned = false,
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
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Copies the fields of `obj` not named in `known`. */
function extraFields(obj: JsonObject, known: readonly string[]): JsonObject {
  const out: JsonObject = dict();
  for (const k of Object.keys(obj)) if (!known.includes(k)) out[k] = obj[k]!;
  return out;
}

const EXPIRES = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

/** Parses the spec's expiry format (UTC, whole seconds), refusing impossible dates. */
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
  const t = Date.UTC(year, month - 1, day, hour, minute, second);
  const d = new Date(t);
  if (
    d.getUTCFullYear() !== year ||
    d.getUTCMonth() !== month - 1 ||
    d.getUTCDate() !== day ||
    d.getUTCHours() !== hour ||
    d.getUTCMinutes() !== minute ||
    d.getUTCSeconds() !== second
  ) {
    return undefined;
  }
  return t;
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
  const expiresAt = parseExpires(expires);
  if (expiresAt === undefined)
    r.fail('signed.expires', 'must be a UTC time as YYYY-MM-DDTHH:MM:SSZ', expires);
  return { specVersion, version, expires, expiresAt };
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
  const meta: Record<string, MetaFile> = dict();
  for (const name of Object.keys(metaObj)) {
    if (!name.endsWith('.json') || name.length === '.json'.length) {
      r.fail(`signed.meta.${name}`, 'must be named ROLE.json');
    }
    meta[name] = readMetaFile(r, metaObj[name], `signed.meta.${name}`);
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
 * else through readTargetFile, which reads it the same way and names any problem. Only for a
 * document parsed by parseJson for this read (Reader.owned): its objects are kept, and `for…in`
 * is safe on them (their prototype is empty and frozen).
 */
function quickTargetFile(value: JsonValue | undefined): TargetFile | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const length = value.length;
  const hashes = value.hashes;
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) return undefined;
  if (hashes === null || typeof hashes !== 'object' || Array.isArray(hashes)) return undefined;
  for (const k in value) {
    if (k !== 'length' && k !== 'hashes' && k !== 'custom') return undefined;
  }
  let count = 0;
  for (const alg in hashes) {
    const digest = hashes[alg];
    if (typeof digest !== 'string' || digest.length === 0) return undefined;
    if (!isLowerHex(digest, isHashAlgorithm(alg) ? HASH_HEX_LENGTH[alg] : undefined)) return undefined;
    count++;
  }
  if (count === 0) return undefined;
  // The parser's objects (nothing inherited, only the fields just checked) become the entry:
  // `extra` added in place, the `hashes` object kept as is.
  (value as { extra?: JsonValue }).extra = NO_EXTRA;
  return value as unknown as TargetFile;
}

/** The `extra` of the many target entries that have no unknown field: one frozen empty record. */
const NO_EXTRA: Readonly<JsonObject> = Object.freeze(dict<JsonValue>());

const HASH_PREFIX = /^[0-9a-f]{1,64}$/;

function readDelegations(r: Reader, value: JsonValue | undefined): Delegations {
  const path = 'signed.delegations';
  const obj = r.object(value, path);
  const keys = readKeys(r, obj.keys, `${path}.keys`);
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
  return { keys, roles, extra: extraFields(obj, ['keys', 'roles']) };
}

function parseTargetsSigned(r: Reader, signed: JsonObject): Targets {
  const common = readCommon(r, signed, 'targets');
  const targetsObj = r.object(signed.targets, 'signed.targets');
  // An owned document's `targets` object becomes the result's, its values replaced in place:
  // refilling a record of 100,000 entries costs several times more than the parse itself.
  const targets = (r.owned ? targetsObj : dict()) as Record<string, TargetFile>;
  // Values are replaced below, never keys: the parser's key list stays right. A caller's document
  // (not owned) may have changed since it was parsed: its keys are asked for.
  for (const name of r.owned ? ownKeys(targetsObj) : Object.keys(targetsObj)) {
    if (name.length === 0) r.fail('signed.targets', 'has an empty target path');
    const value = targetsObj[name];
    // The usual entry becomes the target file in place (no store into the record).
    if (r.owned && quickTargetFile(value) !== undefined) continue;
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

/**
 * Parses a signed metadata document of the expected type from bytes, strictly.
 * Signatures are not checked here: that is the trusted-metadata set's job. The result's
 * `signedBytes` may be a view into `bytes` (no copy): the input must not be changed afterwards.
 */
export function parseMetadata<T extends MetadataType>(
  type: T,
  bytes: Uint8Array | string,
  options: ParseMetadataOptions = {},
): Metadata<SignedOf<T>> {
  return parseMetadataSource(type, bytes, options).metadata;
}

/**
 * As parseMetadata, and what the parse saw of the source: `signedVerbatim` is true when the
 * bytes of `signed` in the source are exactly its canonical bytes and hold no raw control
 * character (so tufa's wire form of `signed` is those bytes too).
 */
export function parseMetadataSource<T extends MetadataType>(
  type: T,
  bytes: Uint8Array | string,
  options: ParseMetadataOptions = {},
): { metadata: Metadata<SignedOf<T>>; signedVerbatim: boolean } {
  const role = options.role ?? type;
  const { doc, signedText, signedBytes, signedRawControl } = parseSignedDocument(bytes, { source: role });
  const canonical = signedBytes ?? (signedText === undefined ? undefined : utf8Encode(signedText));
  return {
    // The parsed document is this call's own: readMetadata may keep its objects instead of copying.
    metadata: readMetadata(type, doc, options, true, canonical),
    signedVerbatim: signedText !== undefined && !signedRawControl,
  };
}

/** As parseMetadata, from an already parsed JSON value. */
export function metadataFromJson<T extends MetadataType>(
  type: T,
  doc: JsonValue,
  options: ParseMetadataOptions = {},
): Metadata<SignedOf<T>> {
  return readMetadata(type, doc, options, false, undefined);
}

/**
 * `owned`: the document was parsed for this call alone, so its objects may become parts of the
 * result (a caller's document is copied). `signedBytes`: the canonical bytes of `signed` when the
 * parser found its source canonical already (no re-encoding).
 */
function readMetadata<T extends MetadataType>(
  type: T,
  doc: JsonValue,
  options: ParseMetadataOptions,
  owned: boolean,
  signedBytes: Uint8Array | undefined,
): Metadata<SignedOf<T>> {
  const r: Reader = new Reader(options.role ?? type, owned);
  const envelope = r.object(doc, 'document');
  const signedObj = r.object(envelope.signed, 'signed');
  if (!Array.isArray(envelope.signatures)) r.fail('signatures', 'must be an array', envelope.signatures);
  const signatures = envelope.signatures.map((item, i): Signature => {
    const s = r.object(item, `signatures[${i}]`);
    return {
      keyid: r.string(s.keyid, `signatures[${i}].keyid`),
      sig: r.string(s.sig, `signatures[${i}].sig`),
      extra: extraFields(s, ['keyid', 'sig']),
    };
  });
  // Encoded before reading `signed`: reading an owned document replaces parts of it in place.
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
        out.delegations = {
          ...s.delegations.extra,
          keys: keysToJson(s.delegations.keys),
          roles: s.delegations.roles.map(delegatedRoleToJson),
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
  return serializeJson(metadataToJson(m));
}

/** The file name of a role's metadata in a snapshot's meta and in URLs (`ROLE.json`). */
export function metaFileName(role: string): string {
  return `${role}.json`;
}
