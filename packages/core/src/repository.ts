/**
 * The repository side: create metadata, change targets and delegations, bump versions and
 * expiry, compute snapshot and timestamp meta from the exact bytes that will be served, sign.
 * Used by the CLI and the server; everything returns new objects.
 */
import type { CryptoProvider, HashAlgorithm } from './crypto.js';
import { delegatedRoleNamed } from './delegation.js';
import { toHex } from './encoding.js';
import { TufaError } from './errors.js';
import { canonicalBytes, isJsonObject, type JsonValue } from './json.js';
import { computeKeyId, type Key, type Signer } from './keys.js';
import {
  type DelegatedRole,
  type Delegations,
  dict,
  formatExpires,
  type Metadata,
  type MetaFile,
  metaFileName,
  parseExpires,
  type RoleKeys,
  type Root,
  type Signature,
  type Signed,
  type Snapshot,
  SPEC_VERSION,
  signedToJson,
  type TargetFile,
  type Targets,
  type Timestamp,
  TOP_LEVEL_ROLES,
  type TopLevelRole,
} from './metadata.js';
import { indexedSnapshot, plainSnapshotBytes, rememberPlain, type SnapshotIndex } from './snapshot-bytes.js';

/** Notary's default lifetimes, in milliseconds. */
export const DEFAULT_EXPIRY = Object.freeze({
  root: 10 * 365 * 24 * 3600 * 1000,
  targets: 3 * 365 * 24 * 3600 * 1000,
  delegation: 3 * 365 * 24 * 3600 * 1000,
  snapshot: 3 * 365 * 24 * 3600 * 1000,
  timestamp: 14 * 24 * 3600 * 1000,
});

/** An expiry `lifetime` ms after `now`, in the spec's format (rounded up to whole seconds). */
export function expiresIn(now: number, lifetime: number): string {
  return formatExpires(Math.ceil((now + lifetime) / 1000) * 1000);
}

function common(version: number, expires: string) {
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new TufaError('INVALID_ARGUMENT', `version must be a positive integer, not ${version}`);
  }
  const expiresAt = parseExpires(expires);
  if (expiresAt === undefined) {
    throw new TufaError('INVALID_ARGUMENT', `expires must be YYYY-MM-DDTHH:MM:SSZ, not ${expires}`);
  }
  return { specVersion: SPEC_VERSION, version, expires, expiresAt, extra: {} };
}

export interface RoleKeySpec {
  keys: readonly Key[];
  threshold?: number;
}

export interface NewRootOptions {
  roles: Record<TopLevelRole, RoleKeySpec>;
  expires: string;
  version?: number;
  consistentSnapshot?: boolean;
}

function roleKeys(
  role: string,
  spec: RoleKeySpec,
): { keyids: string[]; threshold: number; keys: [string, Key][] } {
  const keys = spec.keys.map((k): [string, Key] => [computeKeyId(k), k]);
  const keyids = [...new Set(keys.map(([id]) => id))];
  const threshold = spec.threshold ?? 1;
  if (!Number.isSafeInteger(threshold) || threshold < 1) {
    throw new TufaError('INVALID_ARGUMENT', `${role}: threshold must be a positive integer`, { role });
  }
  if (keyids.length < threshold) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${role}: threshold ${threshold} with ${keyids.length} key(s) could never be met`,
      {
        role,
        expected: threshold,
        found: keyids.length,
      },
    );
  }
  return { keyids, threshold, keys };
}

export function newRoot(options: NewRootOptions): Root {
  const keys = dict<Key>();
  const roles = {} as Record<TopLevelRole, RoleKeys>;
  for (const name of TOP_LEVEL_ROLES) {
    const spec = roleKeys(name, options.roles[name]);
    for (const [id, key] of spec.keys) keys[id] = key;
    roles[name] = { keyids: spec.keyids, threshold: spec.threshold, extra: {} };
  }
  return {
    type: 'root',
    ...common(options.version ?? 1, options.expires),
    consistentSnapshot: options.consistentSnapshot ?? true,
    keys,
    roles,
  };
}

/** A root with one role's keys and threshold replaced; keys no role uses any more are dropped. */
export function withRootRole(root: Root, role: TopLevelRole, spec: RoleKeySpec): Root {
  const next = roleKeys(role, spec);
  const roles = {
    ...root.roles,
    [role]: { ...root.roles[role], keyids: next.keyids, threshold: next.threshold },
  };
  const used = new Set(TOP_LEVEL_ROLES.flatMap((name) => roles[name].keyids));
  const keys = dict<Key>();
  for (const [id, key] of Object.entries(root.keys)) if (used.has(id)) keys[id] = key;
  for (const [id, key] of next.keys) keys[id] = key;
  return { ...root, roles, keys };
}

export interface NewTargetsOptions {
  expires: string;
  version?: number;
  targets?: Record<string, TargetFile>;
  delegations?: Delegations;
}

export function newTargets(options: NewTargetsOptions): Targets {
  const targets = dict<TargetFile>();
  Object.assign(targets, options.targets ?? {});
  return {
    type: 'targets',
    ...common(options.version ?? 1, options.expires),
    targets,
    delegations: options.delegations,
  };
}

/** A snapshot listing `meta`; a record made by jsonObject becomes its own (not to be changed after). */
export function newSnapshot(options: {
  expires: string;
  version?: number;
  meta: Record<string, MetaFile>;
}): Snapshot {
  if (options.meta['targets.json'] === undefined) {
    throw new TufaError('INVALID_ARGUMENT', 'snapshot meta must list targets.json', { role: 'snapshot' });
  }
  // A record made by jsonObject (ValidatedUpdate.snapshotMeta's) is taken as the snapshot's own:
  // copying 16,384 hash bins' entries cost a publish 4-9 ms (ADR 0015).
  let meta = options.meta;
  if (!isJsonObject(meta)) {
    meta = dict<MetaFile>();
    Object.assign(meta, options.meta);
  }
  return { type: 'snapshot', ...common(options.version ?? 1, options.expires), meta };
}

/**
 * The snapshot after the one `base` indexes, with these entries set (ROLE.json → its entry) or
 * removed (undefined): newSnapshot's result for that meta, its bytes spliced from base's (the
 * unchanged entries copied, not encoded; nothing done per entry). Undefined when an entry is not
 * in the shape a server writes (version, length, sha256 only): newSnapshot then.
 */
export function snapshotWithChanges(
  base: SnapshotIndex,
  options: { expires: string; version?: number; changes: ReadonlyMap<string, MetaFile | undefined> },
): Snapshot | undefined {
  const fields = common(options.version ?? 1, options.expires);
  const index = base.with(fields, options.changes);
  if (index === undefined) return undefined;
  if (index.find('targets.json') < 0) {
    throw new TufaError('INVALID_ARGUMENT', 'snapshot meta must list targets.json', { role: 'snapshot' });
  }
  return indexedSnapshot(index, fields);
}

/**
 * The meta of the snapshot after the one `base` indexes, with these entries set (a new jsonObject
 * record, newSnapshot's to take): what snapshotWithChanges splices, for when it cannot.
 */
export function metaWithChanges(
  base: SnapshotIndex,
  changes: ReadonlyMap<string, MetaFile>,
): Record<string, MetaFile> {
  const meta = base.meta();
  for (const [name, entry] of changes) meta[name] = entry;
  return meta;
}

export function newTimestamp(options: {
  expires: string;
  version?: number;
  snapshotMeta: MetaFile;
}): Timestamp {
  return {
    type: 'timestamp',
    ...common(options.version ?? 1, options.expires),
    snapshotMeta: options.snapshotMeta,
  };
}

/** The same metadata with version + 1 (or `version`) and a new expiry. */
export function bumpVersion<T extends Signed>(signed: T, expires: string, version = signed.version + 1): T {
  const c = common(version, expires);
  return { ...signed, version: c.version, expires: c.expires, expiresAt: c.expiresAt };
}

export interface MetaFileOptions {
  /** Hash algorithms to state (default sha256); none to state only the version. */
  hashes?: readonly HashAlgorithm[];
  /** State the length (default true). */
  length?: boolean;
  /** Digests of these bytes already computed (hex), by algorithm: not computed again. */
  known?: Readonly<Partial<Record<HashAlgorithm, string>>>;
}

/** Snapshot/timestamp meta for a role, from the exact bytes that will be served. */
export function metaFileFor(
  crypto: CryptoProvider,
  bytes: Uint8Array,
  version: number,
  options: MetaFileOptions = {},
): MetaFile {
  const algorithms = options.hashes ?? ['sha256'];
  const meta: { -readonly [K in keyof MetaFile]: MetaFile[K] } = { version, extra: {} };
  if (options.length ?? true) meta.length = bytes.length;
  if (algorithms.length > 0) meta.hashes = digests(crypto, bytes, algorithms, options.known);
  return meta;
}

function digests(
  crypto: CryptoProvider,
  bytes: Uint8Array,
  algorithms: readonly HashAlgorithm[],
  known: MetaFileOptions['known'],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const algorithm of algorithms) {
    const given = known?.[algorithm];
    if (given !== undefined) {
      out[algorithm] = given;
      continue;
    }
    out[algorithm] = toHex(crypto.hash(algorithm, bytes));
  }
  return out;
}

/** A target file entry for content held in memory. */
export function targetFileFor(
  crypto: CryptoProvider,
  content: Uint8Array,
  options: { hashes?: readonly HashAlgorithm[]; custom?: JsonValue } = {},
): TargetFile {
  const file: { -readonly [K in keyof TargetFile]: TargetFile[K] } = {
    length: content.length,
    hashes: digests(crypto, content, options.hashes ?? ['sha256', 'sha512'], undefined),
    extra: {},
  };
  if (options.custom !== undefined) file.custom = options.custom;
  return file;
}

/** Snapshot meta for a set of targets roles: name → serialized bytes and version. */
export function snapshotMetaFor(
  crypto: CryptoProvider,
  roles: Iterable<{ role: string; bytes: Uint8Array; version: number }>,
  options: MetaFileOptions = { hashes: [], length: false },
): Record<string, MetaFile> {
  const meta = dict<MetaFile>();
  for (const r of roles) meta[metaFileName(r.role)] = metaFileFor(crypto, r.bytes, r.version, options);
  return meta;
}

export function withTarget(targets: Targets, path: string, file: TargetFile): Targets {
  if (path.length === 0) throw new TufaError('INVALID_ARGUMENT', 'a target path cannot be empty');
  const next = dict<TargetFile>();
  Object.assign(next, targets.targets);
  next[path] = file;
  return { ...targets, targets: next };
}

export function withoutTarget(targets: Targets, path: string): Targets {
  if (!Object.hasOwn(targets.targets, path)) {
    throw new TufaError('NOT_FOUND', `target ${path} is not in ${targets.type}`, { found: path });
  }
  const next = dict<TargetFile>();
  Object.assign(next, targets.targets);
  delete next[path];
  return { ...targets, targets: next };
}

export interface DelegationSpec {
  name: string;
  keys: readonly Key[];
  threshold?: number;
  terminating?: boolean;
  paths?: readonly string[];
  pathHashPrefixes?: readonly string[];
}

/** Adds or replaces a delegation; keys no delegation uses any more are dropped. */
export function withDelegation(targets: Targets, spec: DelegationSpec): Targets {
  if (targets.delegations?.succinctRoles !== undefined) {
    throw new TufaError('INVALID_ARGUMENT', `${spec.name}: this role delegates to succinct hash bins only`, {
      role: spec.name,
    });
  }
  if ((TOP_LEVEL_ROLES as readonly string[]).includes(spec.name) || spec.name.length === 0) {
    throw new TufaError('INVALID_ARGUMENT', `${JSON.stringify(spec.name)} cannot be a delegated role name`);
  }
  if ((spec.paths === undefined) === (spec.pathHashPrefixes === undefined)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      `${spec.name}: give exactly one of paths and path hash prefixes`,
      {
        role: spec.name,
      },
    );
  }
  const keys = roleKeys(spec.name, { keys: spec.keys, threshold: spec.threshold ?? 1 });
  const role: { -readonly [K in keyof DelegatedRole]: DelegatedRole[K] } = {
    name: spec.name,
    keyids: keys.keyids,
    threshold: keys.threshold,
    terminating: spec.terminating ?? false,
    extra: {},
  };
  if (spec.paths !== undefined) role.paths = [...spec.paths];
  if (spec.pathHashPrefixes !== undefined) role.pathHashPrefixes = [...spec.pathHashPrefixes];
  const old = targets.delegations;
  const roles = [...(old?.roles ?? [])];
  const at = roles.findIndex((r) => r.name === spec.name);
  if (at >= 0) roles[at] = role;
  else roles.push(role);
  const allKeys = dict<Key>();
  Object.assign(allKeys, old?.keys ?? {});
  for (const [id, key] of keys.keys) allKeys[id] = key;
  return { ...targets, delegations: pruneKeys({ keys: allKeys, roles, extra: old?.extra ?? {} }) };
}

export interface SuccinctDelegationSpec {
  keys: readonly Key[];
  threshold?: number;
  /** 1..32: 2^bitLength bins. */
  bitLength: number;
  namePrefix: string;
}

/**
 * TAP 15: delegates every target path to 2^bitLength hash bins (`namePrefix-HEX`) signed by one
 * key set; replaces the role's delegations, which must be none or succinct already.
 */
export function withSuccinctDelegation(targets: Targets, spec: SuccinctDelegationSpec): Targets {
  const old = targets.delegations;
  if (old !== undefined && old.roles.length > 0) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'this role delegates by name already: succinct bins replace no delegation',
      {
        found: old.roles.map((r) => r.name),
      },
    );
  }
  if (!Number.isSafeInteger(spec.bitLength) || spec.bitLength < 1 || spec.bitLength > 32) {
    throw new TufaError('INVALID_ARGUMENT', `bit length must be 1 to 32, not ${spec.bitLength}`, {
      expected: '1..32',
      found: spec.bitLength,
    });
  }
  if (spec.namePrefix.length === 0 || (TOP_LEVEL_ROLES as readonly string[]).includes(spec.namePrefix)) {
    throw new TufaError('INVALID_ARGUMENT', `${JSON.stringify(spec.namePrefix)} cannot name hash bins`);
  }
  const keys = roleKeys(`${spec.namePrefix}-*`, { keys: spec.keys, threshold: spec.threshold ?? 1 });
  const table = dict<Key>();
  for (const [id, key] of keys.keys) table[id] = key;
  return {
    ...targets,
    delegations: {
      keys: table,
      roles: [],
      succinctRoles: {
        keyids: keys.keyids,
        threshold: keys.threshold,
        bitLength: spec.bitLength,
        namePrefix: spec.namePrefix,
        extra: {},
      },
      extra: old?.extra ?? {},
    },
  };
}

export function withoutDelegation(targets: Targets, name: string): Targets {
  const old = targets.delegations;
  if (old?.succinctRoles !== undefined && delegatedRoleNamed(old, name) !== undefined) {
    throw new TufaError('INVALID_ARGUMENT', `${name} is a succinct hash bin: bins are removed all together`, {
      role: name,
    });
  }
  if (old === undefined || !old.roles.some((r) => r.name === name)) {
    throw new TufaError('NOT_FOUND', `${name} is not delegated`, { role: name });
  }
  return { ...targets, delegations: pruneKeys({ ...old, roles: old.roles.filter((r) => r.name !== name) }) };
}

function pruneKeys(delegations: Delegations): Delegations {
  const used = new Set([
    ...delegations.roles.flatMap((r) => r.keyids),
    ...(delegations.succinctRoles?.keyids ?? []),
  ]);
  const keys = dict<Key>();
  for (const [id, key] of Object.entries(delegations.keys)) if (used.has(id)) keys[id] = key;
  return { ...delegations, keys };
}

/** Signs `signed` with each signer: a new document whose signatures are exactly these. */
export async function signMetadata<T extends Signed>(
  signed: T,
  signers: readonly Signer[],
): Promise<Metadata<T>> {
  const plain = signed.type === 'snapshot' ? plainSnapshotBytes(signed) : undefined;
  const signedBytes = plain ?? canonicalBytes(signedToJson(signed));
  const md: Metadata<T> = { signed, signatures: await sign(signedBytes, signers), extra: {}, signedBytes };
  if (plain !== undefined) rememberPlain(md);
  return md;
}

/** Adds (or replaces) signatures by these signers on an existing document. */
export async function addSignatures<T extends Signed>(
  metadata: Metadata<T>,
  signers: readonly Signer[],
): Promise<Metadata<T>> {
  const added = await sign(metadata.signedBytes, signers);
  const replaced = new Set(added.map((s) => s.keyid));
  return {
    ...metadata,
    signatures: [...metadata.signatures.filter((s) => !replaced.has(s.keyid)), ...added],
  };
}

// One signer at a time: a hardware token serves one operation per session.
async function sign(signedBytes: Uint8Array, signers: readonly Signer[]): Promise<Signature[]> {
  const seen = new Set<string>();
  const out: Signature[] = [];
  for (const signer of signers) {
    if (seen.has(signer.keyid)) continue;
    seen.add(signer.keyid);
    out.push({ keyid: signer.keyid, sig: toHex(await signer.sign(signedBytes)), extra: {} });
  }
  return out;
}
