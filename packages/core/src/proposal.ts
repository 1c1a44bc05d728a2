/**
 * Threshold signing: the rules for a proposal, an update of one collection (1..n roles, the same
 * documents as an atomic update) whose signatures do not meet every threshold yet. It is checked
 * like an update in every respect but the threshold: well formed, canonical, the next version,
 * not expired, paths inside the delegation, every signature valid and by a key of the role, and
 * at least one of them. The status says, per role and per threshold (for root: the trusted root's
 * and the new root's own), which keys signed and how many more are needed. Once every threshold
 * is met the update is published through validateUpdate, which checks everything once more.
 *
 * Pure like update.ts: the current state, the documents and the reference time are given.
 */
import { hashBytes } from './crypto.js';
import { isLowerHex, toHex } from './encoding.js';
import { TufaError } from './errors.js';
import { canonicalBytes, type JsonValue } from './json.js';
import {
  type Metadata,
  parseMetadata,
  type Root,
  type Signature,
  serializeMetadata,
  type Targets,
  TOP_LEVEL_ROLES,
  targetFileToJson,
} from './metadata.js';
import { checkExpiry } from './trusted.js';
import {
  type CollectionState,
  checkDelegatedPaths,
  checkDelegationsWellFormed,
  checkNextVersion,
  checkNotCreatedAgain,
  checkRootRoles,
  delegatorsOf,
  isSnapshotOnline,
  isValidRoleName,
  MAX_ROLES_PER_UPDATE,
  parseUploaded,
  type StoredRole,
} from './update.js';
import { type VerificationResult, verifyMetadataSignatures } from './verify.js';

/** One threshold a role of a proposal must meet. */
export interface ThresholdStatus {
  /** Whose keys: `root v3` (the trusted root), `root v4` (the new root itself), or a delegator (`targets`, …). */
  readonly by: string;
  readonly threshold: number;
  /** Key ids of the role with a valid signature. */
  readonly signed: readonly string[];
  /** Key ids of the role that have not signed. */
  readonly missing: readonly string[];
  /** Signatures still needed to meet the threshold. */
  readonly needed: number;
  readonly verified: boolean;
}

export interface ProposalRoleStatus {
  readonly role: string;
  readonly version: number;
  /** Every one must be met (root: the trusted root's and its own). */
  readonly thresholds: readonly ThresholdStatus[];
  readonly complete: boolean;
}

export interface ProposalStatus {
  /** The proposal's identity: the sha256 of what is being signed (the signed parts, not the signatures). */
  readonly id: string;
  readonly roles: readonly ProposalRoleStatus[];
  /** True when every threshold of every role is met: the update can be published. */
  readonly complete: boolean;
  /** Signatures still needed, summed over every threshold. */
  readonly needed: number;
}

export interface CheckProposalOptions {
  readonly current: CollectionState;
  /** Role name → exact document bytes. */
  readonly uploads: ReadonlyMap<string, Uint8Array>;
  /** Reference time, ms since the epoch. */
  readonly now: number;
  /**
   * The server's online key ids. The server gives them; a co-signer who does not know them leaves
   * them out (the server checks the timestamp and snapshot keys when the proposal reaches it).
   */
  readonly serverKeyids?: { readonly timestamp: readonly string[]; readonly snapshot: readonly string[] };
}

function thresholdStatus(by: string, result: VerificationResult): ThresholdStatus {
  return {
    by,
    threshold: result.threshold,
    signed: result.signed,
    missing: result.missing,
    needed: Math.max(0, result.threshold - result.signed.length),
    verified: result.verified,
  };
}

/**
 * Every signature of a proposal must count for something: valid, and by a key of the role for
 * at least one of its thresholds. One more signature is never harmless noise here: a co-signer
 * who sees it must be able to trust that it is what it says.
 */
function checkSignatures(role: string, md: Metadata, results: readonly VerificationResult[]): void {
  for (const s of md.signatures) {
    if (results.some((r) => r.invalid.includes(s.keyid))) {
      throw new TufaError('BAD_SIGNATURE', `${role}: the signature by ${s.keyid} does not verify`, {
        role,
        found: s.keyid,
        details: { reason: 'does-not-verify' },
      });
    }
    if (results.every((r) => r.ignored.includes(s.keyid))) {
      throw new TufaError('BAD_SIGNATURE', `${role}: ${s.keyid} is not a key of the role`, {
        role,
        found: s.keyid,
        details: { reason: 'not-a-role-key' },
      });
    }
  }
  if (results.every((r) => r.signed.length === 0)) {
    throw new TufaError(
      'THRESHOLD_NOT_MET',
      `${role}: a proposal must be signed by at least one key of the role`,
      {
        role,
        expected: '>= 1',
        found: 0,
      },
    );
  }
}

/** The identity of a proposal: sha256 of the canonical JSON of role → sha256 of its signed part. */
export function proposalId(documents: ReadonlyMap<string, Metadata>): string {
  const parts: Record<string, string> = {};
  for (const [role, md] of documents) parts[role] = toHex(hashBytes('sha256', md.signedBytes));
  return toHex(hashBytes('sha256', canonicalBytes(parts)));
}

/**
 * Checks a proposal against the current state and reports its signature status. Throws (a
 * TufaError with the rule's code) when it could never be published as it is: malformed,
 * not the next version, expired, outside the delegated paths, a bad or foreign signature, or
 * no signature by a key of the role at all.
 */
export function checkProposal(options: CheckProposalOptions): ProposalStatus {
  const { current, uploads, now } = options;
  if (uploads.size === 0) throw new TufaError('INVALID_ARGUMENT', 'a proposal must carry at least one role');
  if (uploads.size > MAX_ROLES_PER_UPDATE) {
    throw new TufaError('TOO_LARGE', `a proposal carries at most ${MAX_ROLES_PER_UPDATE} roles`, {
      expected: MAX_ROLES_PER_UPDATE,
      found: uploads.size,
    });
  }
  for (const role of ['timestamp', 'snapshot']) {
    if (uploads.has(role)) {
      throw new TufaError(
        'UPDATE_REFUSED',
        `${role} cannot be proposed: the server signs it when the proposal is published`,
        { role },
      );
    }
  }
  const documents = new Map<string, Metadata>();
  const statuses: ProposalRoleStatus[] = [];
  const addStatus = (role: string, md: Metadata, checks: [string, VerificationResult][]) => {
    checkSignatures(
      role,
      md,
      checks.map(([, r]) => r),
    );
    const thresholds = checks.map(([by, r]) => thresholdStatus(by, r));
    statuses.push({
      role,
      version: md.signed.version,
      thresholds,
      complete: thresholds.every((t) => t.verified),
    });
  };

  // Root: the next version, signed by the trusted root's threshold and by its own (5.3.4-5.3.9).
  let root: Root;
  const rootBytes = uploads.get('root');
  if (rootBytes !== undefined) {
    const proposed = parseUploaded('root', rootBytes, 'root').metadata;
    root = proposed.signed;
    checkNotCreatedAgain(proposed, current.root?.metadata);
    checkNextVersion('root', root.version, current.root?.metadata.signed.version);
    checkExpiry(root, 'root', now);
    checkRootRoles(root, options.serverKeyids?.timestamp ?? root.roles.timestamp.keyids);
    const checks: [string, VerificationResult][] = [];
    const trusted = current.root?.metadata.signed;
    if (trusted !== undefined) {
      checks.push([
        `root v${trusted.version}`,
        verifyMetadataSignatures(proposed, { role: 'root', ...trusted.roles.root, keys: trusted.keys }),
      ]);
    }
    checks.push([
      `root v${root.version}`,
      verifyMetadataSignatures(proposed, { role: 'root', ...root.roles.root, keys: root.keys }),
    ]);
    addStatus('root', proposed, checks);
    documents.set('root', proposed);
  } else if (current.root === undefined) {
    throw new TufaError('UPDATE_REFUSED', 'the first update of a collection must carry root', {
      role: 'root',
    });
  } else {
    root = current.root.metadata.signed;
    checkExpiry(root, 'root', now);
  }
  if (options.serverKeyids !== undefined && !isSnapshotOnline(root, options.serverKeyids.snapshot)) {
    throw new TufaError(
      'UPDATE_REFUSED',
      'the collection keeps its snapshot key offline: threshold signing needs the server to sign snapshot',
      { role: 'snapshot' },
    );
  }

  // Targets: the (new) root's targets keys and threshold.
  let targets: Targets;
  const targetsBytes = uploads.get('targets');
  if (targetsBytes !== undefined) {
    const proposed = parseUploaded('targets', targetsBytes, 'targets').metadata;
    targets = proposed.signed;
    checkNextVersion('targets', targets.version, current.targets?.metadata.signed.version);
    checkExpiry(targets, 'targets', now);
    checkDelegationsWellFormed(targets, 'targets');
    addStatus('targets', proposed, [
      [
        'root',
        verifyMetadataSignatures(proposed, { role: 'targets', ...root.roles.targets, keys: root.keys }),
      ],
    ]);
    documents.set('targets', proposed);
  } else if (current.targets === undefined) {
    throw new TufaError('UPDATE_REFUSED', 'the first update of a collection must carry targets', {
      role: 'targets',
    });
  } else {
    targets = current.targets.metadata.signed;
    if (rootBytes !== undefined) {
      const kept = verifyMetadataSignatures(current.targets.metadata, {
        role: 'targets',
        ...root.roles.targets,
        keys: root.keys,
      });
      if (!kept.verified) {
        throw new TufaError(
          'UPDATE_REFUSED',
          'the proposed root changes who signs targets: propose targets, signed by the new keys, with it',
          { role: 'targets' },
        );
      }
    }
  }

  // Delegated roles: parsed first, since one may delegate to another in the same proposal.
  const delegated = new Map<string, StoredRole<Targets>>(current.delegated);
  const proposedDelegated: string[] = [];
  for (const [name, bytes] of uploads) {
    if ((TOP_LEVEL_ROLES as readonly string[]).includes(name)) continue;
    if (!isValidRoleName(name)) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        `${JSON.stringify(name.slice(0, 300))} is not a valid role name`,
        {
          role: name.slice(0, 300),
        },
      );
    }
    const stored = parseUploaded('targets', bytes, name);
    const signed = stored.metadata.signed;
    checkNextVersion(name, signed.version, current.delegated.get(name)?.metadata.signed.version);
    checkExpiry(signed, name, now);
    checkDelegationsWellFormed(signed, name);
    delegated.set(name, stored);
    proposedDelegated.push(name);
  }
  for (const name of proposedDelegated) {
    const md = delegated.get(name)!.metadata;
    const delegators = delegatorsOf(name, targets, delegated);
    const first = delegators[0];
    if (first === undefined) {
      throw new TufaError('UPDATE_REFUSED', `${name}: no role of the collection delegates to it`, {
        role: name,
      });
    }
    checkDelegatedPaths(name, md.signed, first.delegation, first.delegator);
    addStatus(name, md, [
      [
        first.delegator,
        verifyMetadataSignatures(md, {
          role: name,
          keyids: first.delegation.keyids,
          threshold: first.delegation.threshold,
          keys: first.parent.delegations!.keys,
        }),
      ],
    ]);
    documents.set(name, md);
  }
  return {
    id: proposalId(documents),
    roles: statuses,
    complete: statuses.every((s) => s.complete),
    needed: statuses.reduce((sum, s) => sum + s.thresholds.reduce((n, t) => n + t.needed, 0), 0),
  };
}

const SIGNATURE_HEX_LIMIT = 4096;

/** Parses `[{keyid, sig}, …]` from a request or a file, strictly and bounded. */
export function parseSignatureList(value: JsonValue | undefined, role: string): Signature[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 64) {
    throw new TufaError('INVALID_ARGUMENT', `${role}: signatures must be a list of 1 to 64 {keyid, sig}`, {
      role,
    });
  }
  return value.map((item) => {
    const s = item as Record<string, JsonValue> | null;
    const keys = s !== null && typeof s === 'object' && !Array.isArray(s) ? Object.keys(s) : [];
    if (
      keys.length !== 2 ||
      typeof s!.keyid !== 'string' ||
      typeof s!.sig !== 'string' ||
      !isLowerHex(s!.keyid, 64) ||
      s!.sig.length > SIGNATURE_HEX_LIMIT ||
      !isLowerHex(s!.sig)
    ) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        `${role}: a signature is {"keyid": 64 hex digits, "sig": hex}`,
        {
          role,
        },
      );
    }
    return { keyid: s!.keyid, sig: s!.sig, extra: {} };
  });
}

/**
 * The document with `signatures` added (a key's earlier signature replaced). The result must be
 * checked again with checkProposal: a signature that does not verify, or by a key outside the
 * role, is refused there by the same rule as at the first upload.
 */
export function mergeSignatures(
  bytes: Uint8Array,
  role: string,
  signatures: readonly Signature[],
): Uint8Array {
  const md = parseMetadata(role === 'root' ? 'root' : 'targets', bytes, { role }) as Metadata;
  const added = new Set(signatures.map((s) => s.keyid));
  const seen = new Set<string>();
  const merged = [...md.signatures.filter((s) => !added.has(s.keyid)), ...signatures].filter((s) => {
    if (seen.has(s.keyid)) return false;
    seen.add(s.keyid);
    return true;
  });
  return serializeMetadata({ ...md, signatures: merged });
}

/** What a proposal changes in one role, against the published version. */
export interface RoleChanges {
  readonly role: string;
  readonly from: number | null;
  readonly to: number;
  readonly expires: string;
  /** Targets roles: tags added, removed, or whose length, hashes or custom data changed. */
  readonly targets?: { added: string[]; removed: string[]; changed: string[] };
  /** Targets roles: delegations added, removed or changed (keys, threshold, paths). */
  readonly delegations?: { added: string[]; removed: string[]; changed: string[] };
  /** Root: per top-level role, keys added and removed and the threshold before and after. */
  readonly keys?: {
    role: string;
    added: string[];
    removed: string[];
    threshold: { from: number | null; to: number };
  }[];
}

function diffNames<T>(
  before: Readonly<Record<string, T>>,
  after: Readonly<Record<string, T>>,
  same: (a: T, b: T) => boolean,
): { added: string[]; removed: string[]; changed: string[] } {
  const added = Object.keys(after).filter((k) => !Object.hasOwn(before, k));
  const removed = Object.keys(before).filter((k) => !Object.hasOwn(after, k));
  const changed = Object.keys(after).filter((k) => Object.hasOwn(before, k) && !same(before[k]!, after[k]!));
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort() };
}

const canonicalEqual = (a: unknown, b: unknown) => {
  const x = canonicalBytes(a);
  const y = canonicalBytes(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

/** A summary of what each role of a proposal changes: the same for the proposer and every co-signer. */
export function describeProposal(
  current: CollectionState,
  uploads: ReadonlyMap<string, Uint8Array>,
): RoleChanges[] {
  const out: RoleChanges[] = [];
  for (const [role, bytes] of uploads) {
    if (role === 'root') {
      const next = parseMetadata('root', bytes).signed;
      const before = current.root?.metadata.signed;
      out.push({
        role,
        from: before?.version ?? null,
        to: next.version,
        expires: next.expires,
        keys: TOP_LEVEL_ROLES.map((name) => {
          const was = before?.roles[name];
          const now = next.roles[name];
          return {
            role: name,
            added: now.keyids.filter((k) => !was?.keyids.includes(k)),
            removed: (was?.keyids ?? []).filter((k) => !now.keyids.includes(k)),
            threshold: { from: was?.threshold ?? null, to: now.threshold },
          };
        }).filter((k) => k.added.length > 0 || k.removed.length > 0 || k.threshold.from !== k.threshold.to),
      });
      continue;
    }
    const next = parseMetadata('targets', bytes, { role }).signed;
    const before =
      role === 'targets' ? current.targets?.metadata.signed : current.delegated.get(role)?.metadata.signed;
    const delegationsOf = (t: Targets | undefined) =>
      Object.fromEntries((t?.delegations?.roles ?? []).map((d) => [d.name, d]));
    out.push({
      role,
      from: before?.version ?? null,
      to: next.version,
      expires: next.expires,
      targets: diffNames(before?.targets ?? {}, next.targets, (a, b) =>
        canonicalEqual(targetFileToJson(a), targetFileToJson(b)),
      ),
      delegations: diffNames(delegationsOf(before), delegationsOf(next), (a, b) =>
        canonicalEqual(
          {
            k: a.keyids,
            t: a.threshold,
            p: a.paths ?? null,
            h: a.pathHashPrefixes ?? null,
            x: a.terminating,
          },
          {
            k: b.keyids,
            t: b.threshold,
            p: b.paths ?? null,
            h: b.pathHashPrefixes ?? null,
            x: b.terminating,
          },
        ),
      ),
    });
  }
  return out;
}

/** Parses a proposal's documents leniently enough to read them back (they were checked on the way in). */
export function proposalDocuments(uploads: ReadonlyMap<string, Uint8Array>): Map<string, Metadata> {
  const out = new Map<string, Metadata>();
  for (const [role, bytes] of uploads) {
    out.set(role, parseMetadata(role === 'root' ? 'root' : 'targets', bytes, { role }) as Metadata);
  }
  return out;
}

/** Reads the body of an add-signatures request: `{"signatures": {"ROLE": [{keyid, sig}, …]}}`. */
export function signaturesFromJson(doc: JsonValue): Map<string, Signature[]> {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'signatures are sent as {"signatures": {"ROLE": [{keyid, sig}]}}',
    );
  }
  const inner = (doc as Record<string, JsonValue>).signatures;
  if (inner === undefined || inner === null || typeof inner !== 'object' || Array.isArray(inner)) {
    throw new TufaError(
      'INVALID_ARGUMENT',
      'signatures are sent as {"signatures": {"ROLE": [{keyid, sig}]}}',
    );
  }
  const out = new Map<string, Signature[]>();
  const entries = Object.entries(inner);
  if (entries.length === 0 || entries.length > MAX_ROLES_PER_UPDATE) {
    throw new TufaError('INVALID_ARGUMENT', 'signatures must name at least one role');
  }
  for (const [role, list] of entries) out.set(role, parseSignatureList(list, role));
  return out;
}
