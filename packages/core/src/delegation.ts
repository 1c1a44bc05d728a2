/**
 * Delegation search (5.7.7 of the spec): which role, if any, is trusted for a target path.
 * Pure and synchronous: when the search needs a role that is not loaded yet it says so, the
 * caller loads it through the trusted-metadata set and asks again.
 */
import { sha256Id } from './crypto.js';
import { TufaError } from './errors.js';
import { utf8Encode } from './json.js';
import {
  type DelegatedRole,
  type Delegations,
  type SuccinctRoles,
  type TargetFile,
  type Targets,
  targetFileOf,
} from './metadata.js';

/** python-tuf's and tuf-js's default bound on roles visited in one search. */
export const DEFAULT_MAX_DELEGATIONS = 32;

const patternCache = new Map<string, RegExp>();

function segmentRegex(segment: string): string {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const close = segment.indexOf(']', i + 2);
      if (close === -1) {
        out += '\\[';
        continue;
      }
      let body = segment.slice(i + 1, close);
      let negate = false;
      if (body.startsWith('!')) {
        negate = true;
        body = body.slice(1);
      }
      out += `[${negate ? '^/' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return out;
}

/**
 * The spec's shell-style path pattern: `*` matches any characters but `/`, `?` one character,
 * `[abc]` and `[!abc]` a set; pattern and path must have the same number of `/` segments.
 */
export function matchPathPattern(pattern: string, path: string): boolean {
  let re = patternCache.get(pattern);
  if (re === undefined) {
    re = new RegExp(`^${pattern.split('/').map(segmentRegex).join('/')}$`, 's');
    if (patternCache.size > 4096) patternCache.clear();
    patternCache.set(pattern, re);
  }
  return re.test(path);
}

/** Whether a delegated role is trusted for a target path (paths or path_hash_prefixes). */
export function isDelegatedPath(role: DelegatedRole, targetPath: string): boolean {
  if (role.paths !== undefined) return role.paths.some((p) => matchPathPattern(p, targetPath));
  if (role.pathHashPrefixes !== undefined) {
    const digest = sha256Id(utf8Encode(targetPath));
    return role.pathHashPrefixes.some((prefix) => digest.startsWith(prefix));
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// TAP 15 succinct hash bins. A bin is presented as the delegated role it stands for: its name, the
// one key set, terminating, and the path_hash_prefixes (hex digits of sha256(path)) its bits
// cover, so that every rule about delegated roles applies to a bin unchanged.

/** The hex digits of a bin name's suffix: ceil(bit_length / 4), as TAP 15 pads it. */
export function succinctSuffixLength(bitLength: number): number {
  return Math.ceil(bitLength / 4);
}

/** The number of bins: 2^bit_length. */
export function succinctBinCount(succinct: SuccinctRoles): number {
  return 2 ** succinct.bitLength;
}

/** The name of bin number `index`: name_prefix, `-`, the index in zero-padded lowercase hex. */
export function succinctBinName(succinct: SuccinctRoles, index: number): string {
  const suffix = index.toString(16).padStart(succinctSuffixLength(succinct.bitLength), '0');
  return `${succinct.namePrefix}-${suffix}`;
}

/** The bin number of a target path: the first bit_length bits of sha256(path), big-endian. */
export function succinctBinIndex(succinct: SuccinctRoles, targetPath: string): number {
  const first32 = Number.parseInt(sha256Id(utf8Encode(targetPath)).slice(0, 8), 16);
  return Math.floor(first32 / 2 ** (32 - succinct.bitLength));
}

/** The name of the bin a target path belongs to (TAP 15). */
export function succinctBinNameFor(succinct: SuccinctRoles, targetPath: string): string {
  return succinctBinName(succinct, succinctBinIndex(succinct, targetPath));
}

/** The bin number a role name stands for, or undefined when it names no bin of these. */
export function succinctBinIndexOf(succinct: SuccinctRoles, name: string): number | undefined {
  const head = `${succinct.namePrefix}-`;
  if (!name.startsWith(head)) return undefined;
  const suffix = name.slice(head.length);
  if (suffix.length !== succinctSuffixLength(succinct.bitLength) || !/^[0-9a-f]+$/.test(suffix))
    return undefined;
  const index = Number.parseInt(suffix, 16);
  return index < succinctBinCount(succinct) ? index : undefined;
}

/** Bin number `index` as a delegated role: terminating, trusted for the hash prefixes of its bits. */
export function succinctBinRole(succinct: SuccinctRoles, index: number): DelegatedRole {
  const digits = succinctSuffixLength(succinct.bitLength);
  const spare = digits * 4 - succinct.bitLength; // bits of the last hex digit below the bin's bits
  const prefixes: string[] = [];
  for (let low = 0; low < 2 ** spare; low++) {
    prefixes.push((index * 2 ** spare + low).toString(16).padStart(digits, '0'));
  }
  return {
    name: succinctBinName(succinct, index),
    keyids: succinct.keyids,
    threshold: succinct.threshold,
    // TAP 15: a path has exactly one bin, and a search that reaches it looks no further.
    terminating: true,
    pathHashPrefixes: prefixes,
    extra: {},
  };
}

/** The delegated role of that name in `delegations` (listed, or a succinct bin), if any. */
export function delegatedRoleNamed(
  delegations: Delegations | undefined,
  name: string,
): DelegatedRole | undefined {
  if (delegations === undefined) return undefined;
  const succinct = delegations.succinctRoles;
  if (succinct !== undefined) {
    const index = succinctBinIndexOf(succinct, name);
    return index === undefined ? undefined : succinctBinRole(succinct, index);
  }
  return delegations.roles.find((d) => d.name === name);
}

/** The delegations a search for `targetPath` follows, in order: the listed ones whose paths match, or its one bin. */
export function delegationsFor(delegations: Delegations | undefined, targetPath: string): DelegatedRole[] {
  if (delegations === undefined) return [];
  const succinct = delegations.succinctRoles;
  if (succinct !== undefined) return [succinctBinRole(succinct, succinctBinIndex(succinct, targetPath))];
  return delegations.roles.filter((d) => isDelegatedPath(d, targetPath));
}

/** Every delegated role `delegations` declares, in order (all 2^bit_length bins of a succinct one). */
export function* allDelegatedRoles(delegations: Delegations | undefined): Generator<DelegatedRole> {
  if (delegations === undefined) return;
  const succinct = delegations.succinctRoles;
  if (succinct === undefined) {
    yield* delegations.roles;
    return;
  }
  for (let i = 0; i < succinctBinCount(succinct); i++) yield succinctBinRole(succinct, i);
}

/** How many delegated roles `delegations` declares (2^bit_length for succinct bins). */
export function delegatedRoleCount(delegations: Delegations | undefined): number {
  if (delegations === undefined) return 0;
  const succinct = delegations.succinctRoles;
  return succinct === undefined ? delegations.roles.length : succinctBinCount(succinct);
}

export type TargetSearchResult =
  | {
      readonly kind: 'found';
      readonly role: string;
      readonly target: TargetFile;
      readonly chain: readonly string[];
    }
  | { readonly kind: 'not-found'; readonly visited: number }
  /** The role `role`, delegated by `delegator`, must be loaded before the search can go on. */
  | { readonly kind: 'need'; readonly role: DelegatedRole; readonly delegator: string };

export interface TargetSearchOptions {
  /** The target path to look for. */
  path: string;
  /** The trusted top-level targets. */
  targets: Targets;
  /** A delegated role as trusted through `delegator`, or undefined when not loaded yet. */
  getRole(name: string, delegator: string): Targets | undefined;
  /** At most this many roles are visited (default 32); more is a DELEGATION_LIMIT error. */
  maxRoles?: number;
}

/**
 * Preorder depth-first search from `targets` (5.7.7): a role is visited once; delegations are
 * tried in the order listed; a terminating delegation that matches stops the search from
 * looking at any role after it.
 */
export function searchTarget(options: TargetSearchOptions): TargetSearchResult {
  const maxRoles = options.maxRoles ?? DEFAULT_MAX_DELEGATIONS;
  const visited = new Set<string>();
  const stack: { name: string; signed: Targets | DelegatedRole; delegator: string; chain: string[] }[] = [
    { name: 'targets', signed: options.targets, delegator: 'root', chain: ['targets'] },
  ];
  while (stack.length > 0) {
    const entry = stack.pop()!;
    if (visited.has(entry.name)) continue;
    if (visited.size >= maxRoles) {
      throw new TufaError(
        'DELEGATION_LIMIT',
        `more than ${maxRoles} roles visited looking for ${options.path}`,
        {
          role: entry.name,
          expected: maxRoles,
          details: { path: options.path },
        },
      );
    }
    let role: Targets;
    if ('type' in entry.signed) role = entry.signed;
    else {
      const loaded = options.getRole(entry.name, entry.delegator);
      if (loaded === undefined) return { kind: 'need', role: entry.signed, delegator: entry.delegator };
      role = loaded;
    }
    visited.add(entry.name);
    // The one entry asked for: a role read with a path index never makes its whole map here.
    const target = targetFileOf(role, options.path);
    if (target !== undefined) return { kind: 'found', role: entry.name, target, chain: entry.chain };
    const children: typeof stack = [];
    for (const child of delegationsFor(role.delegations, options.path)) {
      children.push({
        name: child.name,
        signed: child,
        delegator: entry.name,
        chain: [...entry.chain, child.name],
      });
      if (child.terminating) {
        stack.length = 0; // 5.7.7.2.3: nothing after a terminating delegation is considered
        break;
      }
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  return { kind: 'not-found', visited: visited.size };
}
