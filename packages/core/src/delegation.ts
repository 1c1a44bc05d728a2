/**
 * Delegation search (5.7.7 of the spec): which role, if any, is trusted for a target path.
 * Pure and synchronous: when the search needs a role that is not loaded yet it says so, the
 * caller loads it through the trusted-metadata set and asks again.
 */
import { sha256Id } from './crypto.js';
import { TufaError } from './errors.js';
import { utf8Encode } from './json.js';
import type { DelegatedRole, TargetFile, Targets } from './metadata.js';

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
    const target = Object.hasOwn(role.targets, options.path) ? role.targets[options.path] : undefined;
    if (target !== undefined) return { kind: 'found', role: entry.name, target, chain: entry.chain };
    const children: typeof stack = [];
    for (const child of role.delegations?.roles ?? []) {
      if (!isDelegatedPath(child, options.path)) continue;
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
