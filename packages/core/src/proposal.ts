/**
 * Threshold signing: the rules for a proposal, an update of one collection (1..n roles, the same
 * documents as an atomic update) whose signatures do not meet every threshold yet. It is checked
 * like an update in every respect but the threshold: well formed, canonical, the next version,
 * not expired, paths inside the delegation, every signature valid and by a key of the role, and
 * at least one of them. The status says, per role and per threshold (for root: the trusted root's
 * and the new root's own), which keys signed and how many more are needed. Once every threshold
 * is met the update is published through validateUpdate, which checks everything once more.
 * Both run the same rules: CollectionUpdate's (collection-update.ts).
 *
 * Pure: the current state, the documents and the reference time are given.
 */
import {
  CollectionUpdate,
  checkRoleCount,
  MAX_ROLES_PER_UPDATE,
  type RoleStatus,
  signaturesNeeded,
} from './collection-update.js';
import type { CryptoProvider } from './crypto.js';
import { succinctBinRole } from './delegation.js';
import { isLowerHex, toHex } from './encoding.js';
import { TufaError } from './errors.js';
import { canonicalBytes, type JsonValue } from './json.js';
import {
  type Metadata,
  parseMetadata,
  type Signature,
  serializeMetadata,
  type Targets,
  TOP_LEVEL_ROLES,
  targetFileToJson,
} from './metadata.js';
import { finish, type UpdateSteps } from './steps.js';
import type { CollectionState, StoredRole } from './update.js';

/** One role of a proposal: its status per threshold (CollectionUpdate's). */
export type ProposalRoleStatus = RoleStatus;

export interface ProposalStatus {
  /** The proposal's identity: the sha256 of what is being signed (the signed parts, not the signatures). */
  readonly id: string;
  readonly roles: readonly ProposalRoleStatus[];
  /** True when every threshold of every role is met: the update can be published. */
  readonly complete: boolean;
  /** Signatures still needed, summed over every role. */
  readonly needed: number;
}

export interface CheckProposalOptions {
  readonly current: CollectionState;
  /** Checks every signature and hash of the proposal. */
  readonly crypto: CryptoProvider;
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

/** The identity of a proposal: sha256 of the canonical JSON of role → sha256 of its signed part. */
export function proposalId(crypto: CryptoProvider, documents: ReadonlyMap<string, Metadata>): string {
  const parts: Record<string, string> = {};
  for (const [role, md] of documents) parts[role] = toHex(crypto.hash('sha256', md.signedBytes));
  return toHex(crypto.hash('sha256', canonicalBytes(parts)));
}

/**
 * Checks a proposal against the current state and reports its signature status: CollectionUpdate's
 * rules, with at least one valid signature per role instead of every threshold. Throws (a
 * TufaError with the rule's code) when it could never be published as it is: malformed, not the
 * next version, expired, outside the delegated paths, a bad or foreign signature, no signature by
 * a key of the role at all, or a collection whose snapshot the server does not sign.
 */
export function checkProposal(options: CheckProposalOptions): ProposalStatus {
  return finish(checkingProposal(options));
}

/** checkProposal in steps: yields between roles and batches of signatures (see validatingUpdate). */
export function* checkingProposal(options: CheckProposalOptions): UpdateSteps<ProposalStatus> {
  const { uploads } = options;
  checkRoleCount(uploads, 'a proposal');
  for (const role of ['timestamp', 'snapshot']) {
    if (uploads.has(role)) {
      throw new TufaError(
        'UPDATE_REFUSED',
        `${role} cannot be proposed: the server signs it when the proposal is published`,
        { role },
      );
    }
  }
  const update = new CollectionUpdate(options);
  yield* update.applying(uploads);
  if (update.snapshotOnline === false) {
    throw new TufaError(
      'UPDATE_REFUSED',
      'the collection keeps its snapshot key offline: threshold signing needs the server to sign snapshot',
      { role: 'snapshot' },
    );
  }
  const roles = yield* update.partialling();
  return {
    id: proposalId(options.crypto, new Map(roles.map((r) => [r.role, update.document(r.role)]))),
    roles,
    complete: roles.every((s) => s.complete),
    needed: roles.reduce((sum, s) => sum + signaturesNeeded(s), 0),
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

/** A proposed role's current document (undefined when new); one a stored state did not load is a bug. */
function currentDocument(current: CollectionState, role: string): StoredRole<Targets> | undefined {
  const delegated = current.delegated;
  if (!('document' in delegated)) return delegated.get(role);
  const found = delegated.document(role);
  if (found === undefined && delegated.entries.has(role)) {
    throw new TufaError('INTERNAL', `${role}: the stored document was not loaded`, { role });
  }
  return found;
}

const canonicalEqual = (a: unknown, b: unknown) => {
  const x = canonicalBytes(a);
  const y = canonicalBytes(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

/**
 * A summary of what each role of a proposal changes: the same for the proposer and every co-signer.
 * A state as stored (StoredDelegatedRoles) must hold the proposed roles' documents.
 */
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
      role === 'targets' ? current.targets?.metadata.signed : currentDocument(current, role)?.metadata.signed;
    const delegationsOf = (t: Targets | undefined) => {
      const succinct = t?.delegations?.succinctRoles;
      // Succinct bins change together: one entry stands for them all (bin 0 carries their bit length).
      if (succinct !== undefined) return { [`${succinct.namePrefix}-*`]: succinctBinRole(succinct, 0) };
      return Object.fromEntries((t?.delegations?.roles ?? []).map((d) => [d.name, d]));
    };
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
