/**
 * Delegated targets (5.7): a target search through core's `searchTarget`, and one walk of the
 * whole delegation tree (`walkDelegations`) that findRole, listDelegations and listTargets share.
 * Both load delegated roles as they go through the trusted set (from the cache when they are
 * still the version the snapshot names).
 */
import {
  allDelegatedRoles,
  type DelegatedRole,
  delegatedRoleCount,
  delegatedRoleNamed,
  isTufaError,
  type JsonValue,
  type Metadata,
  metaFileName,
  searchTarget,
  type Targets,
  type TrustedMetadataSet,
  TufaError,
} from '@tufa/core';
import {
  accepted,
  type ClientContext,
  documentBound,
  fetchListed,
  loadCached,
  loadCachedOffline,
} from './context.js';

export interface TargetInfo {
  /** The target path (the tag). */
  name: string;
  length: number;
  hashes: Record<string, string>;
  custom: JsonValue | undefined;
  /** The role whose metadata states this target. */
  role: string;
}

/** A delegated role as found through the trusted delegation tree. */
export interface FoundRole {
  name: string;
  /** The role that delegates it (`targets` or a delegated role). */
  delegator: string;
  delegation: DelegatedRole;
  /** Its trusted metadata, or undefined when nothing has been published for it yet. */
  metadata: Metadata<Targets> | undefined;
}

/** 5.7: preorder search through the delegation tree, loading roles as the search needs them. */
export async function findTarget(
  ctx: ClientContext,
  set: TrustedMetadataSet,
  tag: string,
): Promise<TargetInfo> {
  const maxRoles = ctx.maxDelegations;
  for (let step = 0; step <= maxRoles + 1; step++) {
    const result = searchTarget({
      path: tag,
      targets: set.targets!.signed,
      getRole: (name, delegator) => set.delegated(name, delegator)?.signed,
      maxRoles,
    });
    if (result.kind === 'found') {
      const t = result.target;
      return {
        name: tag,
        length: t.length,
        hashes: { ...t.hashes },
        custom: t.custom,
        role: result.role,
      };
    }
    if (result.kind === 'not-found') {
      throw new TufaError('NOT_FOUND', `${tag}: no trusted target of that name`, {
        found: tag,
        details: { rolesVisited: result.visited },
      });
    }
    await loadDelegated(ctx, set, { role: result.role, delegator: result.delegator });
  }
  throw new TufaError('DELEGATION_LIMIT', `${tag}: delegation search did not settle`, {
    expected: maxRoles,
  });
}

/**
 * Finds a delegated role by name through the delegation tree. `metadata` is undefined when the
 * role is delegated but not listed in snapshot yet; NOT_FOUND when no role delegates it.
 */
export async function findRole(
  ctx: ClientContext,
  set: TrustedMetadataSet,
  name: string,
): Promise<FoundRole> {
  // A bin of top-level targets (TAP 15) is known by its name: no walk through 2^bit_length bins.
  const bin = delegatedRoleNamed(set.targets!.signed.delegations, name);
  if (bin !== undefined && set.targets!.signed.delegations?.succinctRoles !== undefined) {
    const listed = Object.hasOwn(set.snapshot!.signed.meta, metaFileName(name));
    const metadata = listed ? await loadDelegated(ctx, set, { role: bin, delegator: 'targets' }) : undefined;
    return { name, delegator: 'targets', delegation: bin, metadata };
  }
  for await (const found of walkDelegations(ctx, set, `looking for ${name}`)) {
    if (found.delegation.name === name) return found;
  }
  throw new TufaError('NOT_FOUND', `${name}: no trusted role delegates it`, { role: name });
}

/** Every delegated role of the trusted tree, preorder from targets, each with its delegator. */
export async function listDelegations(ctx: ClientContext, set: TrustedMetadataSet): Promise<FoundRole[]> {
  const out: FoundRole[] = [];
  for await (const found of walkDelegations(ctx, set, 'listing delegations')) out.push(found);
  return out;
}

/** Every target a search would find, sorted by name. */
export async function listTargets(ctx: ClientContext, set: TrustedMetadataSet): Promise<TargetInfo[]> {
  const names = new Set<string>(Object.keys(set.targets!.signed.targets));
  for await (const found of walkDelegations(ctx, set, 'listing targets')) {
    for (const target of Object.keys(found.metadata?.signed.targets ?? {})) names.add(target);
  }
  const out: TargetInfo[] = [];
  for (const name of [...names].sort()) {
    try {
      out.push(await findTarget(ctx, set, name));
    } catch (err) {
      if (!isTufaError(err, 'NOT_FOUND')) throw err; // stated by a role not trusted for that path
    }
  }
  return out;
}

/** The most succinct hash bins a listing loads (one request each): 2^16, as many as `tufa init --hash-bins` makes. */
export const MAX_LISTED_BINS = 65536;

/**
 * Every delegated role in the trusted tree, each once, preorder from targets (bounded like a
 * search), loaded and verified through its delegator; `metadata` is undefined for a role that is
 * delegated but not listed in snapshot (nothing published for it yet).
 */
async function* walkDelegations(
  ctx: ClientContext,
  set: TrustedMetadataSet,
  purpose: string,
): AsyncGenerator<FoundRole> {
  const maxRoles = ctx.maxDelegations;
  const visited = new Set<string>(['targets']);
  // TAP 15 bins are one delegation of a known size, not a chain: they count once against the bound.
  let bins = 0;
  const stack: { name: string; signed: Targets }[] = [{ name: 'targets', signed: set.targets!.signed }];
  while (stack.length > 0) {
    const parent = stack.pop()!;
    const next: { name: string; signed: Targets }[] = [];
    const delegations = parent.signed.delegations;
    if (delegations?.succinctRoles !== undefined) {
      const count = delegatedRoleCount(delegations);
      if (count > MAX_LISTED_BINS) {
        throw new TufaError(
          'DELEGATION_LIMIT',
          `${parent.name} delegates to ${count} hash bins: too many to load ${purpose}`,
          {
            role: parent.name,
            expected: MAX_LISTED_BINS,
            found: count,
          },
        );
      }
      bins += count - 1;
    }
    for (const child of allDelegatedRoles(delegations)) {
      if (visited.has(child.name)) continue;
      if (visited.size - bins >= maxRoles) {
        throw new TufaError('DELEGATION_LIMIT', `more than ${maxRoles} roles visited ${purpose}`, {
          role: child.name,
          expected: maxRoles,
        });
      }
      visited.add(child.name);
      const listed = Object.hasOwn(set.snapshot!.signed.meta, metaFileName(child.name));
      const metadata = listed
        ? await loadDelegated(ctx, set, { role: child, delegator: parent.name })
        : undefined;
      yield { name: child.name, delegator: parent.name, delegation: child, metadata };
      if (metadata !== undefined) next.push({ name: child.name, signed: metadata.signed });
    }
    for (let i = next.length - 1; i >= 0; i--) stack.push(next[i]!);
  }
}

/**
 * A delegated role as trusted through `delegator`: the one the set holds, else the cached copy
 * when it is still the version the snapshot names, else downloaded (and cached, unless the set
 * is a publisher's view).
 */
async function loadDelegated(
  ctx: ClientContext,
  set: TrustedMetadataSet,
  wanted: { role: DelegatedRole; delegator: string },
): Promise<Metadata<Targets>> {
  const { role, delegator } = wanted;
  const held = set.delegated(role.name, delegator);
  if (held !== undefined) return held;
  let result: Metadata<Targets> | undefined;
  if (ctx.offline) {
    const listed = Object.hasOwn(set.snapshot!.signed.meta, metaFileName(role.name));
    if (!listed) {
      throw new TufaError('NOT_FOUND', `${role.name}: not listed in snapshot`, {
        role: role.name,
        expected: metaFileName(role.name),
      });
    }
    // As if just downloaded: hashes, length and version as the snapshot states, expiry now.
    await loadCachedOffline(ctx, {
      role: role.name,
      maxBytes: documentBound(ctx, 'targets'),
      load: (b) => {
        result = accepted(set.updateDelegatedTargets(b, role.name, delegator), b);
      },
    });
    return result!;
  }
  const fromCache = await loadCached(ctx, {
    role: role.name,
    maxBytes: documentBound(ctx, 'targets'),
    load: (b) => {
      result = accepted(set.updateDelegatedTargets(b, role.name, delegator, { cached: true }), b);
    },
  });
  if (fromCache && result !== undefined) return result;
  const fileName = metaFileName(role.name);
  const snapshot = set.snapshot!.signed;
  const meta = Object.hasOwn(snapshot.meta, fileName) ? snapshot.meta[fileName] : undefined;
  if (meta === undefined) {
    throw new TufaError('NOT_FOUND', `${role.name}: not listed in snapshot`, {
      role: role.name,
      expected: fileName,
    });
  }
  const bytes = await fetchListed(ctx, {
    role: role.name,
    kind: 'targets',
    meta,
    consistentSnapshot: set.root.signed.consistentSnapshot === true,
  });
  const loaded = accepted(set.updateDelegatedTargets(bytes, role.name, delegator), bytes);
  if (!set.allowExpired) await ctx.cache.write(role.name, bytes); // a publisher's view leaves the cache alone
  return loaded;
}
