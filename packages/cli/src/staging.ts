/**
 * Staged changes per collection (TUFA_HOME/staged/GUN.json): kept until a publish succeeds,
 * applied in order to the latest trusted targets (or delegated role) at publish time.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type JsonValue,
  type Key,
  keyToJson,
  parseJson,
  type TargetFile,
  type Targets,
  TufaError,
  targetFileToJson,
  withDelegation,
  withoutDelegation,
  withoutTarget,
  withTarget,
} from '@tufa/core';
import { gunFileName, readFileBounded, writeFileAtomic } from './home.js';

export type StagedChange =
  | { op: 'add'; role: string; path: string; target: TargetFile }
  | { op: 'remove'; role: string; path: string }
  | {
      op: 'delegation-add';
      role: string;
      name: string;
      keys: Key[];
      threshold: number;
      terminating: boolean;
      paths: string[];
    }
  | { op: 'delegation-remove'; role: string; name: string };

export type TargetChange = Extract<StagedChange, { op: 'add' | 'remove' }>;

export function isTargetChange(change: StagedChange): change is TargetChange {
  return change.op === 'add' || change.op === 'remove';
}

const STAGED_LIMIT = 64 * 1024 * 1024;

export class Staging {
  constructor(private readonly dir: string) {}

  private path(gun: string): string {
    return join(this.dir, `${gunFileName(gun)}.json`);
  }

  async list(gun: string): Promise<StagedChange[]> {
    const bytes = await readFileBounded(this.path(gun), STAGED_LIMIT, 'staged changes');
    if (bytes === undefined) return [];
    const doc = parseJson(bytes, { source: `staged changes of ${gun}` });
    if (!Array.isArray(doc)) throw new TufaError('INVALID_ARGUMENT', `staged changes of ${gun} are corrupt`);
    return doc.map((item) => decodeChange(item, gun));
  }

  async add(gun: string, change: StagedChange): Promise<void> {
    const changes = await this.list(gun);
    changes.push(change);
    await this.write(gun, changes);
  }

  /**
   * Stages a target change (add or remove): one per role and path, a later one replacing the
   * earlier. `change` undefined only drops the earlier one. Returns the change it replaced.
   */
  async putTarget(
    gun: string,
    key: { role: string; path: string },
    change: TargetChange | undefined,
  ): Promise<TargetChange | undefined> {
    const changes = await this.list(gun);
    const at = changes.findIndex((c) => isTargetChange(c) && c.role === key.role && c.path === key.path);
    const replaced = at === -1 ? undefined : (changes.splice(at, 1)[0] as TargetChange);
    if (change !== undefined) changes.push(change);
    await this.write(gun, changes);
    return replaced;
  }

  /** Drops the staged changes of one tag (in `role` only, when given); returns them. */
  async dropTarget(gun: string, path: string, role?: string): Promise<TargetChange[]> {
    const changes = await this.list(gun);
    const matches = (c: StagedChange): c is TargetChange =>
      isTargetChange(c) && c.path === path && (role === undefined || c.role === role);
    const dropped = changes.filter(matches);
    if (dropped.length > 0)
      await this.write(
        gun,
        changes.filter((c) => !matches(c)),
      );
    return dropped;
  }

  async write(gun: string, changes: readonly StagedChange[]): Promise<void> {
    await writeFileAtomic(this.path(gun), `${JSON.stringify(changes.map(encodeChange), null, 2)}\n`);
  }

  async reset(gun: string): Promise<number> {
    const n = (await this.list(gun)).length;
    await rm(this.path(gun), { force: true });
    return n;
  }
}

function encodeChange(change: StagedChange): JsonValue {
  switch (change.op) {
    case 'add':
      return { op: 'add', role: change.role, path: change.path, target: targetFileToJson(change.target) };
    case 'delegation-add':
      return { ...change, keys: change.keys.map(keyToJson) };
    default:
      return { ...change };
  }
}

function decodeChange(item: JsonValue, gun: string): StagedChange {
  const bad = (): never => {
    throw new TufaError('INVALID_ARGUMENT', `staged changes of ${gun} are corrupt: run tufa reset ${gun}`);
  };
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return bad();
  const role = typeof item.role === 'string' ? item.role : bad();
  switch (item.op) {
    case 'add': {
      const path = typeof item.path === 'string' ? item.path : bad();
      const t = item.target;
      if (t === null || typeof t !== 'object' || Array.isArray(t)) return bad();
      if (
        typeof t.length !== 'number' ||
        t.hashes === null ||
        typeof t.hashes !== 'object' ||
        Array.isArray(t.hashes)
      ) {
        return bad();
      }
      const hashes: Record<string, string> = {};
      for (const [alg, hex] of Object.entries(t.hashes)) hashes[alg] = typeof hex === 'string' ? hex : bad();
      const target: TargetFile =
        t.custom === undefined
          ? { length: t.length, hashes, extra: {} }
          : { length: t.length, hashes, custom: t.custom, extra: {} };
      return { op: 'add', role, path, target };
    }
    case 'remove':
      return { op: 'remove', role, path: typeof item.path === 'string' ? item.path : bad() };
    case 'delegation-add': {
      const keys = Array.isArray(item.keys) ? item.keys : bad();
      const paths = Array.isArray(item.paths) ? item.paths : bad();
      return {
        op: 'delegation-add',
        role,
        name: typeof item.name === 'string' ? item.name : bad(),
        keys: keys.map((k) => {
          const obj = k as Record<string, JsonValue>;
          const keyval = obj?.keyval as Record<string, JsonValue> | undefined;
          if (
            typeof obj?.keytype !== 'string' ||
            typeof obj.scheme !== 'string' ||
            typeof keyval?.public !== 'string'
          ) {
            return bad();
          }
          return { keytype: obj.keytype, scheme: obj.scheme, keyval: { public: keyval.public }, extra: {} };
        }),
        threshold: typeof item.threshold === 'number' ? item.threshold : bad(),
        terminating: typeof item.terminating === 'boolean' ? item.terminating : bad(),
        paths: paths.map((p) => (typeof p === 'string' ? p : bad())),
      };
    }
    case 'delegation-remove':
      return { op: 'delegation-remove', role, name: typeof item.name === 'string' ? item.name : bad() };
    default:
      return bad();
  }
}

/** Applies the changes that concern `role` to its current content, in order. */
export function applyChanges(role: string, targets: Targets, changes: readonly StagedChange[]): Targets {
  let next = targets;
  for (const change of changes) {
    if (change.role !== role) continue;
    switch (change.op) {
      case 'add':
        next = withTarget(next, change.path, change.target);
        break;
      case 'remove':
        if (!Object.hasOwn(next.targets, change.path)) {
          throw new TufaError('NOT_FOUND', `${change.path} is not a target of ${role}`, {
            role,
            found: change.path,
          });
        }
        next = withoutTarget(next, change.path);
        break;
      case 'delegation-add':
        next = withDelegation(next, {
          name: change.name,
          keys: change.keys,
          threshold: change.threshold,
          terminating: change.terminating,
          paths: change.paths,
        });
        break;
      case 'delegation-remove':
        next = withoutDelegation(next, change.name);
        break;
    }
  }
  return next;
}

/** The roles a set of staged changes touches. */
export function changedRoles(changes: readonly StagedChange[]): string[] {
  return [...new Set(changes.map((c) => c.role))];
}
