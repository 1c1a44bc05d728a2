/**
 * A collection's delegated roles as an update check reads them (core's StoredDelegatedRoles): every
 * role's entry, from the latest server-signed snapshot or from the rows, and documents on request;
 * and the loop that runs an update's steps against them. Shared by the event loop's check
 * (state.ts) and the verification worker (verify-worker.ts): nothing here reaches the database
 * driver, so a worker's start does not load it (ADR 0017 section 12).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  type MetaFile,
  type Snapshot,
  type SnapshotIndex,
  type StoredDelegatedRoles,
  type StoredRole,
  type StoredRoleEntry,
  snapshotIndexOf,
  type Targets,
  type UpdateSteps,
} from '@tufa/core';
import { TOP_LEVEL_ROLES } from './documents.js';

/** The delegated roles of one collection in one transaction: entries for all, documents on request. */
export class StoredRoles implements StoredDelegatedRoles {
  /** The roles that delegate: held for the whole update. */
  readonly delegators = new Map<string, StoredRole<Targets>>();
  /** The latest request's documents: dropped at the next, so that checking every bin again stays bounded. */
  private requested = new Map<string, StoredRole<Targets>>();

  constructor(
    readonly entries: ReadonlyMap<string, StoredRoleEntry>,
    /** Parses the stored documents of these rows (the database's, or the event loop's to a worker). */
    private readonly fetch: (
      rows: readonly { role: string; version: number }[],
    ) => Promise<Map<string, StoredRole>>,
  ) {}

  get snapshotMeta(): Readonly<Record<string, MetaFile>> | undefined {
    return this.entries instanceof SnapshotEntries ? this.entries.meta : undefined;
  }

  get snapshotIndex(): SnapshotIndex | undefined {
    return this.entries instanceof IndexedEntries ? this.entries.index : undefined;
  }

  get delegating(): Iterable<string> {
    return this.delegators.keys();
  }

  document(name: string): StoredRole<Targets> | undefined {
    return this.delegators.get(name) ?? this.requested.get(name);
  }

  /** Parses the stored documents of `names` (never kept past the next load). */
  async load(names: readonly string[]): Promise<void> {
    this.requested = new Map();
    const rows = names
      .filter((name) => this.entries.has(name) && !this.delegators.has(name))
      .map((role) => ({ role, version: this.entries.get(role)!.version }));
    for (const [role, stored] of await this.fetch(rows)) {
      this.requested.set(role, stored as StoredRole<Targets>);
    }
  }
}

/** A read-only map of stored roles' entries: values, iteration and forEach from its entries(). */
abstract class EntriesView implements ReadonlyMap<string, StoredRoleEntry> {
  abstract readonly size: number;
  abstract get(name: string): StoredRoleEntry | undefined;
  abstract has(name: string): boolean;
  abstract keys(): MapIterator<string>;
  abstract entries(): MapIterator<[string, StoredRoleEntry]>;

  *values(): MapIterator<StoredRoleEntry> {
    for (const [, entry] of this.entries()) yield entry;
  }

  [Symbol.iterator](): MapIterator<[string, StoredRoleEntry]> {
    return this.entries();
  }

  forEach(
    fn: (value: StoredRoleEntry, key: string, map: ReadonlyMap<string, StoredRoleEntry>) => void,
  ): void {
    for (const [name, entry] of this.entries()) fn(entry, name, this);
  }
}

/**
 * The entries of a snapshot the server signed: every targets role but targets itself, each with
 * its version, length and sha256 as the server wrote them (a view over its meta: nothing copied
 * per role; the update's snapshot reuses the entries as they are).
 */
export class SnapshotEntries extends EntriesView {
  private names_: string[] | undefined;

  private constructor(readonly meta: Readonly<Record<string, MetaFile>>) {
    super();
  }

  /** The view, or undefined when an entry lacks what the server writes (then: the rows). */
  static of(snapshot: Snapshot): SnapshotEntries | undefined {
    const meta = snapshot.meta;
    for (const key in meta) {
      const m = meta[key]!;
      if (typeof m.length !== 'number' || typeof m.hashes?.sha256 !== 'string') return undefined;
    }
    for (const name of ['root', 'snapshot', 'timestamp'])
      if (Object.hasOwn(meta, `${name}.json`)) return undefined;
    return new SnapshotEntries(meta);
  }

  private get names(): string[] {
    this.names_ ??= Object.keys(this.meta)
      .filter((key) => key !== 'targets.json')
      .map((key) => key.slice(0, -'.json'.length));
    return this.names_;
  }

  /** Every role's version, straight from the meta (no entry made per role). */
  versionsInto(out: Record<string, number>): void {
    for (const key in this.meta) {
      if (key !== 'targets.json') out[key.slice(0, -'.json'.length)] = this.meta[key]!.version;
    }
  }

  get size(): number {
    return this.names.length;
  }

  get(name: string): StoredRoleEntry | undefined {
    if (TOP_LEVEL_ROLES.has(name)) return undefined;
    const key = `${name}.json`;
    const m = Object.hasOwn(this.meta, key) ? this.meta[key] : undefined;
    if (m === undefined) return undefined;
    return { version: m.version, length: m.length!, sha256: m.hashes!.sha256!, metaFile: m };
  }

  has(name: string): boolean {
    return !TOP_LEVEL_ROLES.has(name) && Object.hasOwn(this.meta, `${name}.json`);
  }

  keys(): MapIterator<string> {
    return this.names.values();
  }

  *entries(): MapIterator<[string, StoredRoleEntry]> {
    for (const name of this.names) yield [name, this.get(name)!];
  }
}

/**
 * The entries of a snapshot the server signed, read from its index (core's SnapshotIndex: its
 * bytes, checked in the server's shape once per snapshot, when it was made or first read): no
 * object per role, and nothing done per role by a publish.
 */
export class IndexedEntries extends EntriesView {
  private constructor(readonly index: SnapshotIndex) {
    super();
  }

  /** The view, or undefined when the snapshot is not indexed or lists a top-level role but targets. */
  static of(snapshot: StoredRole<Snapshot>): IndexedEntries | undefined {
    const index = snapshotIndexOf(snapshot);
    if (index === undefined) return undefined;
    for (const name of ['root', 'snapshot', 'timestamp'])
      if (index.find(`${name}.json`) >= 0) return undefined;
    return new IndexedEntries(index);
  }

  /** Every role's version (no entry made per role). */
  versionsInto(out: Record<string, number>): void {
    for (let i = 0; i < this.index.size; i++) {
      const key = this.index.key(i);
      if (key !== 'targets.json') out[key.slice(0, -'.json'.length)] = this.index.version(i);
    }
  }

  get size(): number {
    return this.index.size - (this.index.find('targets.json') >= 0 ? 1 : 0);
  }

  get(name: string): StoredRoleEntry | undefined {
    if (TOP_LEVEL_ROLES.has(name)) return undefined;
    const i = this.index.find(`${name}.json`);
    return i < 0 ? undefined : this.index.entry(i);
  }

  has(name: string): boolean {
    return !TOP_LEVEL_ROLES.has(name) && this.index.find(`${name}.json`) >= 0;
  }

  *keys(): MapIterator<string> {
    for (let i = 0; i < this.index.size; i++) {
      const key = this.index.key(i);
      if (key !== 'targets.json') yield key.slice(0, -'.json'.length);
    }
  }

  *entries(): MapIterator<[string, StoredRoleEntry]> {
    for (let i = 0; i < this.index.size; i++) {
      const key = this.index.key(i);
      if (key !== 'targets.json') yield [key.slice(0, -'.json'.length), this.index.entry(i)];
    }
  }
}

/**
 * Runs an update's (or a proposal's) steps to their result, loading the stored documents they ask
 * for, and letting other work run after each step: seconds of signature verification must not
 * stall the reads served beside them.
 */
export async function running<T>(steps: UpdateSteps<T>, roles: StoredRoles): Promise<T> {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (typeof step.value === 'string') await nextTurn();
    else await roles.load(step.value.load);
  }
}
