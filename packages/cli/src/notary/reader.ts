/**
 * Reads a Notary v1 collection and verifies it the way Notary's client does: the root signed by
 * its own certificate keys at threshold (certificates valid now, CN equal to the GUN, pinned ids
 * when given), rotations signed by the previous root, then timestamp → snapshot → targets →
 * delegations by length and hash, each signed at threshold, none expired, none older than what
 * the trust dir has seen, delegated paths inside their delegator's prefixes. I/O is passed in.
 */

import { createHash } from 'node:crypto';
import { type CryptoProvider, TufaError, toHex } from '@tufa/core';
import {
  type DecodedKey,
  decodeNotaryKey,
  type NotaryDelegation,
  type NotaryDocument,
  type NotaryKey,
  type NotaryMeta,
  type NotaryRole,
  type NotaryRootSigned,
  type NotarySnapshotSigned,
  type NotaryTarget,
  type NotaryTargetsSigned,
  type NotaryTimestampSigned,
  parseNotaryDocument,
  verifyNotarySignature,
} from './format.js';

/** Where the collection's files come from: `FILE` under `/v2/GUN/_trust/tuf/`; undefined when absent (404). */
export type NotaryFetch = (file: string, maxBytes: number, role: string) => Promise<Uint8Array | undefined>;

/** Bound for files whose length nothing signed states yet (root, timestamp): Notary's own is 5 MiB. */
export const MAX_UNKNOWN_LENGTH = 5 * 1024 * 1024;
/** Delegated roles read at most (Notary walks them all; this bounds a hostile tree). */
export const MAX_DELEGATED_ROLES = 1000;
/** Root versions walked in one read. */
export const MAX_ROOT_ROTATIONS = 1024;

export interface NotaryTrust {
  /** The root the trust dir holds (`tuf/GUN/metadata/root.json`): rotations must chain from it. */
  readonly trustedRoot?: Uint8Array | undefined;
  /** Versions the trust dir has seen, by role: an older one served now is a rollback. */
  readonly seenVersions?: Readonly<Record<string, number>>;
  /** Pinned root certificate key ids (Notary's trust_pinning "certs"): only these count. */
  readonly certIds?: readonly string[];
}

export interface NotaryRoleState {
  /** Notary's name: `targets`, `targets/releases`, … */
  readonly name: string;
  /** undefined for targets. */
  readonly delegator: string | undefined;
  readonly delegation: NotaryDelegation | undefined;
  /** The delegator's key objects for this role (delegations) or root's (targets). */
  readonly keys: Readonly<Record<string, NotaryKey>>;
  /** undefined when snapshot lists no metadata for a delegated role: it holds no targets. */
  readonly signed: NotaryTargetsSigned | undefined;
}

export interface NotaryTag {
  readonly path: string;
  readonly role: string;
  readonly target: NotaryTarget;
}

export interface NotaryCollection {
  readonly gun: string;
  readonly root: NotaryDocument<NotaryRootSigned>;
  /** Root versions verified one after the other (0 when the trust dir had none or the latest). */
  readonly rotations: number;
  readonly trustedOnFirstUse: boolean;
  /** Key ids (as root.json names them) of the root certificates that signed. */
  readonly rootKeyIds: readonly string[];
  readonly timestamp: NotaryDocument<NotaryTimestampSigned>;
  readonly snapshot: NotaryDocument<NotarySnapshotSigned>;
  /** targets first, then delegated roles breadth first, as Notary walks them. */
  readonly roles: readonly NotaryRoleState[];
  /** Each tag as Notary resolves it: the first role in that walk that lists it. */
  readonly tags: ReadonlyMap<string, NotaryTag>;
  /** The same path listed again by a later role: Notary never serves that one. */
  readonly shadowed: readonly NotaryTag[];
}

export interface ReadNotaryOptions {
  readonly gun: string;
  readonly fetch: NotaryFetch;
  readonly crypto: CryptoProvider;
  /** Milliseconds since the epoch. */
  readonly now: number;
  readonly trust?: NotaryTrust;
}

function decodeAll(
  keys: Readonly<Record<string, NotaryKey>>,
  ids: readonly string[],
  role: string,
): Map<string, DecodedKey> {
  const out = new Map<string, DecodedKey>();
  for (const id of ids) {
    const key = keys[id];
    if (key !== undefined) out.set(id, decodeNotaryKey(key, role));
  }
  return out;
}

/** Distinct keys of `allowed` with a valid signature over the document. */
function signedBy(
  crypto: CryptoProvider,
  doc: NotaryDocument,
  allowed: ReadonlyMap<string, DecodedKey>,
): string[] {
  const good = new Set<string>();
  for (const sig of doc.signatures) {
    const key = allowed.get(sig.keyid);
    if (key !== undefined && !good.has(sig.keyid) && verifyNotarySignature(crypto, key, sig, doc.canonical))
      good.add(sig.keyid);
  }
  return [...good];
}

function checkThreshold(
  crypto: CryptoProvider,
  doc: NotaryDocument,
  role: string,
  rule: NotaryRole,
  keys: ReadonlyMap<string, DecodedKey>,
  by = role,
): string[] {
  const allowed = new Map([...keys].filter(([id]) => rule.keyids.includes(id)));
  const good = signedBy(crypto, doc, allowed);
  if (good.length < rule.threshold) {
    throw new TufaError(
      good.length === 0 && doc.signatures.length > 0 ? 'BAD_SIGNATURE' : 'THRESHOLD_NOT_MET',
      `notary ${role}: ${good.length} valid signature${good.length === 1 ? '' : 's'} of the keys ${by} trusts, ${rule.threshold} needed`,
      {
        role,
        expected: rule.threshold,
        found: good.length,
        details: { signedBy: good, keyids: rule.keyids },
      },
    );
  }
  return good;
}

function checkExpiry(role: string, expires: string, expiresMs: number, now: number): void {
  if (expiresMs <= now) {
    throw new TufaError('EXPIRED', `notary ${role}: expired at ${expires}`, {
      role,
      expected: `after ${new Date(now).toISOString()}`,
      found: expires,
    });
  }
}

function checkSeen(trust: NotaryTrust | undefined, role: string, version: number): void {
  const seen = trust?.seenVersions?.[role];
  if (seen !== undefined && version < seen) {
    throw new TufaError(
      'ROLLBACK',
      `notary ${role}: version ${version} is older than version ${seen} the trust dir has seen`,
      {
        role,
        expected: `>= ${seen}`,
        found: version,
      },
    );
  }
}

function checkBytes(role: string, bytes: Uint8Array, meta: NotaryMeta, by: string): void {
  if (bytes.length !== meta.length) {
    throw new TufaError(
      'LENGTH_MISMATCH',
      `notary ${role}: ${bytes.length} bytes, ${by} says ${meta.length}`,
      {
        role,
        expected: meta.length,
        found: bytes.length,
      },
    );
  }
  for (const [alg, hex] of Object.entries(meta.hashes)) {
    if (alg !== 'sha256' && alg !== 'sha512') continue;
    const got = toHex(createHash(alg).update(bytes).digest());
    if (got !== hex) {
      throw new TufaError('HASH_MISMATCH', `notary ${role}: its ${alg} is not the one ${by} lists`, {
        role,
        expected: hex,
        found: got,
      });
    }
  }
}

/**
 * The root keys that may count: x509 certificates, valid now, with CN equal to the GUN (and
 * pinned, when ids are pinned). Notary drops the others and counts the threshold over the rest.
 */
function rootCertificates(
  root: NotaryRootSigned,
  gun: string,
  now: number,
  pins: readonly string[] | undefined,
): { usable: Map<string, DecodedKey>; refused: { keyid: string; reason: string }[] } {
  const usable = new Map<string, DecodedKey>();
  const refused: { keyid: string; reason: string }[] = [];
  for (const id of root.roles.root.keyids) {
    const decoded = decodeNotaryKey(root.keys[id]!, 'root');
    const cert = decoded.certificate;
    let reason: string | undefined;
    if (cert === undefined) reason = `a ${root.keys[id]!.keytype} key, not a certificate`;
    else {
      const cns = cert.subject.split('\n').filter((l) => l.startsWith('CN='));
      const cn = cns.length === 1 ? cns[0]!.slice(3) : undefined;
      if (cn !== gun)
        reason = `its CN is ${cn === undefined ? 'missing or repeated' : JSON.stringify(cn)}, not the GUN ${gun}`;
      else if (Date.parse(cert.validFrom) > now) reason = `not valid before ${cert.validFrom}`;
      else if (Date.parse(cert.validTo) <= now) reason = `expired at ${cert.validTo}`;
      else if (pins !== undefined && !pins.includes(id)) reason = 'not a pinned certificate id';
    }
    if (reason === undefined) usable.set(id, decoded);
    else refused.push({ keyid: id, reason });
  }
  return { usable, refused };
}

function verifyRootCertificates(
  crypto: CryptoProvider,
  doc: NotaryDocument<NotaryRootSigned>,
  gun: string,
  now: number,
  pins: readonly string[] | undefined,
): string[] {
  const { usable, refused } = rootCertificates(doc.signed, gun, now, pins);
  const rule = doc.signed.roles.root;
  if (usable.size < rule.threshold) {
    throw new TufaError(
      'UNTRUSTED_CERTIFICATE',
      `notary root v${doc.signed.version}: ${usable.size} usable root certificate${usable.size === 1 ? '' : 's'}, ${rule.threshold} needed (${refused.map((r) => `${r.keyid.slice(0, 12)}…: ${r.reason}`).join('; ')})`,
      { role: 'root', expected: rule.threshold, found: usable.size, details: { refused } },
    );
  }
  return checkThreshold(crypto, doc, 'root', rule, usable, 'its root certificates');
}

async function fetchRequired(
  options: ReadNotaryOptions,
  file: string,
  maxBytes: number,
  role: string,
): Promise<Uint8Array> {
  const bytes = await options.fetch(file, maxBytes, role);
  if (bytes === undefined) {
    throw new TufaError('NOT_FOUND', `notary ${role}: the server has no ${file} for ${options.gun}`, {
      role,
      found: file,
    });
  }
  return bytes;
}

/** Reads the root as Notary's client does: from the trust dir's root along the rotations, or on first use. */
async function readRoot(options: ReadNotaryOptions): Promise<{
  root: NotaryDocument<NotaryRootSigned>;
  rotations: number;
  tofu: boolean;
  signers: string[];
}> {
  const { crypto, gun, now, trust } = options;
  const latest = parseNotaryDocument<NotaryRootSigned>(
    'root',
    await fetchRequired(options, 'root.json', MAX_UNKNOWN_LENGTH, 'root'),
  );
  if (trust?.trustedRoot === undefined) {
    const signers = verifyRootCertificates(crypto, latest, gun, now, trust?.certIds);
    checkExpiry('root', latest.signed.expires, latest.signed.expiresMs, now);
    return { root: latest, rotations: 0, tofu: trust?.certIds === undefined, signers };
  }
  let current = parseNotaryDocument<NotaryRootSigned>('root', trust.trustedRoot);
  // The trusted root signs for itself (it may have expired: it only starts the chain).
  checkThreshold(
    crypto,
    current,
    'root',
    current.signed.roles.root,
    decodeAll(current.signed.keys, current.signed.roles.root.keyids, 'root'),
    'itself',
  );
  const target = latest.signed.version;
  if (target < current.signed.version) {
    throw new TufaError(
      'ROLLBACK',
      `notary root: the server's version ${target} is older than the trusted version ${current.signed.version}`,
      {
        role: 'root',
        expected: `>= ${current.signed.version}`,
        found: target,
      },
    );
  }
  if (target - current.signed.version > MAX_ROOT_ROTATIONS) {
    throw new TufaError('ROLLBACK', `notary root: more than ${MAX_ROOT_ROTATIONS} rotations at once`, {
      role: 'root',
      found: target,
    });
  }
  let rotations = 0;
  let signers: string[] = [];
  for (let v = current.signed.version + 1; v <= target; v++) {
    const next =
      v === target
        ? latest
        : parseNotaryDocument<NotaryRootSigned>(
            `root v${v}`,
            await fetchRequired(options, `${v}.root.json`, MAX_UNKNOWN_LENGTH, 'root'),
          );
    if (next.signed.version !== v) {
      throw new TufaError(
        'VERSION_MISMATCH',
        `notary root: ${v}.root.json holds version ${next.signed.version}`,
        {
          role: 'root',
          expected: v,
          found: next.signed.version,
        },
      );
    }
    // A rotation: the previous root's keys at their threshold, and the new root's own.
    checkThreshold(
      crypto,
      next,
      'root',
      current.signed.roles.root,
      decodeAll(current.signed.keys, current.signed.roles.root.keyids, 'root'),
      `root v${v - 1}`,
    );
    signers = verifyRootCertificates(crypto, next, gun, now, trust.certIds);
    current = next;
    rotations++;
  }
  if (rotations === 0) {
    if (
      toHex(createHash('sha256').update(latest.bytes).digest()) !==
      toHex(createHash('sha256').update(trust.trustedRoot).digest())
    ) {
      // Same version, other bytes: it must stand on its own certificates and keys as well.
      checkThreshold(
        crypto,
        latest,
        'root',
        current.signed.roles.root,
        decodeAll(current.signed.keys, current.signed.roles.root.keyids, 'root'),
        'the trusted root',
      );
    }
    signers = verifyRootCertificates(crypto, latest, gun, now, trust.certIds);
    current = latest;
  }
  checkExpiry('root', current.signed.expires, current.signed.expiresMs, now);
  return { root: current, rotations, tofu: false, signers };
}

const hexSha256 = (meta: NotaryMeta) => meta.hashes.sha256 ?? meta.hashes.sha512!;

/** Notary's prefix rule: a path is inside when one of the prefixes starts it ("" starts every path). */
export function underPrefixes(path: string, prefixes: readonly string[]): boolean {
  return prefixes.some((p) => path.startsWith(p));
}

/** Reads and verifies a Notary collection; a refusal is a TufaError naming the role and the check. */
export async function readNotaryCollection(options: ReadNotaryOptions): Promise<NotaryCollection> {
  const { crypto, now, trust } = options;
  const { root, rotations, tofu, signers } = await readRoot(options);
  const rootKeys = (rule: NotaryRole) => decodeAll(root.signed.keys, rule.keyids, 'root');

  const timestamp = parseNotaryDocument<NotaryTimestampSigned>(
    'timestamp',
    await fetchRequired(options, 'timestamp.json', MAX_UNKNOWN_LENGTH, 'timestamp'),
  );
  checkThreshold(
    crypto,
    timestamp,
    'timestamp',
    root.signed.roles.timestamp,
    rootKeys(root.signed.roles.timestamp),
    'root',
  );
  checkExpiry('timestamp', timestamp.signed.expires, timestamp.signed.expiresMs, now);
  checkSeen(trust, 'timestamp', timestamp.signed.version);

  const snapshotMeta = timestamp.signed.meta.snapshot;
  if (snapshotMeta === undefined) {
    throw new TufaError('INVALID_METADATA', 'notary timestamp: lists no snapshot', { role: 'timestamp' });
  }
  const snapshotBytes = await fetchRequired(
    options,
    `snapshot.${hexSha256(snapshotMeta)}.json`,
    snapshotMeta.length,
    'snapshot',
  );
  checkBytes('snapshot', snapshotBytes, snapshotMeta, 'timestamp');
  const snapshot = parseNotaryDocument<NotarySnapshotSigned>('snapshot', snapshotBytes);
  checkThreshold(
    crypto,
    snapshot,
    'snapshot',
    root.signed.roles.snapshot,
    rootKeys(root.signed.roles.snapshot),
    'root',
  );
  checkExpiry('snapshot', snapshot.signed.expires, snapshot.signed.expiresMs, now);
  checkSeen(trust, 'snapshot', snapshot.signed.version);
  // The root served must be the one snapshot names (Notary's client checks its root this way).
  const rootMeta = snapshot.signed.meta.root;
  if (rootMeta !== undefined) checkBytes('root', root.bytes, rootMeta, 'snapshot');

  const roles: NotaryRoleState[] = [];
  const tags = new Map<string, NotaryTag>();
  const shadowed: NotaryTag[] = [];
  type Pending = {
    name: string;
    delegator: string | undefined;
    delegation: NotaryDelegation | undefined;
    keys: Readonly<Record<string, NotaryKey>>;
    parentPaths: readonly string[] | undefined;
  };
  const queue: Pending[] = [
    {
      name: 'targets',
      delegator: undefined,
      delegation: undefined,
      keys: root.signed.keys,
      parentPaths: undefined,
    },
  ];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const item = queue.shift()!;
    if (seen.has(item.name)) continue;
    seen.add(item.name);
    if (roles.length > MAX_DELEGATED_ROLES) {
      throw new TufaError('DELEGATION_LIMIT', `notary: more than ${MAX_DELEGATED_ROLES} delegated roles`, {
        role: item.name,
      });
    }
    const { name, delegation } = item;
    if (delegation !== undefined && item.parentPaths !== undefined) {
      // Notary: a delegation's prefixes must lie inside its delegator's.
      const outside = delegation.paths.filter((p) => !underPrefixes(p, item.parentPaths!));
      if (outside.length > 0) {
        throw new TufaError(
          'PATH_NOT_DELEGATED',
          `notary ${name}: paths ${outside.map((p) => JSON.stringify(p)).join(', ')} are outside what ${item.delegator} is delegated`,
          {
            role: name,
            expected: item.parentPaths,
            found: outside,
          },
        );
      }
    }
    const meta = snapshot.signed.meta[name];
    if (meta === undefined) {
      if (name === 'targets')
        throw new TufaError('INVALID_METADATA', 'notary snapshot: lists no targets', { role: 'snapshot' });
      roles.push({ ...item, signed: undefined });
      continue;
    }
    const bytes = await fetchRequired(options, `${name}.${hexSha256(meta)}.json`, meta.length, name);
    checkBytes(name, bytes, meta, 'snapshot');
    const doc = parseNotaryDocument<NotaryTargetsSigned>(name, bytes);
    const rule: NotaryRole = delegation ?? root.signed.roles.targets;
    const keys = decodeAll(item.keys, rule.keyids, name);
    checkThreshold(crypto, doc, name, rule, keys, item.delegator ?? 'root');
    checkExpiry(name, doc.signed.expires, doc.signed.expiresMs, now);
    checkSeen(trust, name, doc.signed.version);
    if (delegation !== undefined) {
      const outside = Object.keys(doc.signed.targets).filter((p) => !underPrefixes(p, delegation.paths));
      if (outside.length > 0) {
        throw new TufaError(
          'PATH_NOT_DELEGATED',
          `notary ${name}: targets ${outside
            .slice(0, 5)
            .map((p) => JSON.stringify(p))
            .join(', ')} are outside its paths`,
          {
            role: name,
            expected: delegation.paths,
            found: outside.slice(0, 20),
          },
        );
      }
    }
    roles.push({ ...item, signed: doc.signed });
    for (const [path, target] of Object.entries(doc.signed.targets)) {
      const tag = { path, role: name, target };
      if (tags.has(path)) shadowed.push(tag);
      else tags.set(path, tag);
    }
    for (const d of doc.signed.delegations) {
      queue.push({
        name: d.name,
        delegator: name,
        delegation: d,
        keys: doc.signed.delegationKeys,
        parentPaths: delegation?.paths ?? undefined,
      });
    }
  }
  return {
    gun: options.gun,
    root,
    rotations,
    trustedOnFirstUse: tofu,
    rootKeyIds: signers,
    timestamp,
    snapshot,
    roles,
    tags,
    shadowed,
  };
}
