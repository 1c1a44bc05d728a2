/**
 * How a verified Notary collection maps onto a tufa collection: role names in tufa's grammar,
 * Notary's path prefixes as TUF patterns, the tags of each delegation level, what cannot be
 * carried; and the comparison of tags after the import. Pure: the command does the I/O.
 */
import { type TargetFile, TufaError } from '@tufa/core';
import { checkRoleName } from '../commands/stage.js';
import type { NotaryKey } from './format.js';
import type { NotaryCollection } from './reader.js';

/** Deepest paths (in `/`-separated segments) the translated patterns cover beyond the prefix's own. */
export const EXTRA_PATTERN_DEPTH = 3;

/** Notary's role name in tufa's grammar: `targets/releases` → `releases`, `targets/a/b` → `a.b`. */
export function tufaRoleName(notaryName: string): string {
  return notaryName.split('/').slice(1).join('.');
}

const escapePattern = (s: string) => s.replace(/[*?[]/g, (c) => `[${c}]`);

/**
 * TUF patterns for Notary's prefixes: `*` stops at `/` and a pattern fixes the number of segments,
 * so a prefix becomes one pattern per depth, from the prefix's own to `depth` slashes.
 */
export function prefixPatterns(prefixes: readonly string[], depth: number): string[] {
  const out: string[] = [];
  for (const prefix of prefixes) {
    const slashes = prefix.split('/').length - 1;
    for (let s = slashes; s <= Math.max(depth, slashes); s++)
      out.push(`${escapePattern(prefix)}*${'/*'.repeat(s - slashes)}`);
  }
  return [...new Set(out)];
}

/** The tags that differ between the Notary reader and tufa's client, or are missing from either. */
export function compareTags(
  notary: ReadonlyMap<string, { length: number; hashes: Readonly<Record<string, string>> }>,
  tufa: ReadonlyMap<string, { length: number; hashes: Readonly<Record<string, string>> }>,
): { tag: string; notary: string; tufa: string }[] {
  const describe = (t: { length: number; hashes: Readonly<Record<string, string>> } | undefined) =>
    t === undefined
      ? 'absent'
      : `${t.length} bytes, sha256:${t.hashes.sha256 ?? '-'}, sha512:${t.hashes.sha512 ?? '-'}`;
  const out: { tag: string; notary: string; tufa: string }[] = [];
  for (const tag of new Set([...notary.keys(), ...tufa.keys()])) {
    const a = notary.get(tag);
    const b = tufa.get(tag);
    const same =
      a !== undefined &&
      b !== undefined &&
      a.length === b.length &&
      Object.keys(a.hashes).every((alg) => b.hashes[alg] === a.hashes[alg]) &&
      Object.keys(b.hashes).every((alg) => a.hashes[alg] === b.hashes[alg]);
    if (!same) out.push({ tag, notary: describe(a), tufa: describe(b) });
  }
  return out.sort((x, y) => (x.tag < y.tag ? -1 : 1));
}

export interface PlannedDelegation {
  notaryName: string;
  name: string;
  parent: string;
  notary: { keyids: readonly string[]; threshold: number; paths: readonly string[] };
  keys: Readonly<Record<string, NotaryKey>>;
  patterns: string[];
  tags: number;
}

export interface Plan {
  roleNames: Map<string, string>;
  levels: { delegations: PlannedDelegation[]; tags: { role: string; path: string; target: TargetFile }[] }[];
  notCarried: { what: string; why: string }[];
}

/** How the collection maps onto tufa: role names, path patterns, and which tags go where, level by level. */
export function planImport(collection: NotaryCollection): Plan {
  const roleNames = new Map<string, string>([['targets', 'targets']]);
  const notCarried: { what: string; why: string }[] = [];
  for (const r of collection.roles) {
    if (r.name === 'targets') continue;
    const name = tufaRoleName(r.name);
    const clash = [...roleNames].find(([, v]) => v === name);
    if (clash !== undefined) {
      throw new TufaError(
        'INVALID_ARGUMENT',
        `notary roles ${clash[0]} and ${r.name} would both be named ${name} in tufa`,
        { found: r.name },
      );
    }
    checkRoleName(name);
    roleNames.set(r.name, name);
  }
  const levels: Plan['levels'] = [];
  const depthOf = (name: string) => name.split('/').length - 1;
  const tagsByRole = new Map<string, number>();
  for (const t of collection.tags.values()) tagsByRole.set(t.role, (tagsByRole.get(t.role) ?? 0) + 1);
  for (const r of collection.roles) {
    const level = depthOf(r.name);
    while (levels.length <= level) levels.push({ delegations: [], tags: [] });
    if (r.delegation !== undefined) {
      // Cover the deepest tag the role has now, and a few segments more.
      const deepest = Math.max(
        0,
        ...Object.keys(r.signed?.targets ?? {}).map((p) => p.split('/').length - 1),
      );
      const ownDepth = Math.max(0, ...r.delegation.paths.map((p) => p.split('/').length - 1));
      const patterns = prefixPatterns(r.delegation.paths, Math.max(deepest, ownDepth + EXTRA_PATTERN_DEPTH));
      levels[level - 1]!.delegations.push({
        notaryName: r.name,
        name: roleNames.get(r.name)!,
        parent: roleNames.get(r.delegator!)!,
        notary: r.delegation,
        keys: r.keys,
        patterns,
        tags: tagsByRole.get(r.name) ?? 0,
      });
      notCarried.push({
        what: `paths of ${r.name} deeper than ${Math.max(deepest, ownDepth + EXTRA_PATTERN_DEPTH)} slashes`,
        why: "Notary's prefixes match any depth; TUF's patterns fix the number of segments",
      });
    }
  }
  for (const t of collection.tags.values()) {
    const { custom, length, hashes } = t.target;
    const target: TargetFile = {
      length,
      hashes: { ...hashes },
      extra: {},
      ...(custom === undefined ? {} : { custom }),
    };
    levels[depthOf(t.role)]!.tags.push({ role: roleNames.get(t.role)!, path: t.path, target });
  }
  for (const s of collection.shadowed) {
    notCarried.push({
      what: `${s.path} in ${s.role}`,
      why: `Notary resolves ${s.path} from ${collection.tags.get(s.path)!.role}, listed earlier`,
    });
  }
  for (const r of collection.roles) {
    if (r.delegation !== undefined && r.signed === undefined) {
      notCarried.push({
        what: `the metadata of ${r.name}`,
        why: 'Notary never published it: the delegation is carried, with no targets',
      });
    }
  }
  const rootRoles = collection.root.signed.roles;
  for (const name of ['root', 'targets'] as const) {
    const r = rootRoles[name];
    if (r.keyids.length > 1) {
      notCarried.push({
        what: `${name}: threshold ${r.threshold} of ${r.keyids.length} keys`,
        why: `the tufa collection starts with one ${name} key: add the others with tufa key add GUN ${name} … --threshold ${r.threshold}`,
      });
    }
  }
  notCarried.push({
    what: 'the timestamp and snapshot keys',
    why: 'online keys stay with their server: the tufa server holds new ones',
  });
  return { roleNames, levels, notCarried };
}
